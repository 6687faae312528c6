/**
 * docs/integration.md, the guide a platform engineer integrates from, names only what exists, and
 * names everything a producer needs (issue 17). Its conventions, which its last section restates:
 *
 * - topics: any `<name>.<name>.v<n>` in the text is a topic; it must be in TOPIC_SPECS, every
 *   TOPIC_SPECS topic must be named, and the table under "The topics" (first column `topic`) must
 *   give each topic's record, key field and cleanup.policy as TOPIC_SPECS does;
 * - fields: a table whose first column is headed `<Record> field` documents that record: one row
 *   per field of its .avsc file, in the file's order, first cell the backticked name, second the
 *   type as renderType() writes it. Every record of the contract has exactly one such table.
 *   Elsewhere, a backticked lower snake_case name is a field of some record or in NOT_FIELDS;
 * - reason codes: an upper-case name with an underscore anywhere, or any backticked upper-case
 *   name, is a reason code (then in schemas/reason-codes.ts and in a table of
 *   docs/reason-codes.md), an enum symbol of a record, a name that schemas/topics.ts or
 *   schemas/reason-codes.ts exports, or a HOLDBACK_* setting documented in docs/deploy.md or
 *   docs/stack.md. Every dead-letter, repayment rejection and payout decision code is named; a
 *   table of codes lists all of its set in the set's order. Eligibility reason codes are referred
 *   to by a link to docs/reason-codes.md#eligibility-reason-codes (they explain a credit decision,
 *   not something a producer did or can fix), and any named must exist;
 * - the partition check values are what murmur2 (connectors/partitioner.ts) and librdkafka's
 *   CRC32 give; relative links resolve, anchors included; README.md and docs/contract.md link to
 *   the guide.
 *
 * Each check fails with the list of what is missing or extra.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import { partitionOfKey } from '../../connectors/partitioner';
import { RECORD_SCHEMAS, type AvroSchema } from '../../schemas/contract';
import * as reasonCodesModule from '../../schemas/reason-codes';
import {
  DLQ_REASON_CODES,
  ELIGIBILITY_REASON_CODES,
  PAYOUT_DECISION_CODES,
  PROCESSOR_REASON_CODES,
} from '../../schemas/reason-codes';
import * as topicsModule from '../../schemas/topics';
import { TOPIC_SPECS } from '../../schemas/topics';

const ROOT = join(__dirname, '..', '..');
const GUIDE_PATH = join(ROOT, 'docs', 'integration.md');
const GUIDE = readFileSync(GUIDE_PATH, 'utf8');
const REASON_DOC = readFileSync(join(ROOT, 'docs', 'reason-codes.md'), 'utf8');

/** Backticked snake_case names in the guide that are client settings, not record fields. */
const NOT_FIELDS: ReadonlySet<string> = new Set([
  'murmur2_random',
  'consistent_random',
  'read_committed',
  'read_uncommitted',
]);

/** The guide without its fenced code blocks: where backticks delimit names. */
const PROSE = GUIDE.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '');

interface Table {
  readonly line: number;
  readonly header: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

function cells(line: string): string[] {
  return line
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split('|')
    .map((c) => c.trim());
}

/** Every Markdown table of `text`: its header cells and its rows' cells. */
function tables(text: string): Table[] {
  const lines = text.split('\n');
  const found: Table[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (!lines[i]!.startsWith('|') || !/^\|[\s:|-]+\|$/.test(lines[i + 1]?.trim() ?? '')) continue;
    const header = cells(lines[i]!);
    const rows: string[][] = [];
    let j = i + 2;
    while (j < lines.length && lines[j]!.startsWith('|')) rows.push(cells(lines[j++]!));
    found.push({ line: i + 1, header, rows });
    i = j - 1;
  }
  return found;
}

const unquote = (cell: string): string => cell.replace(/^`(.*)`$/, '$1');

/** What differs between two lists of names, as sentences. */
function difference(what: string, actual: readonly string[], expected: readonly string[]): string[] {
  const problems: string[] = [];
  const missing = expected.filter((x) => !actual.includes(x));
  const extra = actual.filter((x) => !expected.includes(x));
  if (missing.length > 0) problems.push(`${what}: missing ${missing.join(', ')}`);
  if (extra.length > 0) problems.push(`${what}: not there, yet listed: ${extra.join(', ')}`);
  if (problems.length === 0 && actual.join() !== expected.join()) {
    problems.push(`${what}: in another order: ${actual.join(', ')}; expected ${expected.join(', ')}`);
  }
  return problems;
}

/** An Avro field's type as the guide's field tables write it. */
function renderType(t: AvroSchema): string {
  if (typeof t === 'string') return t;
  if (Array.isArray(t)) {
    const rest = t.filter((x) => x !== 'null');
    if (rest.length !== 1 || rest.length === t.length) throw new Error(`union ${JSON.stringify(t)}`);
    return `nullable ${renderType(rest[0]!)}`;
  }
  if (typeof t.logicalType === 'string') return t.logicalType;
  if (t.type === 'array') return `array<${renderType(t.items as AvroSchema)}>`;
  if (t.type === 'map') return `map<${renderType(t.values as AvroSchema)}>`;
  return t.type;
}

function enumSymbols(t: AvroSchema): string[] {
  if (typeof t === 'string') return [];
  if (Array.isArray(t)) return t.flatMap(enumSymbols);
  if (t.type === 'enum') return [...(t.symbols as string[])];
  if (t.type === 'array') return enumSymbols(t.items as AvroSchema);
  if (t.type === 'map') return enumSymbols(t.values as AvroSchema);
  return [];
}

const RECORDS = Object.values(RECORD_SCHEMAS);
const ALL_FIELDS = new Set(RECORDS.flatMap((r) => r.fields.map((f) => f.name)));
const ENUM_SYMBOLS = new Set(RECORDS.flatMap((r) => r.fields.flatMap((f) => enumSymbols(f.type))));

const CODE_SETS = {
  DLQ_REASON_CODES,
  PROCESSOR_REASON_CODES,
  PAYOUT_DECISION_CODES,
  ELIGIBILITY_REASON_CODES,
} as const;
const ALL_CODES = new Set(Object.values(CODE_SETS).flatMap((s) => Object.keys(s)));
/** Codes with a row in one of docs/reason-codes.md's tables. */
const DOCUMENTED_CODES = new Set(
  [...REASON_DOC.matchAll(/^\|\s*`([A-Z][A-Z0-9_]*)`\s*\|/gm)].map((m) => m[1]!),
);
/** Names schemas/ exports (TOPIC_SPECS, DLQ_REASON_CODES, ...): the guide may point at them. */
const EXPORTED = new Set([...Object.keys(topicsModule), ...Object.keys(reasonCodesModule)]);
/** HOLDBACK_* settings the deployment docs document. */
const SETTINGS = new Set(
  ['deploy.md', 'stack.md'].flatMap((f) =>
    [...readFileSync(join(ROOT, 'docs', f), 'utf8').matchAll(/\bHOLDBACK_[A-Z0-9_]+\b/g)].map((m) => m[0]),
  ),
);

/** Every upper-case name the guide uses: with an underscore anywhere, or backticked. */
function upperCaseNames(): Set<string> {
  const names = new Set([...GUIDE.matchAll(/\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b/g)].map((m) => m[0]));
  for (const m of PROSE.matchAll(/`([A-Z][A-Z0-9_]+)`/g)) names.add(m[1]!);
  return names;
}

describe('docs/integration.md', () => {
  test('names every topic of TOPIC_SPECS and no other', () => {
    const named = [...new Set([...GUIDE.matchAll(/\b[a-z]+\.[a-z-]+\.v\d+\b/g)].map((m) => m[0]))];
    expect(difference('topics', named.sort(), TOPIC_SPECS.map((s) => s.name).sort())).toEqual([]);
  });

  test('its topic table gives each topic the record, key and cleanup.policy of TOPIC_SPECS', () => {
    const table = tables(GUIDE).find((t) => t.header[0] === 'topic' && t.header.includes('record'));
    if (!table) throw new Error('no table whose first column is "topic" and that has a "record" column');
    const col = (name: string): number => {
      const i = table.header.indexOf(name);
      if (i < 0) throw new Error(`the topic table (line ${table.line}) has no "${name}" column`);
      return i;
    };
    const [record, key, cleanup] = [col('record'), col('key'), col('cleanup.policy')];
    const problems = difference(
      'topic table rows',
      table.rows.map((r) => unquote(r[0]!)),
      TOPIC_SPECS.map((s) => s.name),
    );
    for (const row of table.rows) {
      const spec = TOPIC_SPECS.find((s) => s.name === unquote(row[0]!));
      if (!spec) continue;
      if (row[record] !== spec.record)
        problems.push(`${spec.name}: record ${row[record]}, not ${spec.record}`);
      const keyField = /^`(\w+)`/.exec(row[key]!)?.[1] ?? '';
      if (keyField !== spec.keyField) {
        problems.push(`${spec.name}: key ${keyField || '(no field)'}, not ${spec.keyField || '(no field)'}`);
      }
      const policy = spec.compacted ? 'compact' : 'delete';
      if (unquote(row[cleanup]!) !== policy) {
        problems.push(`${spec.name}: cleanup.policy ${row[cleanup]}, not ${policy}`);
      }
    }
    expect(problems).toEqual([]);
  });

  test('has one field table per record, listing exactly its .avsc fields, in order, with their types', () => {
    const problems: string[] = [];
    const documented = new Map<string, number>();
    for (const table of tables(GUIDE)) {
      const record = /^(\w+) field$/.exec(table.header[0]!)?.[1];
      if (record === undefined) continue;
      documented.set(record, (documented.get(record) ?? 0) + 1);
      const schema = (RECORD_SCHEMAS as Readonly<Record<string, (typeof RECORDS)[number]>>)[record];
      if (!schema) {
        problems.push(`line ${table.line}: a field table of ${record}, which is no record of schemas/`);
        continue;
      }
      const names = table.rows.map((r) => unquote(r[0]!));
      problems.push(
        ...difference(
          `${record} fields (line ${table.line})`,
          names,
          schema.fields.map((f) => f.name),
        ),
      );
      for (const row of table.rows) {
        const field = schema.fields.find((f) => f.name === unquote(row[0]!));
        if (field && row[1] !== renderType(field.type)) {
          problems.push(`${record}.${field.name}: type "${row[1]}", not "${renderType(field.type)}"`);
        }
      }
    }
    for (const [record, n] of documented) if (n > 1) problems.push(`${record}: ${n} field tables, not one`);
    problems.push(
      ...difference(
        'records with a field table',
        [...documented.keys()].sort(),
        Object.keys(RECORD_SCHEMAS).sort(),
      ),
    );
    expect(problems).toEqual([]);
  });

  test('every other backticked snake_case name is a field of a record', () => {
    const names = [...PROSE.matchAll(/`([a-z][a-z0-9]*(?:_[a-z0-9]+)+)`/g)].map((m) => m[1]!);
    const unknown = [...new Set(names)].filter((n) => !ALL_FIELDS.has(n) && !NOT_FIELDS.has(n));
    expect(
      unknown.map((n) => `\`${n}\` is no field of any record (a client setting? add it to NOT_FIELDS)`),
    ).toEqual([]);
  });

  test('every upper-case name is a documented reason code, an enum symbol, a schemas/ export or a setting', () => {
    const problems: string[] = [];
    for (const name of upperCaseNames()) {
      if (ALL_CODES.has(name)) {
        if (!DOCUMENTED_CODES.has(name))
          problems.push(`${name}: a reason code with no row in docs/reason-codes.md`);
      } else if (!ENUM_SYMBOLS.has(name) && !EXPORTED.has(name) && !SETTINGS.has(name)) {
        problems.push(
          `${name}: no reason code (schemas/reason-codes.ts), enum symbol, schemas/ export or setting`,
        );
      }
    }
    expect(problems).toEqual([]);
  });

  test('names every dead-letter, repayment rejection and payout decision code', () => {
    const named = upperCaseNames();
    const problems = (
      ['DLQ_REASON_CODES', 'PROCESSOR_REASON_CODES', 'PAYOUT_DECISION_CODES'] as const
    ).flatMap((set) =>
      Object.keys(CODE_SETS[set])
        .filter((code) => !named.has(code))
        .map((code) => `${code} (${set}) is not named in the guide`),
    );
    expect(problems).toEqual([]);
  });

  test('refers to the eligibility reason codes by a link that resolves', () => {
    expect(GUIDE).toContain('reason-codes.md#eligibility-reason-codes');
    expect(REASON_DOC).toMatch(/^## Eligibility reason codes$/m);
  });

  test('lists, in each table of codes, all the codes of one set in its order', () => {
    const problems: string[] = [];
    const listed = new Set<string>();
    for (const table of tables(GUIDE)) {
      if (table.header[0] !== 'code' && table.header[0] !== 'reason_code') continue;
      const codes = table.rows.map((r) => unquote(r[0]!));
      const set = Object.entries(CODE_SETS).find(([, s]) => codes[0]! in s);
      if (!set) {
        problems.push(`line ${table.line}: a table of codes whose first, ${codes[0]}, is in no set`);
        continue;
      }
      listed.add(set[0]);
      problems.push(...difference(`${set[0]} (the table at line ${table.line})`, codes, Object.keys(set[1])));
    }
    for (const set of ['DLQ_REASON_CODES', 'PROCESSOR_REASON_CODES', 'PAYOUT_DECISION_CODES']) {
      if (!listed.has(set)) problems.push(`${set}: no table of codes (first column "code" or "reason_code")`);
    }
    expect(problems).toEqual([]);
  });

  test("gives partition check values that murmur2 and librdkafka's CRC32 give", () => {
    const table = tables(GUIDE).find((t) => t.header[0] === 'key' && t.header[1] === 'partitions');
    if (!table) throw new Error('no check-value table (first columns "key" and "partitions")');
    expect(table.rows.length).toBeGreaterThan(0);
    const wrong: string[] = [];
    for (const [keyCell, partitionsCell, murmurCell, crcCell] of table.rows) {
      const key = Buffer.from(unquote(keyCell!), 'utf8');
      const n = Number(partitionsCell);
      const murmur = partitionOfKey(key, n);
      const crc = crc32(key) % n; // librdkafka: rd_crc32(key, keylen) % partition_cnt, unsigned
      if (Number(murmurCell) !== murmur)
        wrong.push(`${keyCell} over ${n}: murmur2 gives ${murmur}, not ${murmurCell}`);
      if (Number(crcCell) !== crc) wrong.push(`${keyCell} over ${n}: CRC32 gives ${crc}, not ${crcCell}`);
    }
    expect(wrong).toEqual([]);
  });

  test('links only to files and headings that exist', () => {
    const broken: string[] = [];
    for (const m of GUIDE.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1]!;
      if (/^[a-z]+:/.test(target)) continue;
      const [path, anchor] = target.split('#') as [string, string | undefined];
      const file = path === '' ? GUIDE_PATH : resolve(dirname(GUIDE_PATH), path);
      if (!existsSync(file)) {
        broken.push(`${target}: no such file`);
        continue;
      }
      if (anchor !== undefined && file.endsWith('.md')) {
        const slugs = [...readFileSync(file, 'utf8').matchAll(/^#+ (.+)$/gm)].map((h) =>
          h[1]!
            .toLowerCase()
            .replace(/[^a-z0-9 _-]/g, '')
            .replace(/ /g, '-'),
        );
        if (!slugs.includes(anchor)) broken.push(`${target}: no such heading`);
      }
    }
    expect(broken).toEqual([]);
  });

  test('is linked from README.md and docs/contract.md', () => {
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8')).toContain('](docs/integration.md)');
    expect(readFileSync(join(ROOT, 'docs', 'contract.md'), 'utf8')).toContain('](integration.md)');
  });
});
