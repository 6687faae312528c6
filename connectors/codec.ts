/**
 * The Confluent wire-format codec: magic byte 0, a 4-byte big-endian schema id, then the Avro
 * body written with that schema. Built on avsc.
 *
 * Decoding is defensive: every problem with the bytes is a result `{ ok: false, reasonCode,
 * detail }` (schemas/reason-codes.ts), found in this order: the header (missing value, size,
 * magic byte), the writer schema (unknown id, not resolvable to the topic's record), the Avro
 * body (truncated, impossible lengths, trailing bytes), the semantic rules (schemas/validate.ts)
 * and finally the Kafka key against the record's key field. Only a registry outage throws,
 * as RegistryUnavailableError: it is not the record's fault, so the runtime retries and sends
 * nothing to the DLQ.
 *
 * Speed: writer schemas are fetched once per id, and the resolver from a writer schema to the
 * topic's reader schema is built once per (topic, id). `tryDecodeCached` is synchronous and is
 * the hot path: it returns undefined only when the id has not been fetched yet, and the caller
 * then awaits `decode` (which fetches, then decodes); so a cached record costs no promise.
 * Encoding writes into one reused buffer that grows, and copies the result out.
 *
 * Longs: a JavaScript number holds integers up to 2^53 exactly. avsc's standard long, used on
 * the fast path, throws rather than round beyond that; the record is then read again with a
 * custom long (LongType.__with) that yields the exact value as a bigint, and the rules reject it
 * as UNSAFE_INTEGER naming the field (the custom long allocates per value, so it is kept off the
 * hot path). Avro lengths are never trusted: strings and bytes that claim more than the body
 * holds fail without allocating, and bodies whose writer schema has arrays or maps are first
 * walked by a bounded scanner, so a block that claims a billion items fails before avsc would
 * loop or allocate for them.
 */
import * as avro from 'avsc';
import { InvariantViolation } from '../processors/api';
import { recordOf, RECORD_SCHEMAS } from '../schemas/contract';
import type { RecordName } from '../schemas/generated/types';
import type { DlqReasonCode } from '../schemas/reason-codes';
import { TOPIC_SPECS, type TopicName, type TopicRecords } from '../schemas/topics';
import {
  DEFAULT_MAX_FUTURE_SKEW_MS,
  MIN_TIMESTAMP_MS,
  RESERVED_MAP_KEYS,
  recordChecker,
  type Failure,
  type RecordChecker,
  type TimestampBounds,
} from '../schemas/validate';

/** Where the writer schemas come from: the registry (connectors/registry.ts) or, in tests and tools, a fixed map. */
export interface SchemaSource {
  /**
   * The Avro schema JSON registered under `id`. Rejects with SchemaLookupError when the registry
   * answers that it has no usable schema under that id, and with RegistryUnavailableError when
   * it cannot answer (network error, 5xx, timeout).
   */
  getSchemaById(id: number): Promise<string>;
}

/** The schema registry could not answer: transient, retried by the caller, never a dead letter. */
export class RegistryUnavailableError extends Error {
  override readonly name = 'RegistryUnavailableError';
}

/** The registry answered, and the answer is that no usable schema has this id: the record's fault. */
export class SchemaLookupError extends Error {
  override readonly name = 'SchemaLookupError';
  constructor(
    readonly reasonCode: Extract<DlqReasonCode, 'UNKNOWN_SCHEMA_ID' | 'SCHEMA_MISMATCH'>,
    message: string,
  ) {
    super(message);
  }
}

/** An output that breaks the contract: a bug upstream, so the runtime stops rather than emit it. */
export class EncodeError extends InvariantViolation {
  constructor(
    readonly reasonCode: DlqReasonCode,
    readonly detail: string,
  ) {
    super(`cannot encode: ${reasonCode} ${detail}`);
  }
}

/** A fixed id -> schema map, for unit tests, fixtures and benchmarks. */
export class StaticSchemaSource implements SchemaSource {
  constructor(private readonly schemas: ReadonlyMap<number, string>) {}

  async getSchemaById(id: number): Promise<string> {
    const schema = this.schemas.get(id);
    if (schema === undefined) throw new SchemaLookupError('UNKNOWN_SCHEMA_ID', `no schema with id ${id}`);
    return schema;
  }
}

export type DecodeResult<T> = { readonly ok: true; readonly value: T; readonly schemaId: number } | Failure;

export interface CodecOptions {
  readonly source: SchemaSource;
  /**
   * The id of each topic's local schema, as registered (SchemaRegistryClient.registerAll or
   * lookupAll). Needed to encode for a topic; also spares a fetch when decoding those ids.
   */
  readonly schemaIds?: Partial<Record<TopicName, number>>;
  /** Largest accepted value, header included (default 1 MiB). */
  readonly maxPayloadBytes?: number;
  /** How far past `now` a timestamp may be (default 1 day). */
  readonly maxFutureSkewMs?: number;
  /** How long a schema id the registry does not know is remembered as unknown (default 10 s). */
  readonly unknownIdTtlMs?: number;
}

export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;
const DEFAULT_UNKNOWN_ID_TTL_MS = 10_000;
const MAX_REMEMBERED_UNKNOWN_IDS = 1024;
const HEADER_BYTES = 5;
/** Outputs carry the runtime's own clock: encoding checks timestamps against the lower bound only. */
const ENCODE_BOUNDS: TimestampBounds = { minMs: MIN_TIMESTAMP_MS, maxMs: Number.POSITIVE_INFINITY };

// ---------------------------------------------------------------------------------------------
// avsc types.

/** A long that decodes to a number when safe and to a bigint (rejected by the rules) beyond 2^53. */
const EXACT_LONG = avro.types.LongType.__with({
  fromBuffer: (b: Buffer): number | bigint => {
    const n = b.readInt32LE(4) * 4294967296 + b.readUInt32LE(0);
    return Number.isSafeInteger(n) ? n : b.readBigInt64LE(0);
  },
  toBuffer: (n: number): Buffer => {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt(n));
    return b;
  },
  fromJSON: (n: number): number => n,
  toJSON: (n: number | bigint): number | string => (typeof n === 'bigint' ? n.toString() : n),
  isValid: (n: unknown): boolean => typeof n === 'number' && Number.isSafeInteger(n),
  compare: (a: number, b: number): number => (a < b ? -1 : a > b ? 1 : 0),
});

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

/** One schema as two avsc types: with avsc's long (fast; refuses unsafe values) and with EXACT_LONG. */
interface Types {
  readonly fast: avro.Type;
  readonly exact: avro.Type;
}

/** Records are plain objects (no avsc methods on their prototype). */
function typesOf(schema: unknown): Types {
  return {
    fast: avro.Type.forSchema(schema as avro.Schema, { omitRecordMethods: true }),
    exact: avro.Type.forSchema(schema as avro.Schema, {
      // Every long, `"long"` or `{ "type": "long", ... }`, is EXACT_LONG.
      typeHook: (s) => (s === 'long' || (isObject(s) && s['type'] === 'long') ? EXACT_LONG : undefined),
      omitRecordMethods: true,
    }),
  };
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function failure(reasonCode: DlqReasonCode, detail: string): Failure {
  return { ok: false, reasonCode, detail };
}

function quote(s: string | null): string {
  if (s === null) return 'none';
  const q = JSON.stringify(s);
  return q.length > 64 ? `${q.slice(0, 61)}...` : q;
}

// ---------------------------------------------------------------------------------------------
// Bounded scanner: walks an Avro body with its writer schema, checking every length and block
// count against the bytes left, before avsc decodes it.

interface ScanState {
  readonly buf: Buffer;
  pos: number;
  failure: Failure | undefined;
}

type Scan = (s: ScanState) => boolean;

/** Items a block may claim when an item can take no bytes at all (e.g. an array of nulls). */
const MAX_ZERO_SIZE_ITEMS = 100_000;

function malformed(s: ScanState, detail: string): false {
  s.failure = failure('MALFORMED_AVRO', `${detail} (at byte ${s.pos} of the value)`);
  return false;
}

/** A zig-zag varint of at most `maxBytes` bytes, or undefined (failure set) when truncated or too long. */
function readVarint(s: ScanState, maxBytes: number): number | undefined {
  let n = 0;
  let scale = 1;
  for (let i = 0; i < maxBytes; i++) {
    if (s.pos >= s.buf.length) {
      malformed(s, 'truncated varint');
      return undefined;
    }
    const b = s.buf[s.pos++]!;
    n += (b & 0x7f) * scale;
    if ((b & 0x80) === 0) return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
    scale *= 128;
  }
  malformed(s, `varint longer than ${maxBytes} bytes`);
  return undefined;
}

function take(s: ScanState, bytes: number, what: string): boolean {
  const left = s.buf.length - s.pos;
  if (bytes > left) return malformed(s, `${what} needs ${bytes} bytes, ${left} left`);
  s.pos += bytes;
  return true;
}

/** Smallest encoding of a value of this type, in bytes. */
function minSize(t: avro.Type): number {
  switch (t.typeName) {
    case 'null':
      return 0;
    case 'float':
      return 4;
    case 'double':
      return 8;
    case 'fixed':
      return (t as avro.types.FixedType).size;
    case 'record':
    case 'error':
      return (t as avro.types.RecordType).fields.reduce((sum, f) => sum + minSize(f.type), 0);
    case 'union:unwrapped':
    case 'union:wrapped':
      return 1 + Math.min(...(t as avro.types.UnwrappedUnionType).types.map(minSize));
    default:
      return 1;
  }
}

/** Counts and sizes of one array or map block; false when they cannot fit in the bytes left. */
function blockCount(s: ScanState, itemMinSize: number, what: string): number | false {
  let n = readVarint(s, 10);
  if (n === undefined) return false;
  if (n < 0) {
    n = -n;
    const size = readVarint(s, 10);
    if (size === undefined) return false;
    if (size < 0 || size > s.buf.length - s.pos) return malformed(s, `${what} block claims ${size} bytes`);
  }
  const left = s.buf.length - s.pos;
  if (itemMinSize === 0 ? n > MAX_ZERO_SIZE_ITEMS : n * itemMinSize > left) {
    return malformed(s, `${what} block claims ${n} items, ${left} bytes left`);
  }
  return n;
}

function compileScan(t: avro.Type): Scan {
  switch (t.typeName) {
    case 'null':
      return () => true;
    case 'boolean':
      return (s) => take(s, 1, 'boolean');
    case 'int':
      return (s) => readVarint(s, 5) !== undefined;
    case 'long':
    case 'abstract:long':
      return (s) => readVarint(s, 10) !== undefined;
    case 'float':
      return (s) => take(s, 4, 'float');
    case 'double':
      return (s) => take(s, 8, 'double');
    case 'fixed': {
      const size = (t as avro.types.FixedType).size;
      return (s) => take(s, size, 'fixed');
    }
    case 'string':
    case 'bytes':
      return (s) => {
        const len = readVarint(s, 10);
        if (len === undefined) return false;
        if (len < 0) return malformed(s, `negative ${t.typeName} length ${len}`);
        return take(s, len, t.typeName);
      };
    case 'enum': {
      const count = (t as avro.types.EnumType).symbols.length;
      return (s) => {
        const i = readVarint(s, 5);
        if (i === undefined) return false;
        return i >= 0 && i < count ? true : malformed(s, `enum index ${i} of ${count} symbols`);
      };
    }
    case 'union:unwrapped':
    case 'union:wrapped': {
      const branches = (t as avro.types.UnwrappedUnionType).types.map(compileScan);
      return (s) => {
        const i = readVarint(s, 5);
        if (i === undefined) return false;
        const branch = branches[i];
        return branch ? branch(s) : malformed(s, `union index ${i} of ${branches.length} branches`);
      };
    }
    case 'record':
    case 'error': {
      const fields = (t as avro.types.RecordType).fields.map((f) => compileScan(f.type));
      return (s) => fields.every((scan) => scan(s));
    }
    case 'array': {
      const items = (t as avro.types.ArrayType).itemsType;
      const scanItem = compileScan(items);
      const itemMin = minSize(items);
      return (s) => {
        for (;;) {
          const n = blockCount(s, itemMin, 'array');
          if (n === false) return false;
          if (n === 0) return true;
          for (let i = 0; i < n; i++) if (!scanItem(s)) return false;
        }
      };
    }
    case 'map': {
      const values = (t as avro.types.MapType).valuesType as avro.Type;
      const scanValue = compileScan(values);
      const entryMin = 1 + minSize(values);
      return (s) => {
        for (;;) {
          const n = blockCount(s, entryMin, 'map');
          if (n === false) return false;
          if (n === 0) return true;
          for (let i = 0; i < n; i++) {
            const len = readVarint(s, 10);
            if (len === undefined) return false;
            if (len < 0 || len > s.buf.length - s.pos) return malformed(s, `map key of ${len} bytes`);
            const key = s.buf.toString('utf8', s.pos, s.pos + len);
            if (RESERVED_MAP_KEYS.has(key)) {
              s.failure = failure('INVALID_MAP_KEY', `map key ${quote(key)} is not allowed`);
              return false;
            }
            s.pos += len;
            if (!scanValue(s)) return false;
          }
        }
      };
    }
    default:
      throw new Error(`no scanner for Avro type ${t.typeName}`);
  }
}

function hasCollections(t: avro.Type): boolean {
  switch (t.typeName) {
    case 'array':
    case 'map':
      return true;
    case 'record':
    case 'error':
      return (t as avro.types.RecordType).fields.some((f) => hasCollections(f.type));
    case 'union:unwrapped':
    case 'union:wrapped':
      return (t as avro.types.UnwrappedUnionType).types.some(hasCollections);
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------------------------
// The codec.

type WriterEntry = { readonly ok: true; readonly types: Types } | Failure;

/** How bytes written with one writer schema are read as one topic's record. */
type Resolution =
  | {
      readonly ok: true;
      /** Undefined when the writer schema is the reader schema. */
      readonly resolvers: { readonly fast: avro.Resolver; readonly exact: avro.Resolver } | undefined;
      readonly scan: Scan | undefined;
    }
  | Failure;

interface TopicCodec {
  readonly topic: TopicName;
  readonly record: RecordName;
  readonly keyField: string;
  /** The local schema: reads every writer's records, and writes this topic's. */
  readonly reader: Types;
  readonly check: RecordChecker<RecordName>;
  readonly schemaId: number | undefined;
  /** By writer schema id. */
  readonly resolutions: Map<number, Resolution>;
}

export class Codec {
  private readonly source: SchemaSource;
  private readonly topics = new Map<string, TopicCodec>();
  /** Writer schemas by id: parsed once, or a permanent SCHEMA_MISMATCH. */
  private readonly writers = new Map<number, WriterEntry>();
  /** Ids the registry did not know, until when (the caller's clock) that answer is trusted. */
  private readonly unknownIds = new Map<number, { readonly until: number; readonly detail: string }>();
  private readonly inflight = new Map<number, Promise<void>>();
  private readonly maxPayloadBytes: number;
  private readonly maxFutureSkewMs: number;
  private readonly unknownIdTtlMs: number;
  private scratch = Buffer.allocUnsafe(4096);

  constructor(opts: CodecOptions) {
    this.source = opts.source;
    this.maxPayloadBytes = opts.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
    this.maxFutureSkewMs = opts.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS;
    this.unknownIdTtlMs = opts.unknownIdTtlMs ?? DEFAULT_UNKNOWN_ID_TTL_MS;
    const readers = new Map<RecordName, Types>();
    const readerOf = (record: RecordName): Types => {
      let reader = readers.get(record);
      if (!reader) {
        reader = typesOf(RECORD_SCHEMAS[record]);
        readers.set(record, reader);
      }
      return reader;
    };
    for (const spec of TOPIC_SPECS) {
      const record = spec.record as RecordName;
      this.topics.set(spec.name, {
        topic: spec.name,
        record,
        keyField: spec.keyField,
        reader: readerOf(record),
        check: recordChecker(record),
        schemaId: opts.schemaIds?.[spec.name],
        resolutions: new Map(),
      });
    }
    // The local schemas are the writers of these ids: no fetch, no resolver.
    for (const [topic, id] of Object.entries(opts.schemaIds ?? {}) as Array<[TopicName, number]>) {
      const reader = readerOf(recordOf(topic));
      const known = this.writers.get(id);
      if (known?.ok && known.types !== reader) {
        throw new Error(
          `schema id ${id} given for two different records (${known.types.fast.name}, ${reader.fast.name})`,
        );
      }
      this.writers.set(id, { ok: true, types: reader });
    }
  }

  /**
   * Decodes and validates one Kafka record synchronously when its writer schema is cached;
   * returns undefined when it is not (then await `decode`). `now` is the caller's clock, for
   * the timestamp rules. Never throws for bad bytes.
   */
  tryDecodeCached<T extends TopicName>(
    topic: T,
    key: Buffer | string | null,
    value: Buffer | null,
    now: number,
  ): DecodeResult<TopicRecords[T]> | undefined {
    const t = this.topicCodec(topic);
    if (value === null) return failure('MISSING_VALUE', 'the record has no value');
    if (value.length > this.maxPayloadBytes) {
      return failure('PAYLOAD_TOO_LARGE', `${value.length} bytes, over ${this.maxPayloadBytes}`);
    }
    if (value.length === 0) return failure('TRUNCATED_HEADER', 'the value is empty');
    if (value[0] !== 0) return failure('BAD_MAGIC_BYTE', `first byte ${value[0]}, not 0`);
    if (value.length < HEADER_BYTES) {
      return failure('TRUNCATED_HEADER', `${value.length} bytes, the header needs ${HEADER_BYTES}`);
    }
    const id = value.readInt32BE(1);

    let resolution = t.resolutions.get(id);
    if (resolution === undefined) {
      const writer = this.writers.get(id);
      if (writer === undefined) {
        const unknown = this.unknownIds.get(id);
        if (unknown === undefined || unknown.until <= now) return undefined;
        return failure('UNKNOWN_SCHEMA_ID', unknown.detail);
      }
      resolution = writer.ok ? resolve(t, writer.types, id) : writer;
      t.resolutions.set(id, resolution);
    }
    if (!resolution.ok) return resolution;

    if (resolution.scan) {
      const s: ScanState = { buf: value, pos: HEADER_BYTES, failure: undefined };
      if (!resolution.scan(s)) return s.failure!;
    }
    let decoded: { value: unknown; offset: number };
    const { resolvers } = resolution;
    try {
      decoded = t.reader.fast.decode(value, HEADER_BYTES, resolvers?.fast);
    } catch {
      // avsc's long throws beyond 2^53 (as it does on other bad bytes): read again, exactly.
      try {
        decoded = t.reader.exact.decode(value, HEADER_BYTES, resolvers?.exact);
      } catch (e) {
        return failure('MALFORMED_AVRO', message(e));
      }
    }
    if (decoded.offset < 0) return failure('MALFORMED_AVRO', 'truncated body');
    if (decoded.offset !== value.length) {
      return failure('MALFORMED_AVRO', `${value.length - decoded.offset} trailing bytes after the record`);
    }
    const record = decoded.value as TopicRecords[T];
    const invalid = t.check(record, { minMs: MIN_TIMESTAMP_MS, maxMs: now + this.maxFutureSkewMs });
    if (invalid) return invalid;
    if (t.keyField !== '') {
      const expected = (record as unknown as Record<string, string>)[t.keyField]!;
      const actual = key === null || typeof key === 'string' ? key : key.toString('utf8');
      if (actual !== expected) {
        return failure('KEY_MISMATCH', `key ${quote(actual)}, ${t.keyField} ${quote(expected)}`);
      }
    }
    return { ok: true, value: record, schemaId: id };
  }

  /**
   * Decodes and validates one Kafka record, fetching its writer schema first when needed.
   * Rejects only with RegistryUnavailableError (retry later); bad bytes are a result.
   */
  async decode<T extends TopicName>(
    topic: T,
    key: Buffer | string | null,
    value: Buffer | null,
    now: number,
  ): Promise<DecodeResult<TopicRecords[T]>> {
    const cached = this.tryDecodeCached(topic, key, value, now);
    if (cached !== undefined) return cached;
    // Undefined means the header is sound and its schema id is not cached.
    const id = value!.readInt32BE(1);
    await this.fetchWriter(id, now);
    return (
      this.tryDecodeCached(topic, key, value, now) ??
      // Still not cached: the registry does not know the id (and unknownIdTtlMs is 0).
      failure('UNKNOWN_SCHEMA_ID', this.unknownIds.get(id)?.detail ?? `the registry has no schema ${id}`)
    );
  }

  /**
   * Encodes a value for a topic with the topic's registered schema id. Throws EncodeError when
   * the value breaks the contract (shape or rules; timestamps checked against the lower bound
   * only), and Error when no schema id was given for the topic.
   */
  encode<T extends TopicName>(topic: T, value: TopicRecords[T]): Buffer {
    const t = this.topicCodec(topic);
    if (t.schemaId === undefined) {
      throw new Error(`no schema id for ${topic}: register or look up the subjects at start-up`);
    }
    // avsc checks the shape while writing (INVALID_RECORD); the rules need that shape.
    let end = this.writeBody(t, value);
    while (end < 0) {
      this.scratch = Buffer.allocUnsafe(Math.max(this.scratch.length * 2, this.scratch.length - end));
      end = this.writeBody(t, value);
    }
    const invalid = t.check(value, ENCODE_BOUNDS);
    if (invalid) throw new EncodeError(invalid.reasonCode, invalid.detail);
    this.scratch[0] = 0;
    this.scratch.writeInt32BE(t.schemaId, 1);
    const out = Buffer.allocUnsafe(end);
    this.scratch.copy(out, 0, 0, end);
    return out;
  }

  /** Writes the Avro body after the header; a negative result is how many bytes were missing. */
  private writeBody(t: TopicCodec, value: unknown): number {
    try {
      return t.reader.fast.encode(value, this.scratch, HEADER_BYTES);
    } catch {
      throw shapeError(t, value);
    }
  }

  private topicCodec(topic: TopicName): TopicCodec {
    const t = this.topics.get(topic);
    if (!t) throw new Error(`no codec for topic ${topic}`);
    return t;
  }

  /** Fetches a writer schema once, however many records wait for it. */
  private async fetchWriter(id: number, now: number): Promise<void> {
    let pending = this.inflight.get(id);
    if (!pending) {
      pending = this.loadWriter(id, now).finally(() => this.inflight.delete(id));
      this.inflight.set(id, pending);
    }
    await pending;
  }

  private async loadWriter(id: number, now: number): Promise<void> {
    let text: string;
    try {
      text = await this.source.getSchemaById(id);
    } catch (e) {
      if (!(e instanceof SchemaLookupError)) throw e;
      if (e.reasonCode === 'SCHEMA_MISMATCH') {
        this.writers.set(id, failure('SCHEMA_MISMATCH', e.message));
      } else {
        if (this.unknownIds.size >= MAX_REMEMBERED_UNKNOWN_IDS) this.unknownIds.clear();
        this.unknownIds.set(id, { until: now + this.unknownIdTtlMs, detail: e.message });
      }
      return;
    }
    this.unknownIds.delete(id);
    this.writers.set(id, parseWriter(id, text));
  }
}

function parseWriter(id: number, text: string): WriterEntry {
  try {
    const types = typesOf(JSON.parse(text));
    if (types.fast.typeName !== 'record') {
      return failure('SCHEMA_MISMATCH', `schema ${id} is a ${types.fast.typeName}, not a record`);
    }
    return { ok: true, types };
  } catch (e) {
    return failure('SCHEMA_MISMATCH', `schema ${id} is not a valid Avro schema: ${message(e)}`);
  }
}

/** Where a value avsc cannot write breaks the schema: the first wrong field. */
function shapeError(t: TopicCodec, value: unknown): EncodeError {
  let first: { path: string[]; value: unknown } | undefined;
  t.reader.fast.isValid(value, { errorHook: (path, v) => (first ??= { path, value: v }) });
  const where = [t.record, ...(first?.path ?? [])].join('.');
  const v = first?.value;
  if (typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v)) {
    return new EncodeError('UNSAFE_INTEGER', `${where}: ${v} is beyond 2^53 - 1`);
  }
  const shown =
    typeof v === 'string' ? quote(v) : typeof v === 'object' && v !== null ? 'an object' : String(v);
  return new EncodeError('INVALID_RECORD', `${where}: ${shown} does not fit the schema`);
}

function resolve(t: TopicCodec, writer: Types, id: number): Resolution {
  try {
    const resolvers = writer.fast.equals(t.reader.fast)
      ? undefined
      : {
          fast: t.reader.fast.createResolver(writer.fast),
          exact: t.reader.exact.createResolver(writer.exact),
        };
    return { ok: true, resolvers, scan: hasCollections(writer.fast) ? compileScan(writer.fast) : undefined };
  } catch (e) {
    return failure(
      'SCHEMA_MISMATCH',
      `schema ${id} (${writer.fast.name}) cannot be read as ${t.record}: ${message(e)}`,
    );
  }
}
