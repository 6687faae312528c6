/**
 * Table tests: one row per reason code and per grade band. Each row is a merchant's history run
 * through the runtime's TestDriver (state encoded and decoded after every step, purity checked),
 * then the exact evaluation of the final state, and the last decision emitted, which must agree
 * with it (the table's policy emits every limit change).
 */
import type { EligibilityPolicy } from '../../../processors/eligibility';
import { ELIGIBILITY_REASON_CODES, type EligibilityReasonCode } from '../../../schemas/reason-codes';
import type { RiskGrade } from '../../../schemas/generated/types';
import {
  dailySales,
  EVERY_CHANGE,
  evaluation,
  feed,
  funded,
  lastDecision,
  loanEvent,
  loanState,
  newDriver,
  order,
  payout,
  policyWith,
  sale,
  timeOf,
  type Input,
} from './fixtures';

const POLICY = policyWith({ emission: EVERY_CHANGE });

interface Row {
  /** The reason code or grade band the row is about. */
  about: EligibilityReasonCode | `grade ${RiskGrade}`;
  history: Input[];
  policy?: EligibilityPolicy;
  eligible: boolean;
  grade: RiskGrade;
  limit: number;
  reasons: EligibilityReasonCode[];
}

/** n days of 1,000.00 a day: avg monthly net sales 30,000.00 whatever the window. */
const steady = (n: number, amount = 100_000): Input[] => dailySales(0, n, amount);
const each = (n: number, f: (d: number) => Input[]): Input[] =>
  Array.from({ length: n }, (_, d) => f(d)).flat();

const ROWS: Row[] = [
  // Grade bands (default policy: A x1.5, B x1.2, C x0.9, D x0.6, E x0.3 of monthly net sales).
  {
    about: 'grade A',
    history: steady(400, 200_000),
    eligible: true,
    grade: 'A',
    limit: 9_000_000,
    reasons: ['APPROVED'],
  },
  {
    about: 'grade B',
    history: steady(200),
    eligible: true,
    grade: 'B',
    limit: 3_600_000,
    reasons: ['APPROVED'],
  },
  {
    about: 'grade C',
    history: steady(130),
    eligible: true,
    grade: 'C',
    limit: 2_700_000,
    reasons: ['APPROVED'],
  },
  {
    about: 'grade D',
    history: steady(100),
    eligible: true,
    grade: 'D',
    limit: 1_800_000,
    reasons: ['APPROVED'],
  },
  {
    about: 'grade E',
    history: [...steady(100), ...each(100, (d) => [sale(d + 0.6, 'REFUNDED', 16_000)])],
    eligible: false,
    grade: 'E',
    limit: 0,
    reasons: ['HIGH_REFUND_RATE'],
  },
  // Reason codes, in their order.
  {
    about: 'APPROVED',
    history: steady(95),
    eligible: true,
    grade: 'D',
    limit: 1_800_000,
    reasons: ['APPROVED'],
  },
  {
    about: 'INSUFFICIENT_HISTORY',
    history: steady(30),
    eligible: false,
    grade: 'D',
    limit: 0,
    reasons: ['INSUFFICIENT_HISTORY'],
  },
  {
    about: 'LOW_VOLUME',
    history: steady(100, 10_000),
    eligible: false,
    grade: 'D',
    limit: 0,
    reasons: ['LOW_VOLUME'],
  },
  {
    about: 'HIGH_REFUND_RATE',
    history: [...steady(130), ...each(130, (d) => [sale(d + 0.6, 'REFUNDED', 20_000)])],
    eligible: false,
    grade: 'E',
    limit: 0,
    reasons: ['HIGH_REFUND_RATE'],
  },
  {
    about: 'HIGH_CHARGEBACK_RATE',
    history: [...steady(100), ...each(100, (d) => [sale(d + 0.6, 'CHARGEBACK', 2_000)])],
    eligible: false,
    grade: 'E',
    limit: 0,
    reasons: ['HIGH_CHARGEBACK_RATE'],
  },
  {
    about: 'HIGH_CANCELLATION_RATE',
    history: [
      ...steady(100),
      ...each(100, (d) => [
        order(d + 0.1, 'PLACED', { n: 1 }),
        order(d + 0.1, 'PLACED', { n: 2 }),
        order(d + 0.2, 'CANCELLED', { n: 1 }),
      ]),
    ],
    eligible: false,
    grade: 'D',
    limit: 0,
    reasons: ['HIGH_CANCELLATION_RATE'],
  },
  {
    about: 'DECLINING_SALES',
    history: dailySales(0, 100, (d) => (d < 70 ? 100_000 : 30_000)),
    eligible: false,
    grade: 'D',
    limit: 0,
    reasons: ['DECLINING_SALES'],
  },
  {
    about: 'VOLATILE_SALES',
    history: dailySales(0, 100, (d) => (d % 7 === 0 ? 700_000 : 0)),
    eligible: false,
    grade: 'D',
    limit: 0,
    reasons: ['VOLATILE_SALES'],
  },
  {
    about: 'PAYOUT_FAILURES',
    history: [...steady(100), payout(80, 'FAILED'), payout(85, 'FAILED'), payout(99.9, 'FAILED')],
    eligible: false,
    grade: 'D',
    limit: 0,
    reasons: ['PAYOUT_FAILURES'],
  },
  {
    about: 'DELINQUENT_LOAN',
    history: [...steady(100), loanState(99.9, 'L1', 'DELINQUENT', 500_000, 100_000)],
    eligible: false,
    grade: 'D',
    limit: 0,
    reasons: ['DELINQUENT_LOAN'],
  },
  {
    about: 'PRIOR_WRITE_OFF',
    history: [...steady(100), funded(10, 'L1', 500_000, 50_000), loanEvent(99.9, 'L1', 'WRITTEN_OFF')],
    eligible: false,
    grade: 'D',
    limit: 0,
    reasons: ['PRIOR_WRITE_OFF'],
  },
  {
    about: 'EXPOSURE_AT_LIMIT',
    history: [...steady(100), funded(99.9, 'L1', 1_700_000, 50_000)],
    eligible: false,
    grade: 'D',
    limit: 0,
    reasons: ['EXPOSURE_AT_LIMIT'],
  },
  {
    about: 'LIMIT_BELOW_MINIMUM',
    history: steady(100),
    policy: policyWith({ emission: EVERY_CHANGE, limits: { minOfferMinor: 2_000_000 } }),
    eligible: false,
    grade: 'D',
    limit: 0,
    reasons: ['LIMIT_BELOW_MINIMUM'],
  },
  {
    about: 'LOAN_BEHIND',
    history: [...steady(130), loanState(129.9, 'L1', 'BEHIND', 500_000, 400_000)],
    eligible: true,
    grade: 'D', // C, one grade down
    limit: 1_700_000, // 30,000.00 x 0.6 - 1,000.00 outstanding
    reasons: ['APPROVED', 'LOAN_BEHIND'],
  },
  {
    about: 'LIMIT_CAPPED',
    history: steady(400, 2_000_000),
    eligible: true,
    grade: 'A',
    limit: 50_000_000,
    reasons: ['APPROVED', 'LIMIT_CAPPED'],
  },
  {
    about: 'REFILL_ELIGIBLE',
    history: [
      ...steady(100),
      funded(50, 'L1', 1_000_000, 0),
      loanState(50.1, 'L1', 'ACTIVE', 1_000_000, 0),
      loanState(99.9, 'L1', 'ACTIVE', 1_000_000, 800_000),
    ],
    eligible: true,
    grade: 'D',
    limit: 1_600_000, // 1,800,000 - 200,000 outstanding
    reasons: ['APPROVED'], // the evaluation; the decision adds REFILL_ELIGIBLE
  },
];

test('the table covers every eligibility reason code and every grade band', () => {
  const about = new Set(ROWS.map((r) => r.about));
  for (const code of Object.keys(ELIGIBILITY_REASON_CODES)) expect(about).toContain(code);
  for (const g of ['A', 'B', 'C', 'D', 'E']) expect(about).toContain(`grade ${g}`);
});

test.each(ROWS.map((r) => [r.about, r] as const))('%s', (_, row) => {
  const policy = row.policy ?? POLICY;
  const driver = newDriver(policy);
  feed(
    driver,
    [...row.history].sort((a, b) => timeOf(a) - timeOf(b)),
  );
  const ev = evaluation(driver, policy);
  expect({
    eligible: ev.eligible,
    grade: 'ABCDE'[ev.grade],
    limit: ev.limitMinor,
    reasons: ev.reasons,
  }).toEqual({
    eligible: row.eligible,
    grade: row.grade,
    limit: row.limit,
    reasons: row.reasons,
  });
  const last = lastDecision(driver);
  expect(last).toBeDefined();
  expect({ eligible: last!.eligible, grade: last!.grade, limit: last!.limit_minor }).toEqual({
    eligible: row.eligible,
    grade: row.grade,
    limit: row.limit,
  });
  expect(last!.reasons).toEqual(
    row.about === 'REFILL_ELIGIBLE' ? [...row.reasons, 'REFILL_ELIGIBLE'] : row.reasons,
  );
  expect(last!.policy_version).toBe(policy.version);
  expect(last!.currency).toBe('EUR');
  expect(driver.rejected()).toEqual([]);
});
