/** The guard against a kafkajs send that resolves without having written every partition. */
import type { RecordMetadata } from 'kafkajs';
import {
  acknowledgement,
  keyPartitioner,
  sendByPartition,
  sendEveryPartition,
  unacknowledged,
  UnacknowledgedSendError,
} from '../../connectors/kafka-send';

const ack = (topicName: string, partition: number): RecordMetadata => ({
  topicName,
  partition,
  errorCode: 0,
});
const m = (partition: number, value: string) => ({ key: 'k', value, partition });
const batch = [
  {
    topic: 'a',
    messages: [
      { key: 'k', value: 'v', partition: 0 },
      { key: 'k', value: 'v', partition: 2 },
    ],
  },
  { topic: 'b', messages: [{ key: 'k', value: 'v', partition: 1 }] },
];

test('every partition answered for: nothing is missing', () => {
  expect(unacknowledged(batch, [ack('a', 0), ack('a', 2), ack('b', 1)])).toEqual([]);
});

test("a partition whose leader moved to a broker that had already answered is named (kafkajs's drop)", () => {
  // The retry asked only the failed broker's new leaders that had not answered: a/2 went unsent.
  expect(unacknowledged(batch, [ack('a', 0), ack('b', 1)])).toEqual(['a/2']);
});

test('a record without an explicit partition cannot be checked and is refused', () => {
  expect(() => unacknowledged([{ topic: 'a', messages: [{ key: 'k', value: 'v' }] }], [])).toThrow(
    /no partition/,
  );
});

test('sendByPartition sends one topic-partition per call, in order, each keeping its records in order', async () => {
  const sent: string[][] = [];
  const mixed = [
    { topic: 'a', messages: [m(0, 'x'), m(2, 'y'), m(0, 'z')] },
    { topic: 'b', messages: [m(1, 'w')] },
  ];
  await sendByPartition(
    async ({ topicMessages }) => {
      sent.push(
        topicMessages.flatMap((t) => t.messages.map((x) => `${t.topic}/${x.partition}:${String(x.value)}`)),
      );
      return topicMessages.map((t) => ack(t.topic, t.messages[0]!.partition!));
    },
    mixed,
    { inTransaction: true },
  );
  expect(sent).toEqual([['a/0:x', 'a/0:z'], ['a/2:y'], ['b/1:w']]);
});

test('sendByPartition fails, retriably, when a partition was not answered for', async () => {
  const none = async (): Promise<RecordMetadata[]> => [];
  const failed = sendByPartition(none, batch, { inTransaction: true });
  await expect(failed).rejects.toThrow(UnacknowledgedSendError);
  await expect(sendByPartition(none, batch, { inTransaction: false })).rejects.toMatchObject({
    retriable: true,
    message: expect.stringMatching(/no broker answered for a\/0/),
  });
});

test("a partition answered for twice is named as written twice (kafkajs's resend to a new leader)", () => {
  // a/0 was answered by its first leader; the retry found it led by a broker that had not
  // answered and sent it again with the next sequence numbers: both answers come back.
  expect(acknowledgement(batch, [ack('a', 0), ack('a', 2), ack('b', 1), ack('a', 0)])).toEqual({
    missing: [],
    repeated: ['a/0'],
  });
});

test('in a transaction a partition answered for twice fails the send; outside one it is let through', async () => {
  const twice = async (): Promise<RecordMetadata[]> => [ack('a', 0), ack('a', 0)];
  const onlyA0 = [{ topic: 'a', messages: [m(0, 'x')] }];
  await expect(sendByPartition(twice, onlyA0, { inTransaction: true })).rejects.toThrow(
    /wrote a\/0 twice.*the transaction must abort/,
  );
  await expect(sendByPartition(twice, onlyA0, { inTransaction: false })).resolves.toBeUndefined();
});

test('keyPartitioner spreads keys over every partition and puts a key in the same one whatever the topic', () => {
  const p = keyPartitioner(4);
  const spread = new Set(Array.from({ length: 100 }, (_, i) => p('t', `m-${i}`)));
  expect([...spread].sort()).toEqual([0, 1, 2, 3]);
  expect(p('t', 'm-1')).toBe(p('other', 'm-1'));
});

test('sendEveryPartition sends again only the records of the partitions left unanswered', async () => {
  const sent: Array<Array<string>> = [];
  const answers = [[ack('a', 0), ack('b', 1)], [ack('a', 2)]];
  await sendEveryPartition(async ({ topicMessages }) => {
    sent.push(topicMessages.flatMap((t) => t.messages.map((m) => `${t.topic}/${m.partition}`)));
    return answers.shift()!;
  }, batch);
  expect(sent).toEqual([['a/0', 'a/2', 'b/1'], ['a/2']]);
});

test('sendEveryPartition gives up after its attempts with the partitions named', async () => {
  let calls = 0;
  const never = async (): Promise<RecordMetadata[]> => {
    calls++;
    return [ack('a', 0), ack('a', 2)];
  };
  await expect(sendEveryPartition(never, batch, 3)).rejects.toThrow(
    /no broker answered for b\/1 after 3 sends/,
  );
  expect(calls).toBe(3);
});
