/**
 * Repayment end to end on the real local stack: payouts produced at a fixed rate for a sustained
 * period into a running `holdback run repayment` (exactly-once, 100 ms commits), and a
 * read_committed consumer timing each WITHHOLD from its payout's timestamp (occurred_at is set to
 * the produce time) to the moment the deduction is readable. Prints and saves
 * bench/results/repayment-<transport>.json: decisions/s, p50/p99/max latency, the processor's RSS
 * and heap.
 *
 *   npx tsx bench/repayment.bench.ts [events/s, default 5000] [seconds, default 60] [merchants, default 20000]
 *     [transport: kafkajs|rdkafka|peer, default $BENCH_TRANSPORT or kafkajs]
 *     [guarantee: exactly_once|at_least_once, default exactly_once]
 *
 * `peer` runs the Kafka Streams peer of the same rules (bench/peer, one stream thread,
 * exactly_once_v2, 100 ms commits) in Holdback's place, under the same load and reader: the
 * issue 16 comparison of live latency. Saves bench/results/repayment-<transport>.json
 * (exactly-once) or repayment-<transport>-at_least_once.json.
 *
 * Needs `holdback stack up` and a build (`npm run build`); `npm run bench` does both.
 */
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Consumer, Message } from 'kafkajs';
import type { LoanEvent, PayoutEvent } from '../schemas/generated/types';
import { TOPICS } from '../schemas/topics';
import { changelogTopic } from '../runtime/kafka-runtime';
import {
  createTopics,
  deleteTopics,
  kafkaClient,
  produce,
  readAll,
  registeredCodec,
} from '../test/harness/kafka';
import { REPO_ROOT } from '../stack/paths';
import { spawnProcessor, terminate, waitFor, type ProcessorProcess } from '../test/harness/processes';
import { LOG_DIR, peerRepayment } from './backlog';
import { Rng } from '../test/harness/random';
import { rssMb } from './kafka-tools';
import { latencySummary, readCommitted, saveResult } from './live';
import { machine } from './machine';

const RATE = Number(process.argv[2] ?? 5000);
const SECONDS = Number(process.argv[3] ?? 60);
const MERCHANTS = Number(process.argv[4] ?? 20_000);
const TRANSPORT = process.argv[5] ?? process.env['BENCH_TRANSPORT'] ?? 'kafkajs';
if (TRANSPORT !== 'kafkajs' && TRANSPORT !== 'rdkafka' && TRANSPORT !== 'peer') {
  throw new Error(`transport must be kafkajs, rdkafka or peer, not ${TRANSPORT}`);
}
const GUARANTEE = process.argv[6] ?? 'exactly_once';
if (GUARANTEE !== 'exactly_once' && GUARANTEE !== 'at_least_once') {
  throw new Error(`guarantee must be exactly_once or at_least_once, not ${GUARANTEE}`);
}
if (TRANSPORT === 'peer' && GUARANTEE !== 'exactly_once') {
  throw new Error('the peer runs exactly_once_v2 only');
}
const RUN = `bench-repay-${Date.now().toString(36)}`;
const PREFIX = `${RUN}.`;

/** The Kafka Streams peer, reading and writing under PREFIX as Holdback would. */
function peerProcess(): ProcessorProcess {
  const child = peerRepayment(RUN, PREFIX, PREFIX, 1);
  return {
    name: RUN,
    child,
    logFile: join(LOG_DIR, `${RUN}.log`),
    exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
  };
}

async function main(): Promise<void> {
  const codec = await registeredCodec();
  await createTopics(PREFIX);
  const rng = new Rng(42);
  const t0 = Date.now() - 86_400_000;
  const loans: LoanEvent[] = Array.from({ length: MERCHANTS }, (_, i) => ({
    event_id: `${RUN}-f${i}`,
    loan_id: `${RUN}-loan${i}`,
    merchant_id: `${RUN}-m${i}`,
    type: 'FUNDED',
    occurred_at: t0,
    principal_minor: 10_000_000,
    fee_minor: 1_000_000,
    holdback_rate_bps: rng.pick([500, 1000, 1500]),
    minimum_payment_minor: 100_000,
    period_days: 30,
    currency: 'USD',
  }));
  const proc =
    TRANSPORT === 'peer'
      ? peerProcess()
      : spawnProcessor(RUN, 'repayment', [
          `--topic-prefix=${PREFIX}`,
          `--application-id=${RUN}`,
          `--transport=${TRANSPORT}`,
          `--guarantee=${GUARANTEE}`,
        ]);
  const producer = kafkaClient('bench-producer').producer({ idempotent: true, maxInFlightRequests: 1 });
  let consumer: Consumer | undefined;
  try {
    console.log(`funding ${MERCHANTS} loans...`);
    await produce(
      PREFIX,
      codec,
      loans.map((l) => ({ topic: TOPICS.loanEvents, key: l.merchant_id, value: l })),
      2000,
    );
    await waitFor(
      'every loan to be funded',
      async () => (await readAll(PREFIX, TOPICS.loanStates, codec)).length >= MERCHANTS,
      300_000,
      2000,
    );

    const latencies: number[] = [];
    let withholds = 0;
    let firstSeen = 0;
    let lastSeen = 0;
    consumer = await readCommitted(`${RUN}-reader`, PREFIX, TOPICS.deductions, codec, (d, readAt) => {
      if (d.type !== 'WITHHOLD') return;
      withholds++;
      if (!firstSeen) firstSeen = readAt;
      lastSeen = readAt;
      latencies.push(readAt - d.occurred_at);
    });

    console.log(`producing payouts at ${RATE}/s for ${SECONDS}s...`);
    await producer.connect();
    const tickMs = 20;
    const perTick = Math.max(1, Math.round((RATE * tickMs) / 1000));
    const start = Date.now();
    let produced = 0;
    let seq = 0;
    while (Date.now() - start < SECONDS * 1000) {
      const due = Math.floor(((Date.now() - start) / 1000) * RATE);
      const messages: Message[] = [];
      while (produced < due && messages.length < perTick * 5) {
        const m = rng.int(0, MERCHANTS - 1);
        const now = Date.now();
        const payout: PayoutEvent = {
          event_id: `${RUN}-p${seq}`,
          merchant_id: `${RUN}-m${m}`,
          payout_id: `${RUN}-p${seq++}`,
          type: 'SCHEDULED',
          gross_amount_minor: rng.int(1000, 500_000),
          withheld_minor: null,
          currency: 'USD',
          occurred_at: now,
        };
        messages.push({
          key: payout.merchant_id,
          value: codec.encode(TOPICS.payouts, payout),
          timestamp: String(now),
        });
        produced++;
      }
      if (messages.length > 0) await producer.send({ topic: PREFIX + TOPICS.payouts, acks: -1, messages });
      else await new Promise((r) => setTimeout(r, tickMs));
    }
    const producedSeconds = (Date.now() - start) / 1000;
    const rss = rssMb(proc.child.pid);
    await waitFor('the last deductions', async () => withholds >= produced, 60_000, 500).catch(
      () => undefined,
    );

    // (The peer has no metrics endpoint: its heap and probes are left out.)
    const url = /"metrics":"(http:[^"]+)"/.exec(readFileSync(proc.logFile, 'utf8'))?.[1];
    const metrics = url ? await (await fetch(`${url}/metrics`)).text() : '';
    const heapMb = Math.round(
      Number(/^holdback_process_nodejs_heap_size_used_bytes (\S+)$/m.exec(metrics)?.[1] ?? NaN) / 2 ** 20,
    );
    // Time-order end probes: how often the engine asked the broker, and how long it waited in all.
    const probeCount = Number(
      /^holdback_task_end_probe_seconds_count\{[^}]*\} (\S+)$/m.exec(metrics)?.[1] ?? 0,
    );
    const probeSeconds = Number(
      /^holdback_task_end_probe_seconds_sum\{[^}]*\} (\S+)$/m.exec(metrics)?.[1] ?? 0,
    );
    const latency = latencySummary(latencies);
    const result = {
      benchmark: 'repayment',
      date: new Date().toISOString(),
      machine: machine(),
      setup: {
        transport: TRANSPORT === 'peer' ? 'peer: Kafka Streams 4.4, 1 stream thread, RocksDB' : TRANSPORT,
        guarantee: GUARANTEE,
        commitIntervalMs: 100,
        partitions: 4,
        merchants: MERCHANTS,
        instances: 1,
      },
      targetEventsPerSecond: RATE,
      seconds: Math.round(producedSeconds),
      producedEventsPerSecond: Math.round(produced / producedSeconds),
      withholds,
      decisionsPerSecond: Math.round(withholds / Math.max(0.001, (lastSeen - firstSeen) / 1000)),
      latencyMs: latency,
      processor: { rssMb: rss, heapUsedMb: heapMb },
      endProbes: { count: probeCount, seconds: Math.round(probeSeconds * 1000) / 1000 },
      complete: withholds >= produced,
    };
    console.table({
      'produced events/s': result.producedEventsPerSecond,
      'withholding decisions/s': result.decisionsPerSecond,
      'p50 payout -> readable deduction (ms)': result.latencyMs.p50,
      'p99 (ms)': result.latencyMs.p99,
      'max (ms)': result.latencyMs.max,
      'processor RSS (MB)': result.processor.rssMb,
      'processor heap used (MB)': result.processor.heapUsedMb,
      'end probes': probeCount,
      'end probe wait (s)': result.endProbes.seconds,
    });
    saveResult(`repayment-${TRANSPORT}${GUARANTEE === 'exactly_once' ? '' : `-${GUARANTEE}`}.json`, result);
  } finally {
    await consumer?.disconnect().catch(() => undefined);
    await producer.disconnect().catch(() => undefined);
    await terminate(proc);
    await deleteTopics(PREFIX, [changelogTopic(RUN)]);
    if (TRANSPORT === 'peer') {
      await deleteTopics(`${RUN}-`).catch(() => undefined); // Kafka Streams' changelogs
      rmSync(join(REPO_ROOT, '.holdback', 'peer-state', RUN), { recursive: true, force: true });
    }
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
