/**
 * A small, independent reference model of docs/contract.md's repayment rules for ONE merchant (one
 * state key), written for clarity, not speed: plain arrays, BigInt arithmetic, one period at a time,
 * and a different representation of the period clock (the open period's start, not its end). It is
 * written from the rules, never from processors/repayment, so that a differential test can catch
 * the processor and the model disagreeing.
 *
 * The rules it follows, beyond the payout and period rules of the contract:
 *
 * - Loan events: every event_id whose merchant_id is the key is remembered forever with its
 *   verdict. A redelivery of an applied event changes nothing; a redelivery of a rejected one is
 *   rejected again with the same code (and, in the processor, the same detail) and changes nothing.
 * - The merchant clock: before a record that is neither a duplicate nor rejected applies, clock =
 *   max(clock, ctx.now, min(occurred_at, ctx.now + futureToleranceMs)), and every period whose end
 *   is at or before the clock closes first. A tick moves it to ctx.now.
 * - Payout memory: a payout's record is remembered until clock > lastEventAt + horizon (lastEventAt:
 *   the latest occurred_at of its applied events), except one with withholdings and neither SETTLED
 *   nor FAILED, which is remembered until one of them arrives.
 * - A payout event checks, in order: MERCHANT_MISMATCH; remembered and its type already applied:
 *   nothing; INVALID_PAYOUT; not remembered and occurred_at + horizon < clock (the clock the record
 *   would move to): BEYOND_DEDUP_HORIZON; otherwise it is decided (as new if not remembered).
 * - A merchant whose state holds nothing (no loans, loan event_ids or payouts) has no state: its
 *   clock is forgotten and it is not ticked.
 *
 * Validation is modelled only as far as the differential test's generator breaks records:
 * INVALID_LOAN_EVENT for FUNDED terms out of range (principal + fee at most 10^13), INVALID_PAYOUT for a negative or unsafe amount
 * or a currency that is not three capital letters. occurred_at is assumed in range.
 */
import type { OutputRecord } from '../../../processors/api';
import type {
  Deduction,
  LoanEvent,
  LoanState,
  LoanStatus,
  PayoutDecision,
  PayoutEvent,
  PayoutSettlement,
  PayoutType,
} from '../../../schemas/generated/types';
import { TOPICS } from '../../../schemas/topics';

const DAY_MS = 86_400_000;

export interface RefConfig {
  /** dedupHorizonMs; Infinity (the default here) remembers every payout forever. */
  readonly horizonMs: number;
  /** futureToleranceMs. */
  readonly futureToleranceMs: number;
  /** paceWarmupBps. */
  readonly paceWarmupBps: number;
}

export const REF_DEFAULTS: RefConfig = {
  horizonMs: Number.POSITIVE_INFINITY,
  futureToleranceMs: DAY_MS,
  paceWarmupBps: 2500,
};

export interface RefLoanView {
  loan_id: string;
  status: LoanStatus;
  collected: number;
  balance: number;
  period_index: number;
  period_required: number;
  period_collected: number;
  missed: number;
  pace: 'ON_PACE' | 'AT_RISK' | null;
  period_ends_at: number | null;
  closure: string | null;
}

export interface RefDecision {
  rejection: string | null;
  /** [deduction_id, type, amount, balance_after] */
  deductions: Array<[string, string, number, number]>;
  /** [payout_id, status, instructed, reported, mismatch, scheduled_at, first_withheld_decided_at] */
  settlements: Array<[string, string, number, number | null, number, number | null, number | null]>;
  /** Loans whose view changed in this step, oldest funding first. */
  changed: RefLoanView[];
  /** [payout_id, reason_code, withheld] of each PayoutDecision. */
  decisions: Array<[string, string, number]>;
}

interface RefLoan {
  id: string;
  currency: string;
  owed: number; // principal + fee
  bps: number;
  minimum: number;
  length: number; // period length, ms
  fundedAt: number;
  collected: number;
  status: LoanStatus;
  closure: string | null;
  period: number;
  periodStart: number;
  required: number;
  got: number;
  missed: number;
  stoppedAt: number | null;
}

interface RefPayout {
  gross: number;
  scheduledAt: number | null;
  firstWithheldAt: number | null;
  taken: Array<{ loan: string; amount: number; period: number }>;
  reversed: boolean;
  settled: boolean;
  failed: boolean;
  /** Event types applied to this record (each applies once while the record is remembered). */
  applied: PayoutType[];
  /** The latest occurred_at of its applied events. */
  lastEventAt: number;
}

const floorMulDiv = (a: number, b: number, d: number): number => Number((BigInt(a) * BigInt(b)) / BigInt(d));

const isAmount = (n: number | null | undefined): boolean => Number.isSafeInteger(n) && (n as number) >= 0;

const nothing = (): RefDecision => ({
  rejection: null,
  deductions: [],
  settlements: [],
  changed: [],
  decisions: [],
});

const rejected = (code: string): RefDecision => ({ ...nothing(), rejection: code });

export class ReferenceMerchant {
  private clock = Number.NEGATIVE_INFINITY;
  /** The event being applied happened at this time (occurred_at within the future tolerance): durations use it. */
  private eventAt = 0;
  private loans: RefLoan[] = [];
  private payouts = new Map<string, RefPayout>();
  /** Loan event_id -> its verdict: null if applied, else the rejection code. Kept forever. */
  private verdicts = new Map<string, string | null>();
  private readonly cfg: RefConfig;
  /** How often each rule came into play (for a test's coverage report); shared by clones. */
  readonly counts: Map<string, number>;

  constructor(config: Partial<RefConfig> = {}, counts = new Map<string, number>()) {
    this.cfg = { ...REF_DEFAULTS, ...config };
    this.counts = counts;
  }

  private count(what: string): void {
    this.counts.set(what, (this.counts.get(what) ?? 0) + 1);
  }

  /** One record under the state key `key` (default: its own merchant_id), at ctx.now = wallNow. */
  process(e: LoanEvent | PayoutEvent, wallNow: number, key: string = e.merchant_id): RefDecision {
    if (e.merchant_id !== key) return rejected('MERCHANT_MISMATCH');
    return 'payout_id' in e ? this.payoutRecord(e, wallNow) : this.loanRecord(e, wallNow);
  }

  /** A tick at ctx.now = wallNow. A merchant without state is never ticked: nothing happens. */
  tick(wallNow: number): RefDecision {
    if (!this.hasState()) return nothing();
    return this.step(Math.max(this.clock, wallNow), () => undefined);
  }

  /** Whether the merchant has state (the processor keeps a state value for the key). */
  hasState(): boolean {
    return this.loans.length > 0 || this.verdicts.size > 0 || this.payouts.size > 0;
  }

  /** The loans a tick at wallNow would change, without changing this model: a late timer shows here. */
  dueAt(wallNow: number): RefLoanView[] {
    return this.clone().tick(wallNow).changed;
  }

  views(): RefLoanView[] {
    return this.byFunding().map((l) => this.view(l));
  }

  /** The merchant clock (for traces); -Infinity without state. */
  get clockMs(): number {
    return this.clock;
  }

  clone(): ReferenceMerchant {
    const c = new ReferenceMerchant(this.cfg, new Map());
    c.clock = this.clock;
    c.loans = this.loans.map((l) => ({ ...l }));
    c.payouts = new Map(
      [...this.payouts].map(([id, p]) => [
        id,
        { ...p, taken: p.taken.map((t) => ({ ...t })), applied: [...p.applied] },
      ]),
    );
    c.verdicts = new Map(this.verdicts);
    return c;
  }

  /** The clock a record at ctx.now = wallNow moves to, if it applies (rule: tolerance, ctx.now). */
  private clockFor(occurredAt: number, wallNow: number): number {
    if (occurredAt > wallNow + this.cfg.futureToleranceMs)
      this.count('clock: occurred_at beyond the tolerance');
    else if (occurredAt > wallNow) this.count('clock: occurred_at ahead, within the tolerance');
    if (wallNow > Math.max(this.clock, occurredAt))
      this.count('clock: moved by ctx.now past a late occurred_at');
    return Math.max(this.clock, wallNow, Math.min(occurredAt, wallNow + this.cfg.futureToleranceMs));
  }

  private loanRecord(e: LoanEvent, wallNow: number): RefDecision {
    if (this.verdicts.has(e.event_id)) {
      const verdict = this.verdicts.get(e.event_id)!;
      this.count(
        verdict === null ? 'loan: redelivery of an applied event' : 'loan: redelivery of a rejected event',
      );
      return verdict === null ? nothing() : rejected(verdict);
    }
    const verdict = this.judge(e);
    this.verdicts.set(e.event_id, verdict);
    if (verdict !== null) {
      this.count(`rejected ${verdict}`);
      return rejected(verdict);
    }
    this.eventAt = Math.min(e.occurred_at, wallNow + this.cfg.futureToleranceMs);
    return this.step(this.clockFor(e.occurred_at, wallNow), () => this.loanEvent(e));
  }

  private judge(e: LoanEvent): string | null {
    const loan = this.loan(e.loan_id);
    if (e.type === 'FUNDED') {
      const p = e.principal_minor;
      const f = e.fee_minor;
      const bps = e.holdback_rate_bps;
      const days = e.period_days;
      const termsOk =
        isAmount(p) &&
        p! > 0 &&
        isAmount(f) &&
        p! + f! <= 10 ** 13 && // the amount ceiling (docs/reason-codes.md)
        Number.isSafeInteger(bps) &&
        bps! >= 1 &&
        bps! <= 10_000 &&
        isAmount(e.minimum_payment_minor) &&
        Number.isSafeInteger(days) &&
        days! >= 1 &&
        days! <= 3660 &&
        /^[A-Z]{3}$/.test(e.currency ?? '');
      if (!termsOk) return 'INVALID_LOAN_EVENT';
      return loan ? 'DUPLICATE_LOAN' : null;
    }
    if (!loan) return 'UNKNOWN_LOAN';
    return this.allowed(loan, e.type) ? null : 'INVALID_TRANSITION';
  }

  private payoutRecord(e: PayoutEvent, wallNow: number): RefDecision {
    const clock = this.clockFor(e.occurred_at, wallNow);
    const valid =
      isAmount(e.gross_amount_minor) &&
      (e.withheld_minor === null || isAmount(e.withheld_minor)) &&
      /^[A-Z]{3}$/.test(e.currency);
    if (!valid) {
      this.count('rejected INVALID_PAYOUT');
      return rejected('INVALID_PAYOUT');
    }
    const known = this.remembered(e.payout_id, clock);
    if (known?.applied.includes(e.type)) {
      this.count('payout: duplicate of a remembered payout');
      const d = nothing();
      if (e.type === 'SCHEDULED') d.decisions.push([e.payout_id, 'ALREADY_DECIDED', 0]);
      return d;
    }
    const stored = this.payouts.get(e.payout_id);
    if (stored && !known) this.count('payout: record forgotten at this clock');
    if (stored && this.pinned(stored) && stored.lastEventAt + this.cfg.horizonMs < clock)
      this.count('payout: kept beyond the horizon (withheld, not settled or failed)');
    if (!known && e.occurred_at + this.cfg.horizonMs < clock) {
      this.count('rejected BEYOND_DEDUP_HORIZON');
      return rejected('BEYOND_DEDUP_HORIZON');
    }
    if (stored && !known) this.count('payout: forgotten, decided again as new (inside the horizon)');
    this.eventAt = Math.min(e.occurred_at, wallNow + this.cfg.futureToleranceMs);
    return this.step(clock, (d) => this.payout(e, wallNow, d, known));
  }

  /** Why a new payout withheld nothing: the first reason that applies, from the loans as they are. */
  private whyNothing(e: PayoutEvent): string {
    const live = this.loans.filter((l) => l.status !== 'PAID_OFF' && l.status !== 'WRITTEN_OFF');
    if (live.length === 0) return 'NO_LIVE_LOAN';
    const same = live.filter((l) => l.currency === e.currency);
    if (same.length === 0) return 'OTHER_CURRENCY';
    return same.some((l) => l.status !== 'PAUSED') ? 'SHARE_ROUNDS_TO_ZERO' : 'LOANS_PAUSED';
  }

  /** A payout with withholdings standing that has neither settled nor failed: never forgotten. */
  private pinned(p: RefPayout): boolean {
    return p.taken.length > 0 && !p.settled && !p.failed;
  }

  /** The payout's record if it is remembered at `clock`. */
  private remembered(payoutId: string, clock: number): RefPayout | undefined {
    const p = this.payouts.get(payoutId);
    if (!p) return undefined;
    return this.pinned(p) || p.lastEventAt + this.cfg.horizonMs >= clock ? p : undefined;
  }

  private step(clock: number, apply: (d: RefDecision) => void): RefDecision {
    const before = new Map(this.loans.map((l) => [l.id, JSON.stringify(this.view(l))]));
    const d = nothing();
    this.clock = Math.max(this.clock, clock);
    this.loans.forEach((l) => this.closePeriods(l));
    apply(d);
    this.loans.forEach((l) => this.closePeriods(l));
    d.changed = this.byFunding()
      .map((l) => this.view(l))
      .filter((v) => before.get(v.loan_id) !== JSON.stringify(v));
    // Forgetting is clean-up only (remembered() already ignores an expired record), except that a
    // state left with nothing is deleted, and its clock with it.
    for (const id of [...this.payouts.keys()]) {
      if (!this.remembered(id, this.clock)) this.payouts.delete(id);
    }
    if (!this.hasState()) {
      this.count('state: deleted (nothing left)');
      this.clock = Number.NEGATIVE_INFINITY;
    }
    return d;
  }

  private loan(id: string): RefLoan | undefined {
    return this.loans.find((l) => l.id === id);
  }

  private byFunding(): RefLoan[] {
    return [...this.loans].sort((a, b) =>
      a.fundedAt !== b.fundedAt ? a.fundedAt - b.fundedAt : a.id < b.id ? -1 : 1,
    );
  }

  private running(l: RefLoan): boolean {
    return ['ACTIVE', 'BEHIND', 'DELINQUENT'].includes(l.status);
  }

  private allowed(l: RefLoan, type: LoanEvent['type']): boolean {
    const terminal = l.closure === 'PAID_OFF_EXTERNALLY' || l.closure === 'WRITTEN_OFF';
    if (type === 'PAUSED') return this.running(l);
    if (type === 'RESUMED') return l.status === 'PAUSED';
    return !terminal;
  }

  private statusFor(missed: number): LoanStatus {
    if (missed >= 2) return 'DELINQUENT';
    return missed === 1 ? 'BEHIND' : 'ACTIVE';
  }

  private closePeriods(l: RefLoan): void {
    while (this.running(l) && this.clock >= l.periodStart + l.length) {
      l.missed = l.got < l.required ? l.missed + 1 : 0;
      l.status = this.statusFor(l.missed);
      l.period += 1;
      l.periodStart += l.length;
      l.required = Math.min(l.minimum, l.owed - l.collected);
      l.got = 0;
    }
  }

  /** The period clock stops at the event's time, but not before the open period began. */
  private stop(l: RefLoan): void {
    if (l.stoppedAt === null) l.stoppedAt = Math.max(this.eventAt, l.periodStart);
  }

  /** ... and restarts at the restarting event's time: the paused span is event time. */
  private restart(l: RefLoan): void {
    l.periodStart += Math.max(0, this.eventAt - (l.stoppedAt ?? this.eventAt));
    l.stoppedAt = null;
    l.status = this.statusFor(l.missed);
  }

  private loanEvent(e: LoanEvent): void {
    if (e.type === 'FUNDED') {
      const owed = (e.principal_minor ?? 0) + (e.fee_minor ?? 0);
      this.loans.push({
        id: e.loan_id,
        currency: e.currency ?? '',
        owed,
        bps: e.holdback_rate_bps ?? 0,
        minimum: e.minimum_payment_minor ?? 0,
        length: (e.period_days ?? 0) * DAY_MS,
        fundedAt: e.occurred_at,
        collected: 0,
        status: 'ACTIVE',
        closure: null,
        period: 0,
        periodStart: e.occurred_at,
        required: Math.min(e.minimum_payment_minor ?? 0, owed),
        got: 0,
        missed: 0,
        stoppedAt: null,
      });
      return;
    }
    const l = this.loan(e.loan_id)!;
    if (e.type === 'PAUSED') {
      this.stop(l);
      l.status = 'PAUSED';
    } else if (e.type === 'RESUMED') {
      this.restart(l);
    } else {
      this.stop(l);
      l.status = e.type === 'WRITTEN_OFF' ? 'WRITTEN_OFF' : 'PAID_OFF';
      l.closure = e.type;
    }
  }

  /** Applies a payout event; `known` is its remembered record (undefined: decided as new). */
  private payout(e: PayoutEvent, wallNow: number, d: RefDecision, known: RefPayout | undefined): void {
    const p: RefPayout = known ?? {
      gross: e.gross_amount_minor,
      scheduledAt: null,
      firstWithheldAt: null,
      taken: [],
      reversed: false,
      settled: false,
      failed: false,
      applied: [],
      lastEventAt: Number.NEGATIVE_INFINITY,
    };
    this.payouts.set(e.payout_id, p);
    p.applied.push(e.type);
    p.lastEventAt = Math.max(p.lastEventAt, e.occurred_at);
    const standing = (): number => (p.reversed ? 0 : p.taken.reduce((s, t) => s + t.amount, 0));
    const settle = (status: string, instructed: number, reported: number | null): void => {
      d.settlements.push([
        e.payout_id,
        status,
        instructed,
        reported,
        reported === null ? 0 : reported - instructed,
        p.scheduledAt,
        p.firstWithheldAt,
      ]);
    };
    if (e.type === 'SCHEDULED') {
      if (p.scheduledAt === null) p.scheduledAt = e.occurred_at;
      if (known) {
        // a payout already settled or failed withholds nothing
        d.decisions.push([e.payout_id, p.failed ? 'FAILED_EARLIER' : 'SETTLED_EARLIER', 0]);
        return;
      }
      let left = e.gross_amount_minor;
      for (const l of this.byFunding()) {
        if (l.currency !== e.currency || !this.running(l)) continue;
        const amount = Math.min(floorMulDiv(e.gross_amount_minor, l.bps, 10_000), l.owed - l.collected, left);
        if (amount <= 0) continue;
        left -= amount;
        l.collected += amount;
        l.got += amount;
        p.taken.push({ loan: l.id, amount, period: l.period });
        p.firstWithheldAt ??= wallNow;
        if (l.collected === l.owed) {
          this.stop(l);
          l.status = 'PAID_OFF';
          l.closure = 'COLLECTED';
        }
        d.deductions.push([`${e.payout_id}:${l.id}:WITHHOLD`, 'WITHHOLD', amount, l.owed - l.collected]);
      }
      const withheld = e.gross_amount_minor - left;
      d.decisions.push([e.payout_id, withheld > 0 ? 'WITHHELD' : this.whyNothing(e), withheld]);
    } else if (e.type === 'FAILED') {
      p.failed = true;
      const instructed = standing();
      if (!p.reversed) {
        for (const t of p.taken) {
          const l = this.loan(t.loan)!;
          l.collected -= t.amount;
          if (l.period === t.period) l.got -= t.amount;
          if (l.closure === 'COLLECTED') {
            l.closure = null;
            this.restart(l);
          }
          d.deductions.push([`${e.payout_id}:${l.id}:REVERSAL`, 'REVERSAL', t.amount, l.owed - l.collected]);
        }
        p.reversed = true;
      }
      settle('FAILED', instructed, null);
    } else {
      p.settled = true;
      settle('SETTLED', standing(), e.withheld_minor);
    }
  }

  private view(l: RefLoan): RefLoanView {
    const running = this.running(l);
    return {
      loan_id: l.id,
      status: l.status,
      collected: l.collected,
      balance: l.owed - l.collected,
      period_index: l.period,
      period_required: l.required,
      period_collected: l.got,
      missed: l.missed,
      pace: running ? this.pace(l) : null,
      period_ends_at: running ? l.periodStart + l.length : null,
      closure: l.closure,
    };
  }

  /** Exact: floor(got * length / elapsed) < required is AT_RISK, in BigInt whatever the sizes. */
  private pace(l: RefLoan): 'ON_PACE' | 'AT_RISK' | null {
    if (l.required === 0) return null;
    if (l.got >= l.required) return 'ON_PACE';
    const elapsed = this.clock - l.periodStart;
    const warmup = (BigInt(l.length) * BigInt(this.cfg.paceWarmupBps)) / 10_000n;
    if (!(elapsed >= 1) || BigInt(elapsed) < warmup) return null;
    const projected = (BigInt(l.got) * BigInt(l.length)) / BigInt(elapsed);
    if (projected > BigInt(Number.MAX_SAFE_INTEGER)) this.count('pace: projection beyond 2^53');
    return projected < BigInt(l.required) ? 'AT_RISK' : 'ON_PACE';
  }
}

/** The model's view of a LoanState the processor emitted (what the tests compare). */
function viewOf(l: LoanState): RefLoanView {
  return {
    loan_id: l.loan_id,
    status: l.status,
    collected: l.collected_minor,
    balance: l.balance_minor,
    period_index: l.period_index,
    period_required: l.period_required_minor,
    period_collected: l.period_collected_minor,
    missed: l.missed_periods,
    pace: l.pace,
    period_ends_at: l.period_ends_at,
    closure: l.closure,
  };
}

/** What the processor decided in one step, in the model's terms (what the tests compare). */
export function decisionOf(r: {
  readonly outputs: readonly OutputRecord[];
  readonly rejection?: { readonly reasonCode: string };
}): RefDecision {
  const of = (topic: string): OutputRecord[] => r.outputs.filter((o) => o.topic === topic);
  return {
    rejection: r.rejection?.reasonCode ?? null,
    deductions: of(TOPICS.deductions).map((o) => {
      const d = o.value as Deduction;
      return [d.deduction_id, d.type, d.amount_minor, d.balance_after_minor];
    }),
    settlements: of(TOPICS.settlements).map((o) => {
      const s = o.value as PayoutSettlement;
      return [
        s.payout_id,
        s.status,
        s.instructed_minor,
        s.reported_withheld_minor,
        s.mismatch_minor,
        s.scheduled_at,
        s.first_withheld_decided_at,
      ];
    }),
    changed: of(TOPICS.loanStates).map((o) => viewOf(o.value as LoanState)),
    decisions: of(TOPICS.payoutDecisions).map((o) => {
      const d = o.value as PayoutDecision;
      return [d.payout_id, d.reason_code, d.withheld_minor];
    }),
  };
}
