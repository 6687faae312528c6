/**
 * The sink's RowBinary inserts, read back from the real ClickHouse: every column type of the raw
 * tables, with the values most likely to be mangled (multi-byte and control characters, quotes
 * and backslashes, strings longer than 127 bytes, negative and 2^53-1 money, nulls, empty and
 * full arrays) comes back exactly as it went in.
 */
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { SinkMetrics } from '../../connectors/clickhouse/metrics';
import { migrate } from '../../connectors/clickhouse/migrate';
import { toRow } from '../../connectors/clickhouse/rows';
import { ClickHouseWriter } from '../../connectors/clickhouse/writer';
import type { Deduction, EligibilityDecision, LoanState } from '../../schemas/generated/types';
import { TOPICS } from '../../schemas/topics';
import { endpoints } from '../harness/kafka';

jest.setTimeout(60_000);

const database = `hbt_rowbinary_${process.pid}_${Date.now().toString(36)}`;
let client: ClickHouseClient;
let writer: ClickHouseWriter;

const NASTY = [
  'é€😀',
  'tab\there',
  'new\nline',
  'quote\'d "double"',
  'back\\slash\\',
  '\u0000nul',
  'x'.repeat(300),
];

beforeAll(async () => {
  client = createClient({
    url: endpoints.clickhouseUrl,
    clickhouse_settings: { output_format_json_quote_64bit_integers: 0 },
  });
  await migrate(client, database);
  writer = new ClickHouseWriter({
    connection: { url: endpoints.clickhouseUrl, database, username: 'default', password: '' },
    database,
    insertTimeoutMs: 10_000,
    metrics: new SinkMetrics(),
    log: { info: () => undefined, warn: () => undefined, error: () => undefined },
  });
  await writer.init();
  await writer.loadLayouts(['deductions', 'loan_states', 'eligibility_decisions']);
}, 60_000);

afterAll(async () => {
  await writer?.close();
  await client?.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client?.close();
});

async function select<T>(query: string): Promise<T[]> {
  return (await client.query({ query, format: 'JSONEachRow' })).json<T>();
}

test('strings and 64-bit money come back byte for byte', async () => {
  const rows = NASTY.map((s, i) => {
    const d: Deduction = {
      deduction_id: `d-${i}-${s}`,
      type: i % 2 ? 'REVERSAL' : 'WITHHOLD',
      payout_id: s,
      loan_id: `l-${s}`,
      merchant_id: s,
      amount_minor: i % 2 ? -Number.MAX_SAFE_INTEGER : Number.MAX_SAFE_INTEGER,
      gross_amount_minor: -1,
      holdback_rate_bps: 10_000,
      balance_after_minor: 2 ** 40 + i,
      currency: 'EUR',
      source_event_id: s,
      occurred_at: 1_793_534_402_123,
      decided_at: 0,
    };
    return toRow(TOPICS.deductions, d, {
      topic: TOPICS.deductions,
      partition: 3,
      offset: 2 ** 33 + i,
      timestampMs: 5,
    });
  });
  await writer.insertOnce('deductions', rows);
  const back = await select<Record<string, unknown>>(
    `SELECT _offset, deduction_id, merchant_id, payout_id, amount_minor, gross_amount_minor, balance_after_minor, occurred_at_ms FROM ${database}.deductions ORDER BY _offset`,
  );
  expect(back).toEqual(
    rows.map((r) => ({
      _offset: r['_offset'],
      deduction_id: r['deduction_id'],
      merchant_id: r['merchant_id'],
      payout_id: r['payout_id'],
      amount_minor: r['amount_minor'],
      gross_amount_minor: -1,
      balance_after_minor: r['balance_after_minor'],
      occurred_at_ms: 1_793_534_402_123,
    })),
  );
});

test('nullable columns hold nulls and values; arrays hold nothing or many', async () => {
  const state = (i: number, full: boolean): LoanState =>
    ({
      loan_id: `loan-${i}`,
      merchant_id: 'm',
      status: 'ACTIVE',
      principal_minor: 100,
      fee_minor: 10,
      collected_minor: 0,
      balance_minor: 110,
      period_index: 0,
      period_required_minor: 0,
      period_collected_minor: 0,
      missed_periods: 0,
      currency: 'EUR',
      updated_at: 1,
      version: i,
      holdback_rate_bps: full ? 1500 : null,
      minimum_payment_minor: full ? -5 : null,
      period_days: full ? 30 : null,
      funded_at: full ? 2 ** 41 : null,
      period_ends_at: null,
      pace: full ? 'AT_RISK' : null,
      projected_period_collected_minor: null,
      closure: full ? "é\t'" : null,
    }) as LoanState;
  const at = (offset: number) => ({ topic: TOPICS.loanStates, partition: 0, offset, timestampMs: 0 });
  await writer.insertOnce('loan_states', [
    toRow(TOPICS.loanStates, state(1, true), at(1)),
    toRow(TOPICS.loanStates, state(2, false), at(2)),
  ]);
  const back = await select<Record<string, unknown>>(
    `SELECT holdback_rate_bps, minimum_payment_minor, funded_at_ms, pace, closure FROM ${database}.loan_states ORDER BY _offset`,
  );
  expect(back).toEqual([
    {
      holdback_rate_bps: 1500,
      minimum_payment_minor: -5,
      funded_at_ms: 2 ** 41,
      pace: 'AT_RISK',
      closure: "é\t'",
    },
    { holdback_rate_bps: null, minimum_payment_minor: null, funded_at_ms: null, pace: null, closure: null },
  ]);

  const decision = (i: number, reasons: string[], features: Record<string, number>): EligibilityDecision =>
    ({
      decision_id: `dec-${i}`,
      merchant_id: 'm',
      eligible: i === 1,
      grade: 'B',
      limit_minor: 123,
      currency: 'EUR',
      reasons,
      features,
      policy_version: 'p1',
      computed_at: 7,
      trigger_event_id: 'e',
    }) as EligibilityDecision;
  const dat = (offset: number) => ({ topic: TOPICS.eligibility, partition: 1, offset, timestampMs: 0 });
  await writer.insertOnce('eligibility_decisions', [
    toRow(TOPICS.eligibility, decision(1, ['TENURE_OK', "it's"], { b: -(2 ** 40), a: 1 }), dat(1)),
    toRow(TOPICS.eligibility, decision(2, [], {}), dat(2)),
  ]);
  const decisions = await select<Record<string, unknown>>(
    `SELECT eligible, reasons, feature_names, feature_values FROM ${database}.eligibility_decisions ORDER BY _offset`,
  );
  expect(decisions).toEqual([
    {
      eligible: 1,
      reasons: ['TENURE_OK', "it's"],
      feature_names: ['a', 'b'],
      feature_values: [1, -(2 ** 40)],
    },
    { eligible: 0, reasons: [], feature_names: [], feature_values: [] },
  ]);
});
