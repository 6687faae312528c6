/**
 * One exactly-once scenario on the real broker (issue 4, reliability.md's fault plan), shared by
 * the fault tests: the repayment processor runs as real `holdback run` processes while inputs
 * stream in, the test's body applies its faults, and the verifier then checks
 * - exact equality with a clean run of the same inputs (TestDriver): deductions and final loan
 *   states, nothing lost or doubled, and the money invariants (verify.ts);
 * - every poison pill in the DLQ once with its reason, and nothing else there;
 * - every input offset decided or dead-lettered, never both, never neither: the group's committed
 *   offsets reach the end of every input partition, each dead letter names a distinct offset
 *   that holds a poison pill, and no poison pill produced a deduction.
 */
import { createRepaymentProcessor } from '../../processors/repayment';
import { TestDriver } from '../../runtime/test-driver';
import { TOPICS, type TopicName } from '../../schemas/topics';
import type { Deduction, LoanState } from '../../schemas/generated/types';
import { changelogTopic } from '../../runtime/kafka-runtime';
import { readToEnd, whileRetriable } from '../../connectors/kafka-read';
import type { Codec } from '../../connectors/codec';
import { forgeBody, frame } from '../unit/codec-samples';
import { repaymentWorkload, type WorkloadEvent } from './repayment-workload';
import {
  createTopics,
  deleteTopics,
  endOffsetSum,
  kafkaClient,
  produce,
  readAll,
  registeredCodec,
} from './kafka';
import {
  healthOf,
  kill9,
  logTail,
  spawnProcessor,
  terminate,
  waitFor,
  type ProcessorProcess,
} from './processes';
import { verifyRepayment, type Outputs } from './verify';

const RUN = `${Date.now().toString(36)}`;
/** The Kafka transports (issue 9); the crash and rebalance scenarios run on each. */
export const TRANSPORTS = ['kafkajs', 'rdkafka'] as const;
export type Transport = (typeof TRANSPORTS)[number];
let codecP: Promise<Codec> | undefined;

/** Input topics the repayment processor reads. */
const INPUTS: TopicName[] = [TOPICS.loanEvents, TOPICS.payouts];

function expectedOutputs(events: readonly WorkloadEvent[]): Outputs {
  const driver = new TestDriver(createRepaymentProcessor(), { startAt: Date.now() });
  for (const e of events) driver.pipe(e.topic, e.value as never);
  return {
    deductions: driver.outputs(TOPICS.deductions).map((o) => o.value),
    loanStates: driver.outputs(TOPICS.loanStates).map((o) => o.value),
    decisions: driver.outputs(TOPICS.payoutDecisions).map((o) => o.value),
  };
}

export interface Scenario {
  prefix: string;
  /**
   * The processors' application id: spawn uses it and the verifier checks its group's offsets.
   * A body that rebuilds the state into a new id (holdback rebuild) sets it to that id.
   */
  applicationId: string;
  events: WorkloadEvent[];
  expected: Outputs;
  /** Share of the input produced so far (0..1). */
  produced: () => number;
  /** Share of the expected deductions written so far (committed or not): progress. */
  progress: () => Promise<number>;
  /** A repayment instance; `env` replaces settings of its environment (undefined removes one). */
  spawn: (name: string, extra?: string[], env?: Record<string, string | undefined>) => ProcessorProcess;
}

/** The payout ids of the poison pills (the workload's ids look like `<scenario>-m<n>-p<n>`). */
const pillPayoutId = (i: number): string => `pill-p${i}`;
const PILL_PAYOUT = /^pill-p\d+$/;

/** Bad records, each with the reason code the DLQ must give it (reliability.md's poison pills). */
function poisonPills(
  registeredPayoutId: number,
  merchants: string[],
  count: number,
): Array<{ key: string; value: Buffer; reason: string }> {
  const now = Date.now();
  const good = (i: number) => ({
    event_id: `pill-${i}`,
    merchant_id: merchants[i % merchants.length]!,
    payout_id: pillPayoutId(i),
    type: 'SCHEDULED',
    gross_amount_minor: 1000,
    withheld_minor: null,
    currency: 'USD',
    occurred_at: now - 60_000,
  });
  const kinds: Array<[string, (i: number) => Buffer]> = [
    [
      'BAD_MAGIC_BYTE',
      (i) =>
        Buffer.concat([
          Buffer.from([1]),
          frame(registeredPayoutId, forgeBody('PayoutEvent', good(i))).subarray(1),
        ]),
    ],
    ['UNKNOWN_SCHEMA_ID', (i) => frame(0x7ffffff0, forgeBody('PayoutEvent', good(i)))],
    ['MALFORMED_AVRO', (i) => frame(registeredPayoutId, forgeBody('PayoutEvent', good(i)).subarray(0, 20))],
    [
      'NEGATIVE_AMOUNT',
      (i) => frame(registeredPayoutId, forgeBody('PayoutEvent', { ...good(i), gross_amount_minor: -5 })),
    ],
    [
      'UNSAFE_INTEGER',
      (i) =>
        frame(registeredPayoutId, forgeBody('PayoutEvent', { ...good(i), gross_amount_minor: 2n ** 60n })),
    ],
    [
      'UNKNOWN_CURRENCY',
      (i) => frame(registeredPayoutId, forgeBody('PayoutEvent', { ...good(i), currency: 'ZZZ' })),
    ],
    [
      'TIMESTAMP_OUT_OF_RANGE',
      (i) =>
        frame(
          registeredPayoutId,
          forgeBody('PayoutEvent', { ...good(i), occurred_at: now + 30 * 86_400_000 }),
        ),
    ],
  ];
  return Array.from({ length: count }, (_, i) => {
    const [reason, make] = kinds[i % kinds.length]!;
    return { key: merchants[i % merchants.length]!, value: make(i), reason };
  });
}

export async function scenario(
  name: string,
  seed: number,
  body: (s: Scenario) => Promise<ProcessorProcess[]>,
  opts: {
    poisonRate?: number;
    /** Writes payouts with another (compatible) writer schema than the local one. */
    payoutWriter?: { id: number; schema: object };
    /** Runs after the loans are processed, before any payout is produced. */
    beforePayouts?: () => Promise<void>;
    /** The processors' Kafka transport (default kafkajs). */
    transport?: Transport;
    /** How long the payouts take to stream in (ms; default ~8 s): a soak spreads them over its length. */
    feedMs?: number;
  } = {},
): Promise<void> {
  const codec = await (codecP ??= registeredCodec());
  const transport = opts.transport ?? 'kafkajs';
  const prefix = `eos-${name}-${transport}-${RUN}.`;
  const applicationId = `eos-${name}-${transport}-${RUN}`;
  await createTopics(prefix);
  const events = repaymentWorkload({
    seed,
    merchants: 240,
    payoutsPerMerchant: 12,
    duplicateRate: 0.1,
    startAt: Date.now() - 2 * 86_400_000,
    idPrefix: `${name}-`,
  });
  const expected = expectedOutputs(events);
  // Which of a merchant's events comes first across two topics is up to arrival (contract.md), so
  // the loans go in first and must be processed before the payouts stream in: the outputs then
  // have one right answer. Payouts stream in over ~8 s, so faults land while work is in flight.
  const loans = events.filter((e) => e.topic === TOPICS.loanEvents);
  const payouts = events.filter((e) => e.topic === TOPICS.payouts);
  const funded = new Set(loans.map((e) => e.value.event_id)).size;
  const merchants = [...new Set(events.map((e) => e.key))];
  const pills = poisonPills(
    codec.encode(TOPICS.payouts, payouts[0]!.value as never).readInt32BE(1),
    merchants,
    Math.round(payouts.length * (opts.poisonRate ?? 0)),
  );
  let producedCount = 0;
  const chunks = Math.max(16, Math.round((opts.feedMs ?? 0) / 2500));
  const pauseMs = opts.feedMs === undefined ? 500 : opts.feedMs / chunks;
  const feeding = (async () => {
    await produce(prefix, codec, loans);
    producedCount += loans.length;
    await waitFor(
      'every FUNDED loan to be processed',
      async () => (await readAll(prefix, TOPICS.loanStates, codec)).length >= funded,
      120_000,
      1000,
    );
    await opts.beforePayouts?.();
    const writer = opts.payoutWriter;
    for (let i = 0; i < chunks; i++) {
      const chunk = payouts.slice(
        Math.floor((i * payouts.length) / chunks),
        Math.floor(((i + 1) * payouts.length) / chunks),
      );
      // A chunk that fails (broker down) is sent again: duplicates by event_id change nothing.
      await waitFor(
        'a chunk to be produced',
        async () => {
          try {
            const bad = pills.slice(
              Math.floor((i * pills.length) / chunks),
              Math.floor(((i + 1) * pills.length) / chunks),
            );
            await produce(prefix, codec, [
              ...chunk.map((e) => ({
                topic: e.topic,
                key: e.key,
                value: writer ? frame(writer.id, forgeBody(writer.schema, e.value)) : e.value,
              })),
              ...bad.map((b) => ({ topic: TOPICS.payouts, key: b.key, value: b.value })),
            ]);
            return true;
          } catch {
            return false;
          }
        },
        120_000,
        1000,
      );
      producedCount += chunk.length;
      await new Promise((r) => setTimeout(r, pauseMs));
    }
  })();
  const procs: ProcessorProcess[] = [];
  const s: Scenario = {
    prefix,
    applicationId,
    events,
    expected,
    produced: () => producedCount / events.length,
    progress: async () => (await endOffsetSum(prefix + TOPICS.deductions)) / expected.deductions.length,
    spawn: (pname, extra = [], env) => {
      const p = spawnProcessor(
        `${applicationId}-${pname}`,
        'repayment',
        [
          `--topic-prefix=${prefix}`,
          `--application-id=${s.applicationId}`,
          '--session-timeout-ms=6000',
          `--transport=${transport}`,
          ...extra,
        ],
        env,
      );
      procs.push(p);
      return p;
    },
  };
  let survivors: ProcessorProcess[] = [];
  try {
    survivors = await body(s).catch(async (e: Error) => {
      // A fault step that timed out says little alone: what the processors were doing does.
      const said = await Promise.all(
        procs.map(async (p) => `--- ${p.name}\n${logTail(p, 30)}\n/health: ${await healthOf(p)}`),
      );
      e.message = `${e.message}\n${said.join('\n')}`;
      throw e;
    });
    await feeding;
    // Wait until a read_committed consumer sees exactly what the clean run produced.
    let problems: string[] = ['not checked yet'];
    await waitFor(
      'the outputs to match the clean run',
      async () => {
        const actual: Outputs = {
          deductions: (await readAll(prefix, TOPICS.deductions, codec)) as Deduction[],
          loanStates: (await readAll(prefix, TOPICS.loanStates, codec)) as LoanState[],
          decisions: await readAll(prefix, TOPICS.payoutDecisions, codec),
        };
        problems = verifyRepayment(actual, expected);
        return (
          problems.length === 0 ||
          problems.some((p) => p.startsWith('duplicate') || p.startsWith('unexpected'))
        );
      },
      90_000,
      2000,
    ).catch(() => undefined);
    // On a mismatch, what each processor was doing: its log's end and its /health (lag, what each
    // task waits for, the last error).
    const said = async (): Promise<string> =>
      (
        await Promise.all(
          procs.map(async (p) => `--- ${p.name}\n${logTail(p, 15)}\n/health: ${await healthOf(p)}`),
        )
      ).join('\n');
    const kinds = new Map<string, number>();
    for (const p of problems) kinds.set(p.split(' ')[0]!, (kinds.get(p.split(' ')[0]!) ?? 0) + 1);
    // Checked here too, so that a failure of the outputs says whether two owners wrote.
    const owners = await oneOwnerAtATime(changelogTopic(s.applicationId));
    expect({
      kinds: Object.fromEntries(kinds),
      problems: problems.slice(0, 12),
      owners: owners.problems.slice(0, 12),
      logs: problems.length || owners.problems.length ? await said() : '',
    }).toEqual({
      kinds: {},
      problems: [],
      owners: [],
      logs: '',
    });
    // Every poison pill is in the DLQ once, with its reason, and nothing else is.
    const reasons = (letters: Array<{ reason_code: string }>): Record<string, number> => {
      const n: Record<string, number> = {};
      for (const l of letters) n[l.reason_code] = (n[l.reason_code] ?? 0) + 1;
      return n;
    };
    const dlq = await readAll(prefix, TOPICS.dlq, codec);
    expect(reasons(dlq)).toEqual(reasons(pills.map((p) => ({ reason_code: p.reason }))));
    expect(dlq.every((l) => l.source_topic === TOPICS.payouts && l.payload_sha256.length === 64)).toBe(true);
    // Survivors stop gracefully on SIGTERM: final commit, leave the group, exit 0.
    const codes = await Promise.all(survivors.map((p) => terminate(p)));
    expect(codes).toEqual(survivors.map(() => 0));
    expect(await decidedOrDeadLettered(prefix, s.applicationId, dlq, codec)).toEqual([]);
    const fenced = procs.reduce((n, p) => n + fencedWrites(logTail(p, 100_000)), 0);
    console.log(
      `${applicationId}: ${owners.owners} successive owners over ${owners.partitions} partitions, ` +
        `${fenced} fenced late write(s) in the processors' logs`,
    );
  } finally {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) await kill9(p);
    await feeding.catch(() => undefined);
    await deleteTopics(prefix, [...new Set([applicationId, s.applicationId])].map(changelogTopic));
  }
}

/**
 * A late write the broker refused because a newer owner had fenced the task: an engine restart
 * whose reason is the fencing (kafkajs: INVALID_PRODUCER_EPOCH, "an old epoch"; librdkafka:
 * "fenced by a newer instance"), one per refused commit.
 */
function fencedWrites(log: string): number {
  return log
    .split('\n')
    .filter((l) => l.includes('"restarting the engine') && /fenced|old epoch|PRODUCER_EPOCH/i.test(l)).length;
}

/**
 * "No partition with two owners", from what the broker committed: every commit of a task writes
 * to its changelog partition, and each batch names its producer (id and epoch; an instance that
 * takes a task over initialises the task's transactional id, which bumps the epoch and fences
 * the one before). Read in offset order, a partition's committed records must come from one
 * owner at a time: once a newer owner has committed, an earlier one never commits again. Two
 * instances writing one partition with their own producers would interleave and break it; a
 * fenced owner's late writes are aborted, so never read here (they are counted from the logs).
 */
async function oneOwnerAtATime(
  changelog: string,
): Promise<{ problems: string[]; owners: number; partitions: number }> {
  const byPartition = new Map<number, string[]>();
  await readToEnd(kafkaClient(), {
    topic: changelog,
    groupId: `verify-owners-${changelog}-${process.pid}-${Date.now()}`,
    onMessage: (partition, m) => {
      const b = (m as { batchContext?: { producerId?: string | number; producerEpoch?: number } })
        .batchContext;
      const owner = `${String(b?.producerId)}/${String(b?.producerEpoch)}`;
      const seq = byPartition.get(partition) ?? [];
      if (seq[seq.length - 1] !== owner) seq.push(owner);
      byPartition.set(partition, seq);
    },
  });
  const problems: string[] = [];
  let owners = 0;
  for (const [partition, seq] of byPartition) {
    owners += seq.length;
    const seen = new Set<string>();
    for (const owner of seq) {
      if (seen.has(owner))
        problems.push(`partition ${partition}: producer ${owner} committed again after a newer owner`);
      seen.add(owner);
    }
    // An epoch of one producer id only grows (each owner initialises the transactional id anew).
    const epochs = new Map<string, number>();
    for (const owner of seq) {
      const [id, epoch] = owner.split('/');
      if (Number(epoch) < (epochs.get(id!) ?? -1))
        problems.push(`partition ${partition}: producer ${id} epoch went back to ${epoch}`);
      epochs.set(id!, Number(epoch));
    }
  }
  return { problems, owners, partitions: byPartition.size };
}

/**
 * What breaks "each input offset decided or dead-lettered, never both, never neither"; empty
 * when it holds. Decided: below the group's committed offset (the output of the transaction that
 * committed it is what the exact-equality check compared).
 */
async function decidedOrDeadLettered(
  prefix: string,
  applicationId: string,
  dlq: ReadonlyArray<{ source_topic: string; partition: number; offset: number }>,
  codec: Codec,
): Promise<string[]> {
  const problems: string[] = [];
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    // Neither: an offset the group never committed past. Survivors were stopped with SIGTERM,
    // whose final commit covers all they read.
    for (const topic of INPUTS) {
      const ends = await whileRetriable(() => admin.fetchTopicOffsets(prefix + topic));
      const [committed] = await whileRetriable(() =>
        admin.fetchOffsets({ groupId: applicationId, topics: [prefix + topic] }),
      );
      for (const { partition, high } of ends) {
        const at = committed?.partitions.find((p) => p.partition === partition)?.offset ?? '-1';
        // The inputs are written without transactions: every offset below the end is a record.
        if (Number(at) < Number(high))
          problems.push(`${topic}/${partition}: committed ${at}, end ${high}: offsets left undecided`);
      }
    }
  } finally {
    await admin.disconnect();
  }
  // Never twice in the DLQ, and never a record that was also decided into a deduction.
  const letters = new Set<string>();
  for (const l of dlq) {
    const k = `${l.source_topic}/${l.partition}@${l.offset}`;
    if (letters.has(k)) problems.push(`dead-lettered twice: ${k}`);
    letters.add(k);
  }
  const deductions = (await readAll(prefix, TOPICS.deductions, codec)) as Deduction[];
  for (const d of deductions)
    if (PILL_PAYOUT.test(d.payout_id)) problems.push(`a poison pill was decided: ${d.deduction_id}`);
  return problems;
}
