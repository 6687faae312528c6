/**
 * Extreme but valid inputs (issue 13, "no arithmetic on valid input throws"): amounts at the
 * contract's ceiling of 10^13 minor units, many records per merchant, timestamps at both ends of
 * the validated range, events on one instant or 179 years apart, windows of a single day. Each
 * row is a history run through the runtime's TestDriver (state encoded and decoded after every
 * step, purity checked), every input first passing the contract's validator at the driver's
 * clock. Nothing may throw, nothing may be rejected, and every decision must encode through the
 * real codec (as the runtime encodes outputs) with sane, safe-integer features. A second table
 * evaluates the corners of the state's envelope (every counter at its saturation value).
 */
import { Codec, StaticSchemaSource } from '../../../connectors/codec';
import {
  computeFeatures,
  decisionFeatures,
  evaluate,
  parsePolicy,
  StateView,
  type EligibilityPolicy,
  type Evaluation,
} from '../../../processors/eligibility';
import { recordOf } from '../../../schemas/contract';
import type { EligibilityDecision } from '../../../schemas/generated/types';
import { TOPICS } from '../../../schemas/topics';
import { MAX_AMOUNT_MINOR, validateRecord } from '../../../schemas/validate';
import {
  DAY,
  decisions,
  evaluation,
  EVERY_CHANGE,
  funded,
  loanState,
  newDriver,
  order,
  payout,
  policyWith,
  sale,
  timeOf,
  type Driver,
  type Input,
} from './fixtures';

const MAX = MAX_AMOUNT_MINOR; // 10^13
const I32 = 2 ** 31 - 1; // a day's net sales saturate here
const U32 = 2 ** 32 - 1; // a block's amounts saturate here
const U16 = 2 ** 16 - 1;
const U48 = 2 ** 48 - 1;
/** The first and the last instant the processor accepts: 2000-01-01T00:00Z, 2179-06-06T23:59:59.999Z. */
const FIRST_MS = Date.UTC(2000, 0, 1);
const LAST_MS = FIRST_MS + 0x10000 * DAY - 1;
/** Relative day 3 of the fixtures (T0 = 2026-01-01, day 9497) is day 9500: the start of a 10-day block. */
const B = 3;

/** Every policy knob at the end that makes products largest: x10 multiples, the ceiling as cap. */
const EXTREME: EligibilityPolicy = parsePolicy(
  policyWith({
    version: 'extreme',
    emission: EVERY_CHANGE,
    eligibility: {
      minTenureDays: 0,
      minAvgMonthlyNetSalesMinor: 0,
      maxRefundRateBps: 10_000,
      maxChargebackRateBps: 10_000,
      maxCancellationRateBps: 10_000,
      minTrendBps: -10_000,
      maxVolatilityBps: 1_000_000,
      maxPayoutFailures90d: 255,
      declineAfterWriteOff: false,
    },
    grades: {
      A: { limitMultipleBps: 100_000 },
      B: { limitMultipleBps: 100_000 },
      C: { limitMultipleBps: 100_000 },
      D: { limitMultipleBps: 100_000 },
      E: { limitMultipleBps: 100_000 },
    },
    limits: { maxLimitMinor: MAX, minOfferMinor: 0, roundingStepMinor: 1 },
    loans: { refillShareRepaidBps: 5_000 },
  }),
  'extreme',
);
/** The same, but a limit move is material only from 100% of the last limit. */
const EXTREME_STICKY: EligibilityPolicy = parsePolicy(
  {
    ...EXTREME,
    version: 'extreme-sticky',
    emission: { minLimitChangeBps: 10_000, minLimitChangeMinor: MAX },
  },
  'extreme-sticky',
);

/** An input moved to another instant (occurred_at, or updated_at for a LoanState). */
function at(i: Input, ms: number): Input {
  return i.topic === TOPICS.loanStates
    ? { ...i, value: { ...i.value, updated_at: ms } }
    : ({ ...i, value: { ...i.value, occurred_at: ms } } as Input);
}

const idOf = (i: Input): string => ('event_id' in i.value ? i.value.event_id : '');

/** One second, in days. */
const SEC = 1 / 86_400;

/**
 * n copies of an input with distinct event ids. The processor remembers at most 256 event ids per
 * merchant: a burst of more events than that within one second would dead-letter the rest
 * (BEYOND_DEDUP_HORIZON), so bursts here are one event per second.
 */
function times(n: number, f: (k: number) => Input): Input[] {
  return Array.from({ length: n }, (_, k) => f(k));
}

function loanStateOf(
  d: number,
  loanId: string,
  principal: number,
  fee: number,
  collected: number,
  version: number,
): Input {
  const base = loanState(d, loanId, 'ACTIVE', principal, collected, { version });
  if (base.topic !== TOPICS.loanStates) throw new Error('not a LoanState');
  return {
    ...base,
    value: { ...base.value, fee_minor: fee, balance_minor: principal + fee - collected },
  };
}

interface Row {
  about: string;
  history: Input[];
  policy?: EligibilityPolicy;
  /** The driver's clock for each input (default: the input's own time). */
  clock?: (input: Input) => number;
  /** Then move the clock this many days on, firing the daily timers on the way. */
  thenDays?: number;
  /** Features the final state must have exactly. */
  features?: Partial<Record<string, number>>;
  /** Checks on what was emitted. */
  emitted?: (ds: EligibilityDecision[]) => void;
}

const ROWS: Row[] = [
  {
    about: '1000 captures of 10^13 in 1000 seconds (a first day: every window one day long)',
    history: times(1000, (k) => sale(B + 0.5 + k * SEC, 'CAPTURED', MAX, { id: `c${k}` })),
    features: {
      net_sales_30d_minor: I32,
      captures_90d_minor: U32,
      net_sales_90d_minor: U32,
      window_90d_days: 1,
      avg_monthly_net_sales_minor: U32 * 30,
      gross_limit_minor: U32 * 300,
      available_limit_minor: U32 * 300,
      tenure_days: 0,
      volatility_judged: 0,
      trend_judged: 0,
      saturated: 1,
    },
  },
  {
    about: '1000 refunds and 1000 chargebacks of 10^13, no captures',
    history: [
      order(B, 'PLACED'),
      ...times(1000, (k) => sale(B + 0.5 + k * SEC, 'REFUNDED', MAX, { id: `r${k}` })),
      ...times(1000, (k) => sale(B + 0.6 + k * SEC, 'CHARGEBACK', MAX, { id: `b${k}` })),
    ],
    features: {
      net_sales_30d_minor: -I32,
      refunds_90d_minor: U32,
      chargebacks_90d_minor: U32,
      net_sales_90d_minor: -2 * U32,
      refund_rate_bps: 10_000,
      chargeback_rate_bps: 10_000,
      avg_monthly_net_sales_minor: 0,
      gross_limit_minor: 0,
      saturated: 1,
    },
  },
  {
    about: 'a capture of 10^13 every day for 200 days, then 120 quiet days of ticks',
    history: times(200, (k) => sale(B + k + 0.5, 'CAPTURED', MAX, { id: `d${k}` })),
    thenDays: 120,
    // The ticks stop once every window is empty (81 days after the last sale).
    features: { net_sales_30d_minor: 0, net_sales_90d_minor: 0, tenure_days: 199 + 81, saturated: 1 },
    emitted: (ds) => {
      // While the days were saturated: 30 days of 2^31 - 1, and the limit at its largest.
      expect(ds.some((d) => d.features['net_sales_30d_minor'] === 30 * I32)).toBe(true);
      expect(ds.at(-1)!.eligible).toBe(true);
      expect(ds.at(-1)!.limit_minor).toBe(0); // every window empty again
    },
  },
  {
    // 14 days of +(2^31 - 1), 14 of -(2^31 - 1), one of +1: S = 1 over n = 29 days, so
    // dev * 10000 = (812 * (2^31 - 1) + 28) * 10000 > 2^53 (mulDivFloor's BigInt path).
    about: 'volatility at its largest: saturated days of either sign around a net of 1',
    history: [
      ...times(28, (k) => sale(B + k + 0.5, k % 2 === 0 ? 'CAPTURED' : 'REFUNDED', MAX, { id: `v${k}` })),
      sale(B + 28.5, 'CAPTURED', 1, { id: 'v1' }),
    ],
    features: {
      net_sales_30d_minor: 1,
      volatility_judged: 1,
      volatility_bps: 28 * I32 * 10_000 + Math.floor((28 * 10_000) / 29),
    },
  },
  {
    // Prior span (days 30..59 of the block-aligned history) nets 1; the last 30 days net
    // 1.2 * 10^10 without saturating a block: the largest trend an unsaturated state reaches.
    about: 'trend at its largest: a prior 30 days of 1, then 30 days of 4 * 10^8',
    history: [
      order(B, 'PLACED'),
      sale(B + 30.5, 'CAPTURED', 1, { id: 'prior' }),
      ...times(30, (k) => sale(B + 60 + k + 0.5, 'CAPTURED', 400_000_000, { id: `t${k}` })),
    ],
    features: {
      net_sales_30d_minor: 12_000_000_000,
      trend_judged: 1,
      trend_bps: (12_000_000_000 - 1) * 10_000,
    },
  },
  {
    // principal + fee = 2 * 10^13: (2 * 10^13) * 5000 bps > 2^53 for the refill share.
    about: 'loans at the ceiling: three of 10^13 + 10^13, a fourth that overflows, a refill',
    history: [
      sale(B + 0.5, 'CAPTURED', MAX, { id: 'c' }),
      funded(B + 1, 'L1', MAX, MAX),
      funded(B + 1.1, 'L2', MAX, MAX),
      funded(B + 1.2, 'L3', MAX, MAX),
      funded(B + 1.3, 'L4', MAX, MAX),
      loanStateOf(B + 2, 'L1', MAX, MAX, MAX, 1),
    ],
    features: { exposure_minor: 5 * MAX, open_loans: 3, loan_overflow: 1, available_limit_minor: 0 },
    emitted: (ds) => expect(ds.at(-1)!.reasons).toContain('REFILL_ELIGIBLE'),
  },
  {
    // The last limit, U32 * 300 = 1.29 * 10^12, times 10000 bps > 2^53 (mulDivFloor's BigInt path).
    about: 'a material-change threshold of 100% of the largest limit',
    policy: EXTREME_STICKY,
    history: [
      ...times(10, (k) => sale(B + 0.5, 'CAPTURED', MAX, { id: `c${k}` })),
      sale(B + 1.5, 'CAPTURED', 1, { id: 'next day' }),
    ],
    features: { window_90d_days: 2, available_limit_minor: U32 * 150 },
    emitted: (ds) => {
      expect(ds).toHaveLength(1); // halving the limit is below a 100% threshold
      expect(ds[0]!.limit_minor).toBe(U32 * 300);
    },
  },
  {
    about: 'counters at saturation: 65,600 orders, 65,600 cancellations, 300 failed payouts',
    history: [
      ...times(65_600, (k) => order(B + 0.1 + k * SEC, 'PLACED', { n: k })),
      ...times(65_600, (k) => order(B + 0.9 + k * SEC, 'CANCELLED', { n: k })),
      ...times(300, (k) => payout(B + 1.7 + k * SEC, 'FAILED', { id: `f${k}` })),
    ],
    features: {
      orders_90d: U16,
      cancellations_90d: U16,
      cancellation_rate_bps: 10_000,
      payout_failures_90d: 255,
      saturated: 1,
    },
  },
  {
    about: 'the first valid instant, 2000-01-01T00:00Z: day 0, a one-day window',
    history: [at(sale(0, 'CAPTURED', MAX, { id: 'first' }), FIRST_MS)],
    thenDays: 100,
    // The ticks stop at day 90, when block 0 leaves the window and every window is empty.
    features: { tenure_days: 90, window_90d_days: 81, net_sales_90d_minor: 0 },
    emitted: (ds) =>
      expect(ds[0]!.features).toMatchObject({ window_90d_days: 1, tenure_days: 0, net_sales_30d_minor: I32 }),
  },
  {
    about: 'the last valid instant, 2179-06-06T23:59:59.999Z, after 2000-01-01 and a late event',
    history: [
      at(sale(0, 'CAPTURED', MAX, { id: 'first' }), FIRST_MS),
      at(sale(0, 'CAPTURED', MAX, { id: 'last' }), LAST_MS),
      at(sale(0, 'CAPTURED', MAX, { id: 'late' }), FIRST_MS + 1),
    ],
    // The late event arrives with the clock still on the last day.
    clock: (i) => (idOf(i) === 'late' ? LAST_MS : timeOf(i)),
    features: { tenure_days: 0xffff, net_sales_30d_minor: I32, captures_90d_minor: U32, saturated: 1 },
  },
  {
    about: 'a history replayed with the clock 150 years later, and events a day ahead of it',
    history: [
      ...times(40, (k) => sale(B + k + 0.5, 'CAPTURED', MAX, { id: `old${k}` })),
      sale(B + 40.5, 'CAPTURED', MAX, { id: 'ahead' }),
    ],
    clock: (i) => (idOf(i) === 'ahead' ? timeOf(i) - DAY + 1 : timeOf(i) + 150 * 365 * DAY),
    features: { tenure_days: 40, saturated: 1 },
  },
];

const codec = new Codec({
  source: new StaticSchemaSource(new Map()),
  schemaIds: { [TOPICS.eligibility]: 1 },
});

function run(row: Row, policy: EligibilityPolicy): Driver {
  const driver = newDriver(policy);
  for (const i of row.history) {
    const now = row.clock ? row.clock(i) : timeOf(i);
    // Valid input only: what the codec would let through at this clock.
    const valid = validateRecord(recordOf(i.topic), i.value, { now });
    if (!valid.ok) throw new Error(`${idOf(i) || timeOf(i)}: ${valid.reasonCode} ${valid.detail}`);
    driver.setClock(now);
    const result = driver.pipe(i.topic, i.value as never, { key: i.value.merchant_id });
    if (result !== 'processed') throw new Error(`${idOf(i) || timeOf(i)}: ${result}`);
  }
  if (row.thenDays !== undefined) driver.advanceTime(row.thenDays * DAY);
  return driver;
}

/** Sane, safe integers: what every evaluation's parts must be, whatever the state. */
function expectSane(ev: Evaluation, policy: EligibilityPolicy): void {
  const f = decisionFeatures(ev);
  for (const [name, x] of Object.entries({ limit: ev.limitMinor, ...f })) {
    if (!Number.isSafeInteger(x)) throw new Error(`${name} = ${x} is not a safe integer`);
  }
  expect(ev.limitMinor).toBeGreaterThanOrEqual(0);
  expect(ev.limitMinor).toBeLessThanOrEqual(policy.limits.maxLimitMinor);
  expect(f['capped_limit_minor']).toBeLessThanOrEqual(policy.limits.maxLimitMinor);
  for (const k of ['avg_monthly_net_sales_minor', 'gross_limit_minor', 'exposure_minor', 'volatility_bps'])
    expect(f[k]).toBeGreaterThanOrEqual(0);
  for (const k of ['refund_rate_bps', 'chargeback_rate_bps', 'cancellation_rate_bps']) {
    expect(f[k]).toBeGreaterThanOrEqual(0);
    expect(f[k]).toBeLessThanOrEqual(10_000);
  }
  expect(f['window_90d_days']).toBeGreaterThanOrEqual(1);
  expect(f['window_90d_days']).toBeLessThanOrEqual(90);
  expect(f['tenure_days']).toBeGreaterThanOrEqual(0);
  expect(f['tenure_days']).toBeLessThanOrEqual(0xffff);
}

describe('extreme but valid histories', () => {
  test.each(ROWS.map((r) => [r.about, r] as const))(
    '%s',
    (_, row) => {
      const policy = row.policy ?? EXTREME;
      const driver = run(row, policy);
      expect(driver.rejected()).toEqual([]);
      const ds = decisions(driver);
      expect(ds.length).toBeGreaterThan(0);
      for (const d of ds) {
        expect(() => codec.encode(TOPICS.eligibility, d)).not.toThrow();
        for (const [name, x] of Object.entries({ limit_minor: d.limit_minor, ...d.features })) {
          if (!Number.isSafeInteger(x)) throw new Error(`${d.decision_id}: ${name} = ${x}`);
        }
      }
      const ev = evaluation(driver, policy);
      expectSane(ev, policy);
      if (row.features) expect(decisionFeatures(ev)).toMatchObject(row.features);
      row.emitted?.(ds);
    },
    30_000,
  );
});

// ---- the state's envelope: every reachable counter value, at its extremes ----

type Daily = (d: number) => number;
const DAILY: Record<string, Daily> = {
  'all +max': () => I32,
  'all -max': () => -I32,
  alternating: (d) => (d % 2 === 0 ? I32 : -I32),
  'one +1, rest alternating': (d) => (d % 30 === 0 ? 1 : d % 2 === 0 ? I32 : -I32),
  'one +max, rest -1': (d) => (d % 30 === 0 ? I32 : -1),
};
type Blocks = (b: number) => readonly [captures: number, refunds: number, chargebacks: number];
const BLOCKS: Record<string, Blocks> = {
  'captures max': () => [U32, 0, 0],
  'all max': () => [U32, U32, U32],
  'refunds max': () => [0, U32, U32],
  'only the prior span': (b) => (b % 3 === 0 ? [1, 0, 0] : [0, 0, 0]),
};
const TODAYS = [0, 1, 29, 59, 60, 89, 90, 9500, 0xffff];

function stateOf(today: number, tenure: number, daily: Daily, blocks: Blocks): StateView {
  const v = new StateView().init(today);
  v.noteDay(Math.max(0, today - tenure));
  for (let d = today - 29; d <= today; d++) if (d >= 0) v.addDaily(d, daily(d));
  const cur = Math.floor(today / 10);
  for (let b = cur - 8; b <= cur; b++) {
    if (b < 0) continue;
    const [c, r, k] = blocks(b);
    v.addBlock('captures', b, c);
    v.addBlock('refunds', b, r);
    v.addBlock('chargebacks', b, k);
    v.addBlock('orders', b, U16);
    v.addBlock('cancels', b, U16);
    v.addBlock('failures', b, 255);
  }
  for (let i = 0; i < 3; i++) v.setLoan(i, { hash: i + 1, balanceMinor: U48, bits: 128 | (i % 3) });
  return v;
}

describe('the corners of the state envelope evaluate to sane, safe integers', () => {
  test.each(TODAYS)('today = day %i', (today) => {
    for (const tenure of [0, 30, 60, 0xffff])
      for (const daily of Object.values(DAILY))
        for (const blocks of Object.values(BLOCKS)) {
          const v = stateOf(today, tenure, daily, blocks);
          for (const policy of [EXTREME, EXTREME_STICKY])
            expectSane(evaluate(computeFeatures(v), policy), policy);
        }
  });
});
