/**
 * The contract's artefacts agree with the .avsc files: the generated types are current, every
 * record has golden fixtures that decode to their JSON and re-encode to the same bytes, and every
 * dead-letter reason code is documented.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
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
import { RECORD_NAMES, SCHEMA_DIR } from '../../schemas/contract';
import { DLQ_REASON_CODES } from '../../schemas/reason-codes';
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

test('docs/reason-codes.md documents every dead-letter reason code', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'reason-codes.md'), 'utf8');
  const section = doc.split(/^## /m).find((s) => s.startsWith('Dead-letter reason codes'));
  expect(section).toBeDefined();
  const documented = [...section!.matchAll(/^\| `([A-Z_]+)`/gm)].map((m) => m[1]);
  expect(documented).toEqual(Object.keys(DLQ_REASON_CODES));
});
