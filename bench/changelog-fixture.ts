/**
 * A changelog as the runtime writes it, for the restore and failover benchmarks: each merchant's
 * state (one FUNDED loan) encoded by the repayment processor's Task as a commit encodes it,
 * keyed by merchant, in the partition of the merchant's input (murmur2, connectors/kafka-send.ts).
 */
import type { Message } from 'kafkajs';
import { keyPartitioner } from '../connectors/kafka-send';
import { createRepaymentProcessor } from '../processors/repayment';
import { parseEntryChangelogKey } from '../runtime/entries';
import { Task, type SourceRecord } from '../runtime/task';
import type { LoanEvent } from '../schemas/generated/types';
import { TOPICS } from '../schemas/topics';
import { endpoints, kafkaClient } from '../test/harness/kafka';

const DAY_MS = 86_400_000;
const BATCH = 10_000;

const keyOf = (i: number): string => `m-${String(i).padStart(7, '0')}`;

function funded(i: number, fundedAt: number): LoanEvent {
  const m = keyOf(i);
  return {
    event_id: `f-${m}`,
    loan_id: `${m}-loan`,
    merchant_id: m,
    type: 'FUNDED',
    occurred_at: fundedAt,
    principal_minor: 10_000_000,
    fee_minor: 100_000,
    holdback_rate_bps: 1000,
    minimum_payment_minor: 0,
    period_days: 30,
    currency: 'EUR',
  };
}

/** Writes every merchant's state to the changelog as a commit would; returns its bytes. */
export async function writeChangelog(
  topic: string,
  merchants: number,
  /**
   * When the loans were funded: by default a day ago, so that no 30-day period closes while a
   * benchmark runs. Older, the first tick closes every period (the failover benchmark's
   * `fundedDaysAgo`, docs/performance.md).
   */
  fundedAt = Date.now() - DAY_MS,
): Promise<{ records: number; bytes: number; ms: number }> {
  const t0 = Date.now();
  const partitionOf = keyPartitioner(endpoints.partitions);
  const processor = createRepaymentProcessor();
  const producer = kafkaClient('holdback-bench-restore').producer({ idempotent: true });
  await producer.connect();
  let records = 0;
  let bytes = 0;
  try {
    for (let start = 0; start < merchants; start += BATCH) {
      // A task per batch: its memory is not what is measured.
      const task = new Task(processor, 0);
      for (let i = start; i < Math.min(merchants, start + BATCH); i++) {
        const src: SourceRecord = {
          topic: TOPICS.loanEvents,
          partition: 0,
          offset: i,
          key: null,
          value: null,
          timestamp: fundedAt,
        };
        const record = {
          topic: TOPICS.loanEvents,
          key: keyOf(i),
          value: funded(i, fundedAt),
          timestamp: fundedAt,
        };
        task.accept(src, { ok: true, record }, fundedAt);
      }
      const flush = task.drain();
      const byPartition = new Map<number, Message[]>();
      for (const c of flush.changelog) {
        // The merchant's own partition (an entry's changelog key names its merchant too).
        const p = partitionOf(topic, parseEntryChangelogKey(c.key)?.key ?? c.key);
        const list = byPartition.get(p) ?? [];
        list.push({ key: c.key, value: c.value });
        byPartition.set(p, list);
        records++;
        bytes += Buffer.byteLength(c.key) + (c.value?.length ?? 0);
      }
      await producer.sendBatch({
        topicMessages: [...byPartition].map(([partition, messages]) => ({
          topic,
          messages: messages.map((m) => ({ ...m, partition })),
        })),
      });
      if ((start / BATCH) % 20 === 0)
        console.log(`  ... changelog: ${Math.min(merchants, start + BATCH)} of ${merchants} merchants`);
    }
  } finally {
    await producer.disconnect();
  }
  return { records, bytes, ms: Date.now() - t0 };
}
