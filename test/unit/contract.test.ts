/**
 * The contract's artefacts agree with the .avsc files: the generated types are current, every
 * record has golden fixtures that decode to their JSON and re-encode to the same bytes, records
 * written under an earlier version of a schema still decode, and every dead-letter reason code is
 * documented.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as avro from 'avsc';
import { Codec, StaticSchemaSource } from '../../connectors/codec';
import { generate } from '../../scripts/gen-schema-types';
import {
  FIXTURE_NOW,
  FIXTURE_SCHEMA_ID,
  fixtureCodec,
  fixturePath,
  jsonType,
  readFixtureValue,
  topicOf,
} from '../../scripts/gen-fixtures';
import { RECORD_NAMES, RECORD_SCHEMAS, SCHEMA_DIR } from '../../schemas/contract';
import { DLQ_REASON_CODES } from '../../schemas/reason-codes';
import { TOPICS } from '../../schemas/topics';
import { validateRecord } from '../../schemas/validate';

const ROOT = join(__dirname, '..', '..');

test('schemas/generated/types.ts is what scripts/gen-schema-types.ts generates now', () => {
  expect(readFileSync(join(ROOT, 'schemas', 'generated', 'types.ts'), 'utf8')).toBe(generate());
});

test('every .avsc file is the record of a topic in TOPIC_SPECS', () => {
  const files = readdirSync(SCHEMA_DIR).filter((f) => f.endsWith('.avsc'));
  expect(files.map((f) => f.replace(/\.avsc$/, '')).sort()).toEqual([...RECORD_NAMES].sort());
});

describe.each(RECORD_NAMES)('golden fixture %s.v1', (record) => {
  const hex = readFileSync(fixturePath(record, 'hex'), 'utf8').trim();
  const bytes = Buffer.from(hex, 'hex');
  const json = JSON.parse(readFileSync(fixturePath(record, 'json'), 'utf8')) as unknown;
  const key = (value: unknown): string | null => {
    const keyField = { DeadLetter: null, LoanState: 'loan_id' }[record as string] ?? 'merchant_id';
    return keyField === null ? null : (value as Record<string, string>)[keyField]!;
  };

  test('is framed with schema id 1', () => {
    expect(bytes[0]).toBe(0);
    expect(bytes.readInt32BE(1)).toBe(FIXTURE_SCHEMA_ID);
  });

  test('decodes to its JSON, passing every rule', () => {
    const value = readFixtureValue(record);
    const result = fixtureCodec(record).tryDecodeCached(topicOf(record), key(value), bytes, FIXTURE_NOW);
    expect(result).toMatchObject({ ok: true });
    expect(result?.ok && JSON.parse(jsonType(record).toString(result.value))).toEqual(json);
  });

  test('re-encodes to the same bytes', () => {
    expect(fixtureCodec(record).encode(topicOf(record), readFixtureValue(record)).toString('hex')).toBe(hex);
  });

  test('passes the JSON validators too', () => {
    expect(validateRecord(record, readFixtureValue(record), { now: FIXTURE_NOW })).toMatchObject({
      ok: true,
    });
  });
});

describe('DeadLetter before contract v1.2 (no processor field)', () => {
  /** The schema the DLQ's older letters were written with: today's, without `processor`. */
  const before = {
    ...RECORD_SCHEMAS.DeadLetter,
    fields: RECORD_SCHEMAS.DeadLetter.fields.filter((f) => f.name !== 'processor'),
  };
  /** schemas/fixtures/DeadLetter.v1.hex as it was then: the same letter, written with `before`. */
  const OLD_HEX =
    '00000000012c6d61726b6574706c6163652e7061796f7574732e763106a4131c4241445f4d414749435f425954452a66697273742062797465203132332c206e6f742030800161326139373939636330323835326231383637306537316333336665633064653931343136353338343861343730633533316239323532303231303739656263021c7b226e6f74223a226176726f227df086d9efb268';

  test('only processor was added, last, optional with a null default', () => {
    expect(RECORD_SCHEMAS.DeadLetter.fields.at(-1)).toMatchObject({
      name: 'processor',
      type: ['null', 'string'],
      default: null,
    });
    expect(before.fields).toHaveLength(RECORD_SCHEMAS.DeadLetter.fields.length - 1);
  });

  test('an old letter decodes under the current schema, with processor null', async () => {
    const old = new Codec({
      source: new StaticSchemaSource(new Map([[FIXTURE_SCHEMA_ID, JSON.stringify(before)]])),
    });
    expect(await old.decode(TOPICS.dlq, null, Buffer.from(OLD_HEX, 'hex'), FIXTURE_NOW)).toEqual({
      ok: true,
      value: { ...readFixtureValue('DeadLetter'), processor: null },
      schemaId: FIXTURE_SCHEMA_ID,
    });
  });

  test('the new golden letter is the old one plus the processor; an old reader skips it', () => {
    const hex = readFileSync(fixturePath('DeadLetter', 'hex'), 'utf8').trim();
    expect(hex.startsWith(OLD_HEX)).toBe(true);
    const writer = avro.Type.forSchema(RECORD_SCHEMAS.DeadLetter as unknown as avro.Schema);
    const reader = avro.Type.forSchema(before as unknown as avro.Schema);
    const read = reader.fromBuffer(
      Buffer.from(hex, 'hex').subarray(5),
      reader.createResolver(writer),
    ) as Record<string, unknown>;
    expect(read).toEqual(
      Object.fromEntries(Object.entries(readFixtureValue('DeadLetter')).filter(([k]) => k !== 'processor')),
    );
  });
});

test('docs/reason-codes.md documents every dead-letter reason code', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'reason-codes.md'), 'utf8');
  const section = doc.split(/^## /m).find((s) => s.startsWith('Dead-letter reason codes'));
  expect(section).toBeDefined();
  const documented = [...section!.matchAll(/^\| `([A-Z_]+)`/gm)].map((m) => m[1]);
  expect(documented).toEqual(Object.keys(DLQ_REASON_CODES));
});
