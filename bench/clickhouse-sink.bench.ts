/**
 * The ClickHouse sink on the real local stack: records produced at a fixed rate for a sustained
 * period (half deductions, half orders: two tables, one materialized view) into a running
 * `holdback clickhouse sink`; ClickHouse's row count is sampled every second. Reports rows/s
 * durably inserted while producing, the backlog left when producing stops and how fast it
 * drains (the sink's ceiling), the delay from a record's Kafka timestamp to its row being in
 * ClickHouse (second resolution: _inserted_at is a DateTime), and the sink's RSS. Prints and
 * saves bench/results/clickhouse-sink.json.
 *
 *   npx tsx bench/clickhouse-sink.bench.ts [records/s, default 20000] [seconds, default 60] [live|backlog]
 *
 * `backlog` writes records/s x seconds records first, then starts the sink and times the drain:
 * the sink's ceiling. Beside it, in the same run, ClickHouse's own: the same rows exported in the
 * sink's format and inserted again over HTTP, one INSERT per table, into a copy of the schema.
 * BENCH_PROFILE_DIR=<dir> writes the sink's CPU profile there.
 *
 * Needs `holdback stack up` and a build (`npm run build`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import type { Message, Producer } from 'kafkajs';
import type { Codec } from '../connectors/codec';
import { migrate } from '../connectors/clickhouse/migrate';
import type { Deduction, OrderEvent } from '../schemas/generated/types';
import { TOPICS } from '../schemas/topics';
import { REPO_ROOT } from '../stack/paths';
import { createTopics, deleteTopics, endpoints, kafkaClient, registeredCodec } from '../test/harness/kafka';
import { spawnHoldback, terminate, type ProcessorProcess } from '../test/harness/processes';
import { rssMb } from './kafka-tools';
import { machine } from './machine';

const RATE = Number(process.argv[2] ?? 20_000);
const SECONDS = Number(process.argv[3] ?? 60);
const MODE = (process.argv[4] ?? 'live') as 'live' | 'backlog';
if (MODE !== 'live' && MODE !== 'backlog') throw new Error(`mode must be live or backlog, not ${MODE}`);
const RUN = `bench_ch_${Date.now().toString(36)}`;
const PREFIX = `${RUN}.`;
const DATABASE = RUN;
const MERCHANTS = 10_000;
/** Extra sink flags, e.g. BENCH_SINK_ARGS='--max-batch-rows=100000'. */
const SINK_ARGS = (process.env['BENCH_SINK_ARGS'] ?? '').split(' ').filter(Boolean);
/** The format the sink inserts in (connectors/clickhouse/writer.ts). */
const SINK_FORMAT = 'RowBinary';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Records n..n+count-1: even ones are deductions, odd ones orders. */
function records(
  codec: Codec,
  from: number,
  count: number,
  now: number,
): { deductions: Message[]; orders: Message[] } {
  const deductions: Message[] = [];
  const orders: Message[] = [];
  for (let n = from; n < from + count; n++) {
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
  return { deductions, orders };
}

async function send(producer: Producer, batch: { deductions: Message[]; orders: Message[] }): Promise<void> {
  await producer.sendBatch({
    acks: -1,
    topicMessages: [
      { topic: PREFIX + TOPICS.deductions, messages: batch.deductions },
      { topic: PREFIX + TOPICS.orders, messages: batch.orders },
    ],
  });
}

const TABLES = ['deductions', 'orders'] as const;

/**
 * ClickHouse's own ceiling for the same rows: each table's rows exported in the sink's insert
 * format and sent back in one INSERT per table (the two in parallel) into a fresh copy of the
 * schema, materialized view included. Server-side parsing and writing, no Kafka, no sink.
 */
async function clickhouseCeiling(
  client: ClickHouseClient,
): Promise<{ rows: number; seconds: number; rowsPerSecond: number }> {
  const scratch = `${DATABASE}_ceiling`;
  await migrate(client, scratch);
  try {
    const bodies = await Promise.all(
      TABLES.map(async (table) => {
        const cols = await (
          await client.query({
            query: `DESCRIBE TABLE ${DATABASE}.${table}`,
            format: 'JSONEachRow',
          })
        ).json<{ name: string; default_type: string }>();
        // Columns with a DEFAULT (_inserted_at) are left to the server, as the sink does.
        const list = cols
          .filter((c) => c.default_type === '')
          .map((c) => c.name)
          .join(', ');
        const res = await fetch(
          `${endpoints.clickhouseUrl}/?query=${encodeURIComponent(`SELECT ${list} FROM ${DATABASE}.${table} FORMAT ${SINK_FORMAT}`)}`,
        );
        if (!res.ok) throw new Error(`export of ${table}: ${res.status} ${await res.text()}`);
        return { table, list, body: Buffer.from(await res.arrayBuffer()) };
      }),
    );
    const t0 = performance.now();
    await Promise.all(
      bodies.map(async ({ table, list, body }) => {
        const res = await fetch(
          `${endpoints.clickhouseUrl}/?query=${encodeURIComponent(`INSERT INTO ${scratch}.${table} (${list}) FORMAT ${SINK_FORMAT}`)}`,
          { method: 'POST', body },
        );
        if (!res.ok) throw new Error(`insert into ${table}: ${res.status} ${await res.text()}`);
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    const rows = await countRows(client, scratch);
    return { rows, seconds, rowsPerSecond: Math.round(rows / seconds) };
  } finally {
    await client.command({ query: `DROP DATABASE IF EXISTS ${scratch}` });
  }
}

async function countRows(client: ClickHouseClient, database: string): Promise<number> {
  const rows = await (
    await client.query({
      query: `SELECT (SELECT count() FROM ${database}.deductions) + (SELECT count() FROM ${database}.orders) AS n`,
      format: 'JSONEachRow',
    })
  ).json<{ n: string }>();
  return Number(rows[0]!.n);
}

function startSink(): ProcessorProcess {
  return spawnHoldback(RUN, [
    'clickhouse',
    'sink',
    `--topic-prefix=${PREFIX}`,
    `--database=${DATABASE}`,
    ...SINK_ARGS,
  ]);
}

async function main(): Promise<void> {
  const codec = await registeredCodec();
  const client = createClient({ url: endpoints.clickhouseUrl });
  await createTopics(PREFIX);
  await migrate(client, DATABASE);
  const count = (): Promise<number> => countRows(client, DATABASE);
  const producer = kafkaClient('bench-ch-producer').producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  let sink: ProcessorProcess | undefined;
  let rss = 0;
  const sampleRss = (): void => {
    rss = Math.max(rss, rssMb(sink?.child.pid) ?? 0);
  };
  try {
    let result: Record<string, unknown>;
    if (MODE === 'backlog') {
      const total = RATE * SECONDS;
      const p0 = performance.now();
      for (let n = 0; n < total; n += 10_000)
        await send(producer, records(codec, n, Math.min(10_000, total - n), Date.now()));
      const produceSeconds = (performance.now() - p0) / 1000;
      console.log(`backlog of ${total} records written in ${produceSeconds.toFixed(1)} s; starting the sink`);
      const t0 = Date.now();
      sink = startSink();
      const sampler = setInterval(sampleRss, 1000);
      const samples: Array<{ t: number; rows: number }> = [];
      let rows = 0;
      while (rows < total && Date.now() - t0 < 600_000) {
        await sleep(250);
        rows = await count();
        samples.push({ t: Date.now(), rows });
      }
      const doneAt = Date.now();
      // Steady: between the samples nearest 10% and 90% of the rows (start-up and tail left out).
      const s10 = samples.find((s) => s.rows >= total * 0.1);
      const s90 = samples.find((s) => s.rows >= total * 0.9);
      const steady =
        s10 && s90 && s90.t > s10.t ? Math.round(((s90.rows - s10.rows) * 1000) / (s90.t - s10.t)) : NaN;
      clearInterval(sampler);
      console.log(
        `sink: ${rows} rows in ${((doneAt - t0) / 1000).toFixed(1)} s (from its start), steady ${steady} rows/s`,
      );
      const ceiling = await clickhouseCeiling(client);
      result = {
        benchmark: 'clickhouse-sink',
        mode: 'backlog',
        date: new Date().toISOString(),
        machine: machine(),
        setup: await setup(client),
        records: total,
        complete: rows === total,
        drainSeconds: (doneAt - t0) / 1000,
        rowsPerSecondWhole: Math.round(rows / ((doneAt - t0) / 1000)),
        rowsPerSecondSteady: steady,
        clickhouseCeiling: ceiling,
        sinkRssMbMax: rss,
      };
    } else {
      sink = startSink();
      await sleep(3000); // the sink joins its group
      const samples: Array<{ t: number; rows: number }> = [];
      let produced = 0;
      const tickMs = 100;
      const perTick = Math.round((RATE * tickMs) / 1000);
      const start = Date.now();
      let next = start;
      const sampler = setInterval(() => {
        void count().then((rows) => samples.push({ t: Date.now() - start, rows }));
        sampleRss();
      }, 1000);
      while (Date.now() - start < SECONDS * 1000) {
        await send(producer, records(codec, produced, perTick, Date.now()));
        produced += perTick;
        next += tickMs;
        const wait = next - Date.now();
        if (wait > 0) await sleep(wait);
      }
      const producedSeconds = (Date.now() - start) / 1000;
      const atStop = await count();
      const stopAt = Date.now();
      // Drain: the backlog left at the end, consumed with no new input.
      let drained = atStop;
      while (drained < produced && Date.now() - stopAt < 300_000) {
        await sleep(500);
        drained = await count();
        sampleRss();
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
      result = {
        benchmark: 'clickhouse-sink',
        mode: 'live',
        date: new Date().toISOString(),
        machine: machine(),
        setup: await setup(client),
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
    }
    console.log(JSON.stringify(result, null, 2));
    mkdirSync(join(REPO_ROOT, 'bench', 'results'), { recursive: true });
    writeFileSync(
      join(
        REPO_ROOT,
        'bench',
        'results',
        MODE === 'live' ? 'clickhouse-sink.json' : 'clickhouse-sink-backlog.json',
      ),
      `${JSON.stringify(result, null, 2)}\n`,
    );
  } finally {
    await producer.disconnect();
    if (sink) await terminate(sink);
    await client.command({ query: `DROP DATABASE IF EXISTS ${DATABASE}` });
    await client.close();
    await deleteTopics(PREFIX);
  }
}

async function setup(client: ClickHouseClient): Promise<Record<string, unknown>> {
  const version = (
    await (
      await client.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' })
    ).json<{ v: string }>()
  )[0]!.v;
  return {
    clickhouse: version,
    partitions: endpoints.partitions,
    tables: ['deductions (MergeTree + daily_collections MV)', 'orders (ReplacingMergeTree)'],
    sinkOptions: SINK_ARGS.length ? SINK_ARGS.join(' ') : 'defaults',
    insertFormat: SINK_FORMAT,
    note: 'producer, sink, Kafka and ClickHouse share the same 2 cores',
  };
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
