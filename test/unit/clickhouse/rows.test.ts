/**
 * Row mapping: every contract record becomes a row of its table with exactly the columns the
 * migration declares (the RowBinary encoder also refuses any other shape), values unchanged.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RAW_TABLES, SINK_TOPICS, tableOf, toRow } from '../../../connectors/clickhouse/rows';
import { MIGRATIONS_DIR, splitStatements } from '../../../connectors/clickhouse/migrate';
import { TOPIC_SPECS, TOPICS, type TopicName } from '../../../schemas/topics';
import { fromAvroJson } from './fixtures';

/** Columns a JSONEachRow insert must carry, per table, read from the migration (MATERIALIZED ones excluded). */
function insertableColumns(): Map<string, string[]> {
  const sql = readFileSync(join(MIGRATIONS_DIR, '0001_raw_tables.sql'), 'utf8');
  const out = new Map<string, string[]>();
  for (const s of splitStatements(sql)) {
    const m = /CREATE TABLE IF NOT EXISTS \{db\}\.(\w+)\s*\(([\s\S]*?)\)\s*ENGINE/.exec(s);
    if (!m) continue;
    const cols = m[2]!
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l.length > 0 && !/ MATERIALIZED /.test(l))
      .map((l) => l.split(/\s+/)[0]!);
    out.set(m[1]!, cols);
  }
  return out;
}

test('one table per topic, for every topic of the contract', () => {
  expect([...SINK_TOPICS].sort()).toEqual(TOPIC_SPECS.map((t) => t.name).sort());
  expect(new Set(RAW_TABLES).size).toBe(SINK_TOPICS.length);
  expect([...insertableColumns().keys()].sort()).toEqual([...RAW_TABLES].sort());
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
  const row = toRow(
    TOPICS.dlq,
    {
      source_topic: TOPICS.payouts,
      partition: 2,
      offset: 9,
      reason_code: 'BAD_MAGIC_BYTE',
      detail: 'first byte 1, not 0',
      payload_sha256: 'ab'.repeat(32),
      payload: Buffer.from('secret'),
      failed_at: 7,
    },
    { topic: TOPICS.dlq, partition: 0, offset: 0, timestampMs: 0 },
  );
  expect(row['payload_kept']).toBe(1);
  expect(JSON.stringify(row)).not.toContain('secret');
  expect(row['source_partition']).toBe(2);
  expect(row['source_offset']).toBe(9);
});
