/**
 * A small, independent reference model of docs/contract.md's repayment rules for ONE merchant, written
 * for clarity, not speed: plain arrays, BigInt arithmetic, one period at a time, and a different
 * representation of the period clock (the open period's start, not its end). It has no retention
 * (it remembers everything), does not clamp far-future timestamps and assumes well-formed events:
 * property tests keep within those limits.
 */
import type { LoanEvent, LoanStatus, PayoutEvent } from '../../../schemas/generated/types';

const DAY_MS = 86_400_000;

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
}

const floorMulDiv = (a: number, b: number, d: number): number => Number((BigInt(a) * BigInt(b)) / BigInt(d));

export class ReferenceMerchant {
  private now = 0;
  private readonly loans: RefLoan[] = [];
  private readonly payouts = new Map<string, RefPayout>();
  private readonly seen = new Set<string>();

  constructor(private readonly warmupBps = 2500) {}

  process(e: LoanEvent | PayoutEvent, wallNow: number): RefDecision {
    const isPayout = 'payout_id' in e;
    // A loan event happens once per event_id; a payout event once per payout and type (a retry
    // under a new event_id is the same event).
    const seenKey = isPayout ? `payout/${e.payout_id}/${e.type}` : `loan/${e.event_id}`;
    const nothing: RefDecision = { rejection: null, deductions: [], settlements: [], changed: [] };
    if (this.seen.has(seenKey)) return nothing;
    if (!isPayout) {
      const loan = this.loan(e.loan_id);
      if (e.type === 'FUNDED' && loan) return { ...nothing, rejection: 'DUPLICATE_LOAN' };
      if (e.type !== 'FUNDED' && !loan) return { ...nothing, rejection: 'UNKNOWN_LOAN' };
      if (loan && !this.allowed(loan, e.type)) return { ...nothing, rejection: 'INVALID_TRANSITION' };
    }
    this.seen.add(seenKey);
    return this.step(e.occurred_at, (d) => (isPayout ? this.payout(e, wallNow, d) : this.loanEvent(e)));
  }

  /** A merchant that has accepted nothing has no state, and a runtime never ticks it. */
  tick(wallNow: number): RefDecision {
    if (this.seen.size === 0) return { rejection: null, deductions: [], settlements: [], changed: [] };
    return this.step(wallNow, () => undefined);
  }

  views(): RefLoanView[] {
    return this.byFunding().map((l) => this.view(l));
  }

  private step(time: number, apply: (d: RefDecision) => void): RefDecision {
    const before = new Map(this.loans.map((l) => [l.id, JSON.stringify(this.view(l))]));
    const d: RefDecision = { rejection: null, deductions: [], settlements: [], changed: [] };
    this.now = Math.max(this.now, time);
    this.loans.forEach((l) => this.closePeriods(l));
    apply(d);
    this.loans.forEach((l) => this.closePeriods(l));
    d.changed = this.byFunding()
      .map((l) => this.view(l))
      .filter((v) => before.get(v.loan_id) !== JSON.stringify(v));
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
    while (this.running(l) && this.now >= l.periodStart + l.length) {
      l.missed = l.got < l.required ? l.missed + 1 : 0;
      l.status = this.statusFor(l.missed);
      l.period += 1;
      l.periodStart += l.length;
      l.required = Math.min(l.minimum, l.owed - l.collected);
      l.got = 0;
    }
  }

  private stop(l: RefLoan): void {
    if (l.stoppedAt === null) l.stoppedAt = this.now;
  }

  private restart(l: RefLoan): void {
    l.periodStart += this.now - (l.stoppedAt ?? this.now);
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

  private payout(e: PayoutEvent, wallNow: number, d: RefDecision): void {
    const known = this.payouts.get(e.payout_id);
    const p: RefPayout = known ?? {
      gross: e.gross_amount_minor,
      scheduledAt: null,
      firstWithheldAt: null,
      taken: [],
      reversed: false,
      settled: false,
      failed: false,
    };
    this.payouts.set(e.payout_id, p);
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
      if (known) return;
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
    } else if (e.type === 'FAILED') {
      if (p.failed) return;
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
      if (p.settled) return;
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

  private pace(l: RefLoan): 'ON_PACE' | 'AT_RISK' | null {
    if (l.required === 0) return null;
    if (l.got >= l.required) return 'ON_PACE';
    const elapsed = this.now - l.periodStart;
    const warmup = (BigInt(l.length) * BigInt(this.warmupBps)) / 10_000n;
    if (elapsed < 1 || BigInt(elapsed) < warmup) return null;
    const projected = (BigInt(l.got) * BigInt(l.length)) / BigInt(elapsed);
    return projected < BigInt(l.required) ? 'AT_RISK' : 'ON_PACE';
  }
}
