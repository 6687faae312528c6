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
    const ends = await admin.fetchTopicOffsets(o.topic);
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
              if (Number(batch.lastOffset()) + 1 >= end) {
                wanted.delete(batch.partition);
                pause();
              }
              if (o.onProgress) await o.onProgress();
              if (wanted.size === 0) {
                clearTimeout(timer);
                resolve();
              }
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
