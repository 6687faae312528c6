/**
 * Row mapping: every contract record becomes a row of its table with exactly the columns the
 * migration declares (the RowBinary encoder also refuses any other shape), values unchanged.
 */
import { RAW_TABLES, SINK_TOPICS, tableOf, toRow } from '../../../connectors/clickhouse/rows';
import { loadMigrations } from '../../../connectors/clickhouse/migrate';
import { encoderOf } from '../../../connectors/clickhouse/rowbinary';
import { TOPIC_SPECS, TOPICS, type TopicName } from '../../../schemas/topics';
import { fromAvroJson } from './fixtures';

/**
 * Columns an insert must carry, per raw table (a table with the Kafka position `_offset`), read
 * from every migration in order: a CREATE TABLE's columns, then those a later ALTER TABLE ... ADD
 * COLUMN appends (MATERIALIZED ones excluded; aggregates and views are not raw tables).
 */
function insertableColumnTypes(): Map<string, Array<[string, string]>> {
  const out = new Map<string, Array<[string, string]>>();
  for (const m of loadMigrations()) {
    for (const s of m.statements) {
      const added = /^ALTER TABLE \{db\}\.(\w+) ADD COLUMN (\w+) (.+)$/.exec(s);
      if (added) {
        const cols = out.get(added[1]!);
        if (!cols) throw new Error(`migration ${m.version} adds a column to ${added[1]}, not a raw table`);
        if (!/ MATERIALIZED /.test(` ${added[3]!} `)) cols.push([added[2]!, added[3]!]);
        continue;
      }
      const t = /CREATE TABLE IF NOT EXISTS \{db\}\.(\w+)\s*\(([\s\S]*?)\)\s*ENGINE/.exec(s);
      if (!t) continue;
      const cols = t[2]!
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l.length > 0 && !/ MATERIALIZED /.test(l))
        .map((l) => /^(\w+) (.+?),?$/.exec(l)!)
        .map((c): [string, string] => [c[1]!, c[2]!]);
      if (cols.some(([name]) => name === '_offset')) out.set(t[1]!, cols);
    }
  }
  return out;
}

function insertableColumns(): Map<string, string[]> {
  return new Map([...insertableColumnTypes()].map(([t, cols]) => [t, cols.map(([name]) => name)]));
}

test('one table per topic, for every topic of the contract', () => {
  expect([...SINK_TOPICS].sort()).toEqual(TOPIC_SPECS.map((t) => t.name).sort());
  expect(new Set(RAW_TABLES).size).toBe(SINK_TOPICS.length);
  expect([...insertableColumns().keys()].sort()).toEqual([...RAW_TABLES].sort());
});

test('every insertable column type of the raw tables is one the RowBinary encoder writes', () => {
  const unsupported: string[] = [];
  const types = new Set<string>();
  for (const [table, cols] of insertableColumnTypes())
    for (const [name, type] of cols) {
      types.add(type);
      try {
        encoderOf(type);
      } catch (e) {
        unsupported.push(`${table}.${name}: ${(e as Error).message}`);
      }
    }
  expect(unsupported).toEqual([]);
  expect(types).toContain('Array(String)');
});

test.each(SINK_TOPICS.map((t) => [t]))(
  '%s: the row has exactly the insertable columns of its table',
  (topic: TopicName) => {
    const value = fromAvroJson(topic);
    const row = toRow(topic, value as never, {
      topic,
      partition: 3,
      offset: 41,
      timestampMs: 1_793_534_402_000,
    });
    expect(Object.keys(row).sort()).toEqual([...insertableColumns().get(tableOf(topic))!].sort());
    expect(row['_topic']).toBe(topic);
    expect(row['_partition']).toBe(3);
    expect(row['_offset']).toBe(41);
    expect(row['_timestamp_ms']).toBe(1_793_534_402_000);
  },
);

test('values are carried exactly: money as integers, times as ms, nulls as null', () => {
  const d = fromAvroJson(TOPICS.deductions) as unknown as Record<string, number | string>;
  const row = toRow(TOPICS.deductions, d as never, {
    topic: TOPICS.deductions,
    partition: 0,
    offset: 0,
    timestampMs: 0,
  });
  expect(row['amount_minor']).toBe(d['amount_minor']);
  expect(row['balance_after_minor']).toBe(d['balance_after_minor']);
  expect(row['occurred_at_ms']).toBe(d['occurred_at']);
  expect(row['decided_at_ms']).toBe(d['decided_at']);
  const big = toRow(
    TOPICS.payouts,
    {
      event_id: 'e',
      merchant_id: 'm',
      payout_id: 'p',
      type: 'SCHEDULED',
      gross_amount_minor: Number.MAX_SAFE_INTEGER,
      withheld_minor: null,
      currency: 'EUR',
      occurred_at: 1,
    },
    { topic: TOPICS.payouts, partition: 0, offset: 0, timestampMs: 0 },
  );
  expect(JSON.stringify(big)).toContain('"gross_amount_minor":9007199254740991');
  expect(big['withheld_minor']).toBeNull();
});

test('payout decisions keep amounts, the reason and the deduction ids in order; times as ms', () => {
  const at = { topic: TOPICS.payoutDecisions, partition: 1, offset: 2, timestampMs: 3 };
  const withheld = toRow(
    TOPICS.payoutDecisions,
    {
      decision_id: 'pd-1',
      payout_id: 'p-1',
      merchant_id: 'm-1',
      currency: 'EUR',
      gross_amount_minor: Number.MAX_SAFE_INTEGER,
      withheld_minor: 1_250,
      reason_code: 'WITHHELD',
      deduction_ids: ['d-loan-b', 'd-loan-a'],
      source_event_id: 'e-1',
      occurred_at: 1_793_534_402_123,
      decided_at: 1_793_534_402_999,
    },
    at,
  );
  expect(withheld).toEqual({
    _topic: TOPICS.payoutDecisions,
    _partition: 1,
    _offset: 2,
    _timestamp_ms: 3,
    decision_id: 'pd-1',
    payout_id: 'p-1',
    merchant_id: 'm-1',
    currency: 'EUR',
    gross_amount_minor: Number.MAX_SAFE_INTEGER,
    withheld_minor: 1_250,
    reason_code: 'WITHHELD',
    // Oldest loan first, as the processor emitted them: never sorted.
    deduction_ids: ['d-loan-b', 'd-loan-a'],
    source_event_id: 'e-1',
    occurred_at_ms: 1_793_534_402_123,
    decided_at_ms: 1_793_534_402_999,
  });
  expect(tableOf(TOPICS.payoutDecisions)).toBe('payout_decisions');
  const nothing = toRow(
    TOPICS.payoutDecisions,
    {
      decision_id: 'pd-2',
      payout_id: 'p-2',
      merchant_id: 'm-1',
      currency: 'GBP',
      gross_amount_minor: 0,
      withheld_minor: 0,
      reason_code: 'SHARE_ROUNDS_TO_ZERO',
      deduction_ids: [],
      source_event_id: 'e-2',
      occurred_at: 1,
      decided_at: 2,
    },
    at,
  );
  expect([nothing['withheld_minor'], nothing['reason_code'], nothing['deduction_ids']]).toEqual([
    0,
    'SHARE_ROUNDS_TO_ZERO',
    [],
  ]);
});

test('eligibility features become two arrays sorted by name; eligible becomes 0/1', () => {
  const row = toRow(
    TOPICS.eligibility,
    {
      decision_id: 'd',
      merchant_id: 'm',
      eligible: false,
      grade: 'C',
      limit_minor: 0,
      currency: 'EUR',
      reasons: ['LOW_VOLUME'],
      features: { zeta: 3, alpha: 1, mid: 2 },
      policy_version: 'v',
      computed_at: 5,
      trigger_event_id: 't',
    },
    { topic: TOPICS.eligibility, partition: 0, offset: 0, timestampMs: 0 },
  );
  expect(row['feature_names']).toEqual(['alpha', 'mid', 'zeta']);
  expect(row['feature_values']).toEqual([1, 2, 3]);
  expect(row['eligible']).toBe(0);
});

test('dead letters keep the hash and whether a payload was kept, never the payload', () => {
  const letter = {
    source_topic: TOPICS.payouts,
    partition: 2,
    offset: 9,
    reason_code: 'BAD_MAGIC_BYTE',
    detail: 'first byte 1, not 0',
    payload_sha256: 'ab'.repeat(32),
    payload: Buffer.from('secret'),
    failed_at: 7,
    processor: 'eligibility',
  };
  const at = { topic: TOPICS.dlq, partition: 0, offset: 0, timestampMs: 0 } as const;
  const row = toRow(TOPICS.dlq, letter, at);
  expect(row['payload_kept']).toBe(1);
  expect(JSON.stringify(row)).not.toContain('secret');
  expect(row['source_partition']).toBe(2);
  expect(row['source_offset']).toBe(9);
  expect(row['processor']).toBe('eligibility');
  // A letter written before contract v1.2 names no processor: NULL in ClickHouse.
  expect(toRow(TOPICS.dlq, { ...letter, processor: null }, at)['processor']).toBeNull();
});

test('dead_letters.processor is a Nullable(String) added by 0004, after the columns 0001 created', () => {
  const cols = insertableColumnTypes().get('dead_letters')!;
  expect(cols.at(-1)).toEqual(['processor', 'Nullable(String)']);
});
