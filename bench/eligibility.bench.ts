/**
 * Eligibility live on the real local stack (issue 16's "a decision readable <= 1 s after its
 * triggering event, at p99"): sales and orders produced at a fixed rate, on the wall clock, into
 * a running `holdback run eligibility` (exactly-once, 100 ms commits), and a read_committed
 * consumer timing each decision from the moment its triggering event was sent (found by
 * trigger_event_id) to the moment the decision is readable.
 *
 * A decision is only written when the outcome changes materially (a merchant's first event always
 * decides), so half the events are a new merchant's first, spread over the whole run, and half
 * go to merchants already seen: every second event or so is timed, the rest are the load.
 *
 *   npx tsx bench/eligibility.bench.ts [events/s, default 5000] [seconds, default 60]
 *     [transport: kafkajs|rdkafka, default rdkafka]
 *
 * Prints and saves bench/results/eligibility-<transport>.json. Needs `holdback stack up` and a
 * build (`npm run build`); `npm run bench` does both.
 */
import { readFileSync } from 'node:fs';
import type { Consumer, Message } from 'kafkajs';
import { changelogTopic } from '../runtime/kafka-runtime';
import type { OrderEvent, SaleEvent } from '../schemas/generated/types';
import { TOPICS } from '../schemas/topics';
import { createTopics, deleteTopics, kafkaClient, registeredCodec } from '../test/harness/kafka';
import { spawnProcessor, terminate, waitFor } from '../test/harness/processes';
import { Rng } from '../test/harness/random';
import { rssMb } from './kafka-tools';
import { latencySummary, readCommitted, saveResult } from './live';
import { machine } from './machine';

const RATE = Number(process.argv[2] ?? 5000);
const SECONDS = Number(process.argv[3] ?? 60);
const TRANSPORT = process.argv[4] ?? 'rdkafka';
if (TRANSPORT !== 'kafkajs' && TRANSPORT !== 'rdkafka') {
  throw new Error(`transport must be kafkajs or rdkafka, not ${TRANSPORT}`);
}
const RUN = `bench-elig-${Date.now().toString(36)}`;
const PREFIX = `${RUN}.`;

async function main(): Promise<void> {
  const codec = await registeredCodec();
  await createTopics(PREFIX);
  const rng = new Rng(6);
  const proc = spawnProcessor(RUN, 'eligibility', [
    `--topic-prefix=${PREFIX}`,
    `--application-id=${RUN}`,
    `--transport=${TRANSPORT}`,
  ]);
  const producer = kafkaClient('bench-producer').producer({ idempotent: true, maxInFlightRequests: 1 });
  let consumer: Consumer | undefined;
  /** When each event was handed to the producer (ms), by event_id. */
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  let decisions = 0;
  try {
    await waitFor(
      'the processor to be ready',
      async () => {
        const url = /"metrics":"(http:[^"]+)"/.exec(readFileSync(proc.logFile, 'utf8'))?.[1];
        if (!url) return false;
        return (await fetch(`${url}/ready`).catch(() => undefined))?.status === 200;
      },
      120_000,
      500,
    );
    consumer = await readCommitted(`${RUN}-reader`, PREFIX, TOPICS.eligibility, codec, (d, readAt) => {
      decisions++;
      const at = sentAt.get(d.trigger_event_id);
      if (at !== undefined) latencies.push(readAt - at);
    });

    console.log(`producing sales and orders at ${RATE}/s for ${SECONDS}s...`);
    await producer.connect();
    const start = Date.now();
    let produced = 0;
    let merchants = 0;
    while (Date.now() - start < SECONDS * 1000) {
      const due = Math.floor(((Date.now() - start) / 1000) * RATE);
      const sales: Message[] = [];
      const orders: Message[] = [];
      while (produced < due && sales.length + orders.length < 1000) {
        // Every second event is a new merchant's first (it always decides); the others go to
        // a merchant already seen.
        const merchant = `${RUN}-m${produced % 2 === 0 || merchants === 0 ? merchants++ : rng.int(0, merchants - 1)}`;
        const now = Date.now();
        const id = `${RUN}-e${produced}`;
        if (rng.next() < 0.5) {
          const s: SaleEvent = {
            event_id: id,
            merchant_id: merchant,
            sale_id: id,
            order_id: null,
            type: 'CAPTURED',
            amount_minor: rng.int(500, 50_000),
            currency: 'USD',
            occurred_at: now,
          };
          sales.push({ key: merchant, value: codec.encode(TOPICS.sales, s), timestamp: String(now) });
        } else {
          const o: OrderEvent = {
            event_id: id,
            merchant_id: merchant,
            order_id: id,
            type: 'PLACED',
            amount_minor: rng.int(500, 50_000),
            currency: 'USD',
            occurred_at: now,
          };
          orders.push({ key: merchant, value: codec.encode(TOPICS.orders, o), timestamp: String(now) });
        }
        sentAt.set(id, now);
        produced++;
      }
      if (sales.length + orders.length > 0)
        await producer.sendBatch({
          acks: -1,
          topicMessages: [
            { topic: PREFIX + TOPICS.sales, messages: sales },
            { topic: PREFIX + TOPICS.orders, messages: orders },
          ],
        });
      else await new Promise((r) => setTimeout(r, 20));
    }
    const producedSeconds = (Date.now() - start) / 1000;
    const rss = rssMb(proc.child.pid);
    // Every new merchant decides once: wait until those decisions are readable.
    await waitFor('the last decisions', async () => decisions >= merchants, 60_000, 500).catch(
      () => undefined,
    );
    const latency = latencySummary(latencies);
    const result = {
      benchmark: 'eligibility',
      date: new Date().toISOString(),
      machine: machine(),
      setup: {
        transport: TRANSPORT,
        guarantee: 'exactly_once',
        commitIntervalMs: 100,
        partitions: 4,
        clock: 'wall',
        events: 'half sales (CAPTURED), half orders (PLACED); every second event a new merchant',
      },
      targetEventsPerSecond: RATE,
      seconds: Math.round(producedSeconds),
      producedEventsPerSecond: Math.round(produced / producedSeconds),
      merchants,
      decisions,
      timedDecisions: latencies.length,
      latencyMs: latency,
      processor: { rssMb: rss },
      complete: decisions >= merchants,
    };
    console.table({
      'produced events/s': result.producedEventsPerSecond,
      'decisions (timed)': `${decisions} (${latencies.length})`,
      'p50 event -> readable decision (ms)': result.latencyMs.p50,
      'p99 (ms)': result.latencyMs.p99,
      'max (ms)': result.latencyMs.max,
      'processor RSS (MB)': rss,
    });
    saveResult(`eligibility-${TRANSPORT}.json`, result);
  } finally {
    await consumer?.disconnect().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
    await terminate(proc);
    await deleteTopics(PREFIX, [changelogTopic(RUN)]);
    await deleteTopics(`${RUN}-`).catch(() => undefined); // the clock topic
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
