/**
 * Repayment alone against a Kafka Streams peer of the same rules (issue 16), on the same broker in
 * the same run: M merchants with one FUNDED loan each, then a backlog of P SCHEDULED payouts, and
 * each engine drains it from the beginning under its own application id, exactly-once, 100 ms
 * commits:
 *
 * - Holdback: `holdback run repayment` on each transport given;
 * - the peer: bench/peer (Kafka Streams 4.4, exactly_once_v2, RocksDB), on 1 and 2 stream threads.
 *
 * Drained = the group's committed offsets reach the end of both input topics. Reported per run:
 * payouts/s over the whole drain (from the process's start) and over its middle 10%-90% (steady
 * state), CPU seconds and cores used (/proc), peak RSS. Kafka's ConsumerPerformance on the same
 * payouts topic is the read ceiling. Every deduction of every engine is compared with Holdback's
 * first run (payout, loan, amount, balance after): the outputs must be equal.
 *
 *   npx tsx bench/peer.bench.ts [merchants, default 20000] [payouts, default 1000000] [transports, default kafkajs,rdkafka]
 *
 * PEER_THREADS=1,2 (the default) chooses the peer's runs; `PEER_THREADS=` runs Holdback alone.
 * BENCH_PROFILE_DIR=<dir> writes a CPU profile of each Holdback run there (test/harness/processes.ts).
 *
 * Needs `holdback stack up`, a build (`npm run build`) and the peer's jar
 * (`mvn -q -f bench/peer/pom.xml package`); `npm run bench` does all three. Saves
 * bench/results/peer.json. A report, not a test: nothing fails on a slow machine.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Deduction, LoanEvent, PayoutEvent } from '../schemas/generated/types';
import { TOPICS } from '../schemas/topics';
import { REPO_ROOT } from '../stack/paths';
import {
  connections,
  createTopics,
  deleteTopics,
  endpoints,
  kafkaClient,
  produce,
  readAll,
  registeredCodec,
} from '../test/harness/kafka';
import { spawnHoldback } from '../test/harness/processes';
import { Rng } from '../test/harness/random';
import { consumerPerformance, rssMb } from './kafka-tools';
import { kafkaSetup, machine } from './machine';

const MERCHANTS = Number(process.argv[2] ?? 20_000);
const PAYOUTS = Number(process.argv[3] ?? 1_000_000);
const TRANSPORTS = (process.argv[4] ?? 'kafkajs,rdkafka').split(',').filter(Boolean);
/** The peer's stream-thread counts to run (`PEER_THREADS=` runs no peer: Holdback alone, to profile it). */
const PEER_THREADS = (process.env.PEER_THREADS ?? '1,2').split(',').filter(Boolean).map(Number);
const RUN = `bench-peer-${Date.now().toString(36)}`;
const IN = `${RUN}.`;
const PEER_JAR = join(REPO_ROOT, 'bench', 'peer', 'target', 'repayment-peer.jar');
const LOG_DIR = join(REPO_ROOT, '.holdback', 'test-logs');

interface Drain {
  engine: string;
  payoutsPerSec: number;
  steadyPayoutsPerSec: number;
  seconds: number;
  cpuSeconds: number;
  cores: number;
  peakRssMb: number | null;
  deductions: number;
  equalToHoldback: boolean | null;
  differences: string[];
}

/** utime + stime of a process and its threads, in seconds (/proc/<pid>/stat, clock ticks of 100 Hz). */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

type Admin = ReturnType<ReturnType<typeof kafkaClient>['admin']>;
const INPUTS = [IN + TOPICS.loanEvents, IN + TOPICS.payouts];

/** The input records a group has committed, over both inputs. */
async function committed(admin: Admin, groupId: string): Promise<number> {
  const topics = await admin.fetchOffsets({ groupId, topics: INPUTS });
  return topics.flatMap((t) => t.partitions).reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
}

async function endOfInputs(admin: Admin): Promise<number> {
  let n = 0;
  for (const t of INPUTS) for (const p of await admin.fetchTopicOffsets(t)) n += Number(p.high);
  return n;
}

/** Runs one engine until its group has committed every input record; its figures. */
async function drain(
  engine: string,
  groupId: string,
  child: () => ChildProcess,
): Promise<Omit<Drain, 'deductions' | 'equalToHoldback' | 'differences'>> {
  // One admin connection for the whole drain: it is asked every 500 ms.
  const admin = kafkaClient('bench-peer-offsets').admin();
  await admin.connect();
  const end = await endOfInputs(admin);
  const t0 = Date.now();
  const proc = child();
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  let peak: number | null = null;
  let done = 0;
  let t10 = 0;
  let t90 = 0;
  let cpu = 0;
  try {
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      if (proc.exitCode !== null)
        throw new Error(`${engine} exited with ${proc.exitCode}; see ${LOG_DIR}/${groupId}.log`);
      const rss = rssMb(proc.pid);
      if (rss !== null) peak = Math.max(peak ?? 0, rss);
      cpu = cpuSeconds(proc.pid!);
      done = await committed(admin, groupId).catch(() => done);
      const now = Date.now();
      if (!t10 && done >= end * 0.1) t10 = now;
      if (!t90 && done >= end * 0.9) t90 = now;
      if (done >= end) break;
      if (now - t0 > 1_800_000) throw new Error(`${engine} did not drain in 30 minutes (${done}/${end})`);
    }
  } finally {
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
    await admin.disconnect();
  }
  const seconds = (Date.now() - t0) / 1000;
  const drained = (t90 - t10) / 1000;
  return {
    engine,
    payoutsPerSec: Math.round(PAYOUTS / seconds),
    steadyPayoutsPerSec: Math.round((0.8 * end) / Math.max(0.001, drained)),
    seconds: Math.round(seconds * 10) / 10,
    cpuSeconds: Math.round(cpu * 10) / 10,
    cores: Math.round((cpu / seconds) * 100) / 100,
    peakRssMb: peak,
  };
}

function logTo(name: string): number {
  mkdirSync(LOG_DIR, { recursive: true });
  return openSync(join(LOG_DIR, `${name}.log`), 'a');
}

/** `holdback run repayment` as the harness spawns it (its log, and BENCH_PROFILE_DIR's CPU profile). */
function holdbackChild(app: string, out: string, transport: string): () => ChildProcess {
  return () =>
    spawnHoldback(app, [
      'run',
      'repayment',
      `--topic-prefix=${IN}`,
      `--application-id=${app}`,
      `--transport=${transport}`,
      // Outputs under their own prefix, so that each engine's deductions can be read alone.
      `--output-prefix=${out}`,
    ]).child;
}

function peerChild(app: string, out: string, threads: number): () => ChildProcess {
  const stateDir = join(REPO_ROOT, '.holdback', 'peer-state', app);
  return () =>
    spawn(
      'java',
      [
        '-Xmx1g',
        '-jar',
        PEER_JAR,
        '--bootstrap',
        connections.kafka.brokers.join(','),
        '--registry',
        connections.registry.url,
        '--input-prefix',
        IN,
        '--output-prefix',
        out,
        '--application-id',
        app,
        '--threads',
        String(threads),
        '--state-dir',
        stateDir,
      ],
      { stdio: ['ignore', logTo(app), logTo(app)] },
    );
}

type Key = string;
const keyOf = (d: Deduction): Key => `${d.payout_id}|${d.loan_id}|${d.type}`;
const valueOf = (d: Deduction): string => `${d.amount_minor}/${d.balance_after_minor}`;

async function main(): Promise<void> {
  console.log(
    `peer benchmark ${RUN}: ${MERCHANTS} merchants, ${PAYOUTS} payouts, Holdback on ${TRANSPORTS.join(', ')}`,
  );
  const codec = await registeredCodec();
  await createTopics(IN);
  const rng = new Rng(16);
  // Funded 25 days ago, payouts over the 20 days after: no 30-day period ends before the run
  // (the peer has no timers; Holdback would tick every merchant at its period end), and every
  // payout stays inside the 35-day de-duplication horizon of the wall clock both engines run by.
  const t0 = Date.now() - 25 * 86_400_000;
  const loans: LoanEvent[] = Array.from({ length: MERCHANTS }, (_, i) => ({
    event_id: `${RUN}-f${i}`,
    loan_id: `${RUN}-loan${i}`,
    merchant_id: `${RUN}-m${i}`,
    type: 'FUNDED',
    occurred_at: t0,
    principal_minor: 10_000_000,
    fee_minor: 1_000_000,
    holdback_rate_bps: rng.pick([500, 1000, 1500]),
    minimum_payment_minor: 0,
    period_days: 30,
    currency: 'USD',
  }));
  await produce(
    IN,
    codec,
    loans.map((l) => ({ topic: TOPICS.loanEvents, key: l.merchant_id, value: l })),
    2000,
  );
  console.log(`producing ${PAYOUTS} payouts...`);
  const span = 20 * 86_400_000; // inside the 35-day de-duplication horizon: every payout stays remembered
  for (let i = 0; i < PAYOUTS; i += 50_000) {
    const chunk: PayoutEvent[] = [];
    for (let j = i; j < Math.min(PAYOUTS, i + 50_000); j++) {
      const m = rng.int(0, MERCHANTS - 1);
      chunk.push({
        event_id: `${RUN}-p${j}`,
        merchant_id: `${RUN}-m${m}`,
        payout_id: `${RUN}-p${j}`,
        type: 'SCHEDULED',
        gross_amount_minor: rng.int(1000, 500_000),
        withheld_minor: null,
        currency: 'USD',
        occurred_at: t0 + 3_600_000 + Math.floor((j / PAYOUTS) * span),
      });
    }
    await produce(
      IN,
      codec,
      chunk.map((p) => ({ topic: TOPICS.payouts, key: p.merchant_id, value: p })),
      5000,
    );
  }

  console.log("Kafka's ConsumerPerformance on the payouts topic (the read ceiling)...");
  const ceilingRead = consumerPerformance(IN + TOPICS.payouts, PAYOUTS, `${RUN}-perf`, 120_000);

  const runs: Drain[] = [];
  let reference: Map<Key, string> | undefined;
  const engines: Array<{ name: string; app: string; child: () => ChildProcess }> = [
    ...TRANSPORTS.map((t) => {
      const app = `${RUN}-holdback-${t}`;
      return { name: `holdback ${t}`, app, child: holdbackChild(app, `${app}.`, t) };
    }),
    ...PEER_THREADS.map((n) => {
      const app = `${RUN}-streams-${n}`;
      return {
        name: `kafka streams ${n} thread${n > 1 ? 's' : ''}`,
        app,
        child: peerChild(app, `${app}.`, n),
      };
    }),
  ];
  try {
    for (const e of engines) {
      await createTopics(`${e.app}.`);
      console.log(`draining with ${e.name}...`);
      const figures = await drain(e.name, e.app, e.child);
      const deductions = (await readAll(`${e.app}.`, TOPICS.deductions, codec)) as Deduction[];
      const mine = new Map(deductions.map((d) => [keyOf(d), valueOf(d)]));
      const differences: string[] = [];
      if (reference) {
        for (const [k, v] of reference)
          if (mine.get(k) !== v) differences.push(`${k}: ${v} vs ${mine.get(k) ?? 'none'}`);
        for (const k of mine.keys()) if (!reference.has(k)) differences.push(`${k}: none vs ${mine.get(k)}`);
      } else reference = mine;
      const run: Drain = {
        ...figures,
        deductions: deductions.length,
        equalToHoldback: runs.length === 0 ? null : differences.length === 0,
        differences: differences.slice(0, 10),
      };
      runs.push(run);
      console.log(JSON.stringify(run));
    }
  } finally {
    // Each engine's outputs (`<app>.`) and internal topics (`<app>-`: changelogs, clock, Kafka Streams' own).
    for (const e of engines) {
      await deleteTopics(`${e.app}.`).catch(() => undefined);
      await deleteTopics(`${e.app}-`).catch(() => undefined);
    }
    await deleteTopics(IN).catch(() => undefined);
    rmSync(join(REPO_ROOT, '.holdback', 'peer-state'), { recursive: true, force: true });
  }

  const best = (prefix: string): number =>
    Math.max(0, ...runs.filter((r) => r.engine.startsWith(prefix)).map((r) => r.steadyPayoutsPerSec));
  const result = {
    run: RUN,
    date: new Date().toISOString(),
    machine: machine(),
    kafka: kafkaSetup(endpoints),
    merchants: MERCHANTS,
    payouts: PAYOUTS,
    ceiling: { consumerPerformanceRecordsPerSec: ceilingRead },
    runs,
    holdbackOverPeer:
      PEER_THREADS.length === 0
        ? null
        : Math.round((best('holdback') / Math.max(1, best('kafka streams'))) * 100) / 100,
  };
  console.log('\nengine                      payouts/s (whole, steady)   cores   peak RSS   equal');
  for (const r of runs)
    console.log(
      `${r.engine.padEnd(28)}${String(r.payoutsPerSec).padStart(9)} ${String(r.steadyPayoutsPerSec).padStart(9)}   ${String(r.cores).padStart(5)}   ${String(r.peakRssMb).padStart(5)} MB   ${r.equalToHoldback ?? 'reference'}`,
    );
  console.log(
    `ConsumerPerformance: ${Math.round(ceilingRead)} records/s; Holdback / Kafka Streams (steady): ${result.holdbackOverPeer}`,
  );
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'peer.json'), `${JSON.stringify(result, null, 2)}\n`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
