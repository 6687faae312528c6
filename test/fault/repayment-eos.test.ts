/**
 * Exactly-once under faults, on the real broker (issue 4, reliability.md's fault plan): the
 * repayment processor runs as real `holdback run` processes while inputs stream in; processes
 * are killed, paused past their session timeout, replaced, and the broker itself is killed and
 * restarted. Afterwards a read_committed verifier compares every output with a clean run of
 * the same processor over the same inputs (TestDriver): nothing lost, nothing doubled.
 *
 * These tests kill shared services, so they run alone (jest project `fault`, in band).
 */
import { createRepaymentProcessor } from '../../processors/repayment';
import { TestDriver } from '../../runtime/test-driver';
import { TOPICS } from '../../schemas/topics';
import type { Deduction, LoanState } from '../../schemas/generated/types';
import { down, up } from '../../stack/stack';
import { SchemaRegistryClient } from '../../connectors/registry';
import { RECORD_SCHEMAS } from '../../schemas/contract';
import { subjectOf } from '../../schemas/topics';
import { runningPid } from '../../stack/proc';
import { changelogTopic } from '../../runtime/kafka-runtime';
import { repaymentWorkload, type WorkloadEvent } from '../harness/repayment-workload';
import {
  createTopics,
  deleteTopics,
  endOffsetSum,
  endpoints,
  produce,
  readAll,
  registeredCodec,
} from '../harness/kafka';
import {
  kill9,
  logTail,
  spawnProcessor,
  terminate,
  waitFor,
  type ProcessorProcess,
} from '../harness/processes';
import { verifyRepayment, type Outputs } from '../harness/verify';
import type { Codec } from '../../connectors/codec';
import { forgeBody, frame } from '../unit/codec-samples';

jest.setTimeout(240_000);

const RUN = `${Date.now().toString(36)}`;
/** The Kafka transports (issue 9); the crash and rebalance scenarios run on each. */
const TRANSPORTS = ['kafkajs', 'rdkafka'] as const;
type Transport = (typeof TRANSPORTS)[number];
let codec: Codec;

beforeAll(async () => {
  codec = await registeredCodec();
});

function expectedOutputs(events: readonly WorkloadEvent[]): Outputs {
  const driver = new TestDriver(createRepaymentProcessor(), { startAt: Date.now() });
  for (const e of events) driver.pipe(e.topic, e.value as never);
  return {
    deductions: driver.outputs(TOPICS.deductions).map((o) => o.value),
    loanStates: driver.outputs(TOPICS.loanStates).map((o) => o.value),
  };
}

interface Scenario {
  prefix: string;
  applicationId: string;
  events: WorkloadEvent[];
  expected: Outputs;
  /** Share of the input produced so far (0..1). */
  produced: () => number;
  /** Share of the expected deductions written so far (committed or not): progress. */
  progress: () => Promise<number>;
  spawn: (name: string, extra?: string[]) => ProcessorProcess;
}

/** Bad records, each with the reason code the DLQ must give it (reliability.md's poison pills). */
function poisonPills(
  registeredPayoutId: number,
  merchants: string[],
  count: number,
): Array<{ key: string; value: Buffer; reason: string }> {
  const now = Date.now();
  const good = (i: number) => ({
    event_id: `poison-${i}`,
    merchant_id: merchants[i % merchants.length]!,
    payout_id: `poison-p${i}`,
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

async function scenario(
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
  } = {},
): Promise<void> {
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
  const chunks = 16;
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
      await new Promise((r) => setTimeout(r, 500));
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
    spawn: (pname, extra = []) => {
      const p = spawnProcessor(`${applicationId}-${pname}`, 'repayment', [
        `--topic-prefix=${prefix}`,
        `--application-id=${applicationId}`,
        '--session-timeout-ms=6000',
        `--transport=${transport}`,
        ...extra,
      ]);
      procs.push(p);
      return p;
    },
  };
  let survivors: ProcessorProcess[] = [];
  try {
    survivors = await body(s);
    await feeding;
    // Wait until a read_committed consumer sees exactly what the clean run produced.
    let problems: string[] = ['not checked yet'];
    await waitFor(
      'the outputs to match the clean run',
      async () => {
        const actual: Outputs = {
          deductions: (await readAll(prefix, TOPICS.deductions, codec)) as Deduction[],
          loanStates: (await readAll(prefix, TOPICS.loanStates, codec)) as LoanState[],
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
    const logs = procs.map((p) => `--- ${p.name}\n${logTail(p, 15)}`).join('\n');
    const kinds = new Map<string, number>();
    for (const p of problems) kinds.set(p.split(' ')[0]!, (kinds.get(p.split(' ')[0]!) ?? 0) + 1);
    expect({
      kinds: Object.fromEntries(kinds),
      problems: problems.slice(0, 12),
      logs: problems.length ? logs : '',
    }).toEqual({
      kinds: {},
      problems: [],
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
  } finally {
    for (const p of procs) if (p.child.exitCode === null && p.child.signalCode === null) await kill9(p);
    await feeding.catch(() => undefined);
    await deleteTopics(prefix, [changelogTopic(applicationId)]);
  }
}

test.each(TRANSPORTS)(
  'without faults, the outputs equal the clean run exactly; health, metrics and SIGTERM behave (%s)',
  async (transport) => {
    await scenario(
      'clean',
      0,
      async (s) => {
        const a = s.spawn('a');
        await waitFor('half the work', async () => (await s.progress()) >= 0.5, 120_000);
        const url = /"metrics":"(http:[^"]+)"/.exec(logTail(a, 50))?.[1];
        expect(url).toBeDefined();
        const health = await fetch(`${url}/health`);
        const body = (await health.json()) as { ok: boolean; detail: { tasks: Array<{ ready: boolean }> } };
        expect(health.status).toBe(200);
        expect(body.ok).toBe(true);
        expect(body.detail.tasks.filter((t) => t.ready)).toHaveLength(endpoints.partitions);
        const metrics = await (await fetch(`${url}/metrics`)).text();
        expect(metrics).toMatch(
          /holdback_records_in_total\{processor="repayment",topic="marketplace.payouts.v1"\} [1-9]/,
        );
        expect(metrics).toMatch(/holdback_commit_seconds_count\{processor="repayment"\} [1-9]/);
        expect(metrics).not.toMatch(/merchant_id|loan_id/);
        return [a];
      },
      { transport },
    );
  },
);

test('1% poison pills go to the DLQ with their reasons, while the partitions keep moving', async () => {
  await scenario('poison', 5, async (s) => [s.spawn('a')], { poisonRate: 0.01 });
});

test('a registry outage holds records back (retried with backoff) and sends nothing to the DLQ', async () => {
  // Payouts written with a v2 schema the processor has never seen: decoding them needs the registry.
  const v2 = {
    ...RECORD_SCHEMAS.PayoutEvent,
    fields: [
      ...RECORD_SCHEMAS.PayoutEvent.fields,
      { name: 'channel', type: ['null', 'string'], default: null },
    ],
  };
  const registry = new SchemaRegistryClient({ url: endpoints.registryUrl });
  const v2Id = await registry.register(subjectOf(TOPICS.payouts), JSON.stringify(v2));
  const log = (): void => undefined;
  await scenario(
    'registry',
    6,
    async (s) => {
      const a = s.spawn('a');
      await waitFor('every payout to be produced', async () => s.produced() >= 1, 120_000);
      await new Promise((r) => setTimeout(r, 5000));
      // While the registry is down nothing is decided and nothing is dead-lettered.
      expect(await s.progress()).toBe(0);
      expect(await endOffsetSum(s.prefix + TOPICS.dlq)).toBe(0);
      // The outage was met by retrying, not by skipping.
      expect(logTail(a, 400)).toMatch(/schema registry unavailable; retrying/);
      // SIGTERM in the middle of the wait stops the processor promptly and cleanly.
      const t0 = Date.now();
      expect(await terminate(a, 15_000)).toBe(0);
      expect(Date.now() - t0).toBeLessThan(10_000);
      const b = s.spawn('b');
      await new Promise((r) => setTimeout(r, 2000));
      await up(endpoints, ['registry'], log);
      return [b];
    },
    {
      payoutWriter: { id: v2Id, schema: v2 },
      beforePayouts: () => down(['registry'], false, log),
    },
  );
});

test.each(TRANSPORTS)(
  'kill -9 the processor three times, each after at least 20% more progress (%s)',
  async (transport) => {
    await scenario(
      'kill',
      1,
      async (s) => {
        let p = s.spawn('a');
        for (const at of [0.2, 0.4, 0.6]) {
          await waitFor(`${at * 100}% progress`, async () => (await s.progress()) >= at, 120_000);
          await kill9(p);
          p = s.spawn(`after-${at}`);
        }
        return [p];
      },
      { transport },
    );
  },
);

test.each(TRANSPORTS)(
  'a second instance joins, the first leaves, the second is killed, the first returns (%s)',
  async (transport) => {
    await scenario(
      'handover',
      2,
      async (s) => {
        const a = s.spawn('a');
        await waitFor('15% progress', async () => (await s.progress()) >= 0.15, 120_000);
        const b = s.spawn('b');
        await waitFor('35% progress', async () => (await s.progress()) >= 0.35, 120_000);
        await terminate(a);
        await waitFor('55% progress', async () => (await s.progress()) >= 0.55, 120_000);
        await kill9(b);
        const a2 = s.spawn('a-returns');
        return [a2];
      },
      { transport },
    );
  },
);

test.each(TRANSPORTS)(
  'an instance paused past its session timeout is fenced when it resumes (%s)',
  async (transport) => {
    let zombie: ProcessorProcess | undefined;
    await scenario(
      'zombie',
      3,
      async (s) => {
        // A long commit interval: when paused, a surely holds uncommitted work it will try to commit.
        const a = s.spawn('a', ['--commit-interval-ms=4000']);
        zombie = a;
        await waitFor('20% progress', async () => (await s.progress()) >= 0.2, 120_000);
        const b = s.spawn('b');
        await new Promise((r) => setTimeout(r, 3000)); // b joins and shares the work
        a.child.kill('SIGSTOP');
        // Past a's session timeout (6 s): b takes every partition and goes on.
        await new Promise((r) => setTimeout(r, 9000));
        await waitFor('60% progress', async () => (await s.progress()) >= 0.6, 120_000);
        a.child.kill('SIGCONT'); // a's late commits must fail: its producers were fenced
        await waitFor(
          'the zombie to find out',
          async () => /commit failed on partition/.test(logTail(a, 200)),
          30_000,
        );
        return [a, b];
      },
      { transport },
    );
    // The late commit was refused by the broker (fenced), not merely skipped.
    expect(logTail(zombie!, 400)).toMatch(
      /commit failed on partition \d+: .*(fenced|epoch|transactional id)/i,
    );
  },
);

test('the broker is killed between send and commit and restarted; the processor recovers by itself', async () => {
  await scenario('broker', 4, async (s) => {
    const a = s.spawn('a');
    await waitFor('30% progress', async () => (await s.progress()) >= 0.3, 120_000);
    const pid = runningPid('kafka');
    if (pid === undefined)
      throw new Error("the fault test needs the local stack's Kafka (holdback stack up)");
    process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 8000));
    await up(endpoints, ['kafka'], () => undefined);
    return [a];
  });
});
