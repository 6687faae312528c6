/**
 * Checks a ClickHouse database against a workload's expectations, and every aggregate against
 * a recount from the raw tables. Shared by the integration and fault tests.
 */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Expected } from './workload';

export async function rowsOf<T>(client: ClickHouseClient, query: string): Promise<T[]> {
  return (await client.query({ query, format: 'JSONEachRow' })).json<T>();
}

const RAW_INPUTS = ['orders', 'sales', 'payouts', 'loan_events'];
const RAW_OUTPUTS = [
  'deductions',
  'loan_states',
  'settlements',
  'payout_decisions',
  'eligibility_decisions',
  'dead_letters',
];

/** Distinct rows per table: events by event_id (FINAL) for inputs, every row for outputs. */
export async function tableCounts(client: ClickHouseClient, db: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of RAW_INPUTS) {
    const [r] = await rowsOf<{ n: string }>(client, `SELECT count() AS n FROM ${db}.${t} FINAL`);
    out[t] = Number(r!.n);
  }
  for (const t of RAW_OUTPUTS) {
    const [r] = await rowsOf<{ n: string }>(client, `SELECT count() AS n FROM ${db}.${t}`);
    out[t] = Number(r!.n);
  }
  return out;
}

/** Kafka positions stored twice anywhere (the sink's exactly-once invariant), per output table. */
export async function duplicatePositions(
  client: ClickHouseClient,
  db: string,
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of RAW_OUTPUTS) {
    const [r] = await rowsOf<{ n: string; u: string }>(
      client,
      `SELECT count() AS n, uniqExact(_partition, _offset) AS u FROM ${db}.${t}`,
    );
    out[t] = Number(r!.n) - Number(r!.u);
  }
  return out;
}

type Row = Record<string, string | number>;
const key = (r: Row, fields: string[]): string => fields.map((f) => String(r[f])).join('|');

function toMap(rows: Row[], keys: string[], values: string[]): Map<string, number[]> {
  const m = new Map<string, number[]>();
  for (const r of rows)
    m.set(
      key(r, keys),
      values.map((v) => Number(r[v])),
    );
  return m;
}

function sorted(m: Map<string, number[]>): Array<[string, number[]]> {
  return [...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export interface AggregateCheck {
  name: string;
  fromView: Array<[string, number[]]>;
  recount: Array<[string, number[]]>;
  expected?: Array<[string, number[]]>;
}

/** Each aggregate three ways: from its materialized table, recounted from raw rows, and (optionally) expected. */
export async function aggregateChecks(
  client: ClickHouseClient,
  db: string,
  expected?: Expected,
): Promise<AggregateCheck[]> {
  const checks: AggregateCheck[] = [];
  {
    const k = ['day', 'currency'];
    const v = ['withholds', 'reversals', 'withheld', 'reversed'];
    const view = await rowsOf<Row>(
      client,
      `SELECT toString(day) AS day, currency, sum(withholds) AS withholds, sum(reversals) AS reversals,
         sum(withheld_total_minor) AS withheld, sum(reversed_total_minor) AS reversed
       FROM ${db}.daily_collections GROUP BY day, currency`,
    );
    const raw = await rowsOf<Row>(
      client,
      `SELECT toString(toDate(occurred_at)) AS day, currency, countIf(type = 'WITHHOLD') AS withholds,
         countIf(type = 'REVERSAL') AS reversals, sumIf(amount_minor, type = 'WITHHOLD') AS withheld,
         sumIf(amount_minor, type = 'REVERSAL') AS reversed
       FROM ${db}.deductions GROUP BY day, currency`,
    );
    checks.push({
      name: 'daily_collections',
      fromView: sorted(toMap(view, k, v)),
      recount: sorted(toMap(raw, k, v)),
      expected: expected && sorted(new Map([...expected.dailyCollections].map(([a, b]) => [a, [...b]]))),
    });
  }
  {
    const k = ['day', 'grade', 'eligible', 'currency'];
    const v = ['decisions', 'limit_total'];
    const view = await rowsOf<Row>(
      client,
      `SELECT toString(day) AS day, grade, eligible, currency, sum(decisions) AS decisions, sum(limit_total_minor) AS limit_total
       FROM ${db}.eligibility_daily GROUP BY day, grade, eligible, currency`,
    );
    const raw = await rowsOf<Row>(
      client,
      `SELECT toString(toDate(computed_at)) AS day, grade, eligible, currency, count() AS decisions, sum(limit_minor) AS limit_total
       FROM ${db}.eligibility_decisions GROUP BY day, grade, eligible, currency`,
    );
    checks.push({
      name: 'eligibility_daily',
      fromView: sorted(toMap(view, k, v)),
      recount: sorted(toMap(raw, k, v)),
      expected: expected && sorted(new Map([...expected.eligibilityDaily].map(([a, b]) => [a, [...b]]))),
    });
  }
  {
    const k = ['day', 'currency', 'status'];
    const v = ['settlements', 'with_schedule', 'lag_sum', 'mismatches'];
    const view = await rowsOf<Row>(
      client,
      `SELECT toString(day) AS day, currency, status, countMerge(settlements) AS settlements,
         countIfMerge(lag_count) AS with_schedule, sumIfMerge(lag_sum_ms) AS lag_sum, countIfMerge(mismatches) AS mismatches
       FROM ${db}.settlement_lag_daily GROUP BY day, currency, status`,
    );
    const raw = await rowsOf<Row>(
      client,
      `SELECT toString(toDate(settled_at)) AS day, currency, status, count() AS settlements,
         countIf(isNotNull(scheduled_at_ms)) AS with_schedule,
         sumIf(settled_at_ms - ifNull(scheduled_at_ms, settled_at_ms), isNotNull(scheduled_at_ms)) AS lag_sum,
         countIf(mismatch_minor != 0) AS mismatches
       FROM ${db}.settlements GROUP BY day, currency, status`,
    );
    checks.push({
      name: 'settlement_lag_daily',
      fromView: sorted(toMap(view, k, v)),
      recount: sorted(toMap(raw, k, v)),
      expected: expected && sorted(new Map([...expected.settlementLag].map(([a, b]) => [a, [...b]]))),
    });
  }
  {
    const k = ['grade', 'status', 'currency'];
    const v = ['loans', 'outstanding'];
    const view = await rowsOf<Row>(
      client,
      `SELECT grade, status, currency, loans, outstanding_minor AS outstanding FROM ${db}.outstanding_by_grade_status`,
    );
    // Recount from the raw snapshots and decisions, not from the *_latest tables.
    const raw = await rowsOf<Row>(
      client,
      `SELECT grade, status, currency, count() AS loans, sum(balance) AS outstanding FROM
         (SELECT loan_id, argMax(merchant_id, version) AS merchant_id, argMax(status, version) AS status,
            argMax(balance_minor, version) AS balance, argMax(currency, version) AS currency
          FROM ${db}.loan_states GROUP BY loan_id)
       ANY LEFT JOIN
         (SELECT merchant_id, argMax(grade, _offset) AS grade FROM ${db}.eligibility_decisions GROUP BY merchant_id)
       USING (merchant_id)
       GROUP BY grade, status, currency`,
    );
    checks.push({
      name: 'outstanding_by_grade_status',
      fromView: sorted(toMap(view, k, v)),
      recount: sorted(toMap(raw, k, v)),
      expected: expected && sorted(new Map([...expected.outstanding].map(([a, b]) => [a, [...b]]))),
    });
  }
  {
    const k = ['hour', 'reason_code', 'currency'];
    const v = ['decisions', 'gross', 'withheld'];
    const view = await rowsOf<Row>(
      client,
      `SELECT toString(hour) AS hour, reason_code, currency, sum(decisions) AS decisions,
         sum(gross_total_minor) AS gross, sum(withheld_total_minor) AS withheld
       FROM ${db}.payout_decisions_hourly GROUP BY hour, reason_code, currency`,
    );
    const raw = await rowsOf<Row>(
      client,
      `SELECT toString(toStartOfHour(occurred_at)) AS hour, reason_code, currency, count() AS decisions,
         sum(gross_amount_minor) AS gross, sum(withheld_minor) AS withheld
       FROM ${db}.payout_decisions GROUP BY hour, reason_code, currency`,
    );
    checks.push({
      name: 'payout_decisions_hourly',
      fromView: sorted(toMap(view, k, v)),
      recount: sorted(toMap(raw, k, v)),
      expected: expected && sorted(new Map([...expected.payoutDecisionsHourly].map(([a, b]) => [a, [...b]]))),
    });
  }
  return checks;
}
