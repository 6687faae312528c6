/**
 * One merchant's repayment state and its changelog serde. A processor step never mutates the
 * state it is given: it works on a copy (copyState) and returns that.
 */
import type { LoanClosure, LoanStatus, RepaymentPace } from '../../schemas/generated/types';
import type { StateSerde } from '../api';

export interface Loan {
  readonly loanId: string;
  readonly merchantId: string;
  readonly currency: string;
  readonly principalMinor: number;
  readonly feeMinor: number;
  readonly holdbackRateBps: number;
  readonly minimumPaymentMinor: number;
  readonly periodDays: number;
  /** occurred_at of FUNDED: the start of period 0 and the "oldest funding first" order. */
  readonly fundedAt: number;
  status: LoanStatus;
  closure: LoanClosure | null;
  /** Withholdings minus reversals; balance = principal + fee - collected. */
  collectedMinor: number;
  periodIndex: number;
  /** End of the open period; moved later by the time the period clock was stopped. */
  periodEndsAt: number;
  periodRequiredMinor: number;
  periodCollectedMinor: number;
  missedPeriods: number;
  /** Merchant-clock time the period clock stopped (PAUSED or closed); null while it runs. */
  clockStoppedAt: number | null;
  /** The pace as last assessed (part of what makes a change of the loan). */
  pace: RepaymentPace | null;
  version: number;
  updatedAt: number;
}

/** What was withheld from one payout for one loan, and in which period it was counted. */
export interface Withholding {
  readonly loanId: string;
  readonly amountMinor: number;
  readonly periodIndex: number;
}

export interface PayoutRecord {
  /** Gross and currency of the SCHEDULED it was withheld against (or of its first event). */
  readonly grossMinor: number;
  readonly currency: string;
  readonly scheduledAt: number | null;
  readonly firstWithheldDecidedAt: number | null;
  readonly withholdings: readonly Withholding[];
  readonly reversed: boolean;
  readonly settled: boolean;
  readonly failed: boolean;
  /** Merchant clock at its last event: the start of its retention. */
  readonly touchedAt: number;
}

export interface RepaymentState {
  /** The merchant clock: the highest stream time (occurred_at) or tick time seen. Never goes back. */
  clock: number;
  loans: Map<string, Loan>;
  payouts: Map<string, PayoutRecord>;
  /** Processed inputs, `<topic tag>:<event_id>` -> merchant clock when processed. */
  seen: Map<string, number>;
}

export function emptyState(): RepaymentState {
  return { clock: 0, loans: new Map(), payouts: new Map(), seen: new Map() };
}

/** A copy a step may mutate: loans are copied, payout records are replaced rather than changed. */
export function copyState(s: RepaymentState): RepaymentState {
  const loans = new Map<string, Loan>();
  for (const [id, loan] of s.loans) loans.set(id, { ...loan });
  return { clock: s.clock, loans, payouts: new Map(s.payouts), seen: new Map(s.seen) };
}

const SERDE_VERSION = 1;

interface EncodedState {
  v: number;
  clock: number;
  loans: Loan[];
  payouts: Array<[string, PayoutRecord]>;
  seen: Array<[string, number]>;
}

/** Versioned JSON. Maps become entry arrays, so ids such as `__proto__` are safe. */
export const repaymentStateSerde: StateSerde<RepaymentState> = {
  encode(s) {
    const encoded: EncodedState = {
      v: SERDE_VERSION,
      clock: s.clock,
      loans: [...s.loans.values()],
      payouts: [...s.payouts],
      seen: [...s.seen],
    };
    return Buffer.from(JSON.stringify(encoded), 'utf8');
  },
  decode(bytes) {
    const e = JSON.parse(bytes.toString('utf8')) as EncodedState;
    if (e === null || typeof e !== 'object' || e.v !== SERDE_VERSION) {
      throw new Error(
        `repayment state: unsupported serde version ${String((e as { v?: unknown } | null)?.v)}`,
      );
    }
    return {
      clock: e.clock,
      loans: new Map(e.loans.map((loan) => [loan.loanId, loan])),
      payouts: new Map(e.payouts),
      seen: new Map(e.seen),
    };
  },
};
