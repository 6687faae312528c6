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
import type { Rejection, StateSerde, Unsettled } from '../api';
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
  /** The latest occurred_at of its events applied here: its de-duplication horizon runs from it. */
  readonly lastEventAt: number;
}

/** What became of a loan event: null when it applied, else its rejection (given again on redelivery). */
export type LoanEventVerdict = Rejection | null;

export interface RepaymentState {
  /** The merchant clock: event time, ctx.now and ticks move it (processor.ts, clockFor). Never goes back. */
  clock: number;
  loans: Map<string, Loan>;
  /** Every loan event_id this merchant was sent, with its verdict, for as long as its loans live. */
  loanEvents: ReadonlyMap<string, LoanEventVerdict>;
  /**
   * How many of the merchant's payout entries are open (isOpen: withholdings neither settled nor
   * failed). Open entries never expire, so a merchant with any is not forgotten. What they hold
   * is summed from the entries themselves (Processor.unsettledEntry), not kept here: the state is
   * rewritten at every commit that touches the merchant and must not grow with its payouts.
   */
  openPayouts: number;
  /**
   * Payout records restored from a version 2 changelog, which kept them inside the state: the
   * key's next step moves them into entries. Empty otherwise.
   */
  legacyPayouts: Map<string, PayoutRecord>;
  /** The latest expiry of a payout entry written: the state (its clock) is kept at least that long. */
  rememberUntil: number;
}

export function emptyState(): RepaymentState {
  return {
    clock: 0,
    loans: new Map(),
    loanEvents: new Map(),
    openPayouts: 0,
    legacyPayouts: new Map(),
    rememberUntil: 0,
  };
}

/**
 * A copy a step may mutate: loans are copied; verdicts are replaced, never changed, so their map
 * is shared until a step adds one (withVerdict).
 */
export function copyState(s: RepaymentState): RepaymentState {
  const loans = new Map<string, Loan>();
  for (const [id, loan] of s.loans) loans.set(id, { ...loan });
  return {
    clock: s.clock,
    loans,
    loanEvents: s.loanEvents,
    openPayouts: s.openPayouts,
    legacyPayouts: s.legacyPayouts,
    rememberUntil: s.rememberUntil,
  };
}

/** The loan event verdicts with one more, as a new map (the old one may be shared with `before`). */
export function withVerdict(
  verdicts: ReadonlyMap<string, LoanEventVerdict>,
  eventId: string,
  verdict: LoanEventVerdict,
): Map<string, LoanEventVerdict> {
  return new Map(verdicts).set(eventId, verdict);
}

/** Whether a payout record holds withholdings a SETTLED or FAILED has still to conclude. */
export function isOpen(r: PayoutRecord): boolean {
  return r.withholdings.length > 0 && !r.reversed && !r.settled && !r.failed;
}

/** What an open payout holds unsettled (Processor.unsettledEntry); undefined when it is not open. */
export function unsettledOf(r: PayoutRecord): Unsettled | undefined {
  if (!isOpen(r)) return undefined;
  let minor = 0;
  for (const w of r.withholdings) minor += w.amountMinor;
  return {
    count: r.withholdings.length,
    minorByCurrency: [[r.currency, minor]],
    oldestAt: r.firstWithheldDecidedAt ?? r.scheduledAt ?? r.lastEventAt,
  };
}

/**
 * The changelog format. A state is rewritten on every commit that touches its merchant, so it
 * holds only what is small (loans, loan event verdicts, how many payouts are open); each payout's
 * record is its own entry (payoutRecordSerde), written when that payout changes. Version 4 is that
 * layout. Version 3 also listed every open payout (id, currency, amount, count, time), so a
 * merchant's state grew with its unsettled payouts and was rewritten whole with them: it restores
 * as its count. Version 2 (binary, payouts and event ids inside the state) and version 1 (JSON,
 * first byte '{') still restore: their payouts become entries at the key's next step.
 */
const SERDE_V1 = 1;
const SERDE_V2 = 2;
const SERDE_V3 = 3;
const SERDE_V4 = 4;
const PAYOUT_RECORD_V1 = 1;

interface V2Payout extends Omit<PayoutRecord, 'lastEventAt'> {
  /** Merchant clock at its last event (version 1 and 2); its lastEventAt is taken to be this. */
  readonly touchedAt: number;
}

interface EncodedStateV1 {
  v: number;
  clock: number;
  loans: Loan[];
  payouts: Array<[string, V2Payout]>;
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

const flagsOf = (p: Omit<PayoutRecord, 'lastEventAt'>): number =>
  (p.reversed ? PAYOUT_FLAGS.reversed : 0) |
  (p.settled ? PAYOUT_FLAGS.settled : 0) |
  (p.failed ? PAYOUT_FLAGS.failed : 0);

/** A version 2 payout: its withholdings name their loan by position in the state's loans when they could. */
function readV2Payout(r: BinaryReader, loanIds: readonly string[]): [string, PayoutRecord] {
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
    withFlags({ grossMinor, currency, scheduledAt, firstWithheldDecidedAt, withholdings }, flags, touchedAt),
  ];
}

function withFlags(
  p: Pick<
    PayoutRecord,
    'grossMinor' | 'currency' | 'scheduledAt' | 'firstWithheldDecidedAt' | 'withholdings'
  >,
  flags: number,
  lastEventAt: number,
): PayoutRecord {
  return {
    ...p,
    reversed: (flags & PAYOUT_FLAGS.reversed) !== 0,
    settled: (flags & PAYOUT_FLAGS.settled) !== 0,
    failed: (flags & PAYOUT_FLAGS.failed) !== 0,
    lastEventAt,
  };
}

/** A state of version 1 or 2: event ids were all applied ones (rejections were not kept). */
function fromLegacy(
  clock: number,
  loans: Map<string, Loan>,
  payouts: Iterable<[string, PayoutRecord]>,
  seen: Iterable<[string, number]>,
): RepaymentState {
  const s = emptyState();
  s.clock = clock;
  s.loans = loans;
  const verdicts = new Map<string, LoanEventVerdict>();
  for (const [key] of seen) if (key.startsWith('l:')) verdicts.set(key.slice(2), null);
  s.loanEvents = verdicts;
  for (const [id, p] of payouts) {
    s.legacyPayouts.set(id, p);
    if (isOpen(p)) s.openPayouts++;
  }
  return s;
}

function decodeV1(bytes: Buffer): RepaymentState {
  const e = JSON.parse(bytes.toString('utf8')) as EncodedStateV1;
  if (e === null || typeof e !== 'object' || e.v !== SERDE_V1) {
    throw new Error(`repayment state: unsupported serde version ${String((e as { v?: unknown } | null)?.v)}`);
  }
  const payouts = e.payouts.map(([id, { touchedAt, ...p }]): [string, PayoutRecord] => [
    id,
    { ...p, lastEventAt: touchedAt },
  ]);
  return fromLegacy(e.clock, new Map(e.loans.map((loan) => [loan.loanId, loan])), payouts, e.seen);
}

function decodeV2(r: BinaryReader): RepaymentState {
  const clock = r.uint();
  const loans = readLoans(r);
  const loanIds = [...loans.keys()];
  const payouts: Array<[string, PayoutRecord]> = [];
  for (let n = r.uint(); n > 0; n--) payouts.push(readV2Payout(r, loanIds));
  const seen: Array<[string, number]> = [];
  for (let n = r.uint(); n > 0; n--) seen.push([r.string(), r.uint()]);
  return fromLegacy(clock, loans, payouts, seen);
}

function readLoans(r: BinaryReader): Map<string, Loan> {
  const loans = new Map<string, Loan>();
  for (let n = r.uint(); n > 0; n--) {
    const loan = readLoan(r);
    loans.set(loan.loanId, loan);
  }
  return loans;
}

function writePayoutBody(w: BinaryWriter, p: PayoutRecord): void {
  w.uint(p.grossMinor).string(p.currency);
  w.nullableUint(p.scheduledAt).nullableUint(p.firstWithheldDecidedAt).uint(p.lastEventAt);
  w.byte(flagsOf(p)).uint(p.withholdings.length);
  for (const h of p.withholdings) w.string(h.loanId).uint(h.amountMinor).uint(h.periodIndex);
}

function readPayoutBody(r: BinaryReader): PayoutRecord {
  const grossMinor = r.uint();
  const currency = r.string();
  const scheduledAt = r.nullableUint();
  const firstWithheldDecidedAt = r.nullableUint();
  const lastEventAt = r.uint();
  const flags = r.byte();
  const withholdings: Withholding[] = [];
  for (let n = r.uint(); n > 0; n--)
    withholdings.push({ loanId: r.string(), amountMinor: r.uint(), periodIndex: r.uint() });
  return withFlags(
    { grossMinor, currency, scheduledAt, firstWithheldDecidedAt, withholdings },
    flags,
    lastEventAt,
  );
}

/** One writer for every encode: its buffer grows to the largest state and is reused (less garbage). */
const scratch = new BinaryWriter(16 * 1024);

/** Maps are written as counted entries in insertion order, so ids such as `__proto__` are safe. */
export const repaymentStateSerde: StateSerde<RepaymentState> = {
  encode(s) {
    const w = scratch.reset();
    w.byte(SERDE_V4).uint(s.clock).uint(s.rememberUntil);
    w.uint(s.loans.size);
    for (const loan of s.loans.values()) writeLoan(w, loan);
    w.uint(s.loanEvents.size);
    for (const [id, v] of s.loanEvents) {
      w.string(id);
      if (v === null) w.byte(0);
      else w.byte(1).string(v.reasonCode).string(v.detail);
    }
    w.uint(s.openPayouts);
    w.uint(s.legacyPayouts.size);
    for (const [id, p] of s.legacyPayouts) {
      w.string(id);
      writePayoutBody(w, p);
    }
    return w.finish();
  },
  decode(bytes) {
    if (bytes[0] === 0x7b) return decodeV1(bytes); // '{': version 1, JSON
    const r = new BinaryReader(bytes, 'repayment state');
    const version = r.byte();
    if (version === SERDE_V2) {
      const s = decodeV2(r);
      r.end();
      return s;
    }
    if (version !== SERDE_V3 && version !== SERDE_V4)
      throw new Error(`repayment state: unsupported serde version ${version}`);
    const s = emptyState();
    s.clock = r.uint();
    s.rememberUntil = r.uint();
    s.loans = readLoans(r);
    const verdicts = new Map<string, LoanEventVerdict>();
    for (let n = r.uint(); n > 0; n--) {
      const id = r.string();
      verdicts.set(id, r.byte() === 0 ? null : { reasonCode: r.string(), detail: r.string() });
    }
    s.loanEvents = verdicts;
    if (version === SERDE_V4) s.openPayouts = r.uint();
    else {
      // Version 3: each open payout (id, currency, amount, withholdings, decided at), which its
      // entry also holds; only their number is kept.
      for (let n = r.uint(); n > 0; n--) {
        r.string();
        r.string();
        r.uint();
        r.uint();
        r.uint();
        s.openPayouts++;
      }
    }
    for (let n = r.uint(); n > 0; n--) {
      const id = r.string();
      s.legacyPayouts.set(id, readPayoutBody(r));
    }
    r.end();
    return s;
  },
};

/** A payout's record as its own entry (Processor.entrySerde): a version byte, then the record. */
export const payoutRecordSerde: StateSerde<PayoutRecord> = {
  encode(p) {
    const w = scratch.reset();
    w.byte(PAYOUT_RECORD_V1);
    writePayoutBody(w, p);
    return w.finish();
  },
  decode(bytes) {
    const r = new BinaryReader(bytes, 'payout record');
    const version = r.byte();
    if (version !== PAYOUT_RECORD_V1) throw new Error(`payout record: unsupported serde version ${version}`);
    const p = readPayoutBody(r);
    r.end();
    return p;
  },
};
