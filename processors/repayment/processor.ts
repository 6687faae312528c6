/**
 * The repayment processor (issue 5): withholds loan repayments from a merchant's payouts,
 * reverses them when a payout fails, reconciles settled payouts and runs each loan's
 * minimum-payment periods. Pure: state, input and ctx.now in; state and outputs out. Its timer
 * is derived from the state (timerAt), so a state restored from the changelog has it too.
 * The rules are docs/contract.md's "Repayment rules"; the choices it leaves open are in README.md.
 */
import type {
  Deduction,
  LoanEvent,
  PayoutDecision,
  PayoutEvent,
  PayoutSettlement,
} from '../../schemas/generated/types';
import type { PayoutDecisionCode } from '../../schemas/reason-codes';
import { TOPICS } from '../../schemas/topics';
import type {
  Context,
  EntryChange,
  InputRecord,
  OutputRecord,
  Processor,
  StepContext,
  StepResult,
  TopicWithRecord,
  Unsettled,
} from '../api';
import { InvariantViolation } from '../api';
import { escapeId, fitId } from '../ids';
import { isMinor, shareOfBps } from '../money';
import { parseRepaymentConfig, type RepaymentConfig } from './config';
import {
  applyStatusEvent,
  assessPace,
  balanceOf,
  closeDuePeriods,
  collect,
  CURRENCY,
  DAY_MS,
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
  isOpen,
  payoutRecordSerde,
  repaymentStateSerde,
  unsettledOf,
  withVerdict,
  type Loan,
  type PayoutRecord,
  type RepaymentState,
  type Withholding,
} from './state';

export const REPAYMENT_PROCESSOR_NAME = 'repayment';
/** 9999-12-31T23:59:59.999Z: later timestamps are malformed. */
const MAX_TIMESTAMP = 253_402_300_799_999;

type Step = StepResult<RepaymentState, PayoutRecord>;

export function createRepaymentProcessor(
  config: Partial<RepaymentConfig> = {},
): Processor<RepaymentState, PayoutRecord> {
  const cfg = parseRepaymentConfig(config);
  return {
    name: REPAYMENT_PROCESSOR_NAME,
    inputs: [TOPICS.loanEvents, TOPICS.payouts],
    outputs: [TOPICS.deductions, TOPICS.loanStates, TOPICS.settlements, TOPICS.payoutDecisions],
    stateSerde: repaymentStateSerde,
    entrySerde: payoutRecordSerde,
    process: (state, input, ctx) => processInput(cfg, state, input, ctx),
    timerAt: (s) => nextTimer(cfg, s),
    tick: (state, _key, ctx) => runStep(cfg, state, ctx, ctx.now, () => undefined),
    unsettled: unsettledLegacy,
    unsettledEntry: unsettledOf,
  };
}

/**
 * Withholdings of payouts neither settled nor failed (a reversed payout owes nothing), with the
 * time the oldest was decided: the settlement-lag gauges and HoldbackUnsettledWithholdingTooOld.
 * Each open payout's entry says what it holds (unsettledOf); a state restored from a version 1 or
 * 2 changelog still holds its payouts itself until the key's next step moves them into entries.
 */
function unsettledLegacy(s: RepaymentState): Unsettled | undefined {
  if (s.legacyPayouts.size === 0) return undefined;
  let count = 0;
  let oldestAt = Infinity;
  const byCurrency = new Map<string, number>();
  for (const r of s.legacyPayouts.values()) {
    const u = unsettledOf(r);
    if (!u) continue;
    count += u.count;
    for (const [c, m] of u.minorByCurrency) byCurrency.set(c, (byCurrency.get(c) ?? 0) + m);
    oldestAt = Math.min(oldestAt, u.oldestAt);
  }
  return count === 0 ? undefined : { count, minorByCurrency: [...byCurrency], oldestAt };
}

function isFrom<T extends TopicWithRecord>(input: InputRecord, topic: T): input is InputRecord<T> {
  return input.topic === topic;
}

const validTime = (t: number): boolean => isMinor(t) && t <= MAX_TIMESTAMP;

/**
 * The time a record is applied at: the merchant clock moved to ctx.now (so every period that
 * ended before the record's time is closed first, whether or not a timer already fired) and to the
 * event's occurred_at, which may run ahead of ctx.now by at most futureToleranceMs.
 */
function clockFor(cfg: RepaymentConfig, s: RepaymentState, occurredAt: number, now: number): number {
  return Math.max(s.clock, now, eventTimeOf(cfg, occurredAt, now));
}

/**
 * When the event happened, as the rules measure durations (a pause, a loan paid off until a
 * payout fails): its occurred_at, at most futureToleranceMs past ctx.now. Durations are event
 * time, so they do not depend on when the events were processed.
 */
function eventTimeOf(cfg: RepaymentConfig, occurredAt: number, now: number): number {
  return validTime(occurredAt) ? Math.min(occurredAt, now + cfg.futureToleranceMs) : 0;
}

/** The payout's record if it is still remembered at `clock` (docs/contract.md, "One decision per event"). */
function remembered(
  cfg: RepaymentConfig,
  s: RepaymentState,
  ctx: StepContext<PayoutRecord>,
  payoutId: string,
  clock: number,
): PayoutRecord | undefined {
  const r = ctx.entries?.get(payoutId) ?? s.legacyPayouts.get(payoutId);
  if (r === undefined) return undefined;
  return isOpen(r) || clock - r.lastEventAt <= cfg.dedupHorizonMs ? r : undefined;
}

function processInput(
  cfg: RepaymentConfig,
  state: RepaymentState | undefined,
  input: InputRecord,
  ctx: StepContext<PayoutRecord>,
): Step {
  const before = state ?? emptyState();
  const reject = (reasonCode: RepaymentRejectionCode, detail: string): Step => ({
    state,
    outputs: [],
    rejection: { reasonCode, detail },
  });
  const value = input.value as PayoutEvent | LoanEvent;
  if (value.merchant_id !== input.key) {
    return reject('MERCHANT_MISMATCH', `merchant_id '${value.merchant_id}' differs from key '${input.key}'`);
  }
  if (isFrom(input, TOPICS.payouts)) {
    // Payouts are de-duplicated by the payout's own record: SCHEDULED, SETTLED and FAILED each
    // apply once per payout_id, whatever the event_id (a retry under a new id is the same event).
    const e = input.value;
    const clock = clockFor(cfg, before, e.occurred_at, ctx.now);
    const problem = payoutProblem(e);
    if (problem) return reject(...problem);
    const record = remembered(cfg, before, ctx, e.payout_id, clock);
    if (record && alreadyApplied(record, e)) {
      // A SCHEDULED seen again still gets its answer: the first decision stands, nothing more.
      const answer = e.type === 'SCHEDULED' ? [payoutDecision(e, 'ALREADY_DECIDED', [], ctx.now)] : [];
      return { state, outputs: answer };
    }
    if (!record && clock - e.occurred_at > cfg.dedupHorizonMs) {
      return reject(
        'BEYOND_DEDUP_HORIZON',
        `${e.type} of payout ${e.payout_id}, which occurred ${Math.floor((clock - e.occurred_at) / DAY_MS)} days before ` +
          `the merchant clock: past the ${cfg.dedupHorizonMs / DAY_MS}-day horizon, it is not remembered and is not decided again`,
      );
    }
    const at = eventTimeOf(cfg, e.occurred_at, ctx.now);
    return runStep(cfg, before, ctx, clock, (s, out, entries) =>
      applyPayout(cfg, s, e, record, at, ctx.now, out, entries),
    );
  }
  if (isFrom(input, TOPICS.loanEvents)) {
    // Loan events are de-duplicated by event_id, rejected ones too: a redelivery gets the same verdict.
    const e = input.value;
    const verdict = before.loanEvents.get(e.event_id);
    if (verdict === null) return { state, outputs: [] };
    if (verdict !== undefined) return { state, outputs: [], rejection: verdict };
    const problem = loanEventProblem(before, e);
    if (problem) {
      // Remembered, so that a redelivery after the loan changed is still this rejection.
      const [reasonCode, detail] = problem;
      const s = { ...before, loanEvents: withVerdict(before.loanEvents, e.event_id, { reasonCode, detail }) };
      return { state: s, outputs: [], rejection: { reasonCode, detail } };
    }
    return runStep(cfg, before, ctx, clockFor(cfg, before, e.occurred_at, ctx.now), (s) => {
      applyLoanEvent(s, e, eventTimeOf(cfg, e.occurred_at, ctx.now), ctx.now);
      s.loanEvents = withVerdict(s.loanEvents, e.event_id, null);
    });
  }
  throw new InvariantViolation(`repayment: not an input topic: ${input.topic}`);
}

type EntryChanges = Array<EntryChange<PayoutRecord>>;

/**
 * One step: advance the merchant clock (closing due periods) before applying the event, apply
 * it, reassess pace, and emit a LoanState (version + 1) for every loan that changed. Payout records
 * of an older changelog move into entries; entries past the horizon are dropped.
 */
function runStep(
  cfg: RepaymentConfig,
  before: RepaymentState,
  ctx: Context,
  clockTo: number,
  apply: (s: RepaymentState, out: OutputRecord[], entries: EntryChanges) => void,
): Step {
  const s = copyState(before);
  const out: OutputRecord[] = [];
  const entries: EntryChanges = [];
  if (s.legacyPayouts.size > 0) {
    for (const [id, r] of s.legacyPayouts) writePayout(cfg, s, entries, id, r);
    s.legacyPayouts = new Map();
  }
  s.clock = Math.max(s.clock, clockTo);
  for (const loan of s.loans.values()) closeDuePeriods(loan, s.clock);
  apply(s, out, entries);
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
  // A merchant that holds nothing any more is forgotten: no loans, verdicts or payouts (an entry
  // outlives the state only until it expires), and a clock not ahead of now (so nothing is lost).
  const empty =
    s.loans.size === 0 &&
    s.loanEvents.size === 0 &&
    s.openPayouts === 0 &&
    s.rememberUntil < s.clock &&
    s.clock <= ctx.now;
  return {
    state: empty ? undefined : s,
    outputs: out,
    ...(entries.length > 0 && { entries }),
    expireEntriesBefore: s.clock,
  };
}

/** Writes a payout's entry: kept while open, else until the horizon has passed its latest event. */
function writePayout(
  cfg: RepaymentConfig,
  s: RepaymentState,
  entries: EntryChanges,
  id: string,
  r: PayoutRecord,
): void {
  if (isOpen(r)) {
    entries.push({ id, value: r });
    return;
  }
  const expiresAt = r.lastEventAt + cfg.dedupHorizonMs;
  s.rememberUntil = Math.max(s.rememberUntil, expiresAt);
  entries.push({ id, value: r, expiresAt });
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
function alreadyApplied(r: PayoutRecord, e: PayoutEvent): boolean {
  if (e.type === 'SCHEDULED') return r.scheduledAt !== null;
  return e.type === 'SETTLED' ? r.settled : r.failed;
}

/**
 * Applies a payout event to the payout's record (`record`: undefined when it is new here or no
 * longer remembered) and writes the new record as the payout's entry.
 */
function applyPayout(
  cfg: RepaymentConfig,
  s: RepaymentState,
  e: PayoutEvent,
  record: PayoutRecord | undefined,
  at: number,
  now: number,
  out: OutputRecord[],
  entries: EntryChanges,
): void {
  const lastEventAt = Math.max(record?.lastEventAt ?? 0, e.occurred_at);
  let next: PayoutRecord;
  switch (e.type) {
    case 'SCHEDULED':
      if (record) {
        // A payout seen before (settled or failed) withholds nothing more.
        next = { ...record, scheduledAt: e.occurred_at, lastEventAt };
        out.push(payoutDecision(e, record.failed ? 'FAILED_EARLIER' : 'SETTLED_EARLIER', [], now));
      } else next = withhold(s, e, at, now, out);
      break;
    case 'FAILED': {
      const r = record ?? newPayoutRecord(e, null);
      const instructedMinor = r.reversed ? 0 : sumWithheld(r);
      if (!r.reversed) reverse(s, r, e, at, now, out);
      next = { ...r, failed: true, reversed: true, lastEventAt };
      out.push(settlement(e, r, instructedMinor, now));
      break;
    }
    case 'SETTLED': {
      const r = record ?? newPayoutRecord(e, null);
      next = { ...r, settled: true, lastEventAt };
      out.push(settlement(e, r, r.reversed ? 0 : sumWithheld(r), now));
      break;
    }
  }
  // `record` is the entry as it was (an open one is always remembered): the count follows the change.
  s.openPayouts += Number(isOpen(next)) - Number(record !== undefined && isOpen(record));
  writePayout(cfg, s, entries, e.payout_id, next);
}

function newPayoutRecord(e: PayoutEvent, scheduledAt: number | null): PayoutRecord {
  return {
    grossMinor: e.gross_amount_minor,
    currency: e.currency,
    scheduledAt,
    firstWithheldDecidedAt: null,
    withholdings: [],
    reversed: false,
    settled: false,
    failed: false,
    lastEventAt: e.occurred_at,
  };
}

const sumWithheld = (r: PayoutRecord): number => r.withholdings.reduce((sum, w) => sum + w.amountMinor, 0);

/**
 * Each withholding loan in the payout's currency, oldest funding first, takes
 * min(floor(gross * bps / 10000), balance, gross - already withheld from this payout).
 */
function withhold(
  s: RepaymentState,
  e: PayoutEvent,
  at: number,
  now: number,
  out: OutputRecord[],
): PayoutRecord {
  const gross = e.gross_amount_minor;
  const withholdings: Withholding[] = [];
  let withheld = 0;
  for (const loan of loansByFunding(s)) {
    if (loan.currency !== e.currency || !isRunning(loan)) continue;
    const amountMinor = Math.min(shareOfBps(gross, loan.holdbackRateBps), balanceOf(loan), gross - withheld);
    if (amountMinor <= 0) continue;
    withholdings.push({ loanId: loan.loanId, amountMinor, periodIndex: loan.periodIndex });
    collect(loan, amountMinor, at);
    withheld += amountMinor;
    out.push(deduction('WITHHOLD', e, loan, amountMinor, gross, now));
  }
  const ids = withholdings.map((w) => deductionId(e.payout_id, w.loanId, 'WITHHOLD'));
  out.push(payoutDecision(e, withheld > 0 ? 'WITHHELD' : nothingWithheldBecause(s, e), ids, now, withheld));
  return {
    ...newPayoutRecord(e, e.occurred_at),
    withholdings,
    firstWithheldDecidedAt: withheld > 0 ? now : null,
  };
}

/**
 * Why a new payout withheld nothing, from the loans as they stood when it was decided: the first
 * of docs/reason-codes.md's "Payout decision codes" that applies.
 */
function nothingWithheldBecause(s: RepaymentState, e: PayoutEvent): PayoutDecisionCode {
  const live = [...s.loans.values()].filter((l) => l.status !== 'PAID_OFF' && l.status !== 'WRITTEN_OFF');
  if (live.length === 0) return 'NO_LIVE_LOAN';
  const inCurrency = live.filter((l) => l.currency === e.currency);
  if (inCurrency.length === 0) return 'OTHER_CURRENCY';
  if (!inCurrency.some(isRunning)) return 'LOANS_PAUSED';
  return 'SHARE_ROUNDS_TO_ZERO';
}

/**
 * The answer to one SCHEDULED event. Its id is `<payout_id>:<event_id>`, escaped like a
 * deduction_id, with `:again` for an ALREADY_DECIDED answer, so a re-sent event keeps one id
 * per answer and never takes the id of the decision it repeats.
 */
function payoutDecision(
  e: PayoutEvent,
  reason: PayoutDecisionCode,
  deductionIds: string[],
  now: number,
  withheldMinor = 0,
): OutputRecord {
  const again = reason === 'ALREADY_DECIDED' ? ':again' : '';
  const value: PayoutDecision = {
    decision_id: fitId(`${escapeId(e.payout_id)}:${escapeId(e.event_id)}${again}`),
    payout_id: e.payout_id,
    merchant_id: e.merchant_id,
    currency: e.currency,
    gross_amount_minor: e.gross_amount_minor,
    withheld_minor: withheldMinor,
    reason_code: reason,
    deduction_ids: deductionIds,
    source_event_id: e.event_id,
    occurred_at: e.occurred_at,
    decided_at: now,
  };
  return { topic: TOPICS.payoutDecisions, key: e.merchant_id, value };
}

/** Gives back exactly what was withheld from the payout, loan by loan. */
function reverse(
  s: RepaymentState,
  r: PayoutRecord,
  e: PayoutEvent,
  at: number,
  now: number,
  out: OutputRecord[],
): void {
  for (const w of r.withholdings) {
    const loan = s.loans.get(w.loanId);
    if (!loan)
      throw new InvariantViolation(`payout withheld for loan ${w.loanId}, which the state no longer has`);
    uncollect(loan, w, at);
    out.push(deduction('REVERSAL', e, loan, w.amountMinor, r.grossMinor, now));
  }
}

/**
 * `<payout_id>:<loan_id>:<type>`, with '%' and ':' escaped inside the ids so that it is unambiguous;
 * shortened with its hash when longer than an id may be (processors/ids.ts).
 */
export function deductionId(payoutId: string, loanId: string, type: Deduction['type']): string {
  return fitId(`${escapeId(payoutId)}:${escapeId(loanId)}:${type}`);
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

function applyLoanEvent(s: RepaymentState, e: LoanEvent, at: number, now: number): void {
  if (e.type === 'FUNDED') {
    s.loans.set(e.loan_id, fundLoan(e, now));
    return;
  }
  const loan = s.loans.get(e.loan_id);
  if (!loan) throw new InvariantViolation(`loan ${e.loan_id} vanished between check and apply`);
  applyStatusEvent(loan, e.type, at);
}
