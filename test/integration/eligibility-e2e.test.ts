/**
 * Eligibility end to end on the real stack (issue 6): a merchant whose sales grow becomes eligible
 * with a limit; refunds past the threshold withdraw it with HIGH_REFUND_RATE; a delinquent loan
 * blocks another. Real `holdback run eligibility` (default policy) and `holdback run repayment`
 * processes; 90+ days of history produced in the past with record timestamps = occurred_at, so
 * that `--clock=stream` runs the eligibility processor on event time. Every figure below is
 * worked out by hand from the README's feature definitions and policies/default.json.
 *
 * Timers. The eligibility processor's daily tick fires when the partition's stream time passes a
 * merchant's next midnight; when it fires depends on how the runtime's batches happen to fall, so
 * a tick could decide at 00:00 of a day instead of at that day's sale (different figures). The
 * processor runs with an hour-long tick interval, so no tick fires during the test and every
 * decision is triggered by a known input. (Ticks are covered by the unit tests.)
 *
 * Repayment runs on the wall clock: with no payouts, nothing on its inputs would move a stream
 * clock past the loan's period ends. A loan funded three days ago with one-day periods and no
 * collection has missed three periods by now, and the processor's next tick says so (DELINQUENT).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Message } from 'kafkajs';
import type { EligibilityDecision, LoanEvent, LoanState, SaleEvent } from '../../schemas/generated/types';
import type { Codec } from '../../connectors/codec';
import { TOPICS } from '../../schemas/topics';
import { REPO_ROOT } from '../../stack/paths';
import { changelogTopic } from '../../runtime/kafka-runtime';
import { DEFAULT_POLICY } from '../../processors/eligibility';
import { latestLoanStates } from '../harness/verify';
import {
  createTopics,
  deleteTopics,
  kafkaClient,
  readAll,
  registeredCodec,
  type Produced,
} from '../harness/kafka';
import { logTail, spawnProcessor, terminate, waitFor, type ProcessorProcess } from '../harness/processes';

jest.setTimeout(120_000);

const run = `elig-${Date.now().toString(36)}`;
const prefix = `${run}.`;
const eligApp = `${run}-eligibility`;
const repayApp = `${run}-repayment`;
const GROW = `${run}-grow`;
const LATE = `${run}-late`;
const LOAN = `${run}-loan`;

const HOUR = 3_600_000;
const DAY = 86_400_000;
const EPOCH = Date.UTC(2000, 0, 1);
/** Days since 2000-01-01 (the processor's day numbers: 10-day blocks are aligned on it). */
const dayOf = (ms: number): number => Math.floor((ms - EPOCH) / DAY);
const at = (day: number, hour: number): number => EPOCH + day * DAY + hour * HOUR;

const policy = JSON.parse(readFileSync(join(REPO_ROOT, 'policies', 'default.json'), 'utf8')) as {
  version: string;
  grades: Record<string, { limitMultipleBps: number }>;
  limits: { roundingStepMinor: number };
};
/** The limit of an eligible merchant without exposure: floor(avg * multiple), rounded down to the step. */
const limitOf = (avgMonthly: number, grade: string): number => {
  const step = policy.limits.roundingStepMinor;
  const gross = Math.floor((avgMonthly * policy.grades[grade]!.limitMultipleBps) / 10_000);
  return Math.floor(gross / step) * step;
};

type Timed = Produced & { at: number };

function sale(merchant: string, id: string, type: SaleEvent['type'], amount: number, when: number): Timed {
  const value: SaleEvent = {
    event_id: id,
    merchant_id: merchant,
    sale_id: `${id}-sale`,
    order_id: null,
    type,
    amount_minor: amount,
    currency: 'EUR',
    occurred_at: when,
  };
  return { topic: TOPICS.sales, key: merchant, value, at: when };
}

/** Produces in order (idempotent, acks=all), each record's Kafka timestamp its event time. */
async function produceAt(codec: Codec, records: readonly Timed[]): Promise<void> {
  const producer = kafkaClient().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const byTopic = new Map<string, Message[]>();
    for (const r of records) {
      const list = byTopic.get(prefix + r.topic) ?? [];
      list.push({
        key: r.key,
        value: codec.encode(r.topic, r.value as never),
        timestamp: String(r.at),
      });
      byTopic.set(prefix + r.topic, list);
    }
    await producer.sendBatch({
      acks: -1,
      topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
    });
  } finally {
    await producer.disconnect();
  }
}

async function decisionsOf(codec: Codec): Promise<Map<string, EligibilityDecision[]>> {
  const out = new Map<string, EligibilityDecision[]>();
  for (const d of await readAll(prefix, TOPICS.eligibility, codec)) {
    const list = out.get(d.merchant_id) ?? [];
    list.push(d);
    out.set(d.merchant_id, list);
  }
  return out;
}

/** A processor is consuming once it logged its ready tasks. */
async function ready(p: ProcessorProcess): Promise<void> {
  await waitFor(
    `${p.name} to be ready`,
    async () => {
      if (p.child.exitCode !== null) throw new Error(`${p.name} exited:\n${logTail(p)}`);
      return /tasks ready/.test(logTail(p, 200));
    },
    60_000,
    200,
  );
}

const pick = (d: EligibilityDecision): unknown => [
  d.trigger_event_id,
  d.eligible,
  d.grade,
  d.limit_minor,
  d.reasons,
];

test('growth makes a merchant eligible, refunds withdraw it, a delinquent loan blocks another', async () => {
  const codec = await registeredCodec();
  await createTopics(prefix);
  const procs: ProcessorProcess[] = [];
  try {
    procs.push(
      spawnProcessor(eligApp, 'eligibility', [
        `--topic-prefix=${prefix}`,
        `--application-id=${eligApp}`,
        '--clock=stream',
        '--tick-interval-ms=3600000',
      ]),
      spawnProcessor(repayApp, 'repayment', [`--topic-prefix=${prefix}`, `--application-id=${repayApp}`]),
    );
    await Promise.all(procs.map(ready));

    const now = Date.now();
    const today = dayOf(now);

    // GROW: one capture a day at noon, 20000 + 200 i on day F + i, i = 0..90. E = F + 90 is the
    // last day of a 10-day block (E % 10 = 9), in the past: on E the 90-day window is exactly the
    // days F+1..E (day F is in the block before), and the trend's prior span is E-59..E-30.
    let E = today - 1;
    while (E % 10 !== 9) E--;
    const F = E - 90;
    const captures: Timed[] = [];
    for (let i = 0; i <= 90; i++) {
      captures.push(sale(GROW, `${GROW}-c${i}`, 'CAPTURED', 20_000 + 200 * i, at(F + i, 12)));
    }
    // LATE: a steady 30000 a day for 97 days, at this time of day, up to four days ago.
    const lateSales: Timed[] = [];
    for (let k = 100; k >= 4; k--) {
      lateSales.push(sale(LATE, `${LATE}-c${k}`, 'CAPTURED', 30_000, now - k * DAY));
    }
    await produceAt(
      codec,
      [...captures, ...lateSales].sort((a, b) => a.at - b.at),
    );
    await waitFor(
      'both merchants to become eligible',
      async () => {
        const d = await decisionsOf(codec);
        return [GROW, LATE].every((m) => d.get(m)?.some((x) => x.eligible) === true);
      },
      60_000,
      1000,
    );

    // Phase 2: four refunds of 100000 on E (19:00..22:00); the loan of LATE, funded three days ago
    // (1 h before), with a minimum of 10000 per one-day period, and no payouts.
    const refunds = [1, 2, 3, 4].map((k) => sale(GROW, `${GROW}-r${k}`, 'REFUNDED', 100_000, at(E, 18 + k)));
    const fundedAt = now - 3 * DAY - HOUR;
    const funded: LoanEvent = {
      event_id: `${LOAN}-funded`,
      loan_id: LOAN,
      merchant_id: LATE,
      type: 'FUNDED',
      occurred_at: fundedAt,
      principal_minor: 100_000,
      fee_minor: 10_000,
      holdback_rate_bps: 1000,
      minimum_payment_minor: 10_000,
      period_days: 1,
      currency: 'EUR',
    };
    await produceAt(codec, [
      ...refunds,
      { topic: TOPICS.loanEvents, key: LATE, value: funded, at: fundedAt },
    ]);
    await waitFor(
      'the refund decline and the delinquency decline',
      async () => {
        const d = await decisionsOf(codec);
        return (
          d.get(GROW)?.some((x) => x.reasons.includes('HIGH_REFUND_RATE')) === true &&
          d.get(LATE)?.some((x) => x.reasons.includes('DELINQUENT_LOAN')) === true
        );
      },
      60_000,
      1000,
    );

    const all = await decisionsOf(codec);
    expect([...all.keys()].sort()).toEqual([LATE, GROW].sort());

    // ---- GROW ----
    // On E: net_90d = sum(20000 + 200 i, i = 1..90) = 1800000 + 200 * 4095 = 2619000 over 90 days,
    // so avg monthly = 2619000 * 30 / 90 = 873000. Tenure 90 (< 120 for C): grade D, 60%:
    // gross 523800, limit 520000. Trend: net_30d = sum(i = 61..90) = 1053000 against the 30 days
    // before, sum(i = 31..60) = 873000: +2061 bps. Volatility: sum |30 x_i - S| = 30 * 200 * 225
    // = 1350000; * 10000 / (30 * 1053000) = 427 bps.
    // Refunds: after 100000 and 200000 the limit (500000, 480000) moves by less than
    // max(50000, 10% of 520000) and nothing is emitted; after 300000 it is 460000 (avg
    // 2319000 / 3 = 773000, gross 463800) and emitted; at 400000 the refund rate is
    // 400000 / 2619000 = 1527 bps > 1500: declined, and the band falls to E (D allows 1500).
    const grow = all.get(GROW)!;
    expect(grow.map(pick)).toEqual([
      [`${GROW}-c0`, false, 'D', 0, ['INSUFFICIENT_HISTORY']],
      [`${GROW}-c90`, true, 'D', limitOf(873_000, 'D'), ['APPROVED']],
      [`${GROW}-r3`, true, 'D', limitOf(773_000, 'D'), ['APPROVED']],
      [`${GROW}-r4`, false, 'E', 0, ['HIGH_REFUND_RATE']],
    ]);
    expect(limitOf(873_000, 'D')).toBe(520_000);
    expect(limitOf(773_000, 'D')).toBe(460_000);
    for (const d of grow) {
      expect(d).toMatchObject({
        decision_id: `${GROW}:s:${d.trigger_event_id}`,
        currency: 'EUR',
        policy_version: policy.version,
      });
    }
    expect(policy.version).toBe(DEFAULT_POLICY.version);
    const [first, eligible, reduced, declined] = grow as [
      EligibilityDecision,
      EligibilityDecision,
      EligibilityDecision,
      EligibilityDecision,
    ];
    // Stream time: a decision is computed at its input's event time, not at the wall clock.
    expect(first.computed_at).toBe(at(F, 12));
    expect(eligible.computed_at).toBe(at(E, 12));
    expect(eligible.features).toEqual(
      expect.objectContaining({
        tenure_days: 90,
        window_90d_days: 90,
        captures_90d_minor: 2_619_000,
        net_sales_90d_minor: 2_619_000,
        net_sales_30d_minor: 1_053_000,
        avg_monthly_net_sales_minor: 873_000,
        refund_rate_bps: 0,
        trend_bps: 2061,
        trend_judged: 1,
        volatility_bps: 427,
        volatility_judged: 1,
        exposure_minor: 0,
        grade_band_index: 3,
        limit_multiple_bps: 6000,
        gross_limit_minor: 523_800,
        capped_limit_minor: 523_800,
        available_limit_minor: 520_000,
      }),
    );
    expect(reduced.features).toEqual(
      expect.objectContaining({
        refunds_90d_minor: 300_000,
        refund_rate_bps: 1145,
        avg_monthly_net_sales_minor: 773_000,
        gross_limit_minor: 463_800,
      }),
    );
    // Declined on E with 400000 refunded: net_30d 653000 against 873000 (trend -2521 bps, above
    // -4000), day E's net 38000 - 400000 = -362000 (volatility 11753 bps, under 15000), so the
    // refund rate alone declines it.
    expect(declined.features).toEqual(
      expect.objectContaining({
        refunds_90d_minor: 400_000,
        refund_rate_bps: 1527,
        net_sales_90d_minor: 2_219_000,
        avg_monthly_net_sales_minor: 739_666,
        trend_bps: -2521,
        volatility_bps: 11_753,
        grade_band_index: 4,
        limit_multiple_bps: 3000,
      }),
    );

    // ---- LATE ----
    // Every day of its window has 30000: avg monthly 900000 whatever the window's length; eligible
    // at tenure 90 (the sale ten days ago), grade D, 540000. Then the loan: the repayment
    // processor's LoanState turns DELINQUENT (3 missed periods), and the decision that follows it
    // declines with DELINQUENT_LOAN alone (the loan is not BEHIND: no LOAN_BEHIND, no penalty).
    const late = all.get(LATE)!;
    expect(late.slice(0, 2).map(pick)).toEqual([
      [`${LATE}-c100`, false, 'D', 0, ['INSUFFICIENT_HISTORY']],
      [`${LATE}-c10`, true, 'D', limitOf(900_000, 'D'), ['APPROVED']],
    ]);
    expect(limitOf(900_000, 'D')).toBe(540_000);

    const states = latestLoanStates((await readAll(prefix, TOPICS.loanStates, codec)) as LoanState[]);
    const loan = states.get(LOAN)!;
    expect(loan).toMatchObject({
      merchant_id: LATE,
      status: 'DELINQUENT',
      collected_minor: 0,
      balance_minor: 110_000,
    });
    expect(loan.missed_periods).toBeGreaterThanOrEqual(2);

    const last = late.at(-1)!;
    expect(last).toMatchObject({
      decision_id: `${LATE}:ls:${LOAN}@v${loan.version}`,
      trigger_event_id: `${LOAN}@v${loan.version}`,
      eligible: false,
      grade: 'D',
      limit_minor: 0,
      currency: 'EUR',
      reasons: ['DELINQUENT_LOAN'],
      policy_version: policy.version,
    });
    expect(last.features).toEqual(
      expect.objectContaining({
        tenure_days: dayOf(loan.updated_at) - dayOf(now - 100 * DAY),
        open_loans: 1,
        delinquent_loans: 1,
        behind_loans: 0,
        exposure_minor: 110_000,
        refund_rate_bps: 0,
      }),
    );
    // Only the delinquency declines it: before it, every decision of LATE was an offer or the
    // first one's short history.
    for (const d of late.slice(1, -1)) expect(d.eligible).toBe(true);

    expect(await readAll(prefix, TOPICS.dlq, codec)).toEqual([]);
  } finally {
    await Promise.all(procs.map((p) => terminate(p)));
    await deleteTopics(prefix, [changelogTopic(eligApp), changelogTopic(repayApp)]);
  }
});
