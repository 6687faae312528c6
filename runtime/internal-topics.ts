/**
 * The engine's own topics (the changelog) on a replicated cluster, checked before any task opens:
 * - replication factor and min.insync.replicas as configured, defaults min(3, brokers) and
 *   min(2, replication factor), as Kafka Streams' `replication.factor` is set in production;
 * - never a silent empty state: a changelog that is missing, or no longer starts at offset 0
 *   (records deleted), while the group has committed input offsets, would restore nothing and go
 *   on from those offsets with no loans. Start-up is refused instead, naming the recovery.
 *
 * Admin calls go through kafkajs on both transports: node-rdkafka's admin client has neither
 * DescribeConfigs nor OffsetFetch.
 */
import { ConfigResourceTypes, type Admin } from 'kafkajs';
import { clusterReplication } from '../connectors/kafka-admin';
import { whileRetriable } from '../connectors/kafka-read';

/** A start-up check that failed: the message names the topic, the setting and the fix. */
export class DurabilityError extends Error {
  override readonly name = 'DurabilityError';
}

export interface InternalTopicSettings {
  readonly replicationFactor: number;
  readonly minInsyncReplicas: number;
}

/** The settings for this cluster: what was asked for, or the defaults for its broker count. */
export async function internalTopicSettings(
  admin: Admin,
  asked: { replicationFactor?: number; minInsyncReplicas?: number },
): Promise<InternalTopicSettings> {
  const brokers = (await whileRetriable(() => admin.describeCluster())).brokers.length;
  const defaults = await clusterReplication(admin);
  const replicationFactor = asked.replicationFactor ?? defaults.replicationFactor;
  if (replicationFactor > brokers) {
    throw new DurabilityError(
      `--internal-replication-factor is ${replicationFactor} but the cluster has ${brokers} broker(s): ` +
        `set it to at most ${brokers}`,
    );
  }
  const minInsyncReplicas = asked.minInsyncReplicas ?? Math.min(2, replicationFactor);
  if (minInsyncReplicas > replicationFactor) {
    throw new DurabilityError(
      `--internal-min-insync-replicas is ${minInsyncReplicas} but the replication factor is ` +
        `${replicationFactor}: no write could ever succeed; set it to at most ${replicationFactor}`,
    );
  }
  return { replicationFactor, minInsyncReplicas };
}

/** The topic config to create an internal topic with. */
export function internalTopicConfig(s: InternalTopicSettings): Record<string, string> {
  return { 'min.insync.replicas': String(s.minInsyncReplicas) };
}

/** An existing internal topic has the settings, or start-up stops naming the setting and the fix. */
export async function checkInternalTopic(
  admin: Admin,
  topic: string,
  s: InternalTopicSettings,
): Promise<void> {
  const meta = await whileRetriable(() => admin.fetchTopicMetadata({ topics: [topic] }));
  const partitions = meta.topics[0]?.partitions ?? [];
  const rf = Math.min(...partitions.map((p) => p.replicas.length));
  if (rf !== s.replicationFactor) {
    throw new DurabilityError(
      `${topic} has replication factor ${rf}, but the internal replication factor is ` +
        `${s.replicationFactor}: reassign its replicas (kafka-reassign-partitions.sh) or start ` +
        `with --internal-replication-factor=${rf}`,
    );
  }
  const described = await whileRetriable(() =>
    admin.describeConfigs({
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['min.insync.replicas'] }],
      includeSynonyms: false,
    }),
  );
  const value = described.resources[0]?.configEntries.find((e) => e.configName === 'min.insync.replicas');
  const minIsr = Number(value?.configValue ?? NaN);
  if (minIsr !== s.minInsyncReplicas) {
    throw new DurabilityError(
      `${topic} has min.insync.replicas ${String(value?.configValue)}, but the internal ` +
        `min.insync.replicas is ${s.minInsyncReplicas}: kafka-configs.sh --alter --entity-type topics ` +
        `--entity-name ${topic} --add-config min.insync.replicas=${s.minInsyncReplicas}, or start ` +
        `with --internal-min-insync-replicas=${minIsr}`,
    );
  }
}

/** Input partitions on which `groupId` has committed an offset. */
export async function committedPartitions(
  admin: Admin,
  groupId: string,
  topics: readonly string[],
): Promise<Array<{ topic: string; partition: number; offset: number }>> {
  // A fresh broker answers NOT_COORDINATOR until the group's coordinator is loaded: retriable.
  const answer = await whileRetriable(() => admin.fetchOffsets({ groupId, topics: [...topics] }), 30_000);
  return answer.flatMap((t) =>
    t.partitions
      .filter((p) => Number(p.offset) >= 0)
      .map((p) => ({ topic: t.topic, partition: p.partition, offset: Number(p.offset) })),
  );
}

/** How to recover lost state, in every refusal's message. */
export function recovery(applicationId: string): string {
  return (
    'Going on would restore nothing and process from the committed offsets with no state ' +
    '(payouts not withheld, loan events dead-lettered). Restore the topic if you can; or rebuild ' +
    `the state from the inputs into a new application id and check it against what was published ` +
    `(holdback rebuild <processor> --from=${applicationId} --application-id=<new id>); to start ` +
    "over from the earliest input offsets instead, delete the group's offsets " +
    `(kafka-consumer-groups.sh --group ${applicationId} --delete-offsets --all-topics --execute), ` +
    'knowing that decisions already published are published again. See docs/runbooks/startup/ChangelogLost.md'
  );
}
