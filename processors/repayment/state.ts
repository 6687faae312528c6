/**
 * One merchant's repayment state and its changelog serde. A processor step never mutates the
 * state it is given: it works on a copy (copyState) and returns that.
 */
import {
  LoanClosureValues,
  LoanStatusValues,
  RepaymentPaceValues,
  type LoanClosure,
  type LoanStatus,
  type RepaymentPace,
} from '../../schemas/generated/types';
import type { StateSerde } from '../api';
import { BinaryReader, BinaryWriter } from '../binary';

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

/**
 * The changelog format. Version 2 is binary (processors/binary.ts): a state is rewritten on every
 * commit that touches its merchant, so its size is the changelog's write volume; the JSON of
 * version 1 was about four times larger and its encoding a tenth of the processor's CPU at 5k
 * payouts/s. Version 1 (JSON, first byte '{') is still read, so an existing changelog restores.
 */
const SERDE_V1 = 1;
const SERDE_V2 = 2;

interface EncodedStateV1 {
  v: number;
  clock: number;
  loans: Loan[];
  payouts: Array<[string, PayoutRecord]>;
  seen: Array<[string, number]>;
}

const PAYOUT_FLAGS = { reversed: 1, settled: 2, failed: 4 } as const;

function writeLoan(w: BinaryWriter, l: Loan): void {
  w.string(l.loanId).string(l.merchantId).string(l.currency);
  w.uint(l.principalMinor).uint(l.feeMinor).uint(l.holdbackRateBps).uint(l.minimumPaymentMinor);
  w.uint(l.periodDays).uint(l.fundedAt);
  w.enumOf(LoanStatusValues, l.status).enumOf(LoanClosureValues, l.closure, true);
  w.uint(l.collectedMinor).uint(l.periodIndex).uint(l.periodEndsAt).uint(l.periodRequiredMinor);
  w.uint(l.periodCollectedMinor).uint(l.missedPeriods).nullableUint(l.clockStoppedAt);
  w.enumOf(RepaymentPaceValues, l.pace, true).uint(l.version).uint(l.updatedAt);
}

function readLoan(r: BinaryReader): Loan {
  return {
    loanId: r.string(),
    merchantId: r.string(),
    currency: r.string(),
    principalMinor: r.uint(),
    feeMinor: r.uint(),
    holdbackRateBps: r.uint(),
    minimumPaymentMinor: r.uint(),
    periodDays: r.uint(),
    fundedAt: r.uint(),
    status: r.enumOf(LoanStatusValues),
    closure: r.enumOf(LoanClosureValues, true),
    collectedMinor: r.uint(),
    periodIndex: r.uint(),
    periodEndsAt: r.uint(),
    periodRequiredMinor: r.uint(),
    periodCollectedMinor: r.uint(),
    missedPeriods: r.uint(),
    clockStoppedAt: r.nullableUint(),
    pace: r.enumOf(RepaymentPaceValues, true),
    version: r.uint(),
    updatedAt: r.uint(),
  };
}

/** A withholding names its loan by position in the state's loans when it can (1 byte, not an id). */
function writePayout(w: BinaryWriter, id: string, p: PayoutRecord, loanIndex: Map<string, number>): void {
  w.string(id).uint(p.grossMinor).string(p.currency);
  w.nullableUint(p.scheduledAt).nullableUint(p.firstWithheldDecidedAt).uint(p.touchedAt);
  w.byte(
    (p.reversed ? PAYOUT_FLAGS.reversed : 0) |
      (p.settled ? PAYOUT_FLAGS.settled : 0) |
      (p.failed ? PAYOUT_FLAGS.failed : 0),
  );
  w.uint(p.withholdings.length);
  for (const h of p.withholdings) {
    const i = loanIndex.get(h.loanId);
    if (i === undefined) w.uint(0).string(h.loanId);
    else w.uint(i + 1);
    w.uint(h.amountMinor).uint(h.periodIndex);
  }
}

function readPayout(r: BinaryReader, loanIds: readonly string[]): [string, PayoutRecord] {
  const id = r.string();
  const grossMinor = r.uint();
  const currency = r.string();
  const scheduledAt = r.nullableUint();
  const firstWithheldDecidedAt = r.nullableUint();
  const touchedAt = r.uint();
  const flags = r.byte();
  const withholdings: Withholding[] = [];
  for (let n = r.uint(); n > 0; n--) {
    const ref = r.uint();
    const loanId = ref === 0 ? r.string() : loanIds[ref - 1];
    if (loanId === undefined)
      throw new Error(`repayment state: withholding names loan #${ref}, not in the state`);
    withholdings.push({ loanId, amountMinor: r.uint(), periodIndex: r.uint() });
  }
  return [
    id,
    {
      grossMinor,
      currency,
      scheduledAt,
      firstWithheldDecidedAt,
      withholdings,
      reversed: (flags & PAYOUT_FLAGS.reversed) !== 0,
      settled: (flags & PAYOUT_FLAGS.settled) !== 0,
      failed: (flags & PAYOUT_FLAGS.failed) !== 0,
      touchedAt,
    },
  ];
}

function decodeV1(bytes: Buffer): RepaymentState {
  const e = JSON.parse(bytes.toString('utf8')) as EncodedStateV1;
  if (e === null || typeof e !== 'object' || e.v !== SERDE_V1) {
    throw new Error(`repayment state: unsupported serde version ${String((e as { v?: unknown } | null)?.v)}`);
  }
  return {
    clock: e.clock,
    loans: new Map(e.loans.map((loan) => [loan.loanId, loan])),
    payouts: new Map(e.payouts),
    seen: new Map(e.seen),
  };
}

/** One writer for every encode: its buffer grows to the largest state and is reused (less garbage). */
const scratch = new BinaryWriter(16 * 1024);

/** Maps are written as counted entries in insertion order, so ids such as `__proto__` are safe. */
export const repaymentStateSerde: StateSerde<RepaymentState> = {
  encode(s) {
    const w = scratch.reset();
    w.byte(SERDE_V2).uint(s.clock);
    const loanIndex = new Map<string, number>();
    w.uint(s.loans.size);
    for (const loan of s.loans.values()) {
      loanIndex.set(loan.loanId, loanIndex.size);
      writeLoan(w, loan);
    }
    w.uint(s.payouts.size);
    for (const [id, p] of s.payouts) writePayout(w, id, p, loanIndex);
    w.uint(s.seen.size);
    for (const [key, at] of s.seen) w.string(key).uint(at);
    return w.finish();
  },
  decode(bytes) {
    if (bytes[0] === 0x7b) return decodeV1(bytes); // '{': version 1, JSON
    const r = new BinaryReader(bytes, 'repayment state');
    const version = r.byte();
    if (version !== SERDE_V2) throw new Error(`repayment state: unsupported serde version ${version}`);
    const clock = r.uint();
    const loans = new Map<string, Loan>();
    for (let n = r.uint(); n > 0; n--) {
      const loan = readLoan(r);
      loans.set(loan.loanId, loan);
    }
    const loanIds = [...loans.keys()];
    const payouts = new Map<string, PayoutRecord>();
    for (let n = r.uint(); n > 0; n--) {
      const [id, p] = readPayout(r, loanIds);
      payouts.set(id, p);
    }
    const seen = new Map<string, number>();
    for (let n = r.uint(); n > 0; n--) seen.set(r.string(), r.uint());
    r.end();
    return { clock, loans, payouts, seen };
  },
};
