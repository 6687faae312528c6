/**
 * Kafka helpers for end-to-end tests on the real broker: per-run topics (a prefix on every
 * contract topic, so runs never share data), batched producing through the Avro codec, and
 * read_committed reading of a whole topic.
 */
import { Kafka, logLevel, type Message } from 'kafkajs';
import { Codec } from '../../connectors/codec';
import { loadEndpoints } from '../../connectors/endpoints';
import { createTopicsReady } from '../../connectors/kafka-admin';
import { readToEnd, whileRetriable } from '../../connectors/kafka-read';
import { SchemaRegistryClient } from '../../connectors/registry';
import { TOPIC_SPECS, type TopicName, type TopicRecords } from '../../schemas/topics';

export const endpoints = loadEndpoints();

export function kafkaClient(clientId = 'holdback-test'): Kafka {
  return new Kafka({ clientId, brokers: endpoints.kafkaBrokers, logLevel: logLevel.NOTHING });
}

/** A codec with every contract subject registered (idempotent) on the real registry. */
export async function registeredCodec(): Promise<Codec> {
  const registry = new SchemaRegistryClient({ url: endpoints.registryUrl });
  return new Codec({ source: registry, schemaIds: await registry.registerAll() });
}

/** 100 years: a test topic's segments never roll by time. */
const TEST_SEGMENT_MS = 100 * 365 * 86_400_000;

export async function createTopics(prefix: string, partitions = endpoints.partitions): Promise<void> {
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    await createTopicsReady(
      admin,
      TOPIC_SPECS.map((t) => ({
        topic: prefix + t.name,
        numPartitions: partitions,
        replicationFactor: 1,
        configEntries: [
          ...(t.compacted ? [{ name: 'cleanup.policy', value: 'compact' }] : []),
          // Tests read every record back. A broker rolls a segment once its records' timestamps
          // span segment.ms (7 days): stream-time tests write months of event time in seconds,
          // and the cleaner would then compact or expire the rolled segments under the test.
          { name: 'segment.ms', value: String(TEST_SEGMENT_MS) },
        ],
      })),
    );
  } finally {
    await admin.disconnect();
  }
}

export async function deleteTopics(prefix: string, extra: string[] = []): Promise<void> {
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    const existing = await admin.listTopics();
    const mine = existing.filter((t) => t.startsWith(prefix) || extra.includes(t));
    if (mine.length > 0) await admin.deleteTopics({ topics: mine });
  } finally {
    await admin.disconnect();
  }
}

export interface Produced<T extends TopicName = TopicName> {
  topic: T;
  key: string | null;
  value: TopicRecords[T] | Buffer;
}

/** Produces in order (acks=all, idempotent), in batches; a Buffer value is sent as is (poison pills). */
export async function produce(
  prefix: string,
  codec: Codec,
  records: readonly Produced[],
  batch = 500,
): Promise<void> {
  const producer = kafkaClient().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    for (let i = 0; i < records.length; i += batch) {
      const byTopic = new Map<string, Message[]>();
      for (const r of records.slice(i, i + batch)) {
        const value = Buffer.isBuffer(r.value) ? r.value : codec.encode(r.topic, r.value as never);
        const list = byTopic.get(prefix + r.topic) ?? [];
        list.push({ key: r.key, value });
        byTopic.set(prefix + r.topic, list);
      }
      await producer.sendBatch({
        acks: -1,
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      });
    }
  } finally {
    await producer.disconnect();
  }
}

/** Every committed record of a topic, decoded (read_committed). */
export async function readAll<T extends TopicName>(
  prefix: string,
  topic: T,
  codec: Codec,
): Promise<Array<TopicRecords[T]>> {
  const out: Array<{ p: number; o: number; v: TopicRecords[T] }> = [];
  const problems: string[] = [];
  await readToEnd(kafkaClient(), {
    topic: prefix + topic,
    groupId: `verify-${prefix}${topic}-${process.pid}-${Date.now()}`,
    onMessage: (partition, m) => {
      const r = codec.tryDecodeCached(topic, m.key, m.value, Date.now());
      if (!r || !r.ok)
        problems.push(
          `${topic}/${partition}@${m.offset}: ${r ? `${r.reasonCode} ${r.detail}` : 'schema not cached'}`,
        );
      else out.push({ p: partition, o: Number(m.offset), v: r.value });
    },
  });
  if (problems.length > 0) throw new Error(`undecodable outputs:\n${problems.slice(0, 10).join('\n')}`);
  return out.sort((a, b) => a.p - b.p || a.o - b.o).map((x) => x.v);
}

/** Sum of the end offsets of a topic (committed or not): a cheap progress gauge. */
export async function endOffsetSum(topic: string): Promise<number> {
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    return (await whileRetriable(() => admin.fetchTopicOffsets(topic))).reduce(
      (n, p) => n + Number(p.high),
      0,
    );
  } finally {
    await admin.disconnect();
  }
}
