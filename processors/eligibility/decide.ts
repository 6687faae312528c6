/**
 * From a merchant's state to its features, and from features and a policy to a decision. Integer
 * arithmetic only: money in minor units, rates in basis points, every quotient floored (money.ts
 * mulDivFloor for non-negative products that may pass 2^53, api.ts floorDiv for signed ones).
 */
import { RiskGradeValues, type RiskGrade } from '../../schemas/generated/types';
import type { EligibilityReasonCode } from '../../schemas/reason-codes';
import { floorDiv } from '../api';
import { BPS_DENOMINATOR, mulDivFloor } from '../money';
import type { EligibilityPolicy, GradeBand } from './policy';
import {
  BLOCK_DAYS,
  BLOCKS,
  DAILY_DAYS,
  FLAG_LOAN_OVERFLOW,
  FLAG_SATURATED,
  FLAG_WRITE_OFF,
  LOAN_FOREIGN,
  LOAN_SLOTS,
  LOAN_STATUS_MASK,
  LOAN_USED,
  type StateView,
} from './state';
import { isOpen, STATUS } from './loans';

/** What a decision is made of. Every value is an integer; the decision carries them all. */
export interface Features {
  net_sales_30d_minor: number;
  net_sales_90d_minor: number;
  /** Days the 90-day window covers: 81..90 (whole 10-day blocks), fewer for a newer merchant. */
  window_90d_days: number;
  avg_monthly_net_sales_minor: number;
  captures_90d_minor: number;
  refunds_90d_minor: number;
  chargebacks_90d_minor: number;
  refund_rate_bps: number;
  chargeback_rate_bps: number;
  orders_90d: number;
  cancellations_90d: number;
  cancellation_rate_bps: number;
  /** Last 30 days against the (21..30) days before, per 30 days; 0 when not judged. */
  trend_bps: number;
  trend_judged: number;
  /** Relative mean absolute deviation of daily net sales over (up to) 30 days; 0 when not judged. */
  volatility_bps: number;
  volatility_judged: number;
  tenure_days: number;
  payout_failures_90d: number;
  exposure_minor: number;
  open_loans: number;
  behind_loans: number;
  delinquent_loans: number;
  written_off: number;
  loan_overflow: number;
  other_currency_events: number;
  saturated: number;
}

export function computeFeatures(v: StateView): Features {
  const d = v.today;
  const first = v.firstDay;
  const cur = Math.floor(d / BLOCK_DAYS);

  // Daily window: the last 30 days (fewer before the first event).
  const start30 = Math.max(d - DAILY_DAYS + 1, first);
  const n30 = d - start30 + 1;
  let net30 = 0;
  for (let day = start30; day <= d; day++) net30 += v.daily(day);

  // Block window: the current 10-day block and the 8 before.
  let captures = 0;
  let refunds = 0;
  let chargebacks = 0;
  let orders = 0;
  let cancels = 0;
  let failures = 0;
  for (let b = cur - BLOCKS + 1; b <= cur; b++) {
    captures += v.captures(b);
    refunds += v.refunds(b);
    chargebacks += v.chargebacks(b);
    orders += v.block('orders', b);
    cancels += v.block('cancels', b);
    failures += v.block('failures', b);
  }
  const net90 = captures - refunds - chargebacks;
  const windowDays = d - Math.max((cur - BLOCKS + 1) * BLOCK_DAYS, first) + 1;
  const avgMonthly = net90 > 0 ? mulDivFloor(net90, 30, windowDays) : 0;

  // Trend: the last 30 days against the days before them back to the block boundary at or after
  // d - 59 (21..30 days), scaled to 30 days. Judged only when that window is within the tenure
  // and its net sales are positive.
  const priorStart = Math.ceil((d - 59) / BLOCK_DAYS) * BLOCK_DAYS;
  let trend = 0;
  let trendJudged = 0;
  if (first <= priorStart) {
    let sincePrior = 0;
    for (let b = priorStart / BLOCK_DAYS; b <= cur; b++) {
      sincePrior += v.captures(b) - v.refunds(b) - v.chargebacks(b);
    }
    const priorDays = d - DAILY_DAYS - priorStart + 1;
    const prior30 = floorDiv((sincePrior - net30) * 30, priorDays);
    if (prior30 > 0) {
      trend = floorDiv((net30 - prior30) * BPS_DENOMINATOR, prior30);
      trendJudged = 1;
    }
  }

  // Volatility: sum |n * x_i - S| / (n * S), exact in integers, over the daily window's days.
  let volatility = 0;
  let volatilityJudged = 0;
  if (net30 > 0 && n30 >= 2) {
    let dev = 0;
    for (let day = start30; day <= d; day++) dev += Math.abs(n30 * v.daily(day) - net30);
    volatility = mulDivFloor(dev, BPS_DENOMINATOR, n30 * net30);
    volatilityJudged = 1;
  }

  let exposure = 0;
  let open = 0;
  let behind = 0;
  let delinquent = 0;
  for (let i = 0; i < LOAN_SLOTS; i++) {
    const slot = v.loan(i);
    if ((slot.bits & LOAN_USED) === 0 || !isOpen(slot.bits)) continue;
    open++;
    const status = slot.bits & LOAN_STATUS_MASK;
    if (status === STATUS.BEHIND) behind++;
    if (status === STATUS.DELINQUENT) delinquent++;
    if ((slot.bits & LOAN_FOREIGN) === 0) exposure += slot.balanceMinor;
  }

  return {
    net_sales_30d_minor: net30,
    net_sales_90d_minor: net90,
    window_90d_days: windowDays,
    avg_monthly_net_sales_minor: avgMonthly,
    captures_90d_minor: captures,
    refunds_90d_minor: refunds,
    chargebacks_90d_minor: chargebacks,
    refund_rate_bps: rate(refunds, captures),
    chargeback_rate_bps: rate(chargebacks, captures),
    orders_90d: orders,
    cancellations_90d: cancels,
    cancellation_rate_bps: rate(cancels, orders),
    trend_bps: trend,
    trend_judged: trendJudged,
    volatility_bps: volatility,
    volatility_judged: volatilityJudged,
    tenure_days: d - first,
    payout_failures_90d: failures,
    exposure_minor: exposure,
    open_loans: open,
    behind_loans: behind,
    delinquent_loans: delinquent,
    written_off: v.hasFlag(FLAG_WRITE_OFF) ? 1 : 0,
    loan_overflow: v.hasFlag(FLAG_LOAN_OVERFLOW) ? 1 : 0,
    other_currency_events: v.otherCurrencyEvents,
    saturated: v.hasFlag(FLAG_SATURATED) ? 1 : 0,
  };
}

/** part / whole in basis points, floored and capped at 100%; a part with no whole is 100%. */
function rate(part: number, whole: number): number {
  if (whole <= 0) return part > 0 ? BPS_DENOMINATOR : 0;
  return Math.min(BPS_DENOMINATOR, mulDivFloor(part, BPS_DENOMINATOR, whole));
}

export interface Evaluation {
  readonly eligible: boolean;
  /** Index in RiskGradeValues (0 = A). */
  readonly grade: number;
  readonly limitMinor: number;
  /** Every code that applies, in ELIGIBILITY_REASONS order (REFILL_ELIGIBLE is added by the processor). */
  readonly reasons: EligibilityReasonCode[];
  readonly features: Features;
  /** The limit's parts. */
  readonly band: number;
  readonly multipleBps: number;
  readonly grossLimitMinor: number;
  readonly cappedLimitMinor: number;
  readonly availableLimitMinor: number;
}

/** What a decision carries as `features`: the features and the limit's parts. */
export function decisionFeatures(ev: Evaluation): Record<string, number> {
  return {
    ...ev.features,
    grade_band_index: ev.band,
    limit_multiple_bps: ev.multipleBps,
    gross_limit_minor: ev.grossLimitMinor,
    capped_limit_minor: ev.cappedLimitMinor,
    available_limit_minor: ev.availableLimitMinor,
  };
}

/** True when the merchant meets every requirement the band sets; an unjudged trend or volatility fails its requirement. */
export function meetsBand(f: Features, b: GradeBand): boolean {
  if (b.minTenureDays !== undefined && f.tenure_days < b.minTenureDays) return false;
  if (
    b.minAvgMonthlyNetSalesMinor !== undefined &&
    f.avg_monthly_net_sales_minor < b.minAvgMonthlyNetSalesMinor
  )
    return false;
  if (b.maxRefundRateBps !== undefined && f.refund_rate_bps > b.maxRefundRateBps) return false;
  if (b.maxChargebackRateBps !== undefined && f.chargeback_rate_bps > b.maxChargebackRateBps) return false;
  if (b.maxCancellationRateBps !== undefined && f.cancellation_rate_bps > b.maxCancellationRateBps)
    return false;
  if (b.minTrendBps !== undefined && (f.trend_judged === 0 || f.trend_bps < b.minTrendBps)) return false;
  if (
    b.maxVolatilityBps !== undefined &&
    (f.volatility_judged === 0 || f.volatility_bps > b.maxVolatilityBps)
  )
    return false;
  if (b.maxPayoutFailures90d !== undefined && f.payout_failures_90d > b.maxPayoutFailures90d) return false;
  return true;
}

/** The best band the merchant meets (E, which has no requirements, always), as an index into RiskGradeValues. */
export function bandOf(f: Features, p: EligibilityPolicy): number {
  for (let i = 0; i < RiskGradeValues.length - 1; i++) {
    if (meetsBand(f, p.grades[RiskGradeValues[i]!])) return i;
  }
  return RiskGradeValues.length - 1;
}

export function evaluate(f: Features, p: EligibilityPolicy): Evaluation {
  const e = p.eligibility;
  const declines: EligibilityReasonCode[] = [];
  if (f.tenure_days < e.minTenureDays) declines.push('INSUFFICIENT_HISTORY');
  if (f.avg_monthly_net_sales_minor < e.minAvgMonthlyNetSalesMinor) declines.push('LOW_VOLUME');
  if (f.refund_rate_bps > e.maxRefundRateBps) declines.push('HIGH_REFUND_RATE');
  if (f.chargeback_rate_bps > e.maxChargebackRateBps) declines.push('HIGH_CHARGEBACK_RATE');
  if (f.cancellation_rate_bps > e.maxCancellationRateBps) declines.push('HIGH_CANCELLATION_RATE');
  if (f.trend_judged === 1 && f.trend_bps < e.minTrendBps) declines.push('DECLINING_SALES');
  if (f.volatility_judged === 1 && f.volatility_bps > e.maxVolatilityBps) declines.push('VOLATILE_SALES');
  if (f.payout_failures_90d > e.maxPayoutFailures90d) declines.push('PAYOUT_FAILURES');
  if (f.delinquent_loans > 0) declines.push('DELINQUENT_LOAN');
  if (f.written_off === 1 && e.declineAfterWriteOff) declines.push('PRIOR_WRITE_OFF');

  const band = bandOf(f, p);
  const grade = Math.min(
    RiskGradeValues.length - 1,
    band + (f.behind_loans > 0 ? p.loans.behindGradePenalty : 0),
  );
  const multiple = p.grades[RiskGradeValues[grade] as RiskGrade].limitMultipleBps;
  const gross = mulDivFloor(f.avg_monthly_net_sales_minor, multiple, BPS_DENOMINATOR);
  const capped = Math.min(gross, p.limits.maxLimitMinor);
  const available = f.loan_overflow === 1 ? 0 : Math.max(0, capped - f.exposure_minor);
  const step = p.limits.roundingStepMinor;
  const limit = floorDiv(available, step) * step;

  // The limit is judged only when every rule passes: its reasons would repeat theirs.
  if (declines.length === 0 && limit < p.limits.minOfferMinor) {
    declines.push(
      f.exposure_minor > 0 || f.loan_overflow === 1 ? 'EXPOSURE_AT_LIMIT' : 'LIMIT_BELOW_MINIMUM',
    );
  }
  const eligible = declines.length === 0;
  // Pushed in ELIGIBILITY_REASONS order: APPROVED or the declines, then the informational codes.
  const reasons: EligibilityReasonCode[] = eligible ? ['APPROVED'] : declines;
  if (f.behind_loans > 0) reasons.push('LOAN_BEHIND');
  if (eligible && gross > p.limits.maxLimitMinor) reasons.push('LIMIT_CAPPED');
  return {
    eligible,
    grade,
    limitMinor: eligible ? limit : 0,
    reasons,
    features: f,
    band,
    multipleBps: multiple,
    grossLimitMinor: gross,
    cappedLimitMinor: capped,
    availableLimitMinor: limit,
  };
}
