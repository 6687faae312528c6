/**
 * What the backlog benchmarks share (bench/peer.bench.ts, bench/scaling.bench.ts): the repayment
 * workload (M merchants with one FUNDED loan each, then P SCHEDULED payouts spread over 20 days),
 * `holdback run repayment` spawned as the harness spawns it, and the drain measurement: run one or
 * more processes of an engine until its consumer group has committed every input record.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { LoanEvent, PayoutEvent } from '../schemas/generated/types';
import { TOPICS } from '../schemas/topics';
import { REPO_ROOT, runDir } from '../stack/paths';
import { connections, kafkaClient, produce, type registeredCodec } from '../test/harness/kafka';
import { spawnHoldback } from '../test/harness/processes';
import { Rng } from '../test/harness/random';
import { rssMb } from './kafka-tools';

export const LOG_DIR = join(REPO_ROOT, '.holdback', 'test-logs');

/** One engine's drain of the backlog. */
export interface Drain {
  engine: string;
  /** Over the whole drain, from the processes' start (restore and group join included). */
  payoutsPerSec: number;
  /** Over the middle of the drain, from 10% to 90% of the input committed (steady state). */
  steadyPayoutsPerSec: number;
  seconds: number;
  /** utime + stime of every process of the engine (/proc). */
  cpuSeconds: number;
  cores: number;
  /** The highest sum of the processes' RSS seen (sampled every 500 ms). */
  peakRssMb: number | null;
}

/** utime + stime of a process and its threads, in seconds (/proc/<pid>/stat, clock ticks of 100 Hz). */
export function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

type Admin = ReturnType<ReturnType<typeof kafkaClient>['admin']>;

/** The repayment inputs under `prefix`: loans and payouts, co-partitioned. */
export const repaymentInputs = (prefix: string): string[] => [
  prefix + TOPICS.loanEvents,
  prefix + TOPICS.payouts,
];

/** The input records a group has committed, over `topics`. */
async function committed(admin: Admin, groupId: string, topics: string[]): Promise<number> {
  const offsets = await admin.fetchOffsets({ groupId, topics });
  return offsets.flatMap((t) => t.partitions).reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
}

async function endOf(admin: Admin, topics: string[]): Promise<number> {
  let n = 0;
  for (const t of topics) for (const p of await admin.fetchTopicOffsets(t)) n += Number(p.high);
  return n;
}

/**
 * Runs the processes `start` spawns until group `groupId` has committed every record of
 * `inputs`, then stops them (SIGTERM, SIGKILL after 30 s); `payouts` of the records are payouts.
 */
export async function drain(
  engine: string,
  groupId: string,
  inputs: string[],
  payouts: number,
  start: () => ChildProcess[],
): Promise<Drain> {
  // One admin connection for the whole drain: it is asked every 500 ms.
  const admin = kafkaClient('bench-drain-offsets').admin();
  await admin.connect();
  const end = await endOf(admin, inputs);
  const t0 = Date.now();
  const procs = start();
  const exited = procs.map((p) => new Promise<void>((r) => p.on('exit', () => r())));
  const cpu = new Map<number, number>();
  let peak: number | null = null;
  let done = 0;
  let t10 = 0;
  let t90 = 0;
  try {
    for (;;) {
      await new Promise((r) => setTimeout(r, 500));
      const dead = procs.find((p) => p.exitCode !== null);
      if (dead) throw new Error(`${engine}: a process exited with ${dead.exitCode}; see ${LOG_DIR}/`);
      const rss = procs.map((p) => rssMb(p.pid));
      if (rss.every((r) => r !== null))
        peak = Math.max(
          peak ?? 0,
          rss.reduce((a, b) => a! + b!, 0)!,
        );
      for (const p of procs) {
        const c = cpuSeconds(p.pid);
        if (!Number.isNaN(c)) cpu.set(p.pid!, c);
      }
      done = await committed(admin, groupId, inputs).catch(() => done);
      const now = Date.now();
      if (!t10 && done >= end * 0.1) t10 = now;
      if (!t90 && done >= end * 0.9) t90 = now;
      if (done >= end) break;
      if (now - t0 > 1_800_000) throw new Error(`${engine} did not drain in 30 minutes (${done}/${end})`);
    }
  } finally {
    for (const p of procs) p.kill('SIGTERM');
    const timer = setTimeout(() => procs.forEach((p) => p.kill('SIGKILL')), 30_000);
    await Promise.all(exited);
    clearTimeout(timer);
    await admin.disconnect();
  }
  const seconds = (Date.now() - t0) / 1000;
  const steady = (t90 - t10) / 1000;
  const cpuTotal = [...cpu.values()].reduce((a, b) => a + b, 0);
  return {
    engine,
    payoutsPerSec: Math.round(payouts / seconds),
    // Inputs are loans and payouts; the middle 80% of a payout backlog is payouts.
    steadyPayoutsPerSec: Math.round((0.8 * end) / Math.max(0.001, steady)),
    seconds: Math.round(seconds * 10) / 10,
    cpuSeconds: Math.round(cpuTotal * 10) / 10,
    cores: Math.round((cpuTotal / seconds) * 100) / 100,
    peakRssMb: peak,
  };
}

/** `holdback run repayment` as the harness spawns it (its log, and BENCH_PROFILE_DIR's CPU profile). */
export function holdbackRepayment(
  app: string,
  inputPrefix: string,
  outputPrefix: string,
  transport: string,
  instance = 0,
): ChildProcess {
  return spawnHoldback(instance === 0 ? app : `${app}-${instance}`, [
    'run',
    'repayment',
    `--topic-prefix=${inputPrefix}`,
    `--application-id=${app}`,
    `--transport=${transport}`,
    // Outputs under their own prefix, so that each engine's deductions can be read alone.
    `--output-prefix=${outputPrefix}`,
    // Each instance its own metrics port (0: any free one).
    '--metrics-port=0',
    ...RUN_ARGS,
  ]).child;
}

/** Extra `holdback run` flags for every Holdback run, e.g. BENCH_RUN_ARGS='--compression=lz4'. */
export const RUN_ARGS = (process.env['BENCH_RUN_ARGS'] ?? '').split(' ').filter(Boolean);

/**
 * Bytes of the log segments (`.log`; the index files are preallocated) on the local broker's disk
 * of every topic whose name starts with one of `prefixes`: what an engine's outputs and
 * changelogs cost to keep. The one-node local stack only (runDir('kafka')/data).
 */
export function topicBytes(prefixes: readonly string[]): number {
  const data = join(runDir('kafka'), 'data');
  let bytes = 0;
  for (const dir of readdirSync(data)) {
    if (!prefixes.some((p) => dir.startsWith(p))) continue;
    for (const f of readdirSync(join(data, dir)))
      if (f.endsWith('.log')) bytes += statSync(join(data, dir, f)).size;
  }
  return bytes;
}

export const PEER_JAR = join(REPO_ROOT, 'bench', 'peer', 'target', 'repayment-peer.jar');

/**
 * The Kafka Streams peer of the repayment processor (bench/peer) on `threads` stream threads,
 * logging to `<app>.log`; its RocksDB state under .holdback/peer-state/<app>.
 */
export function peerRepayment(
  app: string,
  inputPrefix: string,
  outputPrefix: string,
  threads: number,
): ChildProcess {
  mkdirSync(LOG_DIR, { recursive: true });
  const log = openSync(join(LOG_DIR, `${app}.log`), 'a');
  return spawn(
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
      inputPrefix,
      '--output-prefix',
      outputPrefix,
      '--application-id',
      app,
      '--threads',
      String(threads),
      '--state-dir',
      join(REPO_ROOT, '.holdback', 'peer-state', app),
    ],
    { stdio: ['ignore', log, log] },
  );
}

/**
 * The repayment backlog under `prefix` (its topics must exist): `merchants` FUNDED loans funded 25
 * days ago, then `payouts` SCHEDULED payouts to random merchants over the 20 days after.
 * No 30-day period ends before the run (the peer has no timers; Holdback would tick every merchant
 * at its period end), and every payout stays inside the 35-day de-duplication horizon of the wall
 * clock both engines run by.
 */
export async function produceRepaymentBacklog(
  prefix: string,
  codec: Awaited<ReturnType<typeof registeredCodec>>,
  merchants: number,
  payouts: number,
  log: (line: string) => void = console.log,
): Promise<void> {
  const run = prefix.replace(/\.$/, '');
  const rng = new Rng(16);
  const t0 = Date.now() - 25 * 86_400_000;
  log(`producing ${merchants} loans...`);
  for (let i = 0; i < merchants; i += 50_000) {
    const chunk: LoanEvent[] = [];
    for (let j = i; j < Math.min(merchants, i + 50_000); j++) {
      chunk.push({
        event_id: `${run}-f${j}`,
        loan_id: `${run}-loan${j}`,
        merchant_id: `${run}-m${j}`,
        type: 'FUNDED',
        occurred_at: t0,
        principal_minor: 10_000_000,
        fee_minor: 1_000_000,
        holdback_rate_bps: rng.pick([500, 1000, 1500]),
        minimum_payment_minor: 0,
        period_days: 30,
        currency: 'USD',
      });
    }
    await produce(
      prefix,
      codec,
      chunk.map((l) => ({ topic: TOPICS.loanEvents, key: l.merchant_id, value: l })),
      5000,
    );
  }
  log(`producing ${payouts} payouts...`);
  const span = 20 * 86_400_000;
  for (let i = 0; i < payouts; i += 50_000) {
    const chunk: PayoutEvent[] = [];
    for (let j = i; j < Math.min(payouts, i + 50_000); j++) {
      const m = rng.int(0, merchants - 1);
      chunk.push({
        event_id: `${run}-p${j}`,
        merchant_id: `${run}-m${m}`,
        payout_id: `${run}-p${j}`,
        type: 'SCHEDULED',
        gross_amount_minor: rng.int(1000, 500_000),
        withheld_minor: null,
        currency: 'USD',
        occurred_at: t0 + 3_600_000 + Math.floor((j / payouts) * span),
      });
    }
    await produce(
      prefix,
      codec,
      chunk.map((p) => ({ topic: TOPICS.payouts, key: p.merchant_id, value: p })),
      5000,
    );
  }
}
