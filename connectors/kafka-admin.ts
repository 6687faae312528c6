/**
 * Creating topics that are usable at once. kafkajs's `createTopics({ waitForLeaders: true })`
 * polls metadata but gives up on UNKNOWN_TOPIC_OR_PARTITION ("This server does not host this
 * topic-partition"), which a KRaft broker answers for a moment after creating a topic, most of
 * all right after a restart. Here the creation does not wait, and readiness is polled until every
 * partition has a leader, retrying what Kafka calls retriable.
 */
import type { Admin, ITopicConfig } from 'kafkajs';
import { whileRetriable } from './kafka-read';

export async function createTopicsReady(
  admin: Admin,
  topics: ITopicConfig[],
  timeoutMs = 30_000,
): Promise<void> {
  if (topics.length === 0) return;
  await whileRetriable(() => admin.createTopics({ waitForLeaders: false, topics }), timeoutMs);
  const names = topics.map((t) => t.topic);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ready = await whileRetriable(() => admin.fetchTopicMetadata({ topics: names }), timeoutMs)
      .then((m) => m.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0)))
      .catch((e: unknown) => {
        if ((e as { retriable?: boolean }).retriable === true) return false;
        throw e;
      });
    if (ready) return;
    if (Date.now() > deadline)
      throw new Error(`topics ${names.join(', ')} have no leader after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * How a topic is replicated on this cluster unless told otherwise: on min(3, brokers) brokers, with
 * writes acknowledged by min(2, replicas) of them, so that one broker lost loses nothing and
 * leaves the topic writable (Kafka's production advice; one broker gives 1 and 1).
 */
export async function clusterReplication(
  admin: Admin,
): Promise<{ replicationFactor: number; minInsyncReplicas: number }> {
  const brokers = (await whileRetriable(() => admin.describeCluster())).brokers.length;
  const replicationFactor = Math.min(3, brokers);
  return { replicationFactor, minInsyncReplicas: Math.min(2, replicationFactor) };
}
