/**
 * The contract's Avro schemas, read once from schemas/*.avsc: the single source of truth that the
 * validators (schemas/validate.ts), the codec (connectors/codec.ts) and the registry client
 * (connectors/registry.ts) derive everything from. Works from the sources (tsx, jest) and from
 * the compiled dist/ (which has no .avsc files: it reads them from the project's schemas/).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RecordName } from './generated/types';
import { TOPIC_SPECS, type TopicName, type TopicSpec } from './topics';

/** An Avro schema as written in JSON: a type name, a union, or a complex type. */
export type AvroSchema = string | AvroSchema[] | AvroComplexSchema;

export interface AvroComplexSchema {
  readonly type: string;
  readonly [attribute: string]: unknown;
}

export interface AvroField {
  readonly name: string;
  readonly type: AvroSchema;
  readonly doc?: string;
  readonly default?: unknown;
}

export interface AvroRecordSchema {
  readonly type: 'record';
  readonly name: string;
  readonly namespace?: string;
  readonly doc?: string;
  readonly fields: readonly AvroField[];
}

function findSchemaDir(): string {
  const candidates = [__dirname, join(__dirname, '..', '..', 'schemas')];
  const dir = candidates.find((d) => existsSync(join(d, 'OrderEvent.avsc')));
  if (!dir) throw new Error(`no .avsc files in ${candidates.join(' or ')}`);
  return dir;
}

/** The folder the .avsc files are read from. */
export const SCHEMA_DIR = findSchemaDir();

function load(record: string): AvroRecordSchema {
  const schema = JSON.parse(readFileSync(join(SCHEMA_DIR, `${record}.avsc`), 'utf8')) as AvroRecordSchema;
  if (schema.type !== 'record' || schema.name !== record || !Array.isArray(schema.fields)) {
    throw new Error(`schemas/${record}.avsc must hold a record named ${record}`);
  }
  return schema;
}

/** Every record of the contract, by name. */
export const RECORD_SCHEMAS: { readonly [R in RecordName]: AvroRecordSchema } = Object.freeze(
  Object.fromEntries(TOPIC_SPECS.map((s) => [s.record, load(s.record)])) as Record<
    RecordName,
    AvroRecordSchema
  >,
);

export const RECORD_NAMES = Object.keys(RECORD_SCHEMAS) as RecordName[];

/** The schema as registered: the .avsc file as compact JSON. */
export function schemaText(record: RecordName): string {
  return JSON.stringify(RECORD_SCHEMAS[record]);
}

const SPECS = new Map<string, TopicSpec>(TOPIC_SPECS.map((s) => [s.name, s]));

export function specOf(topic: TopicName): TopicSpec {
  const spec = SPECS.get(topic);
  if (!spec) throw new Error(`unknown topic ${topic}`);
  return spec;
}

/** The record a topic carries. */
export function recordOf(topic: TopicName): RecordName {
  return specOf(topic).record as RecordName;
}
