/**
 * Reading chosen partitions of a topic from the beginning to their current end, with kafkajs
 * (which has no assign(): every consumer is in a group). A throwaway group is used and deleted.
 * The end is the end offset read before starting; transaction markers count as consumed (kafkajs
 * reports them in batch.lastOffset()), so a partition ending in a marker still completes.
 * There is no deadline for the whole read, which grows with the state: it fails only when nothing
 * arrives for `stallMs`.
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
  /** Called after each batch: records read so far and offsets still to read (records and markers). */
  onRemaining?: (read: number, remaining: number) => void;
  /** Fails when no batch arrives for this long (ms; default 60 s). */
  stallMs?: number;
}

/** How long a read to the end may see nothing arrive before it fails. */
export const DEFAULT_STALL_MS = 60_000;

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
    /** Offsets still to read per partition. */
    const left = new Map<number, number>();
    for (const e of ends) if (wanted.has(e.partition)) left.set(e.partition, Number(e.high) - Number(e.low));
    const remaining = (): number => [...left.values()].reduce((a, b) => a + b, 0);
    const consumer = kafka.consumer({
      groupId: o.groupId,
      readUncommitted: false,
      maxBytesPerPartition: 4 << 20,
      // kafkajs's default (5 s) is how long a fetch waits on partitions with nothing more to
      // give: a restore whose last partition ends in a commit marker paid it every time (kill
      // to ready about 11 s in the instance soak, against 6.5 s on rdkafka).
      maxWaitTimeInMs: 100,
    });
    await consumer.connect();
    try {
      await consumer.subscribe({ topic: o.topic, fromBeginning: true });
      await new Promise<void>((resolve, reject) => {
        /** The partition has been consumed up to `lastOffset`: done with it once that reaches the end. */
        const reached = (partition: number, lastOffset: number): void => {
          const end = wanted.get(partition);
          if (end === undefined) return;
          left.set(partition, Math.max(0, end - (lastOffset + 1)));
          if (lastOffset + 1 < end) return;
          wanted.delete(partition);
          consumer.pause([{ topic: o.topic, partitions: [partition] }]);
          if (wanted.size === 0) {
            clearInterval(timer);
            resolve();
          }
        };
        // A fetch holding only a commit marker (its records compacted away, or in a segment of
        // their own) never reaches eachBatch; kafkajs reports it here, with the marker's offset.
        consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
          if (payload.topic === o.topic) reached(payload.partition, Number(payload.lastOffset));
        });
        const stallMs = o.stallMs ?? DEFAULT_STALL_MS;
        let lastBatchAt = Date.now();
        const timer = setInterval(
          () => {
            if (Date.now() - lastBatchAt < stallMs) return;
            clearInterval(timer);
            reject(
              new Error(
                `reading ${o.topic} to its end: nothing arrived for ${stallMs} ms, ` +
                  `${read} records read, ${remaining()} offsets left`,
              ),
            );
          },
          Math.min(1000, stallMs),
        );
        consumer
          .run({
            autoCommit: false,
            eachBatch: async ({ batch, pause }) => {
              lastBatchAt = Date.now();
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
              o.onRemaining?.(read, remaining());
            },
          })
          .catch((e: unknown) => {
            clearInterval(timer);
            reject(e);
          });
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
