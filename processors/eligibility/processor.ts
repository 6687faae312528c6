/**
 * The eligibility processor (issue 6): per-merchant features from orders, sales, payouts and
 * loans, in event time; a grade and a limit from the policy; a decision on
 * holdback.eligibility.v1 whenever the outcome changes materially, or when a loan reaches its
 * refill share. Pure: state, input and ctx.now in; state and outputs out. A daily timer, derived
 * from the state, re-decides as days roll out of the windows. README.md has the decisions made.
 */
import type {
  EligibilityDecision,
  LoanEvent,
  LoanState,
  OrderEvent,
  PayoutEvent,
  SaleEvent,
} from '../../schemas/generated/types';
import { RiskGradeValues } from '../../schemas/generated/types';
import type { EligibilityReasonCode } from '../../schemas/reason-codes';
import { TOPICS } from '../../schemas/topics';
import type { Context, InputRecord, OutputRecord, Processor, StepResult } from '../api';
import { InvariantViolation } from '../api';
import { isMinor, mulDivFloor } from '../money';
import { escapeId, eventIdHash, fitId } from '../ids';
import { computeFeatures, decisionFeatures, evaluate, type Evaluation } from './decide';
import { closeLoan, markRefillSignalled, pendingRefills, updateLoan } from './loans';
import { ELIGIBILITY_REASONS } from './reasons';
import type { EligibilityPolicy } from './policy';
import {
  BLOCK_DAYS,
  DAY_MS,
  dayOf,
  eligibilityStateSerde,
  EPOCH_MS,
  FLAG_CURRENCY,
  FLAG_DECIDED,
  FLAG_ELIGIBLE,
  hash32,
  MAX_DAY,
  MAX_DEDUP_EVENTS,
  secondsOf,
  startOfDay,
  StateView,
  todayOf,
  windowsEmptyOf,
  type EligibilityState,
} from './state';

export const ELIGIBILITY_PROCESSOR_NAME = 'eligibility';

/** How far past ctx.now an event's time may move the merchant clock (as the codec's skew). */
const FUTURE_TOLERANCE_MS = DAY_MS;

type Step = StepResult<EligibilityState>;

/** Where a decision's trigger came from: part of the idempotency hash and of decision_id. */
const SOURCE = {
  [TOPICS.orders]: 'o',
  [TOPICS.sales]: 's',
  [TOPICS.payouts]: 'p',
  [TOPICS.loanEvents]: 'l',
  [TOPICS.loanStates]: 'ls',
  clock: 't',
} as const;
type Source = (typeof SOURCE)[keyof typeof SOURCE];
const SEED: Record<Source, number> = { o: 1, s: 2, p: 3, l: 4, ls: 5, t: 6 };

/**
 * `<merchant_id>:<source>:<trigger_event_id>`: one decision per trigger, whatever the policy;
 * shortened with its hash when longer than an id may be (processors/ids.ts).
 */
export function decisionId(merchantId: string, source: Source, triggerEventId: string): string {
  return fitId(`${escapeId(merchantId)}:${source}:${escapeId(triggerEventId)}`);
}

/** A 16-bit tag of the policy version, stored with the last decision: a new policy is a material change. */
export function policyTag(version: string): number {
  return (hash32(7, version) % 0xffff) + 1;
}

/**
 * The de-duplication window (README.md, "De-duplication"): each merchant remembers the event ids
 * of its orders, sales, payouts and loan events whose occurred_at is within `horizonMinutes` of
 * the newest it has seen, at most `maxEvents` of them.
 */
export interface DedupWindow {
  readonly horizonMinutes: number;
  readonly maxEvents: number;
}

export const DEFAULT_DEDUP: DedupWindow = { horizonMinutes: 60, maxEvents: 256 };

interface Dedup {
  readonly horizonSec: number;
  readonly maxEvents: number;
}

export function createEligibilityProcessor(
  policy: EligibilityPolicy,
  window: DedupWindow = DEFAULT_DEDUP,
): Processor<EligibilityState> {
  if (!Number.isSafeInteger(window.horizonMinutes) || window.horizonMinutes < 1)
    throw new Error(
      `eligibility: the de-duplication horizon must be whole minutes >= 1, not ${window.horizonMinutes}`,
    );
  if (!Number.isSafeInteger(window.maxEvents) || window.maxEvents < 1 || window.maxEvents > MAX_DEDUP_EVENTS)
    throw new Error(
      `eligibility: the de-duplication window holds 1..${MAX_DEDUP_EVENTS} events, not ${window.maxEvents}`,
    );
  const dedup: Dedup = { horizonSec: window.horizonMinutes * 60, maxEvents: window.maxEvents };
  // One scratch record per processor: every step loads the state it is given into it.
  const view = new StateView();
  const tag = policyTag(policy.version);
  return {
    name: ELIGIBILITY_PROCESSOR_NAME,
    inputs: [TOPICS.orders, TOPICS.sales, TOPICS.payouts, TOPICS.loanEvents, TOPICS.loanStates],
    outputs: [TOPICS.eligibility],
    stateSerde: eligibilityStateSerde,
    process: (state, input, ctx) => processInput(policy, dedup, tag, view, state, input, ctx),
    // No timer past the last representable day: a tick there could not move the clock.
    timerAt: (s) => (windowsEmptyOf(s) || todayOf(s) >= MAX_DAY ? undefined : startOfDay(todayOf(s) + 1)),
    tick: (state, key, ctx) => {
      view.load(state);
      const day = dayOf(ctx.now);
      if (day <= MAX_DAY) view.advanceTo(day);
      const out = decide(policy, tag, view, key, SOURCE.clock, `clock:${isoDay(view.today)}`, ctx.now);
      return { state: view.store(), outputs: out };
    },
  };
}

/** YYYY-MM-DD of a day number, with integer arithmetic (civil-from-days, proleptic Gregorian). */
export function isoDay(day: number): string {
  const z = day + 10_957 + 719_468; // days since 0000-03-01
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  const y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  return `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}`;
}

interface Parsed {
  source: Source;
  eventId: string | null;
  triggerId: string;
  merchantId: string;
  at: number;
  currency: string | null;
  /** Applies the event to the state; `refillShareBps` is the policy's. */
  apply: (v: StateView, foreign: boolean, refillShareBps: number) => void;
  problem: string | null;
}

const amountProblem = (name: string, v: unknown): string | null =>
  isMinor(v) ? null : `${name} must be a non-negative safe integer`;

function parse(input: InputRecord): Parsed {
  switch (input.topic) {
    case TOPICS.sales: {
      const e = input.value as SaleEvent;
      return {
        source: SOURCE[TOPICS.sales],
        eventId: e.event_id,
        triggerId: e.event_id,
        merchantId: e.merchant_id,
        at: e.occurred_at,
        currency: e.currency,
        problem: amountProblem('amount_minor', e.amount_minor),
        apply: (v, foreign) => {
          if (foreign) return;
          const day = eventDay(v, e.occurred_at);
          const amount = e.amount_minor;
          if (v.inDailyWindow(day)) v.addDaily(day, e.type === 'CAPTURED' ? amount : -amount);
          if (!v.inBlockWindow(day)) return;
          const counter =
            e.type === 'CAPTURED' ? 'captures' : e.type === 'REFUNDED' ? 'refunds' : 'chargebacks';
          v.addBlock(counter, Math.floor(day / BLOCK_DAYS), amount);
        },
      };
    }
    case TOPICS.orders: {
      const e = input.value as OrderEvent;
      return {
        source: SOURCE[TOPICS.orders],
        eventId: e.event_id,
        triggerId: e.event_id,
        merchantId: e.merchant_id,
        at: e.occurred_at,
        currency: e.currency,
        problem: amountProblem('amount_minor', e.amount_minor),
        apply: (v, foreign) => {
          const day = eventDay(v, e.occurred_at);
          if (foreign || e.type === 'FULFILLED' || !v.inBlockWindow(day)) return;
          v.addBlock(e.type === 'PLACED' ? 'orders' : 'cancels', Math.floor(day / BLOCK_DAYS), 1);
        },
      };
    }
    case TOPICS.payouts: {
      const e = input.value as PayoutEvent;
      return {
        source: SOURCE[TOPICS.payouts],
        eventId: e.event_id,
        triggerId: e.event_id,
        merchantId: e.merchant_id,
        at: e.occurred_at,
        currency: e.currency,
        problem: amountProblem('gross_amount_minor', e.gross_amount_minor),
        apply: (v, foreign) => {
          const day = eventDay(v, e.occurred_at);
          if (foreign || e.type !== 'FAILED' || !v.inBlockWindow(day)) return;
          v.addBlock('failures', Math.floor(day / BLOCK_DAYS), 1);
        },
      };
    }
    case TOPICS.loanEvents: {
      const e = input.value as LoanEvent;
      const funded = e.type === 'FUNDED';
      let problem: string | null = null;
      if (funded) {
        problem =
          amountProblem('principal_minor', e.principal_minor) ?? amountProblem('fee_minor', e.fee_minor);
        if (!problem && !Number.isSafeInteger(e.principal_minor! + e.fee_minor!))
          problem = 'principal_minor + fee_minor is beyond 2^53';
        if (!problem && (e.currency === null || !/^[A-Z]{3}$/.test(e.currency)))
          problem = 'FUNDED needs a currency';
      }
      return {
        source: SOURCE[TOPICS.loanEvents],
        eventId: e.event_id,
        triggerId: e.event_id,
        merchantId: e.merchant_id,
        at: e.occurred_at,
        currency: funded ? e.currency : null,
        problem,
        apply: (v, foreign) => {
          const hash = hash32(0, e.loan_id);
          if (funded) {
            const balanceMinor = e.principal_minor! + e.fee_minor!;
            updateLoan(v, { hash, status: 'ACTIVE', balanceMinor, foreign, refillReached: false }, true);
          } else if (e.type === 'WRITTEN_OFF') closeLoan(v, hash, 'WRITTEN_OFF');
          else if (e.type === 'PAID_OFF_EXTERNALLY') closeLoan(v, hash, 'PAID_OFF');
          // PAUSED and RESUMED: the LoanState that follows carries the status.
        },
      };
    }
    case TOPICS.loanStates: {
      const e = input.value as LoanState;
      const due = e.principal_minor + e.fee_minor;
      const problem =
        amountProblem('balance_minor', e.balance_minor) ??
        amountProblem('collected_minor', e.collected_minor) ??
        (isMinor(due) ? null : 'principal_minor + fee_minor must be a non-negative safe integer');
      return {
        source: SOURCE[TOPICS.loanStates],
        // A LoanState has no event_id: applying one twice sets the same values, so it needs no memory.
        eventId: null,
        triggerId: fitId(`${e.loan_id}@v${e.version}`),
        merchantId: e.merchant_id,
        at: e.updated_at,
        currency: e.currency,
        problem,
        apply: (v, foreign, refillShareBps) => {
          const refillReached =
            e.status === 'ACTIVE' && due > 0 && e.collected_minor >= mulDivFloor(due, refillShareBps, 10_000);
          updateLoan(v, {
            hash: hash32(0, e.loan_id),
            status: e.status,
            balanceMinor: e.balance_minor,
            foreign,
            refillReached,
          });
        },
      };
    }
    default:
      throw new InvariantViolation(`eligibility: not an input topic: ${input.topic}`);
  }
}

/** The day an event counts on: its own, but never after the merchant clock (which it has moved). */
function eventDay(v: StateView, at: number): number {
  return Math.min(dayOf(at), v.today);
}

function processInput(
  policy: EligibilityPolicy,
  dedup: Dedup,
  tag: number,
  view: StateView,
  state: EligibilityState | undefined,
  input: InputRecord,
  ctx: Context,
): Step {
  const p = parse(input);
  const reject = (reasonCode: string, detail: string): Step => ({
    state,
    outputs: [],
    rejection: { reasonCode, detail },
  });
  if (p.merchantId !== input.key) {
    return reject('MERCHANT_MISMATCH', `merchant_id '${p.merchantId}' differs from key '${input.key}'`);
  }
  if (p.problem) return reject('INVALID_RECORD', p.problem);
  if (!Number.isSafeInteger(p.at) || p.at < EPOCH_MS || dayOf(p.at) > MAX_DAY) {
    return reject('TIMESTAMP_OUT_OF_RANGE', `event time ${p.at} is outside 2000-01-01..2179-06-06`);
  }
  const id = p.eventId === null ? null : eventIdHash(p.source, p.eventId);
  const sec = secondsOf(p.at);
  // The clock moves to the event's day, but never more than a day past ctx.now.
  const day = Math.min(dayOf(Math.min(p.at, ctx.now + FUTURE_TOLERANCE_MS)), MAX_DAY);
  if (state === undefined) view.init(Math.max(day, 0));
  else {
    view.load(state);
    if (id !== null) {
      const legacy = () => hash32(SEED[p.source], p.eventId!);
      if (view.remembers(id.hi, id.lo, legacy)) return { state, outputs: [] }; // the same event again
      // Not remembered, and no later than an event time already forgotten: it may be a re-send of
      // an event counted then, so it is not counted now (loan events set, they do not count).
      if (p.source !== SOURCE[TOPICS.loanEvents] && sec <= view.forgottenThrough) {
        return reject('BEYOND_DEDUP_HORIZON', beyondHorizon(dedup, view, p, sec));
      }
    }
  }
  view.advanceTo(day);
  view.noteDay(Math.min(dayOf(p.at), view.today));

  let foreign = false;
  if (p.currency !== null) {
    const mine = view.currency;
    if (mine === null) view.setCurrency(p.currency);
    else if (mine !== p.currency) {
      foreign = true;
      view.countOtherCurrency();
    }
  }
  p.apply(view, foreign, policy.loans.refillShareRepaidBps);
  if (id !== null) view.remember(id.hi, id.lo, sec, dedup.horizonSec, dedup.maxEvents);
  const out = decide(policy, tag, view, input.key, p.source, p.triggerId, ctx.now);
  return { state: view.store(), outputs: out };
}

/** Why an event is not counted: what the merchant remembers, and how far behind the event is. */
function beyondHorizon(dedup: Dedup, view: StateView, p: Parsed, sec: number): string {
  const behind = Math.round((view.newest - sec) / 60);
  return (
    `event ${p.eventId} occurred ${behind} minutes before the merchant's newest event, at or before an ` +
    `event time already forgotten: eligibility remembers the event ids of the last ` +
    `${dedup.horizonSec / 60} minutes (at most ${dedup.maxEvents}), so this may be a re-send of an event ` +
    'already counted and is not counted again'
  );
}

/**
 * Evaluates the merchant and emits a decision when it changed materially from the last one
 * emitted (eligibility, grade, a limit move past the policy's threshold, a new policy version),
 * or when a loan's refill signal is due. Nothing before the merchant's currency is known.
 */
function decide(
  policy: EligibilityPolicy,
  tag: number,
  v: StateView,
  merchantId: string,
  source: Source,
  triggerId: string,
  now: number,
): OutputRecord[] {
  const currency = v.currency;
  if (currency === null || !v.hasFlag(FLAG_CURRENCY)) return [];
  const ev = evaluate(computeFeatures(v), policy);
  const refills = ev.eligible ? pendingRefills(v) : [];
  if (!isMaterial(policy, tag, v, ev) && refills.length === 0) return [];
  for (const slot of refills) markRefillSignalled(v, slot);
  v.recordDecision(ev.eligible, ev.grade, ev.limitMinor, tag, declineMask(ev));
  const reasons: EligibilityReasonCode[] =
    refills.length > 0 ? [...ev.reasons, 'REFILL_ELIGIBLE'] : ev.reasons;
  const value: EligibilityDecision = {
    decision_id: decisionId(merchantId, source, triggerId),
    merchant_id: merchantId,
    eligible: ev.eligible,
    grade: RiskGradeValues[ev.grade]!,
    limit_minor: ev.limitMinor,
    currency,
    reasons,
    features: decisionFeatures(ev),
    policy_version: policy.version,
    computed_at: now,
    trigger_event_id: triggerId,
  };
  return [{ topic: TOPICS.eligibility, key: merchantId, value }];
}

/** The reasons of a declined evaluation as a bit mask over ELIGIBILITY_REASONS (0 when eligible). */
function declineMask(ev: Evaluation): number {
  if (ev.eligible) return 0;
  let mask = 0;
  for (const r of ev.reasons) mask |= 1 << ELIGIBILITY_REASONS.indexOf(r);
  return mask;
}

function isMaterial(policy: EligibilityPolicy, tag: number, v: StateView, ev: Evaluation): boolean {
  if (!v.hasFlag(FLAG_DECIDED) || v.policyTag !== tag) return true;
  if (ev.eligible !== v.hasFlag(FLAG_ELIGIBLE) || ev.grade !== v.lastGrade) return true;
  // A declined merchant's decision must say why it is declined now, not why it was before.
  if (!ev.eligible && declineMask(ev) !== v.lastDeclineMask) return true;
  const last = v.lastLimit;
  if (ev.limitMinor === last) return false;
  const threshold = Math.max(
    policy.emission.minLimitChangeMinor,
    mulDivFloor(last, policy.emission.minLimitChangeBps, 10_000),
  );
  return Math.abs(ev.limitMinor - last) >= threshold;
}
