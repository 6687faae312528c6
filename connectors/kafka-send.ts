/**
 * A guard around kafkajs 2.2.4's sendBatch, which can resolve without having written some of its
 * partitions. Its sendMessages keeps the answer of each broker that answered; when another broker
 * fails and the retry finds that broker's partitions led elsewhere, by a broker that already
 * answered, that broker is not asked again and those partitions' records are dropped while the
 * call succeeds (node_modules/kafkajs/src/producer/sendMessages.js: `brokersWithoutResponse`).
 * A three-node rolling restart showed it: in a transaction, lost deductions and a reversal
 * without its withholding. Every partition written to is answered for in the returned metadata,
 * so a send is checked against it and a gap fails the call (the transaction is aborted).
 */
import { Partitioners, type Message, type RecordMetadata } from 'kafkajs';

export class UnacknowledgedSendError extends Error {
  override readonly name = 'UnacknowledgedSendError';
  /** Retried as a failed send is: the engine restarts and redoes the work. */
  readonly retriable = true;
}

/** The `topic/partition`s of `topicMessages` that `acknowledged` does not answer for. */
export function unacknowledged(
  topicMessages: ReadonlyArray<{ topic: string; messages: readonly Message[] }>,
  acknowledged: readonly RecordMetadata[],
): string[] {
  const answered = new Set(
    acknowledged.filter((m) => m.errorCode === 0).map((m) => `${m.topicName}/${m.partition}`),
  );
  const missing = new Set<string>();
  for (const { topic, messages } of topicMessages) {
    for (const m of messages) {
      if (m.partition === undefined)
        throw new Error(`unacknowledged: a record for ${topic} has no partition; set it before sending`);
      const k = `${topic}/${m.partition}`;
      if (!answered.has(k)) missing.add(k);
    }
  }
  return [...missing];
}

/** sendBatch, failing when a partition it wrote to was not answered for. */
export async function sendAcknowledged(
  send: (batch: {
    topicMessages: Array<{ topic: string; messages: Message[] }>;
    acks: -1;
  }) => Promise<RecordMetadata[]>,
  topicMessages: Array<{ topic: string; messages: Message[] }>,
): Promise<void> {
  const missing = unacknowledged(topicMessages, await send({ topicMessages, acks: -1 }));
  if (missing.length > 0) {
    throw new UnacknowledgedSendError(
      `kafkajs reported the send done but no broker answered for ${missing.join(', ')}; ` +
        'its records may not be written',
    );
  }
}

/**
 * The partition kafkajs's default partitioner (Java's murmur2, as the platform's producers use)
 * gives a record in a topic of `partitions` partitions (round robin without a key): set explicitly, so that a send
 * can be checked partition by partition.
 */
export function keyPartitioner(partitions: number): (topic: string, key: string | null) => number {
  const partitioner = Partitioners.DefaultPartitioner();
  const partitionMetadata = Array.from({ length: partitions }, (_, p) => ({
    partitionId: p,
    partitionErrorCode: 0,
    leader: 0,
    replicas: [0],
    isr: [0],
  }));
  return (topic, key) => partitioner({ topic, partitionMetadata, message: { key, value: null } });
}

/**
 * sendBatch, sending again the records of the partitions no broker answered for, up to
 * `attempts` sends in all; then UnacknowledgedSendError. For producers of input, whose records
 * may arrive twice (the contract's event_id makes a repeat one event: a partition the broker
 * wrote without answering is written again), never for a transaction, which must abort instead.
 * The answered partitions are not sent again, and each partition's records keep their order.
 */
export async function sendEveryPartition(
  send: (batch: {
    topicMessages: Array<{ topic: string; messages: Message[] }>;
    acks: -1;
  }) => Promise<RecordMetadata[]>,
  topicMessages: Array<{ topic: string; messages: Message[] }>,
  attempts = 5,
): Promise<void> {
  let left = topicMessages;
  for (let attempt = 1; ; attempt++) {
    const missing = new Set(unacknowledged(left, await send({ topicMessages: left, acks: -1 })));
    if (missing.size === 0) return;
    if (attempt >= attempts) {
      throw new UnacknowledgedSendError(
        `no broker answered for ${[...missing].join(', ')} after ${attempts} sends; ` +
          'their records may not be written',
      );
    }
    left = left
      .map(({ topic, messages }) => ({
        topic,
        messages: messages.filter((m) => missing.has(`${topic}/${m.partition}`)),
      }))
      .filter((t) => t.messages.length > 0);
  }
}
