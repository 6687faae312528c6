/**
 * The synthetic marketplace: a pure, seeded, discrete-event simulation of merchants selling on a
 * platform, the platform paying them out, and a lender funding some of them. It produces the
 * contract's input events (marketplace.orders.v1, marketplace.sales.v1, marketplace.payouts.v1,
 * lending.loans.v1) in event-time order, with no I/O and no clock: `next()` returns the next event
 * of an endless stream, and the same config always yields the same stream (simulator/README.md).
 *
 * The platform withholds from each payout what Holdback would, per the contract's repayment rules
 * (oldest funding first, each loan min(floor(gross * bps / 10000), balance, gross left), nothing
 * from PAUSED, paid-off or written-off loans, a FAILED payout restores what it withheld), and
 * reports it as withheld_minor on SETTLED; `mismatchRate` of the SETTLED report another amount.
 */
import { shareOfBps } from '../processors/money';
import type { LoanEvent, OrderEvent, PayoutEvent, SaleEvent } from '../schemas/generated/types';
import { TOPICS } from '../schemas/topics';
import { Agenda } from './heap';
import { Rng } from './rng';

export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;
export const DAY_MS = 24 * HOUR_MS;

/** What the simulator knows about a payout event beyond its fields: for summaries and tests. */
export interface PayoutNote {
  /** What the platform withheld for the contract's rules (the sum Holdback should instruct). */
  readonly instructedMinor: number;
  /** This payout's SETTLED is (or, on SCHEDULED, will be) delayed by lateSettlementDelayMs. */
  readonly late: boolean;
  /** On SETTLED: withheld_minor deliberately differs from instructedMinor. */
  readonly mismatch: boolean;
}

export type SimEvent =
  | {
      readonly topic: typeof TOPICS.orders;
      readonly key: string;
      readonly time: number;
      readonly value: OrderEvent;
    }
  | {
      readonly topic: typeof TOPICS.sales;
      readonly key: string;
      readonly time: number;
      readonly value: SaleEvent;
    }
  | {
      readonly topic: typeof TOPICS.payouts;
      readonly key: string;
      readonly time: number;
      readonly value: PayoutEvent;
      readonly note: PayoutNote;
    }
  | {
      readonly topic: typeof TOPICS.loanEvents;
      readonly key: string;
      readonly time: number;
      readonly value: LoanEvent;
    };

export type InputTopic = SimEvent['topic'];

export const INPUT_TOPICS: readonly InputTopic[] = [
  TOPICS.orders,
  TOPICS.sales,
  TOPICS.payouts,
  TOPICS.loanEvents,
];

export interface MarketplaceConfig {
  readonly seed: number;
  readonly merchants: number;
  /** Simulated time of the first event, ms since the epoch. */
  readonly startMs: number;
  /** Mean share of payouts that FAIL instead of settling (merchants differ around it). */
  readonly failRate: number;
  /** Share of settling payouts whose SETTLED comes lateSettlementDelayMs later than usual. */
  readonly lateSettlementRate: number;
  readonly lateSettlementDelayMs: number;
  /** Share of SETTLED whose withheld_minor differs from what the repayment rules withhold. */
  readonly mismatchRate: number;
}

export type Segment = 'steady' | 'declining' | 'goes-quiet';

/** A merchant's fixed traits, drawn once from the seed. */
export interface MerchantProfile {
  readonly index: number;
  readonly id: string;
  readonly currency: string;
  readonly segment: Segment;
  /** Joined the platform at this time (the start, or later for new merchants). */
  readonly joinedAt: number;
  /** Stops receiving orders at this time (Infinity: never). */
  readonly quietAt: number;
  /** Orders per day at the start, before trend and weekday effects (Pareto: a few large, many small). */
  readonly ordersPerDay: number;
  /** Exponential trend of the order rate, per day. */
  readonly growthPerDay: number;
  /** Median order value (log-normal per order). */
  readonly orderMedianMinor: number;
  readonly orderSigma: number;
  readonly cancelRate: number;
  readonly refundRate: number;
  readonly chargebackRate: number;
  /** Probability that one of its payouts FAILS. */
  readonly payoutFailRate: number;
  /** 1 (daily) or 7 (weekly). */
  readonly payoutEveryDays: 1 | 7;
  /** Weekly payouts happen on this day of the week (0 = Sunday). */
  readonly payoutWeekday: number;
  /** Daily cut-off (payout and underwriting) this long after UTC midnight. */
  readonly cutOffsetMs: number;
}

type LoanStatus = 'open' | 'paused' | 'paid' | 'written_off';

interface SimLoan {
  readonly id: string;
  readonly principalMinor: number;
  readonly feeMinor: number;
  readonly holdbackRateBps: number;
  balanceMinor: number;
  collectedMinor: number;
  status: LoanStatus;
}

interface SimPayout {
  readonly id: string;
  readonly grossMinor: number;
  readonly withholdings: ReadonlyArray<{ readonly loan: SimLoan; readonly amountMinor: number }>;
  readonly instructedMinor: number;
  readonly late: boolean;
}

interface Merchant extends MerchantProfile {
  orders: number;
  sales: number;
  payouts: number;
  loanCount: number;
  /** Net captured (captures - refunds - chargebacks + failed payouts) not yet paid out; may be negative. */
  pendingMinor: number;
  capturedTodayMinor: number;
  refundedTodayMinor: number;
  /** Last 30 days of captures and of refunds + chargebacks, one slot per daily cut-off. */
  readonly captured30: Float64Array;
  readonly refunded30: Float64Array;
  days: number;
  lastSaleAt: number;
  /** In funding order: the order the repayment rules withhold in. */
  readonly loans: SimLoan[];
}

type Action =
  | { readonly k: 'order'; readonly m: Merchant }
  | { readonly k: 'tick'; readonly m: Merchant }
  | {
      readonly k: 'fulfil' | 'cancel';
      readonly m: Merchant;
      readonly orderId: string;
      readonly amountMinor: number;
    }
  | {
      readonly k: 'refund' | 'chargeback';
      readonly m: Merchant;
      readonly saleId: string;
      readonly orderId: string;
      readonly amountMinor: number;
    }
  | { readonly k: 'settle' | 'fail'; readonly m: Merchant; readonly payout: SimPayout }
  | { readonly k: 'pause'; readonly m: Merchant; readonly loan: SimLoan; readonly resumeAfterMs: number }
  | { readonly k: 'resume'; readonly m: Merchant; readonly loan: SimLoan };

/** Underwriting: what the simulated lender asks before funding. */
export const LENDER = {
  minTenureMs: 45 * DAY_MS,
  /** Captured in the last 30 days, minor units. */
  minMonthlySalesMinor: 30_000,
  /** Refunds + chargebacks over captures, last 30 days. */
  maxRefundShare: 0.12,
  /** No sale for this long: not funded. */
  maxIdleMs: 7 * DAY_MS,
  /** Chance per daily cut-off that an eligible merchant takes an advance. */
  takeUpPerDay: 0.012,
  /** A second advance (refill) once the open one is this much collected. */
  refillCollectedShare: 0.75,
  maxLoansPerMerchant: 3,
  /** Lender writes a loan off this long after its merchant went quiet. */
  writeOffAfterQuietMs: 60 * DAY_MS,
  pauseChance: 0.08,
} as const;

const ORDER_AMOUNT_MIN_MINOR = 100;
const ORDER_AMOUNT_MAX_MINOR = 50_000_000;
const MAX_TREND = 8;

export class Marketplace {
  private readonly rng: Rng;
  private readonly agenda = new Agenda<Action>();
  private readonly out: SimEvent[] = [];
  private outHead = 0;
  private readonly merchantList: Merchant[] = [];
  private readonly idBase: string;

  constructor(readonly config: MarketplaceConfig) {
    this.rng = Rng.fork(config.seed, 'marketplace');
    this.idBase = `sim${config.seed}`;
    for (let i = 0; i < config.merchants; i++) {
      const m = this.newMerchant(i);
      this.merchantList.push(m);
      this.scheduleNextOrder(m, m.joinedAt);
      this.agenda.push(this.firstCutAfter(m, m.joinedAt), { k: 'tick', m });
    }
  }

  /** Every merchant's traits, in index order. */
  get profiles(): readonly MerchantProfile[] {
    return this.merchantList;
  }

  /** The next event, in event-time order (ties in the order they were caused). The stream never ends. */
  next(): SimEvent {
    while (this.outHead >= this.out.length) {
      this.out.length = 0;
      this.outHead = 0;
      const a = this.agenda.pop();
      if (!a) throw new Error('the marketplace has nothing scheduled: it needs at least one merchant');
      this.run(a.t, a.item);
    }
    return this.out[this.outHead++]!;
  }

  // ---- merchants --------------------------------------------------------------------------

  private newMerchant(index: number): Merchant {
    const r = this.rng;
    const start = this.config.startMs;
    const joinedAt = r.chance(0.7) ? start : start + Math.floor(r.uniform(0, 100) * DAY_MS);
    const kind = r.next();
    const segment: Segment = kind < 0.78 ? 'steady' : kind < 0.93 ? 'declining' : 'goes-quiet';
    const growthPerDay =
      segment === 'declining' ? -r.uniform(0.01, 0.03) : clamp(0.002 + 0.003 * r.normal(), -0.005, 0.01);
    const quietAt =
      segment === 'goes-quiet'
        ? Math.max(joinedAt, start) + Math.floor(r.uniform(20, 100) * DAY_MS)
        : Infinity;
    const badRefunds = r.chance(0.15);
    const weekly = r.chance(0.35);
    const failProne = r.chance(0.15);
    return {
      index,
      id: `${this.idBase}-m${index}`,
      currency: weightedPick(r, [
        ['USD', 0.7],
        ['EUR', 0.2],
        ['GBP', 0.1],
      ]),
      segment,
      joinedAt,
      quietAt,
      ordersPerDay: Math.min(3000, r.pareto(0.3, 1.1)),
      growthPerDay,
      orderMedianMinor: r.logNormal(4000, 0.6),
      orderSigma: r.uniform(0.4, 0.9),
      cancelRate: r.uniform(0.02, 0.08),
      refundRate: badRefunds ? r.uniform(0.15, 0.35) : r.uniform(0.01, 0.06),
      chargebackRate: badRefunds ? r.uniform(0.01, 0.03) : r.uniform(0.001, 0.005),
      // 85% of merchants at half the rate, 15% at 23/6 of it: the mean is failRate.
      payoutFailRate: Math.min(
        1,
        this.config.failRate * (this.config.failRate >= 1 ? 1 : failProne ? 23 / 6 : 0.5),
      ),
      payoutEveryDays: weekly ? 7 : 1,
      payoutWeekday: r.int(0, 6),
      cutOffsetMs: HOUR_MS + Math.floor(r.uniform(0, 6) * HOUR_MS),
      orders: 0,
      sales: 0,
      payouts: 0,
      loanCount: 0,
      pendingMinor: 0,
      capturedTodayMinor: 0,
      refundedTodayMinor: 0,
      captured30: new Float64Array(30),
      refunded30: new Float64Array(30),
      days: 0,
      lastSaleAt: -Infinity,
      loans: [],
    };
  }

  private firstCutAfter(m: Merchant, t: number): number {
    const cut = Math.floor(t / DAY_MS) * DAY_MS + m.cutOffsetMs;
    return cut >= t ? cut : cut + DAY_MS;
  }

  /** Orders per day at time t: trend, weekly seasonality (weekends slower), nothing once quiet. */
  private orderRate(m: Merchant, t: number): number {
    if (t >= m.quietAt) return 0;
    const trend = Math.min(MAX_TREND, Math.exp((m.growthPerDay * (t - this.config.startMs)) / DAY_MS));
    const weekday = (Math.floor(t / DAY_MS) + 4) % 7; // 1970-01-01 was a Thursday
    return m.ordersPerDay * trend * (weekday === 0 || weekday === 6 ? 0.75 : 1.1);
  }

  private scheduleNextOrder(m: Merchant, t: number): void {
    const rate = this.orderRate(m, t);
    if (rate < 1e-4) return; // effectively gone: fewer than one order in 27 years
    const next = t + Math.max(1, Math.floor(this.rng.exponential(DAY_MS / rate)));
    if (next < m.quietAt) this.agenda.push(next, { k: 'order', m });
  }

  // ---- the step ---------------------------------------------------------------------------

  private run(t: number, a: Action): void {
    switch (a.k) {
      case 'order':
        return this.placeOrder(t, a.m);
      case 'fulfil':
        return this.fulfil(t, a.m, a.orderId, a.amountMinor);
      case 'cancel':
        this.order(t, a.m, a.orderId, 'CANCELLED', a.amountMinor);
        return;
      case 'refund':
      case 'chargeback':
        a.m.pendingMinor -= a.amountMinor;
        a.m.refundedTodayMinor += a.amountMinor;
        this.sale(t, a.m, a.saleId, a.orderId, a.k === 'refund' ? 'REFUNDED' : 'CHARGEBACK', a.amountMinor);
        return;
      case 'tick':
        return this.cutOff(t, a.m);
      case 'settle':
        return this.settle(t, a.m, a.payout);
      case 'fail':
        return this.fail(t, a.m, a.payout);
      case 'pause':
        if (a.loan.status !== 'open') return;
        a.loan.status = 'paused';
        this.loanEvent(t, a.m, a.loan, 'PAUSED');
        this.agenda.push(t + a.resumeAfterMs, { k: 'resume', m: a.m, loan: a.loan });
        return;
      case 'resume':
        if (a.loan.status !== 'paused') return;
        a.loan.status = 'open';
        this.loanEvent(t, a.m, a.loan, 'RESUMED');
        return;
    }
  }

  private placeOrder(t: number, m: Merchant): void {
    const r = this.rng;
    const orderId = `${m.id}-o${++m.orders}`;
    const amountMinor = clamp(
      Math.round(r.logNormal(m.orderMedianMinor, m.orderSigma)),
      ORDER_AMOUNT_MIN_MINOR,
      ORDER_AMOUNT_MAX_MINOR,
    );
    this.order(t, m, orderId, 'PLACED', amountMinor);
    if (r.chance(m.cancelRate)) {
      this.agenda.push(t + Math.floor(r.uniform(10 * MINUTE_MS, DAY_MS)), {
        k: 'cancel',
        m,
        orderId,
        amountMinor,
      });
    } else {
      this.agenda.push(t + Math.floor(r.uniform(HOUR_MS, 3 * DAY_MS)), {
        k: 'fulfil',
        m,
        orderId,
        amountMinor,
      });
    }
    this.scheduleNextOrder(m, t);
  }

  /** Fulfilment captures the payment; some sales are refunded later, a few charged back. */
  private fulfil(t: number, m: Merchant, orderId: string, amountMinor: number): void {
    const r = this.rng;
    this.order(t, m, orderId, 'FULFILLED', amountMinor);
    const saleId = `${m.id}-s${++m.sales}`;
    this.sale(t, m, saleId, orderId, 'CAPTURED', amountMinor);
    m.pendingMinor += amountMinor;
    m.capturedTodayMinor += amountMinor;
    m.lastSaleAt = t;
    let refundedMinor = 0;
    if (r.chance(m.refundRate)) {
      refundedMinor = r.chance(0.6)
        ? amountMinor
        : Math.max(1, Math.floor(amountMinor * r.uniform(0.1, 0.9)));
      this.agenda.push(t + Math.floor(r.uniform(HOUR_MS, 30 * DAY_MS)), {
        k: 'refund',
        m,
        saleId,
        orderId,
        amountMinor: refundedMinor,
      });
    }
    if (r.chance(m.chargebackRate) && amountMinor - refundedMinor > 0) {
      this.agenda.push(t + Math.floor(r.uniform(20 * DAY_MS, 90 * DAY_MS)), {
        k: 'chargeback',
        m,
        saleId,
        orderId,
        amountMinor: amountMinor - refundedMinor,
      });
    }
  }

  /** The daily cut-off: the 30-day window moves, a payout is scheduled when due, then the lender underwrites. */
  private cutOff(t: number, m: Merchant): void {
    const slot = m.days++ % 30;
    m.captured30[slot] = m.capturedTodayMinor;
    m.refunded30[slot] = m.refundedTodayMinor;
    m.capturedTodayMinor = 0;
    m.refundedTodayMinor = 0;
    const weekday = (Math.floor(t / DAY_MS) + 4) % 7;
    if (m.payoutEveryDays === 1 || weekday === m.payoutWeekday) this.schedulePayout(t, m);
    // The lender underwrites just after the payout run: a loan funded at the same instant as a
    // payout would come first in the contract's time order (docs/contract.md) and withhold from
    // it, which this platform, having paid out already, did not.
    this.underwrite(t + 1, m);
    if (t >= m.quietAt + LENDER.writeOffAfterQuietMs) {
      for (const loan of m.loans) {
        if ((loan.status === 'open' || loan.status === 'paused') && loan.balanceMinor > 0) {
          loan.status = 'written_off';
          this.loanEvent(t, m, loan, 'WRITTEN_OFF');
        }
      }
    }
    this.agenda.push(t + DAY_MS, { k: 'tick', m });
  }

  /**
   * Gross is the net captured since the last payout (captures - refunds - chargebacks), plus the
   * gross of payouts that failed since; a negative net carries over, and nothing is paid at 0.
   */
  private schedulePayout(t: number, m: Merchant): void {
    const r = this.rng;
    if (m.pendingMinor <= 0) return;
    const grossMinor = m.pendingMinor;
    m.pendingMinor = 0;
    const withholdings = this.withhold(m, grossMinor);
    const instructedMinor = withholdings.reduce((s, w) => s + w.amountMinor, 0);
    const fails = r.chance(m.payoutFailRate);
    const late = !fails && r.chance(this.config.lateSettlementRate);
    const payout: SimPayout = {
      id: `${m.id}-p${++m.payouts}`,
      grossMinor,
      withholdings,
      instructedMinor,
      late,
    };
    this.payoutEvent(t, m, payout, 'SCHEDULED', null, false);
    if (fails) {
      this.agenda.push(t + Math.floor(r.uniform(4 * HOUR_MS, 48 * HOUR_MS)), { k: 'fail', m, payout });
    } else {
      const delay =
        Math.floor(r.uniform(2 * HOUR_MS, 20 * HOUR_MS)) + (late ? this.config.lateSettlementDelayMs : 0);
      this.agenda.push(t + delay, { k: 'settle', m, payout });
    }
  }

  /** The contract's repayment rule, as the platform applies it at SCHEDULED. */
  private withhold(m: Merchant, grossMinor: number): SimPayout['withholdings'] {
    const out: Array<{ loan: SimLoan; amountMinor: number }> = [];
    let leftMinor = grossMinor;
    for (const loan of m.loans) {
      if (loan.status !== 'open' || leftMinor === 0) continue;
      const amountMinor = Math.min(
        shareOfBps(grossMinor, loan.holdbackRateBps),
        loan.balanceMinor,
        leftMinor,
      );
      if (amountMinor <= 0) continue;
      loan.balanceMinor -= amountMinor;
      loan.collectedMinor += amountMinor;
      leftMinor -= amountMinor;
      if (loan.balanceMinor === 0) loan.status = 'paid';
      out.push({ loan, amountMinor });
    }
    return out;
  }

  private settle(t: number, m: Merchant, payout: SimPayout): void {
    const r = this.rng;
    let reported = payout.instructedMinor;
    const mismatch = r.chance(this.config.mismatchRate);
    if (mismatch) {
      const delta =
        reported === 0
          ? r.int(1, Math.max(1, Math.min(payout.grossMinor, 10_000)))
          : Math.max(1, Math.floor(reported * r.uniform(0.01, 0.2)));
      reported = reported > delta && r.chance(0.5) ? reported - delta : reported + delta;
    }
    this.payoutEvent(t, m, payout, 'SETTLED', reported, mismatch);
  }

  /** A failed payout gives back what it withheld (re-opening a loan it paid off) and is paid again later. */
  private fail(t: number, m: Merchant, payout: SimPayout): void {
    this.payoutEvent(t, m, payout, 'FAILED', null, false);
    for (const w of payout.withholdings) {
      w.loan.balanceMinor += w.amountMinor;
      w.loan.collectedMinor -= w.amountMinor;
      if (w.loan.status === 'paid') w.loan.status = 'open';
    }
    m.pendingMinor += payout.grossMinor;
  }

  /** The lender funds merchants with enough, clean history; a refill once the open advance is mostly repaid. */
  private underwrite(t: number, m: Merchant): void {
    const r = this.rng;
    if (t - m.joinedAt < LENDER.minTenureMs || t - m.lastSaleAt > LENDER.maxIdleMs) return;
    const capturedMinor = sum(m.captured30);
    if (
      capturedMinor < LENDER.minMonthlySalesMinor ||
      sum(m.refunded30) > LENDER.maxRefundShare * capturedMinor
    )
      return;
    const open = m.loans.filter((l) => l.status === 'open' || l.status === 'paused');
    if (open.length > 1 || m.loanCount >= LENDER.maxLoansPerMerchant) return;
    const current = open[0];
    if (
      current &&
      current.collectedMinor < LENDER.refillCollectedShare * (current.principalMinor + current.feeMinor)
    ) {
      return;
    }
    if (!r.chance(LENDER.takeUpPerDay)) return;
    const principalMinor = Math.max(10_000, Math.round((capturedMinor * r.uniform(0.2, 1.2)) / 100) * 100);
    const feeMinor = Math.floor(principalMinor * r.uniform(0.08, 0.15));
    const loan: SimLoan = {
      id: `${m.id}-l${++m.loanCount}`,
      principalMinor,
      feeMinor,
      holdbackRateBps: 500 + 50 * r.int(0, 30),
      balanceMinor: principalMinor + feeMinor,
      collectedMinor: 0,
      status: 'open',
    };
    const minimumPaymentMinor = r.chance(0.25)
      ? 0
      : Math.floor((principalMinor + feeMinor) * r.uniform(0.04, 0.08));
    m.loans.push(loan);
    this.emit({
      topic: TOPICS.loanEvents,
      key: m.id,
      time: t,
      value: {
        event_id: `${loan.id}:funded`,
        loan_id: loan.id,
        merchant_id: m.id,
        type: 'FUNDED',
        occurred_at: t,
        principal_minor: principalMinor,
        fee_minor: feeMinor,
        holdback_rate_bps: loan.holdbackRateBps,
        minimum_payment_minor: minimumPaymentMinor,
        period_days: 30,
        currency: m.currency,
      },
    });
    if (r.chance(LENDER.pauseChance)) {
      this.agenda.push(t + Math.floor(r.uniform(10 * DAY_MS, 50 * DAY_MS)), {
        k: 'pause',
        m,
        loan,
        resumeAfterMs: Math.floor(r.uniform(5 * DAY_MS, 20 * DAY_MS)),
      });
    }
  }

  // ---- events -----------------------------------------------------------------------------

  private emit(e: SimEvent): void {
    this.out.push(e);
  }

  private order(
    t: number,
    m: Merchant,
    orderId: string,
    type: OrderEvent['type'],
    amountMinor: number,
  ): void {
    this.emit({
      topic: TOPICS.orders,
      key: m.id,
      time: t,
      value: {
        event_id: `${orderId}:${type.toLowerCase()}`,
        merchant_id: m.id,
        order_id: orderId,
        type,
        amount_minor: amountMinor,
        currency: m.currency,
        occurred_at: t,
      },
    });
  }

  private sale(
    t: number,
    m: Merchant,
    saleId: string,
    orderId: string,
    type: SaleEvent['type'],
    amountMinor: number,
  ): void {
    this.emit({
      topic: TOPICS.sales,
      key: m.id,
      time: t,
      value: {
        event_id: `${saleId}:${type.toLowerCase()}`,
        merchant_id: m.id,
        sale_id: saleId,
        order_id: orderId,
        type,
        amount_minor: amountMinor,
        currency: m.currency,
        occurred_at: t,
      },
    });
  }

  private payoutEvent(
    t: number,
    m: Merchant,
    p: SimPayout,
    type: PayoutEvent['type'],
    withheldMinor: number | null,
    mismatch: boolean,
  ): void {
    this.emit({
      topic: TOPICS.payouts,
      key: m.id,
      time: t,
      value: {
        event_id: `${p.id}:${type.toLowerCase()}`,
        merchant_id: m.id,
        payout_id: p.id,
        type,
        gross_amount_minor: p.grossMinor,
        withheld_minor: withheldMinor,
        currency: m.currency,
        occurred_at: t,
      },
      note: { instructedMinor: p.instructedMinor, late: p.late, mismatch },
    });
  }

  private loanEvent(t: number, m: Merchant, loan: SimLoan, type: Exclude<LoanEvent['type'], 'FUNDED'>): void {
    this.emit({
      topic: TOPICS.loanEvents,
      key: m.id,
      time: t,
      value: {
        event_id: `${loan.id}:${type.toLowerCase()}`,
        loan_id: loan.id,
        merchant_id: m.id,
        type,
        occurred_at: t,
        principal_minor: null,
        fee_minor: null,
        holdback_rate_bps: null,
        minimum_payment_minor: null,
        period_days: null,
        currency: null,
      },
    });
  }
}

function clamp(x: number, min: number, max: number): number {
  return x < min ? min : x > max ? max : x;
}

function sum(xs: Float64Array): number {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += xs[i]!;
  return s;
}

function weightedPick<T>(r: Rng, choices: ReadonlyArray<readonly [T, number]>): T {
  let u = r.next();
  for (const [value, weight] of choices) {
    if (u < weight) return value;
    u -= weight;
  }
  return choices[choices.length - 1]![0];
}
