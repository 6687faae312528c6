/**
 * The whole pipeline on the real local stack (issue 9): simulated marketplace traffic produced as
 * fast as the simulator can (or at a given rate) for a sustained period into repayment and
 * eligibility (exactly-once, 100 ms commits) and the ClickHouse sink, all on the same two cores
 * as the broker, the registry and ClickHouse. In the same run, on the same broker, with the same
 * partition count and record size, Kafka's own ProducerPerformance and ConsumerPerformance give
 * the ceiling, and the pipeline's rate is reported as a ratio of it.
 *
 *   npx tsx bench/pipeline.bench.ts [seconds=60] [rate=100000] [merchants=2000] [transport=kafkajs] [live|backlog|replay]
 *
 * replay (issue 16): a load generator that is not the bottleneck (bench/replay.ts). The simulator
 * writes rate x seconds records into staging topics first; their bytes are loaded into memory and
 * replayed at `rate` while the pipeline runs, and each consumer group's lag on the inputs is
 * sampled every 2 s: the pipeline keeps up when no group is more than 10 s of input behind at the
 * end (eligibility waits, by design, for repayment's loan states of the same event time, and
 * commits every 100 ms: a lag of a few seconds of input is its steady state, not a backlog).
 *
 * Figures: input records/s produced; end-to-end records/s (every input record decided by both
 * processors and its row in ClickHouse, from the first record to the moment all three are idle);
 * each processor's fetch-to-commit p50/p99 (Holdback's own latency; the simulator's record
 * timestamps are simulated time, so record-to-output is measured by bench/repayment.bench.ts on
 * the wall clock); RSS and heap per process. Saves bench/results/pipeline[-<transport>].json.
 * Needs `holdback stack up` and `npm run build`; `npm run bench` does both.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';
import { migrate } from '../connectors/clickhouse/migrate';
import { createTopicsReady } from '../connectors/kafka-admin';
import type { Admin } from 'kafkajs';
import { simulate } from '../simulator';
import { INPUT_TOPICS } from '../simulator/marketplace';
import { REPO_ROOT } from '../stack/paths';
import { createTopics, deleteTopics, endpoints, kafkaClient } from '../test/harness/kafka';
import { consumerPerformance, kafkaTool, rssMb } from './kafka-tools';
import { machine } from './machine';
import { load, replay, replayOrder, stage } from './replay';

const SECONDS = Number(process.argv[2] ?? 60);
const RATE = Number(process.argv[3] ?? 100_000);
const MERCHANTS = Number(process.argv[4] ?? 2000);
const TRANSPORT = process.argv[5] ?? 'kafkajs';
/**
 * live: the processors run while the simulator produces (they share the cores with it);
 * backlog: everything is produced first, then the processors and the sink start and the time to
 * drain it is their capacity on their own.
 */
const MODE = (process.argv[6] ?? 'live') as 'live' | 'backlog' | 'replay';
if (!['live', 'backlog', 'replay'].includes(MODE))
  throw new Error(`mode must be live, backlog or replay, not ${MODE}`);
const RUN = `bench-pipe-${Date.now().toString(36)}`;
const PREFIX = `${RUN}.`;
const DATABASE = RUN.replace(/-/g, '_');
const PORTS = { repayment: 19111, eligibility: 19112, sink: 19113 } as const;
type Name = keyof typeof PORTS;

const STAGE = `${RUN}-stage.`;
/** The three consumer groups, in the order of PORTS. */
const GROUP_NAMES = ['repayment', 'eligibility', 'sink'] as const;
const GROUPS = [`${RUN}-repayment`, `${RUN}-eligibility`, `holdback-clickhouse-${DATABASE}`];
/** The input topics each group reads (repayment: loans and payouts; the others: all four). */
const GROUP_INPUTS = [['lending.loans.v1', 'marketplace.payouts.v1'], INPUT_TOPICS, INPUT_TOPICS].map((ts) =>
  ts.map((t) => PREFIX + t),
);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Each group's lag on its input topics (end offsets minus committed offsets), sampled while the
 * replay runs. A group keeps up when its lag at the end is at most 10 s of input.
 */
class LagSampler {
  private readonly samples: Array<{ atMs: number; lags: number[] }> = [];

  constructor(
    private readonly admin: Admin,
    private readonly rate: number,
  ) {}

  async sample(atMs: number): Promise<number[]> {
    const ends = new Map<string, number>();
    for (const topic of INPUT_TOPICS.map((t) => PREFIX + t))
      for (const p of await this.admin.fetchTopicOffsets(topic))
        ends.set(`${topic}/${p.partition}`, Number(p.high));
    const lags = await Promise.all(
      GROUPS.map(async (groupId, g) => {
        const committed = await this.admin.fetchOffsets({ groupId, topics: GROUP_INPUTS[g]! });
        let lag = 0;
        for (const t of committed)
          for (const p of t.partitions)
            lag += (ends.get(`${t.topic}/${p.partition}`) ?? 0) - Math.max(0, Number(p.offset));
        return lag;
      }),
    );
    this.samples.push({ atMs, lags });
    return lags;
  }

  report(): {
    everyMs: number;
    max: number[];
    atEnd: number[];
    keptUp: boolean;
    samples: Array<{ atMs: number; lags: number[] }>;
  } {
    const max = GROUPS.map((_, g) => Math.max(0, ...this.samples.map((s) => s.lags[g]!)));
    const atEnd = this.samples.at(-1)?.lags ?? GROUPS.map(() => NaN);
    return {
      everyMs: 2000,
      max,
      atEnd,
      keptUp: atEnd.every((l) => l <= 10 * this.rate),
      samples: this.samples,
    };
  }
}

function start(name: Name, args: string[]): ChildProcess {
  const dir = join(REPO_ROOT, '.holdback', 'test-logs');
  mkdirSync(dir, { recursive: true });
  const out = openSync(join(dir, `${RUN}-${name}.log`), 'a');
  return spawn(process.execPath, [join(REPO_ROOT, 'bin', 'holdback'), ...args], {
    stdio: ['ignore', out, out],
  });
}

async function scrape(port: number): Promise<string> {
  try {
    return await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  } catch {
    return '';
  }
}

function sum(text: string, name: string): number {
  let s = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const c = line[name.length];
    if (c === ' ' || c === '{') s += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return s;
}

/** A quantile from a prom-client histogram's cumulative buckets (linear within the bucket). */
function quantile(text: string, name: string, q: number): number | null {
  const buckets: Array<[number, number]> = [];
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}_bucket\\{.*le="([^"]+)".*\\} (\\S+)$`).exec(line);
    if (m) buckets.push([m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
  }
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total === 0) return null;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of buckets) {
    if (count >= q * total) {
      if (le === Infinity) return prevLe;
      return prevLe + ((le - prevLe) * (q * total - prevCount)) / Math.max(1, count - prevCount);
    }
    [prevLe, prevCount] = [le, count];
  }
  return prevLe;
}

/** Bytes per input record on disk (Kafka's log sizes of the four input topics / records produced). */
function averageRecordBytes(records: number): number {
  const topics = [
    'marketplace.orders.v1',
    'marketplace.sales.v1',
    'marketplace.payouts.v1',
    'lending.loans.v1',
  ];
  const out = kafkaTool('LogDirsCommand', [
    '--bootstrap-server',
    endpoints.kafkaBrokers[0]!,
    '--describe',
    '--topic-list',
    topics.map((t) => PREFIX + t).join(','),
  ]);
  const json = out.split('\n').find((l) => l.startsWith('{'));
  if (!json) return 120;
  const dirs = (
    JSON.parse(json) as { brokers: Array<{ logDirs: Array<{ partitions: Array<{ size: number }> }> }> }
  ).brokers;
  const bytes = dirs.flatMap((b) => b.logDirs.flatMap((d) => d.partitions)).reduce((n, p) => n + p.size, 0);
  return Math.max(1, Math.round(bytes / Math.max(1, records)));
}

async function ceiling(recordSize: number, records: number): Promise<{ produce: number; consume: number }> {
  const topic = `${PREFIX}perf`;
  const admin = kafkaClient().admin();
  await admin.connect();
  await createTopicsReady(admin, [{ topic, numPartitions: endpoints.partitions, replicationFactor: 1 }]);
  await admin.disconnect();
  const p = kafkaTool('ProducerPerformance', [
    '--topic',
    topic,
    '--num-records',
    String(records),
    '--record-size',
    String(recordSize),
    '--throughput',
    '-1',
    '--producer-props',
    `bootstrap.servers=${endpoints.kafkaBrokers[0]}`,
    'acks=all',
    'linger.ms=5',
    'batch.size=65536',
  ]);
  const produce = Number(/([\d.]+) records\/sec/.exec(p.trim().split('\n').at(-1) ?? '')?.[1] ?? NaN);
  const consume = consumerPerformance(topic, records, `${RUN}-perf`, 60_000);
  return { produce, consume };
}

async function main(): Promise<void> {
  console.log(
    `pipeline benchmark ${RUN}: ${SECONDS}s, up to ${RATE}/s, ${MERCHANTS} merchants, ${TRANSPORT}`,
  );
  await createTopics(PREFIX);
  const ch = createClient({ url: endpoints.clickhouseUrl });
  await migrate(ch, DATABASE, undefined, () => undefined);
  const common = [`--topic-prefix=${PREFIX}`, '--clock=stream', `--transport=${TRANSPORT}`];
  const startAll = (): Record<Name, ChildProcess> => ({
    repayment: start('repayment', [
      'run',
      'repayment',
      ...common,
      `--application-id=${RUN}-repayment`,
      `--metrics-port=${PORTS.repayment}`,
    ]),
    eligibility: start('eligibility', [
      'run',
      'eligibility',
      ...common,
      `--application-id=${RUN}-eligibility`,
      `--metrics-port=${PORTS.eligibility}`,
    ]),
    sink: start('sink', [
      'clickhouse',
      'sink',
      `--topic-prefix=${PREFIX}`,
      `--database=${DATABASE}`,
      `--metrics-port=${PORTS.sink}`,
    ]),
  });
  const produce = () =>
    simulate(
      {
        merchants: MERCHANTS,
        rate: RATE,
        duration: SECONDS,
        seed: 7,
        speed: `120d/${SECONDS}s`,
        start: '120d',
        topicPrefix: PREFIX,
        failRate: 0.02,
      },
      {
        onProgress: (p) =>
          process.stdout.write(
            `\r  ${Math.round(p.elapsedMs / 1000)}s produced ${p.produced} (${Math.round(p.recordsPerSec)}/s)   `,
          ),
      },
    );
  let procs: Partial<Record<Name, ChildProcess>> = {};
  const healthy = async (): Promise<void> => {
    for (let i = 0; ; i++) {
      const ok = await Promise.all(
        Object.values(PORTS).map((p) =>
          fetch(`http://127.0.0.1:${p}/health`).then(
            (r) => r.ok,
            () => false,
          ),
        ),
      );
      if (ok.every(Boolean)) return;
      if (i > 120)
        throw new Error(`processes not healthy after 60 s; logs in .holdback/test-logs/${RUN}-*.log`);
      await sleep(500);
    }
  };
  const admin = kafkaClient(`${RUN}-lag`).admin();
  await admin.connect();
  try {
    let t0: number;
    let summary: { produced: number; wallSeconds: number; recordsPerSec: number };
    let generator: Record<string, number> | undefined;
    let lag: ReturnType<LagSampler['report']> | undefined;
    if (MODE === 'backlog') {
      console.log('producing the backlog (no processor running)...');
      summary = await produce();
      console.log(`\nproduced ${summary.produced}; starting the processors and the sink on it`);
      t0 = Date.now();
      procs = startAll();
    } else if (MODE === 'replay') {
      const wanted = RATE * SECONDS;
      console.log(`staging ${wanted} records with the simulator (nothing else running)...`);
      const staging = await stage(STAGE, wanted, MERCHANTS, (n, perSec) =>
        process.stdout.write(`\r  staged ${n} (${Math.round(perSec)}/s)   `),
      );
      console.log(`\nloading the staged records' bytes into memory...`);
      const loadStarted = Date.now();
      const staged = await load(STAGE, endpoints.partitions);
      const order = replayOrder(staged);
      const loadSeconds = (Date.now() - loadStarted) / 1000;
      await deleteTopics(STAGE).catch(() => undefined);
      console.log(`loaded ${staged.length} records in ${loadSeconds.toFixed(1)} s; starting the pipeline`);
      procs = startAll();
      await healthy();
      const sampler = new LagSampler(admin, RATE);
      let sampledAt = 0;
      console.log(`replaying at ${RATE}/s for ${SECONDS} s...`);
      t0 = Date.now();
      const r = await replay(staged, order, PREFIX, RATE, SECONDS, async (produced, elapsedMs) => {
        if (elapsedMs - sampledAt < 2000) return;
        sampledAt = elapsedMs;
        const lags = await sampler.sample(elapsedMs);
        process.stdout.write(
          `\r  ${Math.round(elapsedMs / 1000)}s replayed ${produced}; lag ${lags.map((l, i) => `${GROUP_NAMES[i]} ${l}`).join(', ')}   `,
        );
      });
      lag = sampler.report();
      summary = { produced: r.produced, wallSeconds: r.seconds, recordsPerSec: r.recordsPerSec };
      generator = {
        stagedRecords: staging.produced,
        stagedMerchants: staging.merchants,
        stageSeconds: Math.round(staging.seconds),
        loadSeconds: Math.round(loadSeconds),
        replayedPerSecond: r.recordsPerSec,
        cpuSeconds: r.cpuSeconds,
        cores: Math.round((r.cpuSeconds / r.seconds) * 100) / 100,
      };
    } else {
      procs = startAll();
      await healthy();
      console.log('producing...');
      t0 = Date.now();
      summary = await produce();
    }
    const producedAt = Date.now();
    console.log(
      `\nproduced ${summary.produced} in ${summary.wallSeconds.toFixed(1)} s; waiting for the pipeline to drain...`,
    );
    let last = '';
    let quietSince = Date.now();
    let lastChangeAt = Date.now();
    while (Date.now() - quietSince < 5000) {
      const texts = await Promise.all(Object.values(PORTS).map(scrape));
      const key = JSON.stringify([
        sum(texts[0]!, 'holdback_records_in_total'),
        sum(texts[1]!, 'holdback_records_in_total'),
        sum(texts[2]!, 'holdback_clickhouse_rows_inserted_total'),
      ]);
      if (key !== last) [last, quietSince, lastChangeAt] = [key, Date.now(), Date.now()];
      if (key === '[0,0,0]') quietSince = Date.now(); // not started yet (backlog mode)
      if (Date.now() - producedAt > 600_000) throw new Error('the pipeline did not drain within 10 minutes');
      await sleep(250);
    }
    const drainedAt = lastChangeAt;
    const texts = Object.fromEntries(
      await Promise.all(
        (Object.keys(PORTS) as Name[]).map(async (n) => [n, await scrape(PORTS[n])] as const),
      ),
    ) as Record<Name, string>;
    const proc = (n: Name, latency: string | null) => ({
      recordsIn:
        n === 'sink'
          ? sum(texts[n], 'holdback_clickhouse_rows_inserted_total')
          : sum(texts[n], 'holdback_records_in_total'),
      fetchToCommitMs: latency
        ? {
            p50: Math.round((quantile(texts[n], latency, 0.5) ?? NaN) * 1000),
            p99: Math.round((quantile(texts[n], latency, 0.99) ?? NaN) * 1000),
          }
        : null,
      rssMb: rssMb(procs[n]?.pid),
      heapUsedMb:
        Math.round(
          sum(
            texts[n],
            n === 'sink'
              ? 'holdback_clickhouse_sink_nodejs_heap_size_used_bytes'
              : 'holdback_process_nodejs_heap_size_used_bytes',
          ) /
            2 ** 20,
        ) || null,
    });
    const recordSize = averageRecordBytes(summary.produced);
    console.log(
      "measuring the ceiling with Kafka's own perf tools (same broker, partitions, record size)...",
    );
    const roof = await ceiling(recordSize, 2_000_000);
    const endToEnd = summary.produced / ((drainedAt - t0) / 1000);
    const result = {
      benchmark: 'pipeline',
      date: new Date().toISOString(),
      machine: machine(),
      setup: {
        mode: MODE,
        transport: TRANSPORT,
        guarantee: 'exactly_once',
        commitIntervalMs: 100,
        partitions: endpoints.partitions,
        merchants: MERCHANTS,
        seconds: SECONDS,
        targetRate: RATE,
        clock: 'stream',
      },
      producedRecords: summary.produced,
      producedPerSecond: Math.round(summary.recordsPerSec),
      endToEndPerSecond: Math.round(endToEnd),
      drainSecondsAfterProducing: Math.round((drainedAt - producedAt) / 100) / 10,
      processes: {
        repayment: proc('repayment', 'holdback_fetch_to_commit_seconds'),
        eligibility: proc('eligibility', 'holdback_fetch_to_commit_seconds'),
        sink: proc('sink', null),
      },
      ceiling: {
        recordSizeBytes: recordSize,
        kafkaProducerPerfPerSecond: Math.round(roof.produce),
        kafkaConsumerPerfPerSecond: Math.round(roof.consume),
      },
      ratioToConsumerCeiling: Math.round((endToEnd / roof.consume) * 1000) / 1000,
      ...(generator ? { generator, lag } : {}),
    };
    const replayRows =
      generator && lag
        ? {
            'generator: replayed (records/s), its cores': `${generator.replayedPerSecond}, ${generator.cores}`,
            ...Object.fromEntries(
              GROUP_NAMES.map((g, i) => [
                `lag of ${g}: max / at the end of the replay (records)`,
                `${lag.max[i]} / ${lag.atEnd[i]}`,
              ]),
            ),
            'every group kept up (lag at the end <= 10 s of input)': lag.keptUp,
          }
        : {};
    console.table({
      ...replayRows,
      'input produced (records/s)': result.producedPerSecond,
      'end to end, drained (records/s)': result.endToEndPerSecond,
      'drain after producing stopped (s)': result.drainSecondsAfterProducing,
      'repayment fetch->commit p50/p99 (ms)': `${result.processes.repayment.fetchToCommitMs?.p50} / ${result.processes.repayment.fetchToCommitMs?.p99}`,
      'eligibility fetch->commit p50/p99 (ms)': `${result.processes.eligibility.fetchToCommitMs?.p50} / ${result.processes.eligibility.fetchToCommitMs?.p99}`,
      'RSS repayment / eligibility / sink (MB)': `${result.processes.repayment.rssMb} / ${result.processes.eligibility.rssMb} / ${result.processes.sink.rssMb}`,
      'kafka producer perf (records/s)': result.ceiling.kafkaProducerPerfPerSecond,
      'kafka consumer perf (records/s)': result.ceiling.kafkaConsumerPerfPerSecond,
      'end to end / consumer perf': result.ratioToConsumerCeiling,
    });
    const dir = join(REPO_ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    const file = join(
      dir,
      `pipeline${MODE === 'live' ? '' : `-${MODE}`}${TRANSPORT === 'kafkajs' ? '' : `-${TRANSPORT}`}.json`,
    );
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`saved ${file}`);
  } finally {
    await admin.disconnect();
    for (const p of Object.values(procs)) p.kill('SIGTERM');
    await sleep(3000);
    for (const p of Object.values(procs)) if (p.exitCode === null) p.kill('SIGKILL');
    await ch.command({ query: `DROP DATABASE IF EXISTS ${DATABASE}` }).catch(() => undefined);
    await ch.close();
    await deleteTopics(PREFIX, [
      `${RUN}-repayment-state-changelog`,
      `${RUN}-eligibility-state-changelog`,
    ]).catch(() => undefined);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
