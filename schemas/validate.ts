/**
 * Validation of the contract's records, derived from schemas/*.avsc at module load so that no
 * shape is written twice:
 *
 * - RECORD_SHAPES: a strict zod schema per record, built by walking the .avsc JSON. It checks
 *   the shape of values from non-Avro sources (JSON, HTTP, files); an Avro decode already
 *   guarantees the shape, so the codec skips it.
 * - The semantic rules: one small table keyed by field conventions (FIELD_RULES: `*_minor`,
 *   `currency`, timestamp-millis, `*_id`, ...) plus a few record rules (RECORD_RULES: a FUNDED
 *   loan carries its terms), compiled once per record into a checker (`recordChecker`), which
 *   is what the codec runs on every decoded record.
 *
 * Validation returns data, `{ ok: true, value } | { ok: false, reasonCode, detail }`, never
 * throws, and never reads the clock: `now` is a parameter. Rules run in field order, then the
 * record rules; the first failure decides the reason code.
 */
import { z } from 'zod';
import type { RecordName, Records } from './generated/types';
import { RECORD_NAMES, RECORD_SCHEMAS, type AvroSchema } from './contract';
import { isCurrencyCode } from './iso4217';
import type { DlqReasonCode } from './reason-codes';

/** Earliest accepted timestamp: 2000-01-01T00:00:00Z. */
export const MIN_TIMESTAMP_MS = Date.UTC(2000, 0, 1);
/** How far past `now` a timestamp may be, by default: producers' clocks drift. */
export const DEFAULT_MAX_FUTURE_SKEW_MS = 24 * 60 * 60 * 1000;
/** Ceiling for any amount: 10^13 minor units (100 billion in a 2-decimal currency). */
export const MAX_AMOUNT_MINOR = 10 ** 13;
/** Longest id or map key, in UTF-16 code units. */
export const MAX_ID_LENGTH = 256;
/** Longest other string (reasons, versions, details). */
export const MAX_TEXT_LENGTH = 4096;
/** Highest rate: 100% in basis points. */
export const MAX_RATE_BPS = 10_000;
/** Longest minimum-payment period. */
export const MAX_PERIOD_DAYS = 366;

export interface Failure {
  readonly ok: false;
  readonly reasonCode: DlqReasonCode;
  readonly detail: string;
}

export type Validation<T> = { readonly ok: true; readonly value: T } | Failure;

export interface ValidationOptions {
  /** The caller's clock, ms since the epoch. */
  readonly now: number;
  /** How far past `now` a timestamp may be; DEFAULT_MAX_FUTURE_SKEW_MS when absent. */
  readonly maxFutureSkewMs?: number;
}

/** The accepted range of timestamp-millis fields, inclusive. */
export interface TimestampBounds {
  readonly minMs: number;
  readonly maxMs: number;
}

export function timestampBounds(opts: ValidationOptions): TimestampBounds {
  return { minMs: MIN_TIMESTAMP_MS, maxMs: opts.now + (opts.maxFutureSkewMs ?? DEFAULT_MAX_FUTURE_SKEW_MS) };
}

// ---------------------------------------------------------------------------------------------
// Shapes, read from the .avsc JSON.

type Kind =
  'null' | 'boolean' | 'int' | 'long' | 'float' | 'double' | 'string' | 'bytes' | 'enum' | 'array' | 'map';

/** What a field may hold, as the .avsc says. */
interface ValueShape {
  readonly kind: Kind;
  readonly nullable: boolean;
  /** logicalType timestamp-millis. */
  readonly timestamp: boolean;
  readonly symbols?: readonly [string, ...string[]];
  readonly items?: ValueShape;
  readonly values?: ValueShape;
}

const PRIMITIVES = new Set<string>(['null', 'boolean', 'int', 'long', 'float', 'double', 'string', 'bytes']);

function shapeOf(schema: AvroSchema, named: Map<string, ValueShape>): ValueShape {
  if (Array.isArray(schema)) {
    const others = schema.filter((branch) => branch !== 'null');
    if (schema.length !== 2 || others.length !== 1) {
      throw new Error(`unsupported union ${JSON.stringify(schema)}: the contract uses only ["null", T]`);
    }
    return { ...shapeOf(others[0]!, named), nullable: true };
  }
  if (typeof schema === 'string') {
    if (PRIMITIVES.has(schema)) return { kind: schema as Kind, nullable: false, timestamp: false };
    const ref = named.get(schema) ?? named.get(schema.split('.').pop()!);
    if (!ref) throw new Error(`unknown type ${schema}`);
    return ref;
  }
  switch (schema.type) {
    case 'enum': {
      const shape: ValueShape = {
        kind: 'enum',
        nullable: false,
        timestamp: false,
        symbols: schema['symbols'] as [string, ...string[]],
      };
      named.set(schema['name'] as string, shape);
      return shape;
    }
    case 'array':
      return {
        kind: 'array',
        nullable: false,
        timestamp: false,
        items: shapeOf(schema['items'] as AvroSchema, named),
      };
    case 'map':
      return {
        kind: 'map',
        nullable: false,
        timestamp: false,
        values: shapeOf(schema['values'] as AvroSchema, named),
      };
    case 'record':
    case 'fixed':
      throw new Error(`unsupported type ${schema.type}: the contract has no nested records or fixed types`);
    default:
      return { ...shapeOf(schema.type, named), timestamp: schema['logicalType'] === 'timestamp-millis' };
  }
}

const FIELD_SHAPES: { readonly [R in RecordName]: ReadonlyArray<readonly [string, ValueShape]> } =
  Object.fromEntries(
    RECORD_NAMES.map((record) => {
      const named = new Map<string, ValueShape>();
      return [record, RECORD_SCHEMAS[record].fields.map((f) => [f.name, shapeOf(f.type, named)] as const)];
    }),
  ) as { [R in RecordName]: Array<readonly [string, ValueShape]> };

function zodOf(shape: ValueShape): z.ZodType {
  const base = ((): z.ZodType => {
    switch (shape.kind) {
      case 'null':
        return z.null();
      case 'boolean':
        return z.boolean();
      case 'int':
        return z.int32();
      case 'long':
        // Any integer: beyond 2^53 it is UNSAFE_INTEGER, a semantic rule, not a shape error.
        return z.number().refine(Number.isInteger, { message: 'expected an integer' });
      case 'float':
      case 'double':
        return z.number();
      case 'string':
        return z.string();
      case 'bytes':
        return z.instanceof(Buffer);
      case 'enum':
        return z.enum(shape.symbols!);
      case 'array':
        return z.array(zodOf(shape.items!));
      case 'map':
        return z.record(z.string(), zodOf(shape.values!));
    }
  })();
  return shape.nullable ? base.nullable() : base;
}

/** A strict zod schema per record (unknown keys are refused), derived from its .avsc. */
export const RECORD_SHAPES: { readonly [R in RecordName]: z.ZodType<Records[R]> } = Object.fromEntries(
  RECORD_NAMES.map((record) => [
    record,
    z.strictObject(Object.fromEntries(FIELD_SHAPES[record].map(([name, shape]) => [name, zodOf(shape)]))),
  ]),
) as unknown as { [R in RecordName]: z.ZodType<Records[R]> };

// ---------------------------------------------------------------------------------------------
// Semantic rules.

/** Checks one non-null value; `path` names it in the detail. */
type Check = (value: unknown, path: string, bounds: TimestampBounds) => Failure | undefined;

interface FieldRef {
  readonly record: RecordName;
  /** The record field's name, also for the items and values inside it. */
  readonly name: string;
  readonly shape: ValueShape;
  /** True for the field itself, false for the items of an array or the values of a map. */
  readonly topLevel: boolean;
}

function fail(reasonCode: DlqReasonCode, path: string, message: string): Failure {
  return { ok: false, reasonCode, detail: `${path}: ${message}` };
}

/** A value for a detail: short, and never a whole payload. */
function show(value: unknown): string {
  const s = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return s.length > 64 ? `${s.slice(0, 61)}...` : s;
}

/** A bound for a detail: ISO 8601 when a Date can hold it. */
function when(ms: number): string {
  return Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : `${ms} ms`;
}

/** Characters an id or map key must not hold: controls, formats (zero-width, bidi), lone surrogates, separators, U+FFFD. */
const BAD_ID_CHARS = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}\uFFFD]/u;
/** Map keys that would replace or shadow an object's prototype (INVALID_MAP_KEY). */
export const RESERVED_MAP_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);
/** Amounts that must be strictly positive, by record. */
const POSITIVE_AMOUNTS: { readonly [R in RecordName]?: readonly string[] } = {
  SaleEvent: ['amount_minor'],
  Deduction: ['amount_minor'],
};
/** Amounts that are differences, and so may be negative (still within +-MAX_AMOUNT_MINOR), by record. */
const SIGNED_AMOUNTS: { readonly [R in RecordName]?: readonly string[] } = {
  PayoutSettlement: ['mismatch_minor'],
};
/** Timestamps of planned events, which may lie far ahead of now (only the lower bound applies), by record. */
const SCHEDULED_TIMESTAMPS: { readonly [R in RecordName]?: readonly string[] } = {
  LoanState: ['period_ends_at'],
};

const isInteger = (f: FieldRef) => f.shape.kind === 'int' || f.shape.kind === 'long';
const isAmount = (f: FieldRef) => f.topLevel && isInteger(f) && f.name.endsWith('_minor');
const isId = (f: FieldRef) => f.topLevel && f.shape.kind === 'string' && f.name.endsWith('_id');
const isCurrency = (f: FieldRef) => f.topLevel && f.shape.kind === 'string' && f.name === 'currency';

interface FieldRule {
  /** The convention, in words. */
  readonly rule: string;
  readonly applies: (field: FieldRef) => boolean;
  readonly check: (field: FieldRef) => Check;
}

/**
 * The semantic rules, keyed by field conventions, in precedence order. A field gets every rule
 * that applies to it. The items of an array and the values of a map are checked too: the rules
 * on types (integers, strings) apply to them, the conventions on field names do not.
 */
const FIELD_RULES: readonly FieldRule[] = [
  {
    rule: 'every int and long is a safe integer (|x| <= 2^53 - 1)',
    applies: isInteger,
    check: () => (v, path) => {
      if (typeof v === 'number' && Number.isSafeInteger(v)) return undefined;
      if (typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v))) {
        return fail('UNSAFE_INTEGER', path, `${show(v)} is beyond 2^53 - 1`);
      }
      return fail('INVALID_RECORD', path, `${show(v)} is not an integer`);
    },
  },
  {
    rule: `every *_minor amount is 0..${MAX_AMOUNT_MINOR} (> 0 where POSITIVE_AMOUNTS says, signed where SIGNED_AMOUNTS says)`,
    applies: isAmount,
    check: (f) => {
      const positive = POSITIVE_AMOUNTS[f.record]?.includes(f.name) ?? false;
      const signed = SIGNED_AMOUNTS[f.record]?.includes(f.name) ?? false;
      return (v, path) => {
        const n = v as number;
        if (n < 0 && !signed) return fail('NEGATIVE_AMOUNT', path, `${n} is negative`);
        if (Math.abs(n) > MAX_AMOUNT_MINOR) {
          return fail('AMOUNT_OUT_OF_RANGE', path, `${n} is beyond ${MAX_AMOUNT_MINOR}`);
        }
        if (positive && n === 0) return fail('AMOUNT_OUT_OF_RANGE', path, 'must be > 0');
        return undefined;
      };
    },
  },
  {
    rule: 'every timestamp-millis is within [2000-01-01, now + max future skew] (SCHEDULED_TIMESTAMPS: no upper bound)',
    applies: (f) => f.topLevel && f.shape.timestamp,
    check: (f) => {
      const scheduled = SCHEDULED_TIMESTAMPS[f.record]?.includes(f.name) ?? false;
      return (v, path, b) => {
        const n = v as number;
        if (n < b.minMs) return fail('TIMESTAMP_OUT_OF_RANGE', path, `${n} is before ${when(b.minMs)}`);
        if (n > b.maxMs && !scheduled) {
          return fail('TIMESTAMP_OUT_OF_RANGE', path, `${n} is after ${when(b.maxMs)}`);
        }
        return undefined;
      };
    },
  },
  {
    rule: 'every other int and long field (a count, index, offset or version) is >= 0; *_bps and *_days by record rule',
    applies: (f) =>
      f.topLevel &&
      isInteger(f) &&
      !isAmount(f) &&
      !f.shape.timestamp &&
      !f.name.endsWith('_bps') &&
      !f.name.endsWith('_days'),
    check: () => (v, path) =>
      (v as number) < 0 ? fail('INVALID_FIELD', path, `${show(v)} is negative`) : undefined,
  },
  {
    rule: 'every currency is an ISO 4217 code (schemas/iso4217.ts)',
    applies: isCurrency,
    check: () => (v, path) =>
      isCurrencyCode(v as string)
        ? undefined
        : fail('UNKNOWN_CURRENCY', path, `${show(v)} is not an ISO 4217 code`),
  },
  {
    rule: `every *_id is 1..${MAX_ID_LENGTH} characters, without control or invisible characters`,
    applies: isId,
    check: () => (v, path) => {
      const s = v as string;
      if (s.length === 0) return fail('INVALID_ID', path, 'is empty');
      if (s.length > MAX_ID_LENGTH) {
        return fail('STRING_TOO_LONG', path, `${s.length} characters, over ${MAX_ID_LENGTH}`);
      }
      if (BAD_ID_CHARS.test(s)) {
        return fail('INVALID_ID', path, `${show(s)} holds a control or invisible character`);
      }
      return undefined;
    },
  },
  {
    rule: `every other string (also in arrays) is at most ${MAX_TEXT_LENGTH} characters`,
    applies: (f) => f.shape.kind === 'string' && !isId(f) && !isCurrency(f),
    check: () => (v, path) => {
      const s = v as string;
      return s.length > MAX_TEXT_LENGTH
        ? fail('STRING_TOO_LONG', path, `${s.length} characters, over ${MAX_TEXT_LENGTH}`)
        : undefined;
    },
  },
  {
    rule: `every map key is 1..${MAX_ID_LENGTH} characters, not __proto__, constructor or prototype, without control characters`,
    applies: (f) => f.shape.kind === 'map',
    check: () => (v, path) => {
      for (const key of Object.keys(v as object)) {
        if (key.length > MAX_ID_LENGTH) {
          return fail('STRING_TOO_LONG', path, `a key of ${key.length} characters`);
        }
        if (key.length === 0 || RESERVED_MAP_KEYS.has(key) || BAD_ID_CHARS.test(key)) {
          return fail('INVALID_MAP_KEY', path, `key ${show(key)} is not allowed`);
        }
      }
      return undefined;
    },
  },
];

const TERMS = [
  'principal_minor',
  'fee_minor',
  'holdback_rate_bps',
  'minimum_payment_minor',
  'period_days',
  'currency',
] as const;

function inRange(n: number, min: number, max: number): boolean {
  return n >= min && n <= max;
}

/** Rules that involve more than one field, by record; they run after the field rules. */
const RECORD_RULES: { readonly [R in RecordName]?: (value: Records[R]) => Failure | undefined } = {
  LoanEvent: (v) => {
    if (v.type !== 'FUNDED') return undefined;
    const missing = TERMS.filter((t) => v[t] === null);
    if (missing.length > 0) {
      return fail('MISSING_LOAN_TERMS', 'LoanEvent', `FUNDED without ${missing.join(', ')}`);
    }
    if (v.principal_minor! <= 0) {
      return fail('INVALID_LOAN_TERMS', 'LoanEvent.principal_minor', 'must be > 0');
    }
    if (!inRange(v.holdback_rate_bps!, 1, MAX_RATE_BPS)) {
      return fail(
        'INVALID_LOAN_TERMS',
        'LoanEvent.holdback_rate_bps',
        `${v.holdback_rate_bps} is outside 1..${MAX_RATE_BPS}`,
      );
    }
    if (!inRange(v.period_days!, 1, MAX_PERIOD_DAYS)) {
      return fail(
        'INVALID_LOAN_TERMS',
        'LoanEvent.period_days',
        `${v.period_days} is outside 1..${MAX_PERIOD_DAYS}`,
      );
    }
    return undefined;
  },
  Deduction: (v) =>
    inRange(v.holdback_rate_bps, 1, MAX_RATE_BPS)
      ? undefined
      : fail(
          'INVALID_FIELD',
          'Deduction.holdback_rate_bps',
          `${v.holdback_rate_bps} is outside 1..${MAX_RATE_BPS}`,
        ),
};

/** The checks for one value (a field, or an item or map value inside it), nulls and nesting included. */
function compileValue(field: FieldRef): Check {
  const own = FIELD_RULES.filter((r) => r.applies(field)).map((r) => r.check(field));
  const inner =
    field.shape.kind === 'array'
      ? compileValue({ ...field, shape: field.shape.items!, topLevel: false })
      : field.shape.kind === 'map'
        ? compileValue({ ...field, shape: field.shape.values!, topLevel: false })
        : undefined;
  const kind = field.shape.kind;
  const nullable = field.shape.nullable;
  if (own.length === 1 && !inner) {
    const only = own[0]!;
    return nullable ? (v, path, b) => (v === null ? undefined : only(v, path, b)) : only;
  }
  return (v, path, b) => {
    if (v === null && nullable) return undefined;
    for (const check of own) {
      const failure = check(v, path, b);
      if (failure) return failure;
    }
    if (inner && kind === 'array') {
      const items = v as unknown[];
      for (let i = 0; i < items.length; i++) {
        const failure = inner(items[i], `${path}[${i}]`, b);
        if (failure) return failure;
      }
    } else if (inner) {
      const map = v as Record<string, unknown>;
      for (const key of Object.keys(map)) {
        const failure = inner(map[key], `${path}[${show(key)}]`, b);
        if (failure) return failure;
      }
    }
    return undefined;
  };
}

/** Runs every semantic rule of one record on a value whose shape is already right. */
export type RecordChecker<R extends RecordName> = (
  value: Records[R],
  bounds: TimestampBounds,
) => Failure | undefined;

function compileRecord<R extends RecordName>(record: R): RecordChecker<R> {
  const fields = FIELD_SHAPES[record].map(([name, shape]) => {
    const check = compileValue({ record, name, shape, topLevel: true });
    return { name, path: `${record}.${name}`, check };
  });
  const recordRule = RECORD_RULES[record] as ((value: Records[R]) => Failure | undefined) | undefined;
  return (value, bounds) => {
    const fieldsOf = value as unknown as Record<string, unknown>;
    for (const f of fields) {
      const failure = f.check(fieldsOf[f.name], f.path, bounds);
      if (failure) return failure;
    }
    return recordRule ? recordRule(value) : undefined;
  };
}

const CHECKERS = Object.fromEntries(RECORD_NAMES.map((r) => [r, compileRecord(r)])) as {
  readonly [R in RecordName]: RecordChecker<R>;
};

/** The compiled semantic rules of a record: what the codec runs on every decoded value. */
export function recordChecker<R extends RecordName>(record: R): RecordChecker<R> {
  return CHECKERS[record];
}

/**
 * Validates a value from a non-Avro source: its shape (RECORD_SHAPES, INVALID_RECORD when
 * wrong), then the semantic rules. On success the value is zod's clean copy of the input.
 */
export function validateRecord<R extends RecordName>(
  record: R,
  input: unknown,
  opts: ValidationOptions,
): Validation<Records[R]> {
  const parsed = RECORD_SHAPES[record].safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = [record, ...issue.path.map(String)].join('.');
    return fail('INVALID_RECORD', path, issue.message);
  }
  // The rules read the input, not the copy: zod drops a `__proto__` map key, which must be seen.
  const failure = CHECKERS[record](input as Records[R], timestampBounds(opts));
  return failure ?? { ok: true, value: parsed.data };
}
