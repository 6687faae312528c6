/**
 * The one kafkajs consumer loop of the kafkajs runtime and the ClickHouse sink: a group member
 * that reads read_committed, never commits or restarts by itself (both own their positions and
 * restart crash-only, dropping what they hold), and hands whole batches to its owner.
 */
import type { Consumer, EachBatchPayload, Kafka, PartitionAssigner } from 'kafkajs';

export interface GroupConsumerOptions {
  groupId: string;
  sessionTimeoutMs: number;
  maxBytesPerPartition: number;
  maxWaitTimeInMs: number;
  partitionAssigners?: PartitionAssigner[];
  /** A new assignment (physical topic → partitions). */
  onAssign: (assignment: Record<string, number[]>) => void;
  /** kafkajs gave up; only reported while the consumer is still its owner's current one. */
  onCrash: (reason: string) => void;
  /** A fetch that held no records, only a transaction marker, ending at `lastOffset`. */
  onEmptyBatch?: (topic: string, partition: number, lastOffset: number) => void;
  /** A fetch response arrived; its batches are handed over after this. */
  onFetch?: () => void;
  isCurrent: (consumer: Consumer) => boolean;
}

/** Creates the consumer with its events wired; the owner stores it, then calls `runGroupConsumer`. */
export function createGroupConsumer(kafka: Kafka, o: GroupConsumerOptions): Consumer {
  const consumer = kafka.consumer({
    groupId: o.groupId,
    ...(o.partitionAssigners && { partitionAssigners: o.partitionAssigners }),
    sessionTimeout: o.sessionTimeoutMs,
    heartbeatInterval: Math.max(500, Math.floor(o.sessionTimeoutMs / 5)),
    readUncommitted: false,
    maxBytesPerPartition: o.maxBytesPerPartition,
    maxWaitTimeInMs: o.maxWaitTimeInMs,
    // The owner restarts itself (dropping in-memory state); kafkajs must not resume on its own.
    retry: { retries: 5, restartOnFailure: async () => false },
  });
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    if (o.isCurrent(consumer)) o.onAssign(payload.memberAssignment);
  });
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    // One being replaced may still report its own end.
    if (o.isCurrent(consumer)) o.onCrash(`consumer crashed: ${payload.error.message}`);
  });
  const onFetch = o.onFetch;
  if (onFetch) {
    consumer.on(consumer.events.FETCH, () => {
      if (o.isCurrent(consumer)) onFetch();
    });
  }
  const onEmpty = o.onEmptyBatch;
  if (onEmpty) {
    // A fetch that holds only a transaction marker never reaches eachBatch; kafkajs reports it here.
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.batchSize > 0 || !o.isCurrent(consumer)) return;
      onEmpty(payload.topic, payload.partition, Number(payload.lastOffset));
    });
  }
  return consumer;
}

/** Joins the group on `topics` from the beginning and hands each batch to `eachBatch`, one at a time. */
export async function runGroupConsumer(
  consumer: Consumer,
  topics: string[],
  eachBatch: (payload: EachBatchPayload) => Promise<void>,
): Promise<void> {
  await consumer.connect();
  await consumer.subscribe({ topics, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: 1,
    eachBatch,
  });
}
