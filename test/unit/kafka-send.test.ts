/** The guard against a kafkajs send that resolves without having written every partition. */
import type { RecordMetadata } from 'kafkajs';
import {
  keyPartitioner,
  sendAcknowledged,
  sendEveryPartition,
  unacknowledged,
  UnacknowledgedSendError,
} from '../../connectors/kafka-send';

const ack = (topicName: string, partition: number): RecordMetadata => ({
  topicName,
  partition,
  errorCode: 0,
});
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

test('sendAcknowledged fails, retriably, when the send left a partition out', async () => {
  const send = async (): Promise<RecordMetadata[]> => [ack('a', 0), ack('b', 1)];
  const failed = sendAcknowledged(send, batch);
  await expect(failed).rejects.toThrow(UnacknowledgedSendError);
  await expect(sendAcknowledged(send, batch)).rejects.toMatchObject({ retriable: true });
  await expect(
    sendAcknowledged(async () => [ack('a', 0), ack('a', 2), ack('b', 1)], batch),
  ).resolves.toBeUndefined();
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
