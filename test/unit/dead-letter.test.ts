/** connectors/dead-letter.ts: the DLQ record of a rejected source record. */
import { createHash } from 'node:crypto';
import { Codec, StaticSchemaSource } from '../../connectors/codec';
import { buildDeadLetter, cleanDetail } from '../../connectors/dead-letter';
import { InvariantViolation } from '../../processors/api';
import { schemaText } from '../../schemas/contract';
import { TOPICS } from '../../schemas/topics';
import { NOW } from './codec-samples';

const value = Buffer.from('{"not":"avro"}');
const source = { topic: TOPICS.payouts, partition: 3, offset: '1234', value };
const reason = { reasonCode: 'BAD_MAGIC_BYTE', detail: 'first byte 123, not 0' };

test('names the source, the reason and the hash of the value; the time is the one passed in', () => {
  expect(buildDeadLetter(source, reason, NOW)).toEqual({
    source_topic: 'marketplace.payouts.v1',
    partition: 3,
    offset: 1234,
    reason_code: 'BAD_MAGIC_BYTE',
    detail: 'first byte 123, not 0',
    payload_sha256: createHash('sha256').update(value).digest('hex'),
    payload: null,
    failed_at: NOW,
  });
});

test('keeps the raw value only when configured, as a copy', () => {
  const letter = buildDeadLetter(source, reason, NOW, { includePayload: true });
  expect(letter.payload).toEqual(value);
  expect(letter.payload).not.toBe(value);
});

test('a payload over the limit is not kept, the hash still is, and the detail says why', () => {
  const big = Buffer.alloc(2000, 1);
  const letter = buildDeadLetter({ ...source, value: big }, reason, NOW, {
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
  expect(() => buildDeadLetter({ ...source, offset: 'abc' }, reason, NOW)).toThrow(InvariantViolation);
  expect(() => buildDeadLetter({ ...source, partition: -1 }, reason, NOW)).toThrow(InvariantViolation);
});

test('the record encodes for holdback.dlq.v1 and decodes back', () => {
  const codec = new Codec({
    source: new StaticSchemaSource(new Map([[5, schemaText('DeadLetter')]])),
    schemaIds: { [TOPICS.dlq]: 5 },
  });
  const letter = buildDeadLetter(source, { ...reason, detail: 'y'.repeat(3000) }, NOW, {
    includePayload: true,
  });
  const bytes = codec.encode(TOPICS.dlq, letter);
  expect(codec.tryDecodeCached(TOPICS.dlq, null, bytes, NOW)).toEqual({
    ok: true,
    value: letter,
    schemaId: 5,
  });
});
