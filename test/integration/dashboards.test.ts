/**
 * Every query of every Grafana dashboard returns data on the real stack. No Grafana server runs
 * here (no Docker engine), so the test does what Grafana would: it expands the dashboard
 * variables and macros, then sends PromQL to Prometheus' HTTP API and SQL to ClickHouse.
 *
 * Set-up: per-run topics, `holdback clickhouse migrate` into a per-run database, then the real
 * processes (`holdback run repayment`, `holdback run eligibility`, `holdback clickhouse sink`)
 * with their own application ids and group id, which become their Prometheus `service` label
 * (file_sd). simulate() produces 100 days of a 200-merchant marketplace (about 90,000 records;
 * the default policy grades merchants only after 90 days of tenure) with
 * failed payouts, late settlements, mismatches and malformed records. Once the processors and the
 * sink have caught up:
 * - PromQL: `$service` becomes the regex Grafana writes for a multi-value selection of this run's
 *   three services, `$__rate_interval` what Grafana computes for the range (max(step + scrape
 *   interval, 4 x scrape interval), scrape interval 2s); the query runs as a range query over the
 *   run (/api/v1/query_range, as a time series panel does) and must return at least one finite
 *   sample.
 * - SQL: `${database}` becomes the run's database; `$__timeFilter(c)`, `$__dateFilter(c)`,
 *   `$__fromTime`, `$__toTime` are expanded as grafana-clickhouse-datasource v4 does, for the
 *   dashboard's default time range; the query must return at least one row.
 * Afterwards processes are stopped, the database dropped, topics and groups deleted.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { dashboards } from '../../dashboards/grafana/src/generate';
import { changelogTopic } from '../../runtime/kafka-runtime';
import { simulate, type SimulationSummary } from '../../simulator/producer';
import { REPO_ROOT } from '../../stack/paths';
import { createTopics, deleteTopics, endpoints, kafkaClient } from '../harness/kafka';
import {
  logTail,
  spawnHoldback,
  spawnProcessor,
  terminate,
  waitFor,
  type ProcessorProcess,
} from '../harness/processes';

jest.setTimeout(420_000);

const RUN = `dash-${process.pid}-${Date.now().toString(36)}`;
const prefix = `${RUN}.`;
const database = `hbt_dash_${process.pid}_${Date.now().toString(36)}`;
const services = {
  repayment: `${RUN}-repayment`,
  eligibility: `${RUN}-eligibility`,
  sink: `${RUN}-sink`,
};
const SCRAPE_INTERVAL_S = 2;
const STEP_S = 5;

let client: ClickHouseClient;
const procs: ProcessorProcess[] = [];
let startedAt = 0;
let summary: SimulationSummary;

function spawnSink(): ProcessorProcess {
  return spawnHoldback(services.sink, [
    'clickhouse',
    'sink',
    `--topic-prefix=${prefix}`,
    `--database=${database}`,
    `--group-id=${services.sink}`,
  ]);
}

async function prom<T>(path: string): Promise<T> {
  const res = await fetch(`${endpoints.prometheusUrl}${path}`);
  const body = (await res.json()) as { status: string; error?: string; data: T };
  if (body.status !== 'success') throw new Error(`Prometheus ${path}: ${body.error ?? res.status}`);
  return body.data;
}

async function promScalar(query: string): Promise<number | undefined> {
  const data = await prom<{ result: Array<{ value: [number, string] }> }>(
    `/api/v1/query?query=${encodeURIComponent(query)}`,
  );
  return data.result.length === 0 ? undefined : Number(data.result[0]!.value[1]);
}

async function count(table: string): Promise<number> {
  const rs = await client.query({
    query: `SELECT count() AS n FROM ${database}.${table}`,
    format: 'JSONEachRow',
  });
  return Number(((await rs.json()) as Array<{ n: string }>)[0]!.n);
}

/** Grafana's relative time ("now-30d") at `now`, in ms. */
function relative(text: string, now: number): number {
  if (text === 'now') return now;
  const m = /^now-(\d+)([smhd])$/.exec(text);
  if (!m) throw new Error(`unsupported time ${text}`);
  return now - Number(m[1]) * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

/** What grafana-clickhouse-datasource (v4) sends for these macros, and the dashboard variable. */
function expandSql(sql: string, fromMs: number, toMs: number): string {
  const s = (ms: number) => String(Math.floor(ms / 1000));
  const d = (ms: number) => new Date(ms).toISOString().slice(0, 10);
  return sql
    .replace(/\$\{database\}/g, database)
    .replace(
      /\$__timeFilter\(([^()]+)\)/g,
      (_, c: string) => `${c} >= toDateTime(${s(fromMs)}) AND ${c} <= toDateTime(${s(toMs)})`,
    )
    .replace(
      /\$__dateFilter\(([^()]+)\)/g,
      (_, c: string) => `${c} >= toDate('${d(fromMs)}') AND ${c} <= toDate('${d(toMs)}')`,
    )
    .replace(/\$__fromTime\b/g, `toDateTime(${s(fromMs)})`)
    .replace(/\$__toTime\b/g, `toDateTime(${s(toMs)})`);
}

/** What Grafana sends to Prometheus for this run's services selected in `service`. */
function expandPromql(expr: string): string {
  const rateInterval = Math.max(STEP_S + SCRAPE_INTERVAL_S, 4 * SCRAPE_INTERVAL_S);
  return expr
    .replace(/\$service\b/g, `(${Object.values(services).join('|')})`)
    .replace(/\$__rate_interval\b/g, `${rateInterval}s`);
}

interface Query {
  dashboard: string;
  panel: string;
  refId: string;
  kind: 'promql' | 'sql';
  text: string;
  from: string;
  to: string;
}

function queries(): Query[] {
  const out: Query[] = [];
  for (const d of dashboards())
    for (const p of d.panels ?? []) {
      if (p.type === 'row') continue;
      const targets =
        (p as { targets?: Array<{ refId?: string; expr?: string; rawSql?: string }> }).targets ?? [];
      for (const t of targets)
        out.push({
          dashboard: d.uid!,
          panel: (p as { title?: string }).title ?? '',
          refId: t.refId ?? 'A',
          kind: t.expr !== undefined ? 'promql' : 'sql',
          text: t.expr ?? t.rawSql ?? '',
          from: d.time?.from ?? 'now-6h',
          to: d.time?.to ?? 'now',
        });
    }
  return out;
}

beforeAll(async () => {
  client = createClient({ url: endpoints.clickhouseUrl });
  startedAt = Date.now();
  await createTopics(prefix);
  execFileSync(
    process.execPath,
    [join(REPO_ROOT, 'bin', 'holdback'), 'clickhouse', 'migrate', `--database=${database}`],
    {
      stdio: 'pipe',
    },
  );
  for (const name of ['repayment', 'eligibility'] as const)
    procs.push(
      // Stream time: the simulated history starts 100 days back, past the de-duplication horizon
      // of a wall clock (docs/contract.md, "One decision per event").
      spawnProcessor(services[name], name, [
        `--topic-prefix=${prefix}`,
        `--application-id=${services[name]}`,
        '--clock=stream',
      ]),
    );
  procs.push(spawnSink());

  summary = await simulate({
    merchants: 200,
    seed: 8,
    start: '100d',
    speed: '25d/s',
    rate: 20_000,
    topicPrefix: prefix,
    failRate: 0.05,
    lateSettlementRate: 0.1,
    lateSettlementDelay: '36h',
    mismatchRate: 0.05,
    malformedRate: 0.002,
  });

  // Caught up: the processors' input lag is 0 and the sink's tables stop growing.
  const tables = [
    'deductions',
    'loan_states',
    'eligibility_decisions',
    'settlements',
    'payout_decisions',
    'dead_letters',
  ];
  let last = '';
  await waitFor(
    'the processors and the sink to catch up',
    async () => {
      for (const p of procs)
        if (p.child.exitCode !== null) throw new Error(`${p.name} exited ${p.child.exitCode}\n${logTail(p)}`);
      const lag = await promScalar(
        `sum(holdback_consumer_lag{service=~"${services.repayment}|${services.eligibility}"})`,
      );
      const counts = JSON.stringify(await Promise.all(tables.map(count)));
      const done = lag === 0 && counts === last && !JSON.parse(counts).includes(0);
      last = counts;
      return done;
    },
    240_000,
    5000,
  ).catch((e: Error) => {
    throw new Error(
      `${e.message}\nrows: ${last}\n${procs.map((p) => `${p.name}:\n${logTail(p, 10)}`).join('\n')}`,
    );
  });
  // Two more scrapes, so the last values are in Prometheus.
  await new Promise((r) => setTimeout(r, 3 * SCRAPE_INTERVAL_S * 1000));
});

afterAll(async () => {
  await Promise.all(procs.map((p) => terminate(p)));
  await client?.command({ query: `DROP DATABASE IF EXISTS ${database}` }).catch(() => undefined);
  await client?.close();
  await deleteTopics(prefix, [changelogTopic(services.repayment), changelogTopic(services.eligibility)]);
  const admin = kafkaClient().admin();
  await admin.connect();
  await admin.deleteGroups(Object.values(services)).catch(() => undefined);
  await admin.disconnect();
});

test('the simulation produced the faults the dashboards show', () => {
  expect(summary.produced).toBeGreaterThan(20_000);
  expect(summary.payouts.failed).toBeGreaterThan(0);
  expect(summary.payouts.mismatched).toBeGreaterThan(0);
  expect(summary.loansFunded).toBeGreaterThan(0);
  expect(summary.malformed.total).toBeGreaterThan(0);
});

test('the service variable lists this run’s three processes', async () => {
  const values = await prom<string[]>(
    `/api/v1/label/service/values?match[]=${encodeURIComponent('up{job="holdback"}')}&start=${Math.floor(startedAt / 1000)}`,
  );
  expect(values).toEqual(expect.arrayContaining(Object.values(services)));
});

const all = queries();

test('the dashboards have PromQL and SQL queries', () => {
  expect(all.filter((q) => q.kind === 'promql').length).toBeGreaterThan(15);
  expect(all.filter((q) => q.kind === 'sql').length).toBeGreaterThan(15);
});

test.each(all.filter((q) => q.kind === 'promql').map((q) => [q.dashboard, q.panel, q] as const))(
  'PromQL %s / %s returns data',
  async (_d, _p, q) => {
    const expr = expandPromql(q.text);
    expect(expr).not.toContain('$');
    const end = Math.ceil(Date.now() / 1000);
    const start = Math.floor(startedAt / 1000);
    const data = await prom<{
      result: Array<{ metric: Record<string, string>; values: Array<[number, string]> }>;
    }>(`/api/v1/query_range?query=${encodeURIComponent(expr)}&start=${start}&end=${end}&step=${STEP_S}`);
    const finite = data.result.flatMap((s) => s.values.map((v) => Number(v[1]))).filter(Number.isFinite);
    expect({ expr, series: data.result.length, finite: finite.length > 0 }).toEqual({
      expr,
      series: expect.any(Number),
      finite: true,
    });
  },
);

test.each(all.filter((q) => q.kind === 'sql').map((q) => [q.dashboard, q.panel, q] as const))(
  'SQL %s / %s returns rows',
  async (_d, _p, q) => {
    const now = Date.now();
    const sql = expandSql(q.text, relative(q.from, now), relative(q.to, now));
    expect(sql).not.toMatch(/\$/);
    const rs = await client.query({ query: sql, format: 'JSONEachRow' });
    const rows = (await rs.json()) as Array<Record<string, unknown>>;
    expect({ sql, rows: rows.length > 0 }).toEqual({ sql, rows: true });
  },
);

/** Rows of a query of the generated dashboards, expanded as Grafana sends it at `now`. */
async function panelRows(title: string, refId: string, now: number): Promise<Array<Record<string, string>>> {
  const q = all.find((x) => x.panel === title && x.refId === refId);
  if (!q) throw new Error(`no query ${refId} in panel ${title}`);
  const rs = await client.query({
    query: expandSql(q.text, relative(q.from, now), relative(q.to, now)),
    format: 'JSONEachRow',
  });
  return rs.json<Record<string, string>>();
}

test('payout decisions: counts per reason, the share withheld nothing and the table agree with the raw decisions', async () => {
  const now = Date.now();
  const from = Math.floor(relative('now-30d', now) / 1000);
  const to = Math.floor(now / 1000);
  const raw = async (sql: string) =>
    (await client.query({ query: sql, format: 'JSONEachRow' })).json<Record<string, string>>();
  // The simulation decided payouts both ways, so the share is neither trivially 0 nor 1.
  const reasons = await raw(
    `SELECT reason_code, count() AS n FROM ${database}.payout_decisions GROUP BY reason_code ORDER BY reason_code`,
  );
  expect(reasons.map((r) => r.reason_code)).toContain('WITHHELD');
  expect(reasons.filter((r) => r.reason_code !== 'WITHHELD').length).toBeGreaterThan(0);

  // Bars: decisions per day (a 30-day range) and reason, as a recount of the raw rows.
  const inRange = `toStartOfHour(occurred_at) >= toDateTime(${from}) AND toStartOfHour(occurred_at) <= toDateTime(${to})`;
  const bars = await panelRows('Payout decisions by reason', 'A', now);
  const recount = await raw(
    `SELECT toString(toStartOfDay(occurred_at)) AS time, reason_code, toString(count()) AS payout_decisions
     FROM ${database}.payout_decisions WHERE ${inRange} GROUP BY time, reason_code ORDER BY time, reason_code`,
  );
  expect(bars.length).toBeGreaterThan(0);
  expect(bars).toEqual(recount);

  // Line: per day, decisions that withheld nothing over payouts decided (re-sends left out).
  const share = await panelRows('Payout decisions by reason', 'B', now);
  const expected = await raw(
    `SELECT toString(toStartOfDay(occurred_at)) AS time,
       countIf(withheld_minor = 0 AND reason_code != 'ALREADY_DECIDED') AS nothing,
       countIf(reason_code != 'ALREADY_DECIDED') AS payouts
     FROM ${database}.payout_decisions WHERE ${inRange} GROUP BY time HAVING payouts > 0 ORDER BY time`,
  );
  expect(share.map((r) => r.time)).toEqual(expected.map((r) => r.time));
  share.forEach((r, i) =>
    expect(Number(r.withheld_nothing_share)).toBeCloseTo(
      Number(expected[i]!.nothing) / Number(expected[i]!.payouts),
      12,
    ),
  );

  // Table: the latest decisions that withheld nothing, newest first, none of them WITHHELD.
  const table = await panelRows('Latest payouts that withheld nothing', 'A', now);
  const [zero] = await raw(
    `SELECT count() AS n FROM ${database}.payout_decisions
     WHERE decided_at >= toDateTime(${from}) AND decided_at <= toDateTime(${to}) AND withheld_minor = 0`,
  );
  expect(table.length).toBe(Math.min(50, Number(zero!.n)));
  expect(table.filter((r) => r.reason_code === 'WITHHELD')).toEqual([]);
  const decided = table.map((r) => r.decided_at!);
  expect(decided).toEqual([...decided].sort().reverse());
});
