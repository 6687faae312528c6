/**
 * `holdback demo`: the whole pipeline on the running local stack, the way a newcomer first sees
 * it (README command one, `npm run demo`, brings the stack up and calls this).
 *
 * 1. registers the contract's schemas and migrates ClickHouse (database `holdback`);
 * 2. starts `holdback run repayment`, `holdback run eligibility` and `holdback clickhouse sink`
 *    as child processes (logs in .holdback/demo/), on stream time (--clock=stream) because the
 *    simulator compresses months of marketplace history into about a minute;
 * 3. streams simulated traffic (`holdback simulate`, a fresh seed per run, so every run is a new
 *    cohort of merchants `sim<seed>-m<i>`) with a live progress line;
 * 4. waits for the processors and the sink to catch up, prints a summary read back from
 *    ClickHouse, Prometheus and Alertmanager, stops its processes and leaves the stack running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { z } from 'zod';
import { migrate } from '../../connectors/clickhouse/migrate';
import { checkClickHouse } from '../../connectors/clickhouse/check';
import { checkKafka } from '../../connectors/kafka-client';
import type { Endpoints } from '../../connectors/endpoints';
import {
  clickhouseClientOptions,
  loadConnections,
  registryOptions,
  type Connections,
} from '../../connectors/connections';
import { SchemaRegistryClient } from '../../connectors/registry';
import { RAW_TABLES } from '../../connectors/clickhouse/rows';
import { simulate, type SimulationProgress, type SimulationSummary } from '../../simulator';
import { REPO_ROOT } from '../../stack/paths';
import { commandModule, HoldbackCommand } from '../program';

const LOG_DIR = join(REPO_ROOT, '.holdback', 'demo');
/** Fixed metrics ports, so the summary can name them (and Prometheus finds them by file_sd). */
const PORTS = { repayment: 19101, eligibility: 19102, sink: 19103 } as const;

const DEMO_OPTIONS = z
  .object({
    duration: z.coerce.number().int().min(1).max(86_400).default(60),
    rate: z.coerce.number().int().min(1).max(10_000_000).default(6000),
    merchants: z.coerce.number().int().min(1).max(1_000_000).default(250),
    seed: z.coerce.number().int().min(0).max(0xffff_ffff).optional(),
  })
  .strict();

interface DemoOptions {
  duration: number;
  rate: number;
  merchants: number;
  seed: number;
}

class DemoError extends Error {}

const say = (s: string): void => console.log(`\x1b[1m[demo]\x1b[0m ${s}`);
const n = (v: number): string => Math.round(v).toLocaleString('en-US');
const money = (minor: number, currency: string): string =>
  `${(minor / 100).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })} ${currency}`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Child {
  name: keyof typeof PORTS;
  proc: ChildProcess;
  exited: Promise<number | null>;
  log: string;
}

function start(name: keyof typeof PORTS, args: string[]): Child {
  mkdirSync(LOG_DIR, { recursive: true });
  const log = join(LOG_DIR, `${name}.log`);
  const out = openSync(log, 'a');
  const proc = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'holdback'), ...args], {
    stdio: ['ignore', out, out],
  });
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  return { name, proc, exited, log };
}

async function stop(children: readonly Child[]): Promise<void> {
  await Promise.all(
    children.map(async (c) => {
      if (c.proc.exitCode !== null) return;
      c.proc.kill('SIGTERM');
      const timer = setTimeout(() => c.proc.kill('SIGKILL'), 20_000);
      await c.exited;
      clearTimeout(timer);
    }),
  );
}

/** The children's endpoints take HOLDBACK_METRICS_TOKEN when it is set (the demo sets none itself). */
let metricsToken: string | undefined;
const metricsAuth = (): Record<string, string> =>
  metricsToken === undefined ? {} : { Authorization: `Bearer ${metricsToken}` };

/** Sum of a metric's samples (optionally only lines containing `filter`) on a process's /metrics. */
async function metric(port: number, name: string, filter = ''): Promise<number | undefined> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: metricsAuth() })).text();
    let sum: number | undefined;
    for (const line of text.split('\n')) {
      if (!line.startsWith(name) || !line.includes(filter)) continue;
      const rest = line.slice(name.length);
      if (rest[0] !== ' ' && rest[0] !== '{') continue;
      sum = (sum ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return sum;
  } catch {
    return undefined;
  }
}

async function healthy(port: number): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${port}/health`, { headers: metricsAuth() })).ok;
  } catch {
    return false;
  }
}

async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs: number, children: Child[]) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const c of children) {
      if (c.proc.exitCode !== null)
        throw new DemoError(`${c.name} exited (code ${c.proc.exitCode}); see ${c.log}`);
    }
    if (await check()) return;
    await sleep(500);
  }
  throw new DemoError(`timed out waiting for ${what}; logs in ${LOG_DIR}`);
}

/** curl's flags for the ClickHouse the demo wrote to: its user (curl asks the password) and CA. */
function clickhouseCurlFlags(c: Connections): string {
  const user =
    c.clickhouse.username !== 'default' || c.clickhouse.password !== '' ? ` -u ${c.clickhouse.username}` : '';
  const ca = process.env['HOLDBACK_CLICKHOUSE_SSL_CA_LOCATION'];
  return `${user}${ca ? ` --cacert ${ca}` : ''}`;
}

async function rows<T>(ch: ClickHouseClient, query: string): Promise<T[]> {
  return (await ch.query({ query, format: 'JSONEachRow' })).json<T>();
}

async function promQuantile(
  e: Endpoints,
  q: number,
  metricName: string,
  service: string,
): Promise<number | undefined> {
  const query = `histogram_quantile(${q}, sum by (le) (${metricName}_bucket{service="${service}"}))`;
  try {
    const res = await fetch(`${e.prometheusUrl}/api/v1/query?query=${encodeURIComponent(query)}`);
    const body = (await res.json()) as { data: { result: Array<{ value: [number, string] }> } };
    const v = Number(body.data.result[0]?.value[1]);
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function create(): HoldbackCommand {
  const demo = new HoldbackCommand('demo').description(
    'Streams about a minute of simulated marketplace traffic through the whole pipeline on the running ' +
      'local stack (`holdback stack up`): registers the schemas, migrates ClickHouse, starts both ' +
      'processors and the sink (logs in .holdback/demo/), then prints what happened and where to look next.',
  );
  const options = demo.schemaOptions(DEMO_OPTIONS, {
    help: {
      duration: 'seconds of traffic',
      rate: 'records per second at most',
      merchants: 'simulated merchants (about 14 records per merchant and simulated day at the defaults)',
      seed: 'simulator seed (default: from the clock, so each run is a new cohort)',
    },
  });
  return demo.runs(async (cmd) => {
    const o = options(cmd);
    return runDemo({ ...o, seed: o.seed ?? Math.floor(Date.now() / 1000) % 1_000_000 });
  });
}

export const command = commandModule(create);

async function runDemo(o: DemoOptions): Promise<number> {
  const c = loadConnections();
  const database = c.clickhouse.database;
  metricsToken = c.metrics.token;
  const children: Child[] = [];
  const abort = new AbortController();
  const onSignal = (): void => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  // Bad settings stop here, in seconds and in words, not in a child's log.
  try {
    await checkKafka(c.kafka, 'holdback-demo');
    await checkClickHouse(c.clickhouse);
  } catch (err) {
    console.error(`holdback demo: ${(err as Error).message}`);
    return 1;
  }
  const ch = createClient(clickhouseClientOptions(c.clickhouse));
  try {
    say('registering the contract schemas');
    await new SchemaRegistryClient(registryOptions(c.registry)).registerAll();
    say(`migrating ClickHouse (database ${database})`);
    const m = await migrate(ch, database, undefined, () => undefined);
    say(`  ${m.applied.length} migration(s) applied now, ${m.alreadyApplied} earlier`);

    say(`starting the processors and the sink (logs: ${LOG_DIR})`);
    const common = ['--clock=stream'];
    children.push(
      start('repayment', ['run', 'repayment', ...common, `--metrics-port=${PORTS.repayment}`]),
      start('eligibility', ['run', 'eligibility', ...common, `--metrics-port=${PORTS.eligibility}`]),
      start('sink', ['clickhouse', 'sink', `--database=${database}`, `--metrics-port=${PORTS.sink}`]),
    );
    await waitUntil(
      'the processors and the sink to be healthy',
      async () => (await Promise.all(Object.values(PORTS).map(healthy))).every(Boolean),
      90_000,
      children,
    );

    const speed = `120d/${o.duration}s`;
    say(
      `streaming ${o.duration}s of traffic: ${n(o.merchants)} merchants, up to ${n(o.rate)} records/s, ` +
        `120 simulated days (seed ${o.seed})`,
    );
    const progress = async (p: SimulationProgress): Promise<void> => {
      const [repay, elig, sinkRows] = await Promise.all([
        metric(PORTS.repayment, 'holdback_records_out_total'),
        metric(PORTS.eligibility, 'holdback_records_out_total'),
        metric(PORTS.sink, 'holdback_clickhouse_rows_inserted_total'),
      ]);
      const line =
        `  ${Math.round(p.elapsedMs / 1000)}s  sim ${new Date(p.simulatedAt).toISOString().slice(0, 10)}  ` +
        `produced ${n(p.produced)} (${n(p.recordsPerSec)}/s)  repayment out ${n(repay ?? 0)}  ` +
        `eligibility out ${n(elig ?? 0)}  ClickHouse rows ${n(sinkRows ?? 0)}`;
      process.stdout.write(process.stdout.isTTY ? `\r${line.padEnd(140)}` : `${line}\n`);
    };
    const summary = await simulate(
      {
        merchants: o.merchants,
        rate: o.rate,
        duration: o.duration,
        seed: o.seed,
        speed,
        start: '120d',
        failRate: 0.02,
        lateSettlementRate: 0.01,
        mismatchRate: 0.003,
        duplicateRate: 0.005,
        reorderRate: 0.01,
        malformedRate: 0.0005,
      },
      { onProgress: (p) => void progress(p), progressIntervalMs: 2000, signal: abort.signal },
    );
    if (process.stdout.isTTY) process.stdout.write('\n');

    say('waiting for the processors and the sink to catch up');
    // Caught up: nothing consumed or inserted anywhere for 5 s. (A lag gauge is only updated
    // when a batch arrives, so once input stops it can keep its last value.)
    let last = '';
    let stableSince = Date.now();
    await waitUntil(
      'the processors and the sink to go quiet',
      async () => {
        const now = await Promise.all([
          metric(PORTS.repayment, 'holdback_records_in_total'),
          metric(PORTS.eligibility, 'holdback_records_in_total'),
          metric(PORTS.sink, 'holdback_clickhouse_rows_inserted_total'),
        ]);
        const key = JSON.stringify(now);
        if (key !== last) [last, stableSince] = [key, Date.now()];
        return Date.now() - stableSince >= 5000;
      },
      300_000,
      children,
    );
    await sleep(3000); // two Prometheus scrapes, so the latency quantiles include the end
    await report(c, ch, summary, o);
    return 0;
  } catch (err) {
    if (err instanceof DemoError) {
      console.error(`holdback demo: ${err.message}`);
      return 1;
    }
    throw err;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    say('stopping the demo processes (the stack keeps running; `holdback stack down` stops it)');
    await stop(children);
    await ch.close();
  }
}

/**
 * Holdback's reconciliation mismatches beside the simulator's injected ones: equal when every
 * payout was decided as the simulated platform decided it. Each difference is named with its
 * cause, so a reader never has to guess.
 */
function reconciliation(
  found: ReadonlyArray<{ payout_id: string; instructed_minor: string; reported_withheld_minor: string }>,
  s: SimulationSummary,
): string[] {
  const injected = new Set(s.mismatchedPayouts);
  const foundIds = new Set(found.map((f) => f.payout_id));
  const extra = found.filter((f) => !injected.has(f.payout_id));
  const missed = s.mismatchedPayouts.filter((id) => !foundIds.has(id));
  const head =
    `          reconciliation mismatches: ${n(found.length)} settled payouts, the simulator injected ` +
    `${n(s.payouts.mismatched)}` +
    (extra.length === 0 && missed.length === 0 ? ' (the same payouts)' : '');
  const lines = [head];
  for (const f of extra.slice(0, 10)) {
    const cause =
      Number(f.instructed_minor) === 0
        ? 'Holdback withheld nothing for it: no open loan in its time order (a loan event in the DLQ, or a late FUNDED)'
        : 'Holdback instructed another amount than the simulated platform withheld';
    lines.push(
      `            not injected: ${f.payout_id} instructed ${n(Number(f.instructed_minor))}, ` +
        `reported ${n(Number(f.reported_withheld_minor))}: ${cause}`,
    );
  }
  if (extra.length > 10) lines.push(`            ... and ${n(extra.length - 10)} more not injected`);
  if (missed.length > 0) {
    lines.push(
      `            injected but not found: ${n(missed.length)} (${missed.slice(0, 5).join(', ')}${missed.length > 5 ? ', ...' : ''}): ` +
        'not yet in ClickHouse, or the altered report happened to equal what Holdback instructed',
    );
  }
  return lines;
}

async function report(
  c: Connections,
  ch: ClickHouseClient,
  s: SimulationSummary,
  o: DemoOptions,
): Promise<void> {
  const cohort = `merchant_id LIKE 'sim${s.seed}-%'`;
  const e = c.endpoints;
  const db = c.clickhouse.database;
  const [grades, reasons, collections, loans, tables, mismatches, dead, decided] = await Promise.all([
    rows<{ grade: string; eligible: number; merchants: string; limit_minor: string; currency: string }>(
      ch,
      `SELECT grade, eligible, count() AS merchants, sum(limit_minor) AS limit_minor, currency
       FROM ${db}.eligibility_latest FINAL WHERE ${cohort} GROUP BY grade, eligible, currency
       ORDER BY grade, eligible DESC, currency`,
    ),
    rows<{ reason: string; decisions: string }>(
      ch,
      `SELECT reason, count() AS decisions FROM ${db}.eligibility_decisions ARRAY JOIN reasons AS reason
       WHERE ${cohort} GROUP BY reason ORDER BY decisions DESC LIMIT 6`,
    ),
    rows<{ currency: string; withheld: string; reversed: string; withholds: string }>(
      ch,
      `SELECT currency, sumIf(amount_minor, type = 'WITHHOLD') AS withheld,
              sumIf(amount_minor, type = 'REVERSAL') AS reversed, countIf(type = 'WITHHOLD') AS withholds
       FROM ${db}.deductions WHERE ${cohort} GROUP BY currency ORDER BY currency`,
    ),
    rows<{ status: string; loans: string; balance: string; currency: string }>(
      ch,
      `SELECT status, count() AS loans, sum(balance_minor) AS balance, currency
       FROM ${db}.loan_states_latest FINAL WHERE ${cohort} GROUP BY status, currency ORDER BY status, currency`,
    ),
    // One count per raw table (system.tables has no row counts on ClickHouse 18.16).
    Promise.all(
      RAW_TABLES.map(async (name) => ({
        name,
        rows: (await rows<{ c: string }>(ch, `SELECT count() AS c FROM ${db}.${name}`))[0]?.c ?? '0',
      })),
    ),
    rows<{ payout_id: string; instructed_minor: string; reported_withheld_minor: string }>(
      ch,
      `SELECT payout_id, instructed_minor, reported_withheld_minor FROM ${db}.settlements
       WHERE ${cohort} AND status = 'SETTLED' AND mismatch_minor != 0`,
    ),
    rows<{ reason_code: string; letters: string }>(
      ch,
      `SELECT reason_code, count() AS letters FROM ${db}.dead_letters
       WHERE failed_at_ms >= ${Date.now() - (o.duration + 600) * 1000} GROUP BY reason_code ORDER BY letters DESC`,
    ),
    rows<{ reason_code: string; payouts: string }>(
      ch,
      `SELECT reason_code, count() AS payouts FROM ${db}.payout_decisions
       WHERE ${cohort} GROUP BY reason_code ORDER BY payouts DESC`,
    ),
  ]);
  const alerts = await fetch(`${e.alertmanagerUrl}/api/v2/alerts?active=true&silenced=false&inhibited=false`)
    .then((r) => r.json() as Promise<Array<{ labels: Record<string, string> }>>)
    .catch(() => []);
  // Alerts of this pipeline's services; others on the stack come from earlier tests or benchmarks
  // (a service that ran within the last day and stopped is HoldbackProcessorDown by design).
  const ours = new Set(['holdback-repayment', 'holdback-eligibility', `holdback-clickhouse-${db}`]);
  const mine = new Map<string, number>();
  let others = 0;
  for (const a of alerts) {
    if (!ours.has(a.labels['service'] ?? '')) others++;
    else {
      const k = `${a.labels['alertname']} (${a.labels['severity']})`;
      mine.set(k, (mine.get(k) ?? 0) + 1);
    }
  }
  const p99 = await Promise.all(
    (['repayment', 'eligibility'] as const).map((p) =>
      promQuantile(e, 0.99, 'holdback_fetch_to_commit_seconds', `holdback-${p}`),
    ),
  );
  const p50 = await Promise.all(
    (['repayment', 'eligibility'] as const).map((p) =>
      promQuantile(e, 0.5, 'holdback_fetch_to_commit_seconds', `holdback-${p}`),
    ),
  );
  const ms = (v: number | undefined): string => (v === undefined ? 'n/a' : `${Math.round(v * 1000)} ms`);

  const out: string[] = ['', '\x1b[1mHoldback demo: what happened\x1b[0m', ''];
  out.push(
    `Traffic   ${n(s.produced)} records in ${s.wallSeconds.toFixed(0)} s (${n(s.recordsPerSec)}/s), ` +
      `${s.simulatedFrom.slice(0, 10)} to ${s.simulatedUntil.slice(0, 10)} simulated, ${n(s.merchants)} merchants (sim${s.seed}-m*)`,
  );
  for (const [topic, c] of Object.entries(s.topics)) {
    const types = Object.entries(c.byType)
      .map(([t, v]) => `${t} ${n(v)}`)
      .join(', ');
    out.push(`          ${topic.padEnd(24)} ${n(c.records).padStart(9)}  ${types}`);
  }
  out.push(
    `          injected: ${n(s.duplicates)} duplicates, ${n(s.reordered)} reordered, ${n(s.malformed.total)} malformed; ` +
      `${n(s.loansFunded)} loans funded by the simulated lender`,
  );
  out.push('', 'Eligibility (latest decision per merchant)');
  const byGrade = new Map<string, { eligible: number; declined: number; limits: Map<string, number> }>();
  for (const g of grades) {
    const row = byGrade.get(g.grade) ?? { eligible: 0, declined: 0, limits: new Map<string, number>() };
    if (Number(g.eligible)) {
      row.eligible += Number(g.merchants);
      row.limits.set(g.currency, (row.limits.get(g.currency) ?? 0) + Number(g.limit_minor));
    } else row.declined += Number(g.merchants);
    byGrade.set(g.grade, row);
  }
  for (const [grade, r] of [...byGrade].sort()) {
    const limits = [...r.limits].map(([c, v]) => money(v, c)).join(' + ');
    out.push(
      `          grade ${grade}: ${n(r.eligible).padStart(5)} eligible, ${n(r.declined).padStart(5)} not` +
        (limits ? `   limits ${limits}` : ''),
    );
  }
  if (byGrade.size === 0) out.push('          (no decisions yet)');
  out.push(
    `          top reasons: ${reasons.map((r) => `${r.reason} (${n(Number(r.decisions))})`).join(', ') || 'none'}`,
  );
  out.push('', 'Repayments');
  for (const c of collections) {
    out.push(
      `          ${c.currency}: ${n(Number(c.withholds))} withholdings, withheld ${money(Number(c.withheld), c.currency)}, ` +
        `reversed ${money(Number(c.reversed), c.currency)} (failed payouts)`,
    );
  }
  const byStatus = new Map<string, number>();
  for (const l of loans) byStatus.set(l.status, (byStatus.get(l.status) ?? 0) + Number(l.loans));
  out.push(
    `          loans: ${[...byStatus].map(([st, c]) => `${n(c)} ${st}`).join(', ') || 'none yet'}`,
    ...reconciliation(mismatches, s),
  );
  out.push(
    '',
    `Latency   Holdback's own, fetch to committed output (Prometheus): repayment p50 ${ms(p50[0])}, p99 ${ms(p99[0])}; ` +
      `eligibility p50 ${ms(p50[1])}, p99 ${ms(p99[1])}`,
  );
  out.push(
    `Payouts       decided: ${decided.map((d) => `${d.reason_code} ${n(Number(d.payouts))}`).join(', ') || 'none yet'}  (one PayoutDecision per SCHEDULED, docs/reason-codes.md)`,
  );
  out.push(
    `Dead letters  ${dead.map((d) => `${d.reason_code} ${n(Number(d.letters))}`).join(', ') || 'none'}  (holdback dlq inspect)`,
  );
  out.push(`ClickHouse    ${tables.map((t) => `${t.name} ${n(Number(t.rows))}`).join(', ')}`);
  out.push(
    `Alerts        ${mine.size === 0 ? 'none firing for the pipeline' : [...mine].map(([k, c]) => (c > 1 ? `${k} x${c}` : k)).join(', ')}` +
      (others > 0 ? `; ${n(others)} more for other services on this stack (earlier tests, benchmarks)` : ''),
  );
  out.push(
    '',
    'Where to look next',
    `  Prometheus     ${e.prometheusUrl}/alerts   (rules: dashboards/prometheus/rules/)`,
    `  Alertmanager   ${e.alertmanagerUrl}`,
    `  ClickHouse     curl${clickhouseCurlFlags(c)} '${c.clickhouse.url}/?query=' --data-binary @- <<< "SELECT * FROM ${db}.outstanding_by_grade_status"`,
    `                 tables and sample queries: connectors/clickhouse/README.md`,
    '  Grafana        needs Docker: docker compose up -d grafana, then http://127.0.0.1:3000 (docs/dashboards.md)',
    `  Logs           ${LOG_DIR}`,
    '  Again          npm run demo   (a new cohort of merchants each run)',
    '  Stop           node bin/holdback stack down',
    '',
  );
  console.log(out.join('\n'));
}
