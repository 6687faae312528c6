/**
 * What the live benchmarks share (bench/repayment.bench.ts, bench/eligibility.bench.ts): a
 * read_committed reader of one output topic that hands each decoded record to the benchmark with
 * the moment it became readable, the latency summary, and saving the result.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Consumer } from 'kafkajs';
import type { Codec } from '../connectors/codec';
import type { TopicName, TopicRecords } from '../schemas/topics';
import { kafkaClient } from '../test/harness/kafka';
import { percentile } from './kafka-tools';

/**
 * Starts a consumer of `prefix + topic` from the beginning, read_committed, polling every 20 ms;
 * `onRecord` gets each record that decodes, and the time it was read (ms). Disconnect it when done.
 */
export async function readCommitted<T extends TopicName>(
  groupId: string,
  prefix: string,
  topic: T,
  codec: Codec,
  onRecord: (value: TopicRecords[T], readAt: number) => void,
): Promise<Consumer> {
  const consumer = kafkaClient('bench-consumer').consumer({
    groupId,
    readUncommitted: false,
    maxWaitTimeInMs: 20,
  });
  await consumer.connect();
  await consumer.subscribe({ topic: prefix + topic, fromBeginning: true });
  await consumer.run({
    eachBatch: async ({ batch }) => {
      const now = Date.now();
      for (const m of batch.messages) {
        const r = codec.tryDecodeCached(topic, m.key, m.value, now);
        if (r?.ok) onRecord(r.value as TopicRecords[T], now);
      }
    },
  });
  return consumer;
}

/** p50, p99 and max of latencies in ms (sorts them in place). */
export function latencySummary(latencies: number[]): { p50: number; p99: number; max: number } {
  latencies.sort((a, b) => a - b);
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies.at(-1) ?? NaN };
}

/** Writes bench/results/<file> and says so. */
export function saveResult(file: string, result: unknown): void {
  const dir = join(__dirname, 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, file), `${JSON.stringify(result, null, 2)}\n`);
  console.log(`saved bench/results/${file}`);
}
