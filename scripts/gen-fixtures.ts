/**
 * Golden encoded fixtures, one pair per record and schema version in schemas/fixtures/:
 * `<Record>.v1.json`, a sample value in the Avro JSON encoding (a non-null union value wrapped
 * in its branch name, bytes as ISO-8859-1 strings), and `<Record>.v1.hex`, its Confluent-framed
 * Avro encoding with schema id 1.
 * test/unit/contract.test.ts checks that every .hex decodes to its .json and re-encodes to the
 * same bytes. `npx tsx scripts/gen-fixtures.ts` rewrites the .hex files from the .json files:
 * run it only for a deliberate change, and review the diff.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as avro from 'avsc';
import { Codec, StaticSchemaSource } from '../connectors/codec';
import { RECORD_NAMES, RECORD_SCHEMAS, schemaText } from '../schemas/contract';
import type { RecordName, Records } from '../schemas/generated/types';
import { TOPIC_SPECS, type TopicName } from '../schemas/topics';

export const FIXTURE_DIR = join(__dirname, '..', 'schemas', 'fixtures');
export const FIXTURE_VERSION = 'v1';
export const FIXTURE_SCHEMA_ID = 1;
/** The clock the fixtures are validated against: just after their timestamps. */
export const FIXTURE_NOW = Date.UTC(2026, 10, 2);

export function fixturePath(record: RecordName, ext: 'json' | 'hex'): string {
  return join(FIXTURE_DIR, `${record}.${FIXTURE_VERSION}.${ext}`);
}

/** The topic that carries a record. */
export function topicOf(record: RecordName): TopicName {
  const spec = TOPIC_SPECS.find((s) => s.record === record);
  if (!spec) throw new Error(`no topic carries ${record}`);
  return spec.name;
}

/** A codec that knows only this record's schema, under FIXTURE_SCHEMA_ID. */
export function fixtureCodec(record: RecordName): Codec {
  return new Codec({
    source: new StaticSchemaSource(new Map([[FIXTURE_SCHEMA_ID, schemaText(record)]])),
    schemaIds: { [topicOf(record)]: FIXTURE_SCHEMA_ID },
  });
}

/** The avsc type that reads and writes a record's JSON form. */
export function jsonType(record: RecordName): avro.Type {
  return avro.Type.forSchema(RECORD_SCHEMAS[record] as unknown as avro.Schema, { omitRecordMethods: true });
}

export function readFixtureValue<R extends RecordName>(record: R): Records[R] {
  return jsonType(record).fromString(readFileSync(fixturePath(record, 'json'), 'utf8')) as Records[R];
}

export function encodeFixture(record: RecordName): Buffer {
  return fixtureCodec(record).encode(topicOf(record), readFixtureValue(record));
}

if (require.main === module) {
  for (const record of RECORD_NAMES) {
    writeFileSync(fixturePath(record, 'hex'), `${encodeFixture(record).toString('hex')}\n`);
    console.log(`wrote ${fixturePath(record, 'hex')}`);
  }
}
