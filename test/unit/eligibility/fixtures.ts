/** Event builders, histories and a driver for the eligibility processor's tests. */
import {
  computeFeatures,
  createEligibilityProcessor,
  DEFAULT_POLICY,
  evaluate,
  StateView,
  type EligibilityPolicy,
  type EligibilityState,
  type Evaluation,
} from '../../../processors/eligibility';
import { TestDriver } from '../../../runtime/test-driver';
import type {
  EligibilityDecision,
  LoanEvent,
  LoanState,
  LoanStatus,
  OrderEvent,
  OrderType,
  PayoutEvent,
  PayoutType,
  SaleEvent,
  SaleType,
} from '../../../schemas/generated/types';
import { TOPICS } from '../../../schemas/topics';

export const DAY = 86_400_000;
export const T0 = Date.UTC(2026, 0, 1);
/** T0 plus d days (fractions allowed). */
export const day = (d: number): number => T0 + Math.round(d * DAY);

export type Input =
  | { topic: typeof TOPICS.sales; value: SaleEvent }
  | { topic: typeof TOPICS.orders; value: OrderEvent }
  | { topic: typeof TOPICS.payouts; value: PayoutEvent }
  | { topic: typeof TOPICS.loanEvents; value: LoanEvent }
  | { topic: typeof TOPICS.loanStates; value: LoanState };

interface Opts {
  merchant?: string;
  currency?: string;
  id?: string;
}

export function sale(
  d: number,
  type: SaleType,
  amount: number,
  o: Opts = {},
): { topic: typeof TOPICS.sales; value: SaleEvent } {
  const m = o.merchant ?? 'M1';
  return {
    topic: TOPICS.sales,
    value: {
      event_id: o.id ?? `s-${m}-${type}-${d}-${amount}`,
      merchant_id: m,
      sale_id: `sale-${d}`,
      order_id: null,
      type,
      amount_minor: amount,
      currency: o.currency ?? 'EUR',
      occurred_at: day(d),
    },
  };
}

export function order(d: number, type: OrderType, o: Opts & { n?: number } = {}): Input {
  const m = o.merchant ?? 'M1';
  return {
    topic: TOPICS.orders,
    value: {
      event_id: o.id ?? `o-${m}-${type}-${d}-${o.n ?? 0}`,
      merchant_id: m,
      order_id: `order-${d}-${o.n ?? 0}`,
      type,
      amount_minor: 1000,
      currency: o.currency ?? 'EUR',
      occurred_at: day(d),
    },
  };
}

export function payout(d: number, type: PayoutType, o: Opts = {}): Input {
  const m = o.merchant ?? 'M1';
  return {
    topic: TOPICS.payouts,
    value: {
      event_id: o.id ?? `p-${m}-${type}-${d}`,
      merchant_id: m,
      payout_id: `payout-${d}`,
      type,
      gross_amount_minor: 100_000,
      withheld_minor: null,
      currency: o.currency ?? 'EUR',
      occurred_at: day(d),
    },
  };
}

export function funded(d: number, loanId: string, principal: number, fee: number, o: Opts = {}): Input {
  const m = o.merchant ?? 'M1';
  return {
    topic: TOPICS.loanEvents,
    value: {
      event_id: o.id ?? `l-${loanId}-FUNDED`,
      loan_id: loanId,
      merchant_id: m,
      type: 'FUNDED',
      occurred_at: day(d),
      principal_minor: principal,
      fee_minor: fee,
      holdback_rate_bps: 1000,
      minimum_payment_minor: 0,
      period_days: 30,
      currency: o.currency ?? 'EUR',
    },
  };
}

export function loanEvent(
  d: number,
  loanId: string,
  type: 'WRITTEN_OFF' | 'PAID_OFF_EXTERNALLY',
  o: Opts = {},
): Input {
  const m = o.merchant ?? 'M1';
  return {
    topic: TOPICS.loanEvents,
    value: {
      event_id: o.id ?? `l-${loanId}-${type}`,
      loan_id: loanId,
      merchant_id: m,
      type,
      occurred_at: day(d),
      principal_minor: null,
      fee_minor: null,
      holdback_rate_bps: null,
      minimum_payment_minor: null,
      period_days: null,
      currency: null,
    },
  };
}

let version = 0;
export function loanState(
  d: number,
  loanId: string,
  status: LoanStatus,
  principal: number,
  collected: number,
  o: Opts & { version?: number } = {},
): Input {
  const m = o.merchant ?? 'M1';
  const fee = 0;
  return {
    topic: TOPICS.loanStates,
    value: {
      loan_id: loanId,
      merchant_id: m,
      status,
      principal_minor: principal,
      fee_minor: fee,
      collected_minor: collected,
      balance_minor: status === 'PAID_OFF' || status === 'WRITTEN_OFF' ? 0 : principal + fee - collected,
      period_index: 0,
      period_required_minor: 0,
      period_collected_minor: 0,
      missed_periods: status === 'BEHIND' ? 1 : status === 'DELINQUENT' ? 2 : 0,
      currency: o.currency ?? 'EUR',
      updated_at: day(d),
      version: o.version ?? ++version,
      holdback_rate_bps: 1000,
      minimum_payment_minor: 0,
      period_days: 30,
      funded_at: day(0),
      period_ends_at: null,
      pace: null,
      projected_period_collected_minor: null,
      closure: null,
    },
  };
}

/** One CAPTURED of `amount` on each day in [from, to). */
/** When an input happened: occurred_at, or updated_at for a LoanState. */
export function timeOf(i: Input): number {
  return i.topic === TOPICS.loanStates ? i.value.updated_at : i.value.occurred_at;
}

export function dailySales(
  from: number,
  to: number,
  amount: number | ((d: number) => number),
  o: Opts = {},
): Input[] {
  const out: Input[] = [];
  for (let d = from; d < to; d++) {
    const a = typeof amount === 'number' ? amount : amount(d);
    if (a > 0) out.push(sale(d + 0.5, 'CAPTURED', a, o));
  }
  return out;
}

/** The default policy with parts replaced. */
export function policyWith(over: {
  [K in keyof EligibilityPolicy]?: K extends 'version' | 'description'
    ? EligibilityPolicy[K]
    : Partial<EligibilityPolicy[K]>;
}): EligibilityPolicy {
  const p = structuredClone(DEFAULT_POLICY) as EligibilityPolicy;
  for (const [k, v] of Object.entries(over)) {
    const key = k as keyof EligibilityPolicy;
    if (typeof v === 'object' && v !== null) Object.assign(p[key] as object, v);
    else (p as unknown as Record<string, unknown>)[key] = v;
  }
  return p;
}

/** Emits every limit change: table tests compare the last decision with the final evaluation. */
export const EVERY_CHANGE = { minLimitChangeBps: 0, minLimitChangeMinor: 0 };

export type Driver = TestDriver<EligibilityState>;

export function newDriver(policy: EligibilityPolicy = DEFAULT_POLICY): Driver {
  return new TestDriver(createEligibilityProcessor(policy), {
    startAt: T0,
    roundTripState: true,
    checkPurity: true,
  });
}

/** Processes the inputs in order, each at ctx.now = its own time; fires no timer. */
export function feed(driver: Driver, inputs: readonly Input[]): void {
  for (const i of inputs) {
    driver.setClock(timeOf(i));
    driver.pipe(i.topic, i.value as never, { key: i.value.merchant_id });
  }
}

export function decisions(driver: Driver, merchant = 'M1'): EligibilityDecision[] {
  return driver
    .outputs(TOPICS.eligibility)
    .map((o) => o.value)
    .filter((d) => d.merchant_id === merchant);
}

export function lastDecision(driver: Driver, merchant = 'M1'): EligibilityDecision | undefined {
  return decisions(driver, merchant).at(-1);
}

/** What the policy decides for the merchant's current state (emitted or not). */
export function evaluation(driver: Driver, policy: EligibilityPolicy, merchant = 'M1'): Evaluation {
  const s = driver.state(merchant);
  if (s === undefined) throw new Error(`no state for ${merchant}`);
  return evaluate(computeFeatures(new StateView().load(s)), policy);
}
