/** connectors/dead-letter.ts and runtime/codec-adapter.ts: the DLQ record of a rejected source record. */
import { createHash } from 'node:crypto';
import { Codec, StaticSchemaSource } from '../../connectors/codec';
import { buildDeadLetter, cleanDetail } from '../../connectors/dead-letter';
import { InvariantViolation } from '../../processors/api';
import { schemaText } from '../../schemas/contract';
import { deadLetterSink } from '../../runtime/codec-adapter';
import { TOPICS } from '../../schemas/topics';
import { NOW } from './codec-samples';

const value = Buffer.from('{"not":"avro"}');
const source = { topic: TOPICS.payouts, partition: 3, offset: '1234', value };
const reason = { reasonCode: 'BAD_MAGIC_BYTE', detail: 'first byte 123, not 0' };
/** Written by the repayment processor. */
const BY = { processor: 'repayment' } as const;

function dlqCodec(): Codec {
  return new Codec({
    source: new StaticSchemaSource(new Map([[5, schemaText('DeadLetter')]])),
    schemaIds: { [TOPICS.dlq]: 5 },
  });
}

test('names the source, the reason, the hash of the value and the processor; the time is the one passed in', () => {
  expect(buildDeadLetter(source, reason, NOW, BY)).toEqual({
    source_topic: 'marketplace.payouts.v1',
    partition: 3,
    offset: 1234,
    reason_code: 'BAD_MAGIC_BYTE',
    detail: 'first byte 123, not 0',
    payload_sha256: createHash('sha256').update(value).digest('hex'),
    payload: null,
    failed_at: NOW,
    processor: 'repayment',
  });
});

test('names whichever processor wrote it; a letter naming none is a broken invariant', () => {
  expect(buildDeadLetter(source, reason, NOW, { processor: 'eligibility' }).processor).toBe('eligibility');
  expect(() => buildDeadLetter(source, reason, NOW, { processor: '' })).toThrow(InvariantViolation);
});

test('keeps the raw value only when configured, as a copy', () => {
  const letter = buildDeadLetter(source, reason, NOW, { ...BY, includePayload: true });
  expect(letter.payload).toEqual(value);
  expect(letter.payload).not.toBe(value);
});

test('a payload over the limit is not kept, the hash still is, and the detail says why', () => {
  const big = Buffer.alloc(2000, 1);
  const letter = buildDeadLetter({ ...source, value: big }, reason, NOW, {
    ...BY,
    includePayload: true,
    maxPayloadBytes: 1000,
  });
  expect(letter.payload).toBeNull();
  expect(letter.payload_sha256).toBe(createHash('sha256').update(big).digest('hex'));
  expect(letter.detail).toBe(
    "payload not kept: 2000 bytes is over the DLQ's 1000-byte limit (payload_sha256 identifies it); first byte 123, not 0",
  );
});

test('a record without a value hashes the empty string', () => {
  const letter = buildDeadLetter(
    { ...source, value: null },
    { reasonCode: 'MISSING_VALUE', detail: 'x' },
    NOW,
    {
      ...BY,
      includePayload: true,
    },
  );
  expect(letter.payload_sha256).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  expect(letter.payload).toBeNull();
});

test.each([
  ['control characters', 'a\nb\u0000c', 'a b c'],
  [
    'credentials in a URL',
    'GET http://user:s3cret@registry:8081/x failed',
    'GET http://***@registry:8081/x failed',
  ],
  ['a bearer token', 'Authorization: Bearer abc.def', 'Authorization: ***'],
  ['a password setting', 'password=hunter2 user=bob', 'password=*** user=bob'],
  ['an API key', 'api_key: "k-123"', 'api_key: ***'],
])('the detail loses %s', (_what, detail, clean) => {
  expect(cleanDetail(detail)).toBe(clean);
});

test('the detail is truncated', () => {
  expect(cleanDetail('x'.repeat(5000))).toHaveLength(1024);
  expect(cleanDetail('x'.repeat(100), 10)).toBe('xxxxxxx...');
});

test('a position that is not a Kafka position is a broken invariant', () => {
  expect(() => buildDeadLetter({ ...source, offset: 'abc' }, reason, NOW, BY)).toThrow(InvariantViolation);
  expect(() => buildDeadLetter({ ...source, partition: -1 }, reason, NOW, BY)).toThrow(InvariantViolation);
});

test('the record encodes for holdback.dlq.v1 and decodes back', () => {
  const codec = dlqCodec();
  const letter = buildDeadLetter(source, { ...reason, detail: 'y'.repeat(3000) }, NOW, {
    ...BY,
    includePayload: true,
  });
  const bytes = codec.encode(TOPICS.dlq, letter);
  expect(codec.tryDecodeCached(TOPICS.dlq, null, bytes, NOW)).toEqual({
    ok: true,
    value: letter,
    schemaId: 5,
  });
});

describe("the runtime's dead-letter sink (runtime/codec-adapter.ts)", () => {
  const rejected = {
    source: { ...source, offset: 1234, key: Buffer.from('mer-42'), timestamp: NOW - 5 },
    reasonCode: 'BEYOND_DEDUP_HORIZON',
    detail: 'payout po-1 is older than the 35-day horizon',
  };

  test.each(['repayment', 'eligibility'])(
    'every letter names the processor it serves (%s), with the rejection and the time given',
    (processor) => {
      const codec = dlqCodec();
      const sink = deadLetterSink(codec, { processor, includePayload: false });
      expect(sink.topic).toBe(TOPICS.dlq);
      expect(codec.tryDecodeCached(TOPICS.dlq, null, sink.encode(rejected, NOW), NOW)).toEqual({
        ok: true,
        value: {
          source_topic: TOPICS.payouts,
          partition: 3,
          offset: 1234,
          reason_code: 'BEYOND_DEDUP_HORIZON',
          detail: 'payout po-1 is older than the 35-day horizon',
          payload_sha256: createHash('sha256').update(value).digest('hex'),
          payload: null,
          failed_at: NOW,
          processor,
        },
        schemaId: 5,
      });
    },
  );

  test('an operator skip is a rejection like any other: it names the processor too; the payload as configured', () => {
    const codec = dlqCodec();
    const sink = deadLetterSink(codec, { processor: 'repayment', includePayload: true });
    const skipped = { ...rejected, reasonCode: 'OPERATOR_SKIPPED', detail: 'skipped by an operator (why)' };
    const r = codec.tryDecodeCached(TOPICS.dlq, null, sink.encode(skipped, NOW), NOW);
    expect(r).toMatchObject({
      ok: true,
      value: { reason_code: 'OPERATOR_SKIPPED', processor: 'repayment', payload: value },
    });
  });
});
