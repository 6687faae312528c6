/**
 * The repayment processor (issue 5): withholds loan repayments from a merchant's payouts,
 * reverses them when a payout fails, reconciles settled payouts and runs each loan's
 * minimum-payment periods. Pure: state, input and ctx.now in; state and outputs out. Its timer
 * is derived from the state (timerAt), so a state restored from the changelog has it too.
 * The rules are docs/contract.md's "Repayment rules"; the choices it leaves open are in README.md.
 */
import type { Deduction, LoanEvent, PayoutEvent, PayoutSettlement } from '../../schemas/generated/types';
import { TOPICS } from '../../schemas/topics';
import type {
  Context,
  InputRecord,
  OutputRecord,
  Processor,
  StepResult,
  TopicWithRecord,
  Unsettled,
} from '../api';
import { InvariantViolation } from '../api';
import { isMinor, shareOfBps } from '../money';
import { parseRepaymentConfig, type RepaymentConfig } from './config';
import {
  applyStatusEvent,
  assessPace,
  balanceOf,
  closeDuePeriods,
  collect,
  CURRENCY,
  fundLoan,
  isRunning,
  sameLoan,
  termsProblem,
  timerOf,
  toLoanState,
  transitionProblem,
  uncollect,
} from './loan';
import type { RepaymentRejectionCode } from './reasons';
import {
  copyState,
  emptyState,
  repaymentStateSerde,
  type Loan,
  type PayoutRecord,
  type RepaymentState,
  type Withholding,
} from './state';

export const REPAYMENT_PROCESSOR_NAME = 'repayment';
/** 9999-12-31T23:59:59.999Z: later timestamps are malformed. */
const MAX_TIMESTAMP = 253_402_300_799_999;

type Step = StepResult<RepaymentState>;

export function createRepaymentProcessor(config: Partial<RepaymentConfig> = {}): Processor<RepaymentState> {
  const cfg = parseRepaymentConfig(config);
  return {
    name: REPAYMENT_PROCESSOR_NAME,
    inputs: [TOPICS.loanEvents, TOPICS.payouts],
    outputs: [TOPICS.deductions, TOPICS.loanStates, TOPICS.settlements],
    stateSerde: repaymentStateSerde,
    process: (state, input, ctx) => processInput(cfg, state, input, ctx),
    timerAt: (s) => nextTimer(cfg, s),
    tick: (state, _key, ctx) => runStep(cfg, state, ctx, ctx.now, () => undefined),
    unsettled,
  };
}

/**
 * Withholdings of payouts neither settled nor failed (a reversed payout owes nothing), with the
 * time the oldest was decided: the settlement-lag gauges and HoldbackUnsettledWithholdingTooOld.
 */
function unsettled(s: RepaymentState): Unsettled | undefined {
  let count = 0;
  let oldestAt = Infinity;
  const byCurrency = new Map<string, number>();
  for (const r of s.payouts.values()) {
    if (r.settled || r.failed || r.reversed || r.withholdings.length === 0) continue;
    count += r.withholdings.length;
    byCurrency.set(r.currency, (byCurrency.get(r.currency) ?? 0) + sumWithheld(r));
    oldestAt = Math.min(oldestAt, r.firstWithheldDecidedAt ?? r.scheduledAt ?? r.touchedAt);
  }
  return count === 0 ? undefined : { count, minorByCurrency: [...byCurrency], oldestAt };
}

function isFrom<T extends TopicWithRecord>(input: InputRecord, topic: T): input is InputRecord<T> {
  return input.topic === topic;
}

function processInput(
  cfg: RepaymentConfig,
  state: RepaymentState | undefined,
  input: InputRecord,
  ctx: Context,
): Step {
  const before = state ?? emptyState();
  const reject = (reasonCode: RepaymentRejectionCode, detail: string): Step => ({
    state,
    outputs: [],
    rejection: { reasonCode, detail },
  });
  let event: PayoutEvent | LoanEvent;
  // Loan events are de-duplicated by event_id. Payout events need no event_id memory: the
  // payout's own record says whether it was scheduled, settled or failed, and each of those
  // happens once (a state rewritten on every commit stays small).
  let seenKey: string | null;
  let problem: [RepaymentRejectionCode, string] | null;
  let apply: (s: RepaymentState, out: OutputRecord[]) => void;
  if (isFrom(input, TOPICS.payouts)) {
    const e = (event = input.value);
    seenKey = null;
    problem = payoutProblem(e);
    apply = (s, out) => applyPayout(s, e, ctx.now, out);
  } else if (isFrom(input, TOPICS.loanEvents)) {
    const e = (event = input.value);
    seenKey = `l:${e.event_id}`;
    problem = loanEventProblem(before, e);
    apply = (s) => applyLoanEvent(s, e, ctx.now);
  } else {
    throw new InvariantViolation(`repayment: not an input topic: ${input.topic}`);
  }
  // Checks in the order of REPAYMENT_REJECTION_CODES; a redelivered event_id is one event.
  if (event.merchant_id !== input.key) {
    return reject('MERCHANT_MISMATCH', `merchant_id '${event.merchant_id}' differs from key '${input.key}'`);
  }
  if (seenKey !== null && before.seen.has(seenKey)) return { state, outputs: [] };
  if (isFrom(input, TOPICS.payouts) && alreadyApplied(before, input.value)) return { state, outputs: [] };
  if (problem) return reject(...problem);
  // Stream time moves the merchant clock, but never further than futureToleranceMs past ctx.now.
  const eventTime = Math.min(event.occurred_at, ctx.now + cfg.futureToleranceMs);
  return runStep(cfg, before, ctx, eventTime, (s, out) => {
    apply(s, out);
    if (seenKey !== null) s.seen.set(seenKey, s.clock);
  });
}

/**
 * One step: advance the merchant clock (closing due periods) before applying the event, apply
 * it, forget what retention allows, reassess pace, and emit a LoanState (version + 1) for every
 * loan that changed.
 */
function runStep(
  cfg: RepaymentConfig,
  before: RepaymentState,
  ctx: Context,
  clockTo: number,
  apply: (s: RepaymentState, out: OutputRecord[]) => void,
): Step {
  const s = copyState(before);
  const out: OutputRecord[] = [];
  s.clock = Math.max(s.clock, clockTo);
  for (const loan of s.loans.values()) closeDuePeriods(loan, s.clock);
  apply(s, out);
  forgetExpired(cfg, s);
  for (const loan of loansByFunding(s)) {
    closeDuePeriods(loan, s.clock); // a FUNDED that arrives late catches up at once
    loan.pace = assessPace(loan, s.clock, cfg.paceWarmupBps).pace;
    const old = before.loans.get(loan.loanId);
    if (old && sameLoan(old, loan)) continue;
    loan.version += 1;
    loan.updatedAt = ctx.now;
    out.push({
      topic: TOPICS.loanStates,
      key: loan.loanId,
      value: toLoanState(loan, s.clock, cfg.paceWarmupBps),
    });
  }
  const empty = s.loans.size === 0 && s.payouts.size === 0 && s.seen.size === 0;
  return { state: empty ? undefined : s, outputs: out };
}

/** The key's timer: the earliest period end (or pace change) of a loan whose period clock runs. */
function nextTimer(cfg: RepaymentConfig, s: RepaymentState): number | undefined {
  let at: number | undefined;
  for (const loan of s.loans.values()) {
    const t = timerOf(loan, s.clock, cfg.paceWarmupBps);
    if (t !== null && (at === undefined || t < at)) at = t;
  }
  return at;
}

/** Oldest funding first; loan_id breaks ties. */
function loansByFunding(s: RepaymentState): Loan[] {
  return [...s.loans.values()].sort(
    (a, b) => a.fundedAt - b.fundedAt || (a.loanId < b.loanId ? -1 : a.loanId > b.loanId ? 1 : 0),
  );
}

// ---- payouts ------------------------------------------------------------------------------

function payoutProblem(e: PayoutEvent): [RepaymentRejectionCode, string] | null {
  if (!isMinor(e.gross_amount_minor))
    return ['INVALID_PAYOUT', 'gross_amount_minor must be a non-negative integer'];
  if (e.withheld_minor !== null && !isMinor(e.withheld_minor)) {
    return ['INVALID_PAYOUT', 'withheld_minor must be null or a non-negative integer'];
  }
  if (!CURRENCY.test(e.currency)) return ['INVALID_PAYOUT', 'currency must be an ISO 4217 code'];
  if (!isMinor(e.occurred_at) || e.occurred_at > MAX_TIMESTAMP)
    return ['INVALID_PAYOUT', 'occurred_at out of range'];
  return null;
}

/** The payout's record already holds this event's effect: a redelivery, or a retry with a new event_id. */
function alreadyApplied(s: RepaymentState, e: PayoutEvent): boolean {
  const r = s.payouts.get(e.payout_id);
  if (!r) return false;
  if (e.type === 'SCHEDULED') return r.scheduledAt !== null;
  return e.type === 'SETTLED' ? r.settled : r.failed;
}

function applyPayout(s: RepaymentState, e: PayoutEvent, now: number, out: OutputRecord[]): void {
  const record = s.payouts.get(e.payout_id);
  switch (e.type) {
    case 'SCHEDULED':
      // A payout seen before (scheduled, settled or failed) withholds nothing more.
      if (record)
        s.payouts.set(e.payout_id, {
          ...record,
          scheduledAt: record.scheduledAt ?? e.occurred_at,
          touchedAt: s.clock,
        });
      else s.payouts.set(e.payout_id, withhold(s, e, now, out));
      return;
    case 'FAILED': {
      const r = record ?? newPayoutRecord(s, e, null);
      if (r.failed) return;
      const instructedMinor = r.reversed ? 0 : sumWithheld(r);
      if (!r.reversed) reverse(s, r, e, now, out);
      s.payouts.set(e.payout_id, { ...r, failed: true, reversed: true, touchedAt: s.clock });
      out.push(settlement(e, r, instructedMinor, now));
      return;
    }
    case 'SETTLED': {
      const r = record ?? newPayoutRecord(s, e, null);
      if (r.settled) return;
      s.payouts.set(e.payout_id, { ...r, settled: true, touchedAt: s.clock });
      out.push(settlement(e, r, r.reversed ? 0 : sumWithheld(r), now));
      return;
    }
  }
}

function newPayoutRecord(s: RepaymentState, e: PayoutEvent, scheduledAt: number | null): PayoutRecord {
  return {
    grossMinor: e.gross_amount_minor,
    currency: e.currency,
    scheduledAt,
    firstWithheldDecidedAt: null,
    withholdings: [],
    reversed: false,
    settled: false,
    failed: false,
    touchedAt: s.clock,
  };
}

const sumWithheld = (r: PayoutRecord): number => r.withholdings.reduce((sum, w) => sum + w.amountMinor, 0);

/**
 * Each withholding loan in the payout's currency, oldest funding first, takes
 * min(floor(gross * bps / 10000), balance, gross - already withheld from this payout).
 */
function withhold(s: RepaymentState, e: PayoutEvent, now: number, out: OutputRecord[]): PayoutRecord {
  const gross = e.gross_amount_minor;
  const withholdings: Withholding[] = [];
  let withheld = 0;
  for (const loan of loansByFunding(s)) {
    if (loan.currency !== e.currency || !isRunning(loan)) continue;
    const amountMinor = Math.min(shareOfBps(gross, loan.holdbackRateBps), balanceOf(loan), gross - withheld);
    if (amountMinor <= 0) continue;
    withholdings.push({ loanId: loan.loanId, amountMinor, periodIndex: loan.periodIndex });
    collect(loan, amountMinor, s.clock);
    withheld += amountMinor;
    out.push(deduction('WITHHOLD', e, loan, amountMinor, gross, now));
  }
  return {
    ...newPayoutRecord(s, e, e.occurred_at),
    withholdings,
    firstWithheldDecidedAt: withheld > 0 ? now : null,
  };
}

/** Gives back exactly what was withheld from the payout, loan by loan. */
function reverse(s: RepaymentState, r: PayoutRecord, e: PayoutEvent, now: number, out: OutputRecord[]): void {
  for (const w of r.withholdings) {
    const loan = s.loans.get(w.loanId);
    if (!loan)
      throw new InvariantViolation(`payout withheld for loan ${w.loanId}, which the state no longer has`);
    uncollect(loan, w, s.clock);
    out.push(deduction('REVERSAL', e, loan, w.amountMinor, r.grossMinor, now));
  }
}

/** `<payout_id>:<loan_id>:<type>`, with '%' and ':' escaped inside the ids so that it is unambiguous. */
export function deductionId(payoutId: string, loanId: string, type: Deduction['type']): string {
  const esc = (id: string): string => id.replace(/%/g, '%25').replace(/:/g, '%3A');
  return `${esc(payoutId)}:${esc(loanId)}:${type}`;
}

function deduction(
  type: Deduction['type'],
  e: PayoutEvent,
  loan: Loan,
  amountMinor: number,
  grossMinor: number,
  now: number,
): OutputRecord {
  const value: Deduction = {
    deduction_id: deductionId(e.payout_id, loan.loanId, type),
    type,
    payout_id: e.payout_id,
    loan_id: loan.loanId,
    merchant_id: loan.merchantId,
    amount_minor: amountMinor,
    gross_amount_minor: grossMinor,
    holdback_rate_bps: loan.holdbackRateBps,
    balance_after_minor: balanceOf(loan),
    currency: loan.currency,
    source_event_id: e.event_id,
    occurred_at: e.occurred_at,
    decided_at: now,
  };
  return { topic: TOPICS.deductions, key: loan.merchantId, value };
}

function settlement(e: PayoutEvent, r: PayoutRecord, instructedMinor: number, now: number): OutputRecord {
  const status = e.type === 'FAILED' ? 'FAILED' : 'SETTLED';
  const reported = status === 'SETTLED' ? e.withheld_minor : null;
  const value: PayoutSettlement = {
    payout_id: e.payout_id,
    merchant_id: e.merchant_id,
    currency: e.currency,
    gross_amount_minor: e.gross_amount_minor,
    instructed_minor: instructedMinor,
    reported_withheld_minor: reported,
    mismatch_minor: reported === null ? 0 : reported - instructedMinor,
    status,
    scheduled_at: r.scheduledAt,
    first_withheld_decided_at: r.firstWithheldDecidedAt,
    settled_at: e.occurred_at,
    source_event_id: e.event_id,
    decided_at: now,
  };
  return { topic: TOPICS.settlements, key: e.merchant_id, value };
}

// ---- loan events --------------------------------------------------------------------------

function loanEventProblem(s: RepaymentState, e: LoanEvent): [RepaymentRejectionCode, string] | null {
  if (!isMinor(e.occurred_at) || e.occurred_at > MAX_TIMESTAMP)
    return ['INVALID_LOAN_EVENT', 'occurred_at out of range'];
  const loan = s.loans.get(e.loan_id);
  if (e.type === 'FUNDED') {
    const terms = termsProblem(e);
    if (terms) return ['INVALID_LOAN_EVENT', terms];
    return loan ? ['DUPLICATE_LOAN', `loan ${e.loan_id} is already funded`] : null;
  }
  if (!loan) return ['UNKNOWN_LOAN', `${e.type} for loan ${e.loan_id}, never funded for this merchant`];
  const transition = transitionProblem(loan, e.type);
  return transition ? ['INVALID_TRANSITION', transition] : null;
}

function applyLoanEvent(s: RepaymentState, e: LoanEvent, now: number): void {
  if (e.type === 'FUNDED') {
    s.loans.set(e.loan_id, fundLoan(e, now));
    return;
  }
  const loan = s.loans.get(e.loan_id);
  if (!loan) throw new InvariantViolation(`loan ${e.loan_id} vanished between check and apply`);
  applyStatusEvent(loan, e.type, s.clock);
}

// ---- retention ----------------------------------------------------------------------------

/** Forgets event_ids and payouts older than their retention on the merchant clock. */
function forgetExpired(cfg: RepaymentConfig, s: RepaymentState): void {
  for (const [key, at] of s.seen) {
    if (s.clock - at <= cfg.eventIdRetentionMs) break; // insertion order is clock order
    s.seen.delete(key);
  }
  for (const [id, r] of s.payouts) {
    const keep = r.settled || r.failed ? cfg.terminalPayoutRetentionMs : cfg.openPayoutRetentionMs;
    if (s.clock - r.touchedAt > keep) s.payouts.delete(id);
  }
}
