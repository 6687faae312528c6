/**
 * Repayment alone against a Kafka Streams peer of the same rules (issue 16), on the same broker in
 * the same run: M merchants with one FUNDED loan each, then a backlog of P SCHEDULED payouts, and
 * each engine drains it from the beginning under its own application id, exactly-once, 100 ms
 * commits:
 *
 * - Holdback: `holdback run repayment` on each transport given, one instance, and (`rdkafka*2`)
 *   two instances in one group: Holdback uses a second core as Kafka Streams does, by another
 *   member of the group (an instance), where Kafka Streams adds a stream thread;
 * - the peer: bench/peer (Kafka Streams 4.4, exactly_once_v2, RocksDB), on 1 and 2 stream threads.
 *
 * Drained = the group's committed offsets reach the end of both input topics. Reported per run:
 * payouts/s over the whole drain (from the process's start) and over its middle 10%-90% (steady
 * state), CPU seconds and cores used (/proc), peak RSS. Kafka's ConsumerPerformance on the same
 * payouts topic is the read ceiling. Every deduction of every engine is compared with Holdback's
 * first run (payout, loan, amount, balance after): the outputs must be equal.
 *
 *   npx tsx bench/peer.bench.ts [merchants, default 20000] [payouts, default 1000000]
 *     [Holdback runs, default kafkajs,rdkafka,rdkafka*2: a transport, `*N` for N instances in one group]
 *
 * PEER_THREADS=1,2 (the default) chooses the peer's runs; `PEER_THREADS=` runs Holdback alone.
 * BENCH_PROFILE_DIR=<dir> writes a CPU profile of each Holdback run there (test/harness/processes.ts);
 * BENCH_RUN_ARGS adds `holdback run` flags to every Holdback run (e.g. '--compression=lz4').
 *
 * Needs `holdback stack up`, a build (`npm run build`) and the peer's jar
 * (`mvn -q -f bench/peer/pom.xml package`); `npm run bench` does all three. Saves
 * bench/results/peer.json (peer-alone-<flags>.json without the peer or with BENCH_RUN_ARGS). A report, not a test: nothing fails on a slow machine.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Deduction } from '../schemas/generated/types';
import { TOPICS } from '../schemas/topics';
import { REPO_ROOT } from '../stack/paths';
import { createTopics, deleteTopics, endpoints, readAll, registeredCodec } from '../test/harness/kafka';
import {
  drain,
  holdbackRepayment,
  peerRepayment,
  produceRepaymentBacklog,
  RUN_ARGS,
  topicBytes,
  repaymentInputs,
  type Drain,
} from './backlog';
import { consumerPerformance } from './kafka-tools';
import { kafkaSetup, machine } from './machine';

const MERCHANTS = Number(process.argv[2] ?? 20_000);
const PAYOUTS = Number(process.argv[3] ?? 1_000_000);
const TRANSPORTS = (process.argv[4] ?? 'kafkajs,rdkafka,rdkafka*2').split(',').filter(Boolean);
/** The peer's stream-thread counts to run (`PEER_THREADS=` runs no peer: Holdback alone, to profile it). */
const PEER_THREADS = (process.env.PEER_THREADS ?? '1,2').split(',').filter(Boolean).map(Number);
const RUN = `bench-peer-${Date.now().toString(36)}`;
const IN = `${RUN}.`;

interface Run extends Drain {
  /** Holdback instances, or Kafka Streams threads: what a ratio compares like for like. */
  parallelism: number;
  /** On the broker's disk after the drain: the engine's outputs and internal topics (changelogs). */
  topicBytes: number;
  deductions: number;
  equalToHoldback: boolean | null;
  differences: string[];
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
  await produceRepaymentBacklog(IN, codec, MERCHANTS, PAYOUTS);

  console.log("Kafka's ConsumerPerformance on the payouts topic (the read ceiling)...");
  const ceilingRead = consumerPerformance(IN + TOPICS.payouts, PAYOUTS, `${RUN}-perf`, 120_000);

  const runs: Run[] = [];
  let reference: Map<Key, string> | undefined;
  const engines: Array<{ name: string; app: string; parallelism: number; start: () => ChildProcess[] }> = [
    ...TRANSPORTS.map((spec) => {
      // `rdkafka*2`: two instances (processes) in one group, as Kafka Streams runs two threads.
      const [t, n = '1'] = spec.split('*') as [string, string?];
      const instances = Number(n);
      const app = `${RUN}-holdback-${t}-${instances}`;
      return {
        name: `holdback ${t}${instances > 1 ? ` x${instances} instances` : ''}`,
        app,
        parallelism: instances,
        start: () => Array.from({ length: instances }, (_, i) => holdbackRepayment(app, IN, `${app}.`, t, i)),
      };
    }),
    ...PEER_THREADS.map((n) => {
      const app = `${RUN}-streams-${n}`;
      return {
        name: `kafka streams ${n} thread${n > 1 ? 's' : ''}`,
        app,
        parallelism: n,
        start: () => [peerRepayment(app, IN, `${app}.`, n)],
      };
    }),
  ];
  try {
    for (const e of engines) {
      await createTopics(`${e.app}.`);
      console.log(`draining with ${e.name}...`);
      const figures = await drain(e.name, e.app, repaymentInputs(IN), PAYOUTS, e.start);
      const deductions = (await readAll(`${e.app}.`, TOPICS.deductions, codec)) as Deduction[];
      const mine = new Map(deductions.map((d) => [keyOf(d), valueOf(d)]));
      const differences: string[] = [];
      if (reference) {
        for (const [k, v] of reference)
          if (mine.get(k) !== v) differences.push(`${k}: ${v} vs ${mine.get(k) ?? 'none'}`);
        for (const k of mine.keys()) if (!reference.has(k)) differences.push(`${k}: none vs ${mine.get(k)}`);
      } else reference = mine;
      const run: Run = {
        ...figures,
        parallelism: e.parallelism,
        topicBytes: topicBytes([`${e.app}.`, `${e.app}-`]),
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
  // Like for like: the best Holdback run on n instances against the peer on n stream threads.
  const ratioAt = (n: number): number | null => {
    const peer = runs.find((r) => r.engine.startsWith('kafka streams') && r.parallelism === n);
    const mine = runs.filter((r) => r.engine.startsWith('holdback') && r.parallelism === n);
    if (!peer || mine.length === 0) return null;
    return (
      Math.round((Math.max(...mine.map((r) => r.steadyPayoutsPerSec)) / peer.steadyPayoutsPerSec) * 100) / 100
    );
  };
  const result = {
    run: RUN,
    date: new Date().toISOString(),
    machine: machine(),
    kafka: kafkaSetup(endpoints),
    merchants: MERCHANTS,
    payouts: PAYOUTS,
    holdbackRunArgs: RUN_ARGS,
    ceiling: { consumerPerformanceRecordsPerSec: ceilingRead },
    runs,
    holdbackOverPeer:
      PEER_THREADS.length === 0
        ? null
        : Math.round((best('holdback') / Math.max(1, best('kafka streams'))) * 100) / 100,
    oneInstanceOverOneThread: ratioAt(1),
    twoInstancesOverTwoThreads: ratioAt(2),
  };
  console.log('\nengine                      payouts/s (whole, steady)   cores   peak RSS   equal');
  for (const r of runs)
    console.log(
      `${r.engine.padEnd(28)}${String(r.payoutsPerSec).padStart(9)} ${String(r.steadyPayoutsPerSec).padStart(9)}   ${String(r.cores).padStart(5)}   ${String(r.peakRssMb).padStart(5)} MB   ${r.equalToHoldback ?? 'reference'}`,
    );
  console.log(
    `ConsumerPerformance: ${Math.round(ceilingRead)} records/s; Holdback / Kafka Streams (steady, best of each): ` +
      `${result.holdbackOverPeer}; 1 instance / 1 thread: ${result.oneInstanceOverOneThread}; ` +
      `2 instances / 2 threads: ${result.twoInstancesOverTwoThreads}`,
  );
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  // A run without the peer or with extra flags is saved beside the default one:
  // peer-alone-compression-lz4.json.
  const suffix = [
    ...(PEER_THREADS.length === 0 ? ['alone'] : []),
    ...RUN_ARGS.map((a) => a.replace(/^--/, '').replace(/[^A-Za-z0-9]+/g, '-')),
  ].join('-');
  const file = suffix ? `peer-${suffix}.json` : 'peer.json';
  writeFileSync(join(dir, file), `${JSON.stringify(result, null, 2)}\n`);
  console.log(`saved bench/results/${file}`);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
