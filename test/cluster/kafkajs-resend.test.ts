/**
 * Why the kafkajs transport sends one topic-partition per call (connectors/kafka-send.ts), shown on
 * the real three-node cluster through Toxiproxy. A topic has partition 0 led by node 1 and
 * partition 1 by node 2 (both replicated three times, as every topic here is: an unreplicated one
 * would be left without a leader by the next test's broker kill, and kafkajs fails a whole Metadata
 * answer, and so every client's start, on one leaderless partition anywhere in the cluster). Each trial sends one record to each in one kafkajs sendBatch while node 1 answers
 * late (a latency toxic, as a leader waiting for a follower under acks=all does) and node 2 drops
 * every request (limit_data: the connection opens, the request closes it).
 *
 * kafkajs retries when node 2's request fails, without waiting for node 1's. A retry made before
 * node 1 has answered asks node 1 again; that request waits for the broker lock, then goes with the
 * sequence numbers the first one advanced, and node 1 appends the record again. Every retry until
 * node 1 answers adds a copy. (A retry whose metadata refresh happens to ask node 1 waits behind
 * the first request and repeats nothing, so not every trial writes twice.) When this test was
 * written, 8 of 10 trials wrote node 1's record 2 to 7 times.
 *
 * The same trials through sendByPartition write each record once.
 */
import { Kafka, logLevel, type Message, type Producer } from 'kafkajs';
import { sendByPartition } from '../../connectors/kafka-send';
import { endpoints, kafkaClient } from '../harness/kafka';
import { proxyKafkaNodes, Toxiproxy } from '../harness/toxiproxy';

jest.setTimeout(300_000);

/** Trials per sender: plain sendBatch writes more than once in most of them. */
const TRIALS = 10;
/** How late node 1 answers. */
const SLOW_MS = 2500;
/** How long node 2 drops every request. */
const DROP_MS = 1200;

let proxy: Toxiproxy;
let proxies: string[];

beforeAll(async () => {
  proxy = await Toxiproxy.start();
  proxies = await proxyKafkaNodes(proxy, endpoints);
});

afterAll(async () => {
  await proxy?.stop();
});

/** Topics this file made: deleted when it ends. */
const made: string[] = [];

afterAll(async () => {
  const admin = kafkaClient().admin();
  await admin.connect();
  await admin.deleteTopics({ topics: made }).catch(() => undefined);
  await admin.disconnect();
});

/** A topic of two partitions, partition 0 led by node 1 and partition 1 by node 2 (their preferred leaders; no broker fails here). */
async function topicOnNodes1And2(name: string): Promise<string> {
  const topic = `${name}-${process.pid}-${Date.now()}`;
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        {
          topic,
          replicaAssignment: [
            { partition: 0, replicas: [1, 2, 3] },
            { partition: 1, replicas: [2, 1, 3] },
          ],
        },
      ],
    });
    made.push(topic);
  } finally {
    await admin.disconnect();
  }
  return topic;
}

/** A producer as the runtime makes them, reaching every broker only through the proxies. */
async function proxiedProducer(): Promise<Producer> {
  const kafka = new Kafka({
    clientId: 'holdback-resend-test',
    brokers: [`${endpoints.host}:${endpoints.kafkaNodes[2]!.proxied!.advertised}`],
    logLevel: logLevel.NOTHING,
  });
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  return producer;
}

type Send = (topicMessages: Array<{ topic: string; messages: Message[] }>) => Promise<unknown>;

/** Sends record `i` to both partitions while node 1 is slow and node 2 drops requests. */
async function trial(send: Send, topic: string, i: number): Promise<void> {
  const [node1, node2] = proxies as [string, string];
  await proxy.toxic(node1, 'slow', 'latency', 'downstream', { latency: SLOW_MS });
  await proxy.toxic(node2, 'drop', 'limit_data', 'upstream', { bytes: 1 });
  const lifted = new Promise((r) => setTimeout(r, DROP_MS)).then(() => proxy.removeToxic(node2, 'drop'));
  try {
    await send([
      {
        topic,
        messages: [
          { partition: 0, value: `${i}` },
          { partition: 1, value: `${i}` },
        ],
      },
    ]);
  } finally {
    await lifted;
    await proxy.removeToxic(node1, 'slow');
  }
}

/** How many times each partition holds each value: `partition/value` -> count. */
async function copies(topic: string): Promise<Map<string, number>> {
  const admin = kafkaClient().admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const total = ends.reduce((n, p) => n + Number(p.high), 0);
  const consumer = kafkaClient().consumer({ groupId: `${topic}-reader`, maxWaitTimeInMs: 100 });
  const counts = new Map<string, number>();
  let read = 0;
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`read ${read} of ${total} records in 60 s`)), 60_000);
    void consumer.run({
      eachMessage: async ({ partition, message }) => {
        const k = `${partition}/${String(message.value)}`;
        counts.set(k, (counts.get(k) ?? 0) + 1);
        if (++read === total) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  return counts;
}

function written(counts: Map<string, number>): { once: number; twiceOrMore: string[] } {
  const twiceOrMore = [...counts].filter(([, n]) => n > 1).map(([k, n]) => `${k} x${n}`);
  return { once: [...counts.values()].filter((n) => n === 1).length, twiceOrMore };
}

test("kafkajs's sendBatch writes a slow broker's partition twice when another broker fails", async () => {
  const topic = await topicOnNodes1And2('resend-plain');
  const producer = await proxiedProducer();
  try {
    for (let i = 0; i < TRIALS; i++) {
      await trial((topicMessages) => producer.sendBatch({ topicMessages, acks: -1 }), topic, i);
    }
  } finally {
    await producer.disconnect();
  }
  const counts = await copies(topic);
  const { twiceOrMore } = written(counts);
  console.log(
    `plain sendBatch, ${TRIALS} trials: written more than once: ${twiceOrMore.join(', ') || 'none'}`,
  );
  // Every record arrived; some of node 1's more than once; node 2's never (its requests failed whole).
  expect(counts.size).toBe(2 * TRIALS);
  expect(twiceOrMore.length).toBeGreaterThan(0);
  expect(twiceOrMore.every((k) => k.startsWith('0/'))).toBe(true);
});

test('sendByPartition under the same faults writes every record once', async () => {
  const topic = await topicOnNodes1And2('resend-bypartition');
  const producer = await proxiedProducer();
  try {
    for (let i = 0; i < TRIALS; i++) {
      await trial(
        (topicMessages) =>
          sendByPartition((b) => producer.sendBatch(b), topicMessages, { inTransaction: false }),
        topic,
        i,
      );
    }
  } finally {
    await producer.disconnect();
  }
  const counts = await copies(topic);
  expect(written(counts)).toEqual({ once: 2 * TRIALS, twiceOrMore: [] });
});
