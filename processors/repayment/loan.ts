/**
 * One loan's rules (docs/contract.md, "Repayment rules"): terms, balance, the minimum-payment period
 * clock, pace, and its public LoanState view. Functions here mutate the Loan they are given: the
 * processor hands them the step's own copy.
 */
import type {
  LoanEvent,
  LoanEventType,
  LoanState,
  LoanStatus,
  RepaymentPace,
} from '../../schemas/generated/types';
import { InvariantViolation } from '../api';
import { BPS_DENOMINATOR, isMinor, mulDivFloor, mulDivFloorCapped } from '../money';
import type { Loan, Withholding } from './state';
import { MAX_AMOUNT_MINOR, MAX_PERIOD_DAYS } from '../../schemas/validate';

export const DAY_MS = 86_400_000;
export const CURRENCY = /^[A-Z]{3}$/;

export const periodMs = (l: Loan): number => l.periodDays * DAY_MS;
export const balanceOf = (l: Loan): number => l.principalMinor + l.feeMinor - l.collectedMinor;

/** Loans in these statuses are withheld from and run the period clock; no others do. */
export const isRunning = (l: Loan): boolean =>
  l.status === 'ACTIVE' || l.status === 'BEHIND' || l.status === 'DELINQUENT';

/** PAID_OFF_EXTERNALLY and WRITTEN_OFF are final; PAID_OFF by collection may re-open. */
export const isTerminal = (l: Loan): boolean =>
  l.closure === 'PAID_OFF_EXTERNALLY' || l.closure === 'WRITTEN_OFF';

/** One missed period in a row is BEHIND, two or more DELINQUENT; a met period is ACTIVE again. */
export function statusForMissed(missedPeriods: number): LoanStatus {
  return missedPeriods === 0 ? 'ACTIVE' : missedPeriods === 1 ? 'BEHIND' : 'DELINQUENT';
}

/** Why a FUNDED event's terms cannot open a loan, or null when they can. */
export function termsProblem(e: LoanEvent): string | null {
  const {
    principal_minor: p,
    fee_minor: f,
    holdback_rate_bps: bps,
    minimum_payment_minor: min,
    period_days: days,
  } = e;
  if (!isMinor(p) || p === 0) return 'principal_minor must be a positive integer';
  if (!isMinor(f)) return 'fee_minor must be a non-negative integer';
  // The balance is an amount: every amount Holdback reports stays within the validator's ceiling.
  if (p + f > MAX_AMOUNT_MINOR) return `principal_minor + fee_minor exceeds ${MAX_AMOUNT_MINOR}`;
  if (!isMinor(bps) || bps < 1 || bps > BPS_DENOMINATOR) return 'holdback_rate_bps must be 1..10000';
  if (!isMinor(min)) return 'minimum_payment_minor must be a non-negative integer';
  if (!isMinor(days) || days < 1 || days > MAX_PERIOD_DAYS)
    return `period_days must be 1..${MAX_PERIOD_DAYS}`;
  if (e.currency === null || !CURRENCY.test(e.currency)) return 'currency must be an ISO 4217 code';
  return null;
}

/** Opens a loan from a FUNDED event whose terms passed termsProblem. Period 0 starts at occurred_at. */
export function fundLoan(e: LoanEvent, now: number): Loan {
  const principalMinor = e.principal_minor ?? 0;
  const feeMinor = e.fee_minor ?? 0;
  const minimumPaymentMinor = e.minimum_payment_minor ?? 0;
  const periodDays = e.period_days ?? 1;
  return {
    loanId: e.loan_id,
    merchantId: e.merchant_id,
    currency: e.currency ?? '',
    principalMinor,
    feeMinor,
    holdbackRateBps: e.holdback_rate_bps ?? 0,
    minimumPaymentMinor,
    periodDays,
    fundedAt: e.occurred_at,
    status: 'ACTIVE',
    closure: null,
    collectedMinor: 0,
    periodIndex: 0,
    periodEndsAt: e.occurred_at + periodDays * DAY_MS,
    periodRequiredMinor: Math.min(minimumPaymentMinor, principalMinor + feeMinor),
    periodCollectedMinor: 0,
    missedPeriods: 0,
    clockStoppedAt: null,
    pace: null,
    version: 0, // the step that emits it first makes it 1
    updatedAt: now,
  };
}

/** Why a status event does not apply to the loan, or null when it does. */
export function transitionProblem(l: Loan, type: Exclude<LoanEventType, 'FUNDED'>): string | null {
  const allowed =
    type === 'PAUSED' ? isRunning(l) : type === 'RESUMED' ? l.status === 'PAUSED' : !isTerminal(l);
  return allowed ? null : `${type} does not apply to a loan that is ${l.closure ?? l.status}`;
}

/**
 * Closes every period whose end the clock has reached: period k is
 * [start, start + period_days) and is missed when period_collected < period_required.
 */
export function closeDuePeriods(l: Loan, clock: number): void {
  while (isRunning(l) && l.periodEndsAt <= clock) {
    const missed = l.periodCollectedMinor < l.periodRequiredMinor;
    l.missedPeriods = missed ? l.missedPeriods + 1 : 0;
    l.status = statusForMissed(l.missedPeriods);
    l.periodIndex += 1;
    l.periodEndsAt += periodMs(l);
    l.periodRequiredMinor = Math.min(l.minimumPaymentMinor, balanceOf(l)); // balance at period start
    l.periodCollectedMinor = 0;
  }
}

/**
 * Stops the period clock at `at`, the stopping event's time, but never before the open period
 * began: closed periods are final, a late PAUSED does not reach back into them.
 */
function stopClock(l: Loan, at: number): void {
  l.clockStoppedAt ??= Math.max(at, l.periodEndsAt - periodMs(l));
}

/**
 * Restarts the period clock at `at`, the restarting event's time: the open period's end moves
 * by the stopped time (event time, so it does not depend on when the events were processed).
 */
function restartClock(l: Loan, at: number): void {
  if (l.clockStoppedAt === null) throw new InvariantViolation(`loan ${l.loanId}: restarting a running clock`);
  l.periodEndsAt += Math.max(0, at - l.clockStoppedAt);
  l.clockStoppedAt = null;
  l.status = statusForMissed(l.missedPeriods);
}

export function applyStatusEvent(l: Loan, type: Exclude<LoanEventType, 'FUNDED'>, at: number): void {
  switch (type) {
    case 'PAUSED':
      stopClock(l, at);
      l.status = 'PAUSED';
      return;
    case 'RESUMED':
      restartClock(l, at);
      return;
    case 'PAID_OFF_EXTERNALLY':
      stopClock(l, at);
      l.status = 'PAID_OFF';
      l.closure = 'PAID_OFF_EXTERNALLY';
      return;
    case 'WRITTEN_OFF':
      stopClock(l, at);
      l.status = 'WRITTEN_OFF';
      l.closure = 'WRITTEN_OFF';
      return;
  }
}

/** A withholding: counted in the open period; at balance 0 the loan is PAID_OFF and its clock stops. */
export function collect(l: Loan, amountMinor: number, at: number): void {
  if (!(amountMinor > 0 && amountMinor <= balanceOf(l))) {
    throw new InvariantViolation(`loan ${l.loanId}: withholding ${amountMinor} with balance ${balanceOf(l)}`);
  }
  l.collectedMinor += amountMinor;
  l.periodCollectedMinor += amountMinor;
  if (balanceOf(l) === 0) {
    stopClock(l, at);
    l.status = 'PAID_OFF';
    l.closure = 'COLLECTED';
  }
}

/**
 * A reversal of exactly one withholding. It leaves the open period's count only if it was counted
 * there (closed periods are final). A loan PAID_OFF by collection re-opens with its clock restarted;
 * a terminal loan stays terminal.
 */
export function uncollect(l: Loan, w: Withholding, at: number): void {
  if (w.amountMinor > l.collectedMinor) {
    throw new InvariantViolation(
      `loan ${l.loanId}: reversing ${w.amountMinor} of ${l.collectedMinor} collected`,
    );
  }
  l.collectedMinor -= w.amountMinor;
  if (w.periodIndex === l.periodIndex) l.periodCollectedMinor -= w.amountMinor;
  if (l.closure === 'COLLECTED') {
    l.closure = null;
    restartClock(l, at);
  }
}

export interface PaceAssessment {
  readonly pace: RepaymentPace | null;
  readonly projectedMinor: number | null;
  /** When the pace would next change if nothing is collected (for the timer); null: not before the period ends. */
  readonly recheckAt: number | null;
}

/**
 * Pace: project the open period's collections linearly over its running time,
 * projected = floor(period_collected * period length / elapsed) (at most MAX_AMOUNT_MINOR, 10^13), and call the
 * loan AT_RISK when the projection falls short of period_required. Not judged (null) without a minimum, while the clock
 * is stopped, or before `warmupBps` of the period has run (an empty start says nothing).
 */
export function assessPace(l: Loan, clock: number, warmupBps: number): PaceAssessment {
  if (!isRunning(l)) return { pace: null, projectedMinor: null, recheckAt: null };
  const length = periodMs(l);
  const start = l.periodEndsAt - length;
  const elapsed = clock - start;
  const collected = l.periodCollectedMinor;
  const required = l.periodRequiredMinor;
  // Capped at the amount ceiling: a large collection early in a long period projects past it.
  const projectedMinor = elapsed > 0 ? mulDivFloorCapped(collected, length, elapsed, MAX_AMOUNT_MINOR) : null;
  if (required === 0) return { pace: null, projectedMinor, recheckAt: null };
  if (collected >= required) return { pace: 'ON_PACE', projectedMinor, recheckAt: null };
  const judgedFrom = Math.max(1, mulDivFloor(length, warmupBps, BPS_DENOMINATOR));
  if (elapsed < judgedFrom || projectedMinor === null) {
    return { pace: null, projectedMinor, recheckAt: start + judgedFrom };
  }
  if (projectedMinor < required) return { pace: 'AT_RISK', projectedMinor, recheckAt: null };
  // floor(collected * length / elapsed) < required  <=>  elapsed > collected * length / required
  return { pace: 'ON_PACE', projectedMinor, recheckAt: start + mulDivFloor(collected, length, required) + 1 };
}

/** The loan's next timer: its open period's end, or sooner when its pace would change. */
export function timerOf(l: Loan, clock: number, warmupBps: number): number | null {
  if (!isRunning(l)) return null;
  const { recheckAt } = assessPace(l, clock, warmupBps);
  return recheckAt === null ? l.periodEndsAt : Math.min(recheckAt, l.periodEndsAt);
}

/** Whether two versions of a loan differ in anything its LoanState reports (but its time stamps). */
export function sameLoan(a: Loan, b: Loan): boolean {
  return (
    a.status === b.status &&
    a.closure === b.closure &&
    a.collectedMinor === b.collectedMinor &&
    a.periodIndex === b.periodIndex &&
    a.periodRequiredMinor === b.periodRequiredMinor &&
    a.periodCollectedMinor === b.periodCollectedMinor &&
    a.missedPeriods === b.missedPeriods &&
    a.periodEndsAt === b.periodEndsAt &&
    a.clockStoppedAt === b.clockStoppedAt &&
    a.pace === b.pace
  );
}

export function toLoanState(l: Loan, clock: number, warmupBps: number): LoanState {
  const running = isRunning(l);
  return {
    loan_id: l.loanId,
    merchant_id: l.merchantId,
    status: l.status,
    principal_minor: l.principalMinor,
    fee_minor: l.feeMinor,
    collected_minor: l.collectedMinor,
    balance_minor: balanceOf(l),
    period_index: l.periodIndex,
    period_required_minor: l.periodRequiredMinor,
    period_collected_minor: l.periodCollectedMinor,
    missed_periods: l.missedPeriods,
    currency: l.currency,
    updated_at: l.updatedAt,
    version: l.version,
    holdback_rate_bps: l.holdbackRateBps,
    minimum_payment_minor: l.minimumPaymentMinor,
    period_days: l.periodDays,
    funded_at: l.fundedAt,
    period_ends_at: running ? l.periodEndsAt : null,
    pace: l.pace,
    projected_period_collected_minor: running ? assessPace(l, clock, warmupBps).projectedMinor : null,
    closure: l.closure,
  };
}
