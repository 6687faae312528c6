/**
 * The ClickHouse sink under faults (reliability.md: "ClickHouse unreachable for 60 s; or the
 * sink killed mid-insert"): real `holdback clickhouse sink` processes, real Kafka and ClickHouse.
 * Afterwards every table holds exactly the distinct accepted records (no Kafka position twice),
 * and every aggregate equals a recount from the raw tables and the workload's expectation.
 *
 * Runs alone (jest project `fault`, in band): it pauses the shared ClickHouse.
 */
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import type { Codec } from '../../connectors/codec';
import { migrate } from '../../connectors/clickhouse/migrate';
import { runningPid } from '../../stack/proc';
import {
  createTopics,
  deleteTopics,
  endpoints,
  kafkaClient,
  produce,
  registeredCodec,
} from '../harness/kafka';
import {
  kill9,
  logTail,
  spawnHoldback,
  terminate,
  waitFor,
  type ProcessorProcess,
} from '../harness/processes';
import { aggregateChecks, duplicatePositions, rowsOf, tableCounts } from '../unit/clickhouse/verify';
import { clickhouseWorkload, type Produced, type Workload } from '../unit/clickhouse/workload';

jest.setTimeout(420_000);

const RUN = Date.now().toString(36);
let codec: Codec;
let client: ClickHouseClient;

beforeAll(async () => {
  codec = await registeredCodec();
  client = createClient({ url: endpoints.clickhouseUrl, request_timeout: 120_000 });
});

afterAll(async () => {
  await client.close();
});

/** Every sink spawned, so that a failing test still stops them. */
const spawned: ProcessorProcess[] = [];

function spawnSink(name: string, prefix: string, database: string, extra: string[] = []): ProcessorProcess {
  const p = spawnHoldback(`chsink-${name}-${RUN}`, [
    'clickhouse',
    'sink',
    `--topic-prefix=${prefix}`,
    `--database=${database}`,
    '--max-batch-rows=500',
    '--max-batch-ms=200',
    '--session-timeout-ms=20000',
    ...extra,
  ]);
  spawned.push(p);
  return p;
}

/** Produces the records in `chunks` pieces spread over `overMs`, in the background. */
function stream(
  prefix: string,
  records: Produced[],
  chunks: number,
  overMs: number,
): { done: Promise<void>; share: () => number } {
  let sent = 0;
  const done = (async () => {
    for (let i = 0; i < chunks; i++) {
      const part = records.slice(
        Math.floor((i * records.length) / chunks),
        Math.floor(((i + 1) * records.length) / chunks),
      );
      await produce(prefix, codec, part);
      sent += part.length;
      await new Promise((r) => setTimeout(r, overMs / chunks));
    }
  })();
  return { done, share: () => sent / records.length };
}

async function verify(database: string, w: Workload): Promise<void> {
  expect(await tableCounts(client, database)).toEqual(w.expected.rows);
  expect(await duplicatePositions(client, database)).toEqual({
    deductions: 0,
    loan_states: 0,
    settlements: 0,
    payout_decisions: 0,
    eligibility_decisions: 0,
    dead_letters: 0,
  });
  for (const c of await aggregateChecks(client, database, w.expected)) {
    expect({ name: c.name, rows: c.fromView }).toEqual({ name: c.name, rows: c.recount });
    expect({ name: c.name, rows: c.fromView }).toEqual({ name: c.name, rows: c.expected });
  }
}

async function scenario(
  name: string,
  seed: number,
  body: (s: { prefix: string; database: string; w: Workload }) => Promise<ProcessorProcess>,
): Promise<void> {
  const prefix = `chfault-${name}-${RUN}.`;
  const database = `hbt_fault_${name}_${RUN}`;
  await createTopics(prefix);
  await migrate(client, database);
  const w = clickhouseWorkload({
    seed,
    merchants: 400,
    payoutsPerMerchant: 12,
    idPrefix: `${name}${RUN}-`,
    now: Date.now(),
  });
  let last: ProcessorProcess | undefined;
  try {
    last = await body({ prefix, database, w });
    await waitFor(
      'every record in ClickHouse',
      async () => JSON.stringify(await tableCounts(client, database)) === JSON.stringify(w.expected.rows),
      180_000,
      1000,
    );
    await new Promise((r) => setTimeout(r, 2000)); // nothing more may arrive
    await verify(database, w);
  } catch (e) {
    const shown = last ?? spawned[spawned.length - 1];
    if (shown) console.error(`${shown.name} log:\n${logTail(shown, 60)}`);
    throw e;
  } finally {
    for (const p of spawned.splice(0))
      if (p.child.exitCode === null && p.child.signalCode === null) await terminate(p);
    await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
    await deleteTopics(prefix);
    const admin = kafkaClient().admin();
    await admin.connect();
    await admin.deleteGroups([`holdback-clickhouse-${database}`]).catch(() => undefined);
    await admin.disconnect();
  }
}

/** True while an INSERT of this sink (of this process, when `pid` is given) runs on the server. */
async function insertRunning(database: string, pid?: number): Promise<boolean> {
  const prefix = `holdback-sink-${database}-`;
  const own = pid === undefined ? '' : ` AND position(query_id, '-${pid}-') > 0`;
  const [r] = await rowsOf<{ n: string }>(
    client,
    `SELECT count() AS n FROM system.processes WHERE substring(query_id, 1, ${prefix.length}) = '${prefix}'${own}`,
  );
  return Number(r!.n) > 0;
}

test('the sink is killed (SIGKILL) mid-insert three times while events flow', async () => {
  await scenario('kill', 21, async ({ prefix, database, w }) => {
    const feed = stream(prefix, w.records, 20, 20_000);
    let sink = spawnSink('kill-0', prefix, database);
    let kills = 0;
    for (let i = 1; i <= 3; i++) {
      // Poll fast for an INSERT of this sink on the server, and kill the sink right then.
      const pid = sink.child.pid!;
      await waitFor('an INSERT of this sink in flight', () => insertRunning(database, pid), 120_000, 5);
      await kill9(sink);
      kills++;
      sink = spawnSink(`kill-${i}`, prefix, database);
    }
    expect(kills).toBe(3);
    await feed.done;
    return sink;
  });
});

test('ClickHouse is stopped (SIGSTOP) for 60 s while events flow; the sink waits, retries, and loses or doubles nothing', async () => {
  await scenario('pause', 22, async ({ prefix, database, w }) => {
    const pid = runningPid('clickhouse');
    if (pid === undefined)
      throw new Error("the fault test needs the local stack's ClickHouse (holdback stack up)");
    const feed = stream(prefix, w.records, 30, 40_000);
    const sink = spawnSink('pause', prefix, database, ['--insert-timeout-ms=5000']);
    await waitFor(
      'rows arriving',
      async () => (await tableCounts(client, database))['deductions']! > 0,
      60_000,
      200,
    );
    // Stop it while an INSERT is in flight when possible: that is the unknown-outcome case.
    await waitFor('an INSERT in flight', () => insertRunning(database), 30_000, 5).catch(() => undefined);
    process.kill(pid, 'SIGSTOP');
    try {
      await new Promise((r) => setTimeout(r, 60_000));
      expect(feed.share()).toBeGreaterThan(0.5); // events kept flowing into Kafka meanwhile
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await feed.done;
    await waitFor(
      'the sink to notice',
      async () => /ClickHouse write failed|cannot read positions/.test(logTail(sink, 400)),
      60_000,
    );
    return sink;
  });
});
