/**
 * Reading chosen partitions of a topic from the beginning to their current end, with kafkajs
 * (which has no assign(): every consumer is in a group). A throwaway group is used and deleted.
 * The end is the end offset read before starting; transaction markers count as consumed (kafkajs
 * reports them in batch.lastOffset()), so a partition ending in a marker still completes.
 */
import type { Kafka, KafkaMessage } from 'kafkajs';

export interface ReadOptions {
  topic: string;
  /** Partitions to read; all when omitted. */
  partitions?: number[];
  groupId: string;
  onMessage: (partition: number, message: KafkaMessage) => void;
  /** Called between batches so a caller blocked on this read can heartbeat its own group. */
  onProgress?: () => Promise<void>;
  timeoutMs?: number;
}

export async function readToEnd(kafka: Kafka, o: ReadOptions): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  let read = 0;
  try {
    const ends = await whileRetriable(() => admin.fetchTopicOffsets(o.topic));
    const wanted = new Map<number, number>();
    for (const e of ends) {
      if (o.partitions && !o.partitions.includes(e.partition)) continue;
      const start = Number(e.low);
      const end = Number(e.high);
      if (end > start) wanted.set(e.partition, end);
    }
    if (wanted.size === 0) return 0;
    const consumer = kafka.consumer({
      groupId: o.groupId,
      readUncommitted: false,
      maxBytesPerPartition: 4 << 20,
    });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: o.topic, fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        /** The partition has been consumed up to `lastOffset`: done with it once that reaches the end. */
        const reached = (partition: number, lastOffset: number): void => {
          const end = wanted.get(partition);
          if (end === undefined || lastOffset + 1 < end) return;
          wanted.delete(partition);
          consumer.pause([{ topic: o.topic, partitions: [partition] }]);
          if (wanted.size === 0) {
            clearTimeout(timer);
            resolve();
          }
        };
        // A fetch holding only a commit marker (its records compacted away, or in a segment of
        // their own) never reaches eachBatch; kafkajs reports it here, with the marker's offset.
        consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
          if (payload.topic === o.topic) reached(payload.partition, Number(payload.lastOffset));
        });
        const timer = setTimeout(
          () =>
            reject(new Error(`reading ${o.topic} to its end took longer than ${o.timeoutMs ?? 120_000} ms`)),
          o.timeoutMs ?? 120_000,
        );
        consumer
          .run({
            autoCommit: false,
            eachBatch: async ({ batch, pause }) => {
              const end = wanted.get(batch.partition);
              if (end === undefined) {
                pause();
                return;
              }
              for (const m of batch.messages) {
                if (Number(m.offset) >= end) break;
                o.onMessage(batch.partition, m);
                read++;
              }
              if (o.onProgress) await o.onProgress();
              reached(batch.partition, Number(batch.lastOffset()));
            },
          })
          .catch(reject);
      });
    } finally {
      await consumer.disconnect();
      await admin.deleteGroups([o.groupId]).catch(() => undefined);
    }
    return read;
  } finally {
    await admin.disconnect();
  }
}

/**
 * Runs an admin call again while Kafka answers with a retriable error. Right after a topic is
 * created, a KRaft broker can list the partition's leader in its metadata a moment before the
 * partition is loaded, and answers list-offsets with NOT_LEADER_OR_FOLLOWER; kafkajs marks that
 * retriable but its admin does not retry it. Non-retriable errors are thrown at once.
 */
export async function whileRetriable<T>(call: () => Promise<T>, deadlineMs = 15_000): Promise<T> {
  const giveUpAt = Date.now() + deadlineMs;
  for (let attempt = 1; ; attempt++) {
    try {
      return await call();
    } catch (e) {
      const retriable = (e as { retriable?: boolean }).retriable === true;
      if (!retriable || Date.now() >= giveUpAt) throw e;
      await new Promise((r) => setTimeout(r, Math.min(100 * attempt, 1000)));
    }
  }
}
