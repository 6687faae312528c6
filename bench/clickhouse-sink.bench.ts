/**
 * The ClickHouse sink on the real local stack: records produced at a fixed rate for a sustained
 * period (half deductions, half orders: two tables, one materialized view) into a running
 * `holdback clickhouse sink`; ClickHouse's row count is sampled every second. Reports rows/s
 * durably inserted while producing, the backlog left when producing stops and how fast it
 * drains (the sink's ceiling), the delay from a record's Kafka timestamp to its row being in
 * ClickHouse (second resolution: _inserted_at is a DateTime), and the sink's RSS. Prints and
 * saves bench/results/clickhouse-sink.json.
 *
 *   npx tsx bench/clickhouse-sink.bench.ts [records/s, default 20000] [seconds, default 60]
 *
 * Needs `holdback stack up` and a build (`npm run build`).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';
import type { Message } from 'kafkajs';
import { migrate } from '../connectors/clickhouse/migrate';
import type { Deduction, OrderEvent } from '../schemas/generated/types';
import { TOPICS } from '../schemas/topics';
import { REPO_ROOT } from '../stack/paths';
import { createTopics, deleteTopics, endpoints, kafkaClient, registeredCodec } from '../test/harness/kafka';
import { terminate, type ProcessorProcess } from '../test/harness/processes';
import { machine } from './machine';

const RATE = Number(process.argv[2] ?? 20_000);
const SECONDS = Number(process.argv[3] ?? 60);
const RUN = `bench_ch_${Date.now().toString(36)}`;
const PREFIX = `${RUN}.`;
const DATABASE = RUN;
const MERCHANTS = 10_000;

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : NaN;
  } catch {
    return NaN;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const codec = await registeredCodec();
  const client = createClient({ url: endpoints.clickhouseUrl });
  await createTopics(PREFIX);
  await migrate(client, DATABASE);
  const logDir = join(REPO_ROOT, '.holdback', 'test-logs');
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, `${RUN}.log`);
  const out = openSync(logFile, 'a');
  const child = spawn(
    process.execPath,
    [
      join(REPO_ROOT, 'bin', 'holdback'),
      'clickhouse',
      'sink',
      `--topic-prefix=${PREFIX}`,
      `--database=${DATABASE}`,
    ],
    { stdio: ['ignore', out, out], env: process.env },
  );
  const sink: ProcessorProcess = {
    name: 'sink',
    child,
    logFile,
    exited: new Promise((r) => child.on('exit', (c) => r(c))),
  };
  const count = async (): Promise<number> => {
    const rows = await (
      await client.query({
        query: `SELECT (SELECT count() FROM ${DATABASE}.deductions) + (SELECT count() FROM ${DATABASE}.orders) AS n`,
        format: 'JSONEachRow',
      })
    ).json<{ n: string }>();
    return Number(rows[0]!.n);
  };
  const producer = kafkaClient('bench-ch-producer').producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let rss = 0;
  try {
    await sleep(3000); // the sink joins its group
    const samples: Array<{ t: number; rows: number }> = [];
    let produced = 0;
    const tickMs = 100;
    const perTick = Math.round((RATE * tickMs) / 1000);
    const start = Date.now();
    let next = start;
    const sampler = setInterval(() => {
      void count().then((rows) => samples.push({ t: Date.now() - start, rows }));
      rss = Math.max(rss, rssMb(child.pid!));
    }, 1000);
    while (Date.now() - start < SECONDS * 1000) {
      const now = Date.now();
      const deductions: Message[] = [];
      const orders: Message[] = [];
      for (let i = 0; i < perTick; i++) {
        const n = produced + i;
        const merchant = `${RUN}-m${n % MERCHANTS}`;
        if (n % 2 === 0) {
          const d: Deduction = {
            deduction_id: `${RUN}-d${n}`,
            type: 'WITHHOLD',
            payout_id: `${RUN}-p${n}`,
            loan_id: `${RUN}-l${n % MERCHANTS}`,
            merchant_id: merchant,
            amount_minor: 100 + (n % 5000),
            gross_amount_minor: 100_000,
            holdback_rate_bps: 1000,
            balance_after_minor: 1_000_000,
            currency: 'EUR',
            source_event_id: `${RUN}-e${n}`,
            occurred_at: now,
            decided_at: now,
          };
          deductions.push({ key: merchant, value: codec.encode(TOPICS.deductions, d) });
        } else {
          const o: OrderEvent = {
            event_id: `${RUN}-o${n}`,
            merchant_id: merchant,
            order_id: `${RUN}-o${n}`,
            type: 'PLACED',
            amount_minor: 1000 + (n % 9000),
            currency: 'EUR',
            occurred_at: now,
          };
          orders.push({ key: merchant, value: codec.encode(TOPICS.orders, o) });
        }
      }
      await producer.sendBatch({
        acks: -1,
        topicMessages: [
          { topic: PREFIX + TOPICS.deductions, messages: deductions },
          { topic: PREFIX + TOPICS.orders, messages: orders },
        ],
      });
      produced += perTick;
      next += tickMs;
      const wait = next - Date.now();
      if (wait > 0) await sleep(wait);
    }
    const producedSeconds = (Date.now() - start) / 1000;
    const atStop = await count();
    const stopAt = Date.now();
    // Drain: the backlog left at the end, consumed with no new input: the sink's ceiling.
    let drained = atStop;
    while (drained < produced && Date.now() - stopAt < 300_000) {
      await sleep(500);
      drained = await count();
      rss = Math.max(rss, rssMb(child.pid!));
    }
    const drainSeconds = (Date.now() - stopAt) / 1000;
    clearInterval(sampler);
    // Steady state: from the 10th second to the end of producing.
    const first = samples.find((s) => s.t >= 10_000);
    const last = [...samples].reverse().find((s) => s.t <= producedSeconds * 1000);
    const steady =
      first && last && last.t > first.t
        ? Math.round(((last.rows - first.rows) * 1000) / (last.t - first.t))
        : NaN;
    const delays = await (
      await client.query({
        query: `SELECT quantiles(0.5, 0.99)(toUnixTimestamp(_inserted_at) * 1000 - _timestamp_ms) AS q, max(toUnixTimestamp(_inserted_at) * 1000 - _timestamp_ms) AS mx FROM ${DATABASE}.deductions`,
        format: 'JSONEachRow',
      })
    ).json<{ q: number[]; mx: string }>();
    const result = {
      benchmark: 'clickhouse-sink',
      date: new Date().toISOString(),
      machine: machine(),
      setup: {
        clickhouse: (
          await (
            await client.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' })
          ).json<{ v: string }>()
        )[0]!.v,
        partitions: endpoints.partitions,
        tables: ['deductions (MergeTree + daily_collections MV)', 'orders (ReplacingMergeTree)'],
        sinkOptions: 'defaults: max-batch-rows 20000, max-batch-ms 1000',
        note: 'producer, sink, Kafka and ClickHouse share the same 2 cores',
      },
      targetRecordsPerSecond: RATE,
      seconds: SECONDS,
      produced,
      producedRecordsPerSecond: Math.round(produced / producedSeconds),
      insertedRowsPerSecondSteady: steady,
      rowsInClickHouseWhenProducingStopped: atStop,
      backlogWhenProducingStopped: produced - atStop,
      drain: {
        seconds: drainSeconds,
        rowsPerSecond: Math.round((drained - atStop) / Math.max(0.001, drainSeconds)),
        complete: drained === produced,
      },
      kafkaTimestampToRowMs: {
        p50: Number(delays[0]!.q[0]),
        p99: Number(delays[0]!.q[1]),
        max: Number(delays[0]!.mx),
        resolution: '1 s',
      },
      sinkRssMbMax: rss,
    };
    console.log(JSON.stringify(result, null, 2));
    mkdirSync(join(REPO_ROOT, 'bench', 'results'), { recursive: true });
    writeFileSync(
      join(REPO_ROOT, 'bench', 'results', 'clickhouse-sink.json'),
      `${JSON.stringify(result, null, 2)}\n`,
    );
  } finally {
    await producer.disconnect();
    await terminate(sink);
    await client.command({ query: `DROP DATABASE IF EXISTS ${DATABASE}` });
    await client.close();
    await deleteTopics(PREFIX);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
