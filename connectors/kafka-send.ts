/**
 * Guards around kafkajs 2.2.4's sendBatch, which can resolve having written a partition's records
 * once too few or once too many. Its sendMessages sends each partition to its leader, one request
 * per broker, keeps the answer of each broker that answered and, when any request fails, retries
 * after a backoff, sending to the brokers without an answer the partitions they lead by then
 * (node_modules/kafkajs/src/producer/sendMessages.js: `brokersWithoutResponse`). Three ways out:
 * - lost: a failed broker's partition now led by a broker that already answered is not sent
 *   again, and the call succeeds. A three-node rolling restart showed it as lost deductions and a
 *   reversal without its withholding;
 * - written twice, leader moved: an answered partition now led by a broker that has not answered
 *   is sent again with the next sequence numbers (the first send advanced them), so the new
 *   leader appends it as new records;
 * - written twice, slow broker: the retry starts when the first request fails, not when all have
 *   ended. A broker whose answer is still on its way (acks=all waits for the followers, slow while
 *   another broker restarts) has no answer yet, so it is asked again; that request waits for the
 *   broker lock, then goes with the advanced sequence numbers, and the broker appends the records
 *   again. Its second answer replaces the first: nothing in the result shows it.
 * The one-instance duplicate of the rolling restart (39 deductions written twice, no engine
 * restart) fits the last two. A call that names one topic-partition has none of them: each
 * attempt is one request, ended before the next, and a failed request's sequence numbers are
 * taken back, so the broker drops a repeat as a duplicate. sendByPartition sends so.
 */
import { Partitioners, type Message, type RecordMetadata } from 'kafkajs';

export class UnacknowledgedSendError extends Error {
  override readonly name = 'UnacknowledgedSendError';
  /** Retried as a failed send is: the engine restarts and redoes the work. */
  readonly retriable = true;
}

/** The `topic/partition`s of `topicMessages` that `acknowledged` answers for never, or twice or more. */
export function acknowledgement(
  topicMessages: ReadonlyArray<{ topic: string; messages: readonly Message[] }>,
  acknowledged: readonly RecordMetadata[],
): { missing: string[]; repeated: string[] } {
  const answers = new Map<string, number>();
  for (const m of acknowledged) {
    if (m.errorCode !== 0) continue;
    const k = `${m.topicName}/${m.partition}`;
    answers.set(k, (answers.get(k) ?? 0) + 1);
  }
  const missing = new Set<string>();
  const repeated = new Set<string>();
  for (const { topic, messages } of topicMessages) {
    for (const m of messages) {
      if (m.partition === undefined)
        throw new Error(`acknowledgement: a record for ${topic} has no partition; set it before sending`);
      const k = `${topic}/${m.partition}`;
      const n = answers.get(k) ?? 0;
      if (n === 0) missing.add(k);
      else if (n > 1) repeated.add(k);
    }
  }
  return { missing: [...missing], repeated: [...repeated] };
}

/** The `topic/partition`s of `topicMessages` that `acknowledged` does not answer for. */
export function unacknowledged(
  topicMessages: ReadonlyArray<{ topic: string; messages: readonly Message[] }>,
  acknowledged: readonly RecordMetadata[],
): string[] {
  return acknowledgement(topicMessages, acknowledged).missing;
}

type SendBatch = (batch: {
  topicMessages: Array<{ topic: string; messages: Message[] }>;
  acks: -1;
}) => Promise<RecordMetadata[]>;

/**
 * sendBatch, one topic-partition per call, in turn, each call checked against its answer: a
 * partition not answered for fails the send, and so does, in a transaction (`inTransaction`),
 * one answered for twice (only the transaction's abort takes both copies back; outside one a
 * repeat is there to stay, and a retry would write a third). Each partition's records keep their
 * order. The calls are made one after the other, not at once: a coordinator answers an
 * AddPartitionsToTxn that comes while it is still logging the last one with CONCURRENT_TRANSACTIONS,
 * and each of the engine's commits is one task's, a few partitions.
 */
export async function sendByPartition(
  send: SendBatch,
  topicMessages: ReadonlyArray<{ topic: string; messages: readonly Message[] }>,
  o: { inTransaction: boolean },
): Promise<void> {
  for (const one of byPartition(topicMessages)) {
    const { missing, repeated } = acknowledgement(one, await send({ topicMessages: one, acks: -1 }));
    if (missing.length > 0) {
      throw new UnacknowledgedSendError(
        `kafkajs reported the send done but no broker answered for ${missing.join(', ')}; ` +
          'its records may not be written',
      );
    }
    if (o.inTransaction && repeated.length > 0) {
      throw new UnacknowledgedSendError(
        `kafkajs wrote ${repeated.join(', ')} twice (answered for twice); the transaction must abort`,
      );
    }
  }
}

/** `topicMessages` as one batch per topic-partition, in order of first appearance. */
export function byPartition(
  topicMessages: ReadonlyArray<{ topic: string; messages: readonly Message[] }>,
): Array<Array<{ topic: string; messages: Message[] }>> {
  const out = new Map<string, { topic: string; messages: Message[] }>();
  for (const { topic, messages } of topicMessages) {
    for (const m of messages) {
      if (m.partition === undefined)
        throw new Error(`byPartition: a record for ${topic} has no partition; set it before sending`);
      const k = `${topic}/${m.partition}`;
      let batch = out.get(k);
      if (!batch) out.set(k, (batch = { topic, messages: [] }));
      batch.messages.push(m);
    }
  }
  return [...out.values()].map((b) => [b]);
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
  send: SendBatch,
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
