/**
 * Kafka helpers for end-to-end tests on the real broker: per-run topics (a prefix on every
 * contract topic, so runs never share data), batched producing through the Avro codec, and
 * read_committed reading of a whole topic.
 */
import { ConfigResourceTypes, Kafka, logLevel, type Admin, type Message } from 'kafkajs';
import { Codec } from '../../connectors/codec';
import { loadConnections, registryOptions } from '../../connectors/connections';
import { kafkajsConfig } from '../../connectors/kafka-client';
import { clusterReplication, createTopicsReady } from '../../connectors/kafka-admin';
import { keyPartitioner, sendEveryPartition } from '../../connectors/kafka-send';
import { readToEnd, whileRetriable } from '../../connectors/kafka-read';
import { SchemaRegistryClient } from '../../connectors/registry';
import { TOPIC_SPECS, type TopicName, type TopicRecords } from '../../schemas/topics';

/** The HOLDBACK_* settings of the test's shell: the plain local stack, or the secured one (test/secure). */
export const connections = loadConnections();
export const endpoints = connections.endpoints;

export function kafkaClient(clientId = 'holdback-test'): Kafka {
  return new Kafka(kafkajsConfig(connections.kafka, clientId, { logLevel: logLevel.NOTHING }));
}

/** A codec with every contract subject registered (idempotent) on the real registry. */
export async function registeredCodec(): Promise<Codec> {
  const registry = new SchemaRegistryClient(registryOptions(connections.registry));
  return new Codec({ source: registry, schemaIds: await registry.registerAll() });
}

/** 100 years: a test topic's segments never roll by time. */
const TEST_SEGMENT_MS = 100 * 365 * 86_400_000;

export async function createTopics(prefix: string, partitions = endpoints.partitions): Promise<void> {
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    const { replicationFactor, minInsyncReplicas } = await clusterReplication(admin);
    await createTopicsReady(
      admin,
      TOPIC_SPECS.map((t) => ({
        topic: prefix + t.name,
        numPartitions: partitions,
        replicationFactor,
        configEntries: [
          { name: 'min.insync.replicas', value: String(minInsyncReplicas) },
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
    // A processor's clock topic is `<application id>-clock`, and a test's application ids start
    // with its prefix's stem (connectors/broker-clock.ts).
    const stem = prefix.replace(/\.$/, '');
    const mine = existing.filter(
      (t) =>
        t.startsWith(prefix) ||
        extra.includes(t) ||
        (stem.length > 0 && t.startsWith(stem) && t.endsWith('-clock')),
    );
    if (mine.length > 0) await admin.deleteTopics({ topics: mine });
  } finally {
    await admin.disconnect();
  }
}

export interface Produced<T extends TopicName = TopicName> {
  topic: T;
  key: string | null;
  value: TopicRecords[T] | Buffer;
  /** Where a producer with another partitioner than murmur2 would put it (default: murmur2's). */
  partition?: number;
}

/** The murmur2 partitioner of each topic, from the partition count the cluster reports for it. */
async function partitionersOf(
  topics: string[],
): Promise<(topic: string) => (topic: string, key: string | null) => number> {
  const admin = kafkaClient('holdback-test-admin').admin();
  await admin.connect();
  try {
    const { topics: metadata } = await admin.fetchTopicMetadata({ topics });
    const byTopic = new Map(metadata.map((t) => [t.name, keyPartitioner(t.partitions.length)]));
    return (topic) => {
      const partitioner = byTopic.get(topic);
      if (!partitioner) throw new Error(`produce: no metadata for topic ${topic}; is it created?`);
      return partitioner;
    };
  } finally {
    await admin.disconnect();
  }
}

/** Produces in order (acks=all, idempotent), in batches; a Buffer value is sent as is (poison pills). */
export async function produce(
  prefix: string,
  codec: Codec,
  records: readonly Produced[],
  batch = 500,
): Promise<void> {
  const producer = kafkaClient().producer({ idempotent: true, maxInFlightRequests: 1 });
  // Each record's partition is set here, from its topic's own partition count, so that the
  // send can be checked partition by partition (connectors/kafka-send.ts).
  const partitionOf = await partitionersOf([...new Set(records.map((r) => prefix + r.topic))]);
  await producer.connect();
  try {
    for (let i = 0; i < records.length; i += batch) {
      const byTopic = new Map<string, Message[]>();
      for (const r of records.slice(i, i + batch)) {
        const value = Buffer.isBuffer(r.value) ? r.value : codec.encode(r.topic, r.value as never);
        const list = byTopic.get(prefix + r.topic) ?? [];
        const partition = r.partition ?? partitionOf(prefix + r.topic)(prefix + r.topic, r.key);
        list.push({ key: r.key, value, partition });
        byTopic.set(prefix + r.topic, list);
      }
      // Input, as the platform's producers send it: a partition kafkajs left unwritten is sent
      // again, and a record written twice is one event by its event_id (connectors/kafka-send.ts).
      await sendEveryPartition(
        (b) => producer.sendBatch(b),
        [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      );
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

/**
 * Deletes every record of `topic` (its log start moves to the end of each partition written to),
 * as a retention change or an operator's DeleteRecords would. Kafka 4 refuses DeleteRecords on a
 * compacted topic (POLICY_VIOLATION), so the topic is switched to cleanup.policy=delete for the
 * call and back to its own configuration after it. kafkajs's AlterConfigs replaces a topic's
 * whole configuration, so every setting the topic has is passed each time.
 */
export async function deleteAllRecords(admin: Admin, topic: string): Promise<void> {
  const described = await whileRetriable(() =>
    admin.describeConfigs({
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
      includeSynonyms: false,
    }),
  );
  const own = (described.resources[0]?.configEntries ?? [])
    .filter((e) => !e.isDefault && e.configSource === 1 /* DYNAMIC_TOPIC_CONFIG */)
    .map((e) => ({ name: e.configName, value: e.configValue }));
  const set = (entries: Array<{ name: string; value: string }>) =>
    whileRetriable(() =>
      admin.alterConfigs({
        validateOnly: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: entries }],
      }),
    );
  await set([...own.filter((e) => e.name !== 'cleanup.policy'), { name: 'cleanup.policy', value: 'delete' }]);
  try {
    const offsets = await whileRetriable(() => admin.fetchTopicOffsets(topic));
    // The new policy reaches the partition leaders a moment after AlterConfigs answers.
    for (let attempt = 1; ; attempt++) {
      try {
        await admin.deleteTopicRecords({
          topic,
          partitions: offsets
            .filter((o) => Number(o.high) > 0)
            .map((o) => ({ partition: o.partition, offset: o.high })),
        });
        break;
      } catch (e) {
        if (attempt >= 20) throw e;
        await new Promise((r) => setTimeout(r, 250));
      }
    }
  } finally {
    await set(own);
  }
}
