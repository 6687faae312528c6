/**
 * A seeded workload over all ten topics for the ClickHouse sink's tests and benchmark, with
 * what ClickHouse must hold afterwards computed independently in JavaScript: distinct events
 * per input table (inputs repeat some event_ids, as producers retry), rows per output table,
 * and every aggregate. Poison pills (bad magic byte) go to an input topic: the sink skips them.
 */
import { TOPICS, type TopicName, type TopicRecords } from '../../../schemas/topics';
import type {
  Deduction,
  EligibilityDecision,
  LoanState,
  PayoutDecision,
  PayoutSettlement,
} from '../../../schemas/generated/types';
import { Rng } from '../../harness/random';

export interface Produced<T extends TopicName = TopicName> {
  topic: T;
  key: string | null;
  value: TopicRecords[T] | Buffer;
}

export interface Expected {
  /** Distinct accepted records per table (by event_id for inputs; every record for outputs). */
  rows: Record<string, number>;
  /** daily_collections by `${day}|${currency}`: [withholds, reversals, withheld, reversed]. */
  dailyCollections: Map<string, [number, number, number, number]>;
  /** eligibility_daily by `${day}|${grade}|${eligible}|${currency}`: [decisions, limit total]. */
  eligibilityDaily: Map<string, [number, number]>;
  /** settlement lag by `${day}|${currency}|${status}`: [settlements, with schedule, lag sum ms, mismatches]. */
  settlementLag: Map<string, [number, number, number, number]>;
  /** outstanding by `${grade}|${status}|${currency}`: [loans, outstanding]. */
  outstanding: Map<string, [number, number]>;
  /** payout_decisions_hourly by `${hour}|${reason_code}|${currency}`: [decisions, gross, withheld]. */
  payoutDecisionsHourly: Map<string, [number, number, number]>;
}

export interface Workload {
  records: Produced[];
  expected: Expected;
}

const DAY_MS = 86_400_000;
const day = (ms: number): string => new Date(ms).toISOString().slice(0, 10);
/** As ClickHouse prints toStartOfHour of a DateTime('UTC'). */
const hour = (ms: number): string => `${new Date(ms).toISOString().slice(0, 13).replace('T', ' ')}:00:00`;
const STATUSES = ['ACTIVE', 'BEHIND', 'DELINQUENT', 'PAUSED', 'PAID_OFF'] as const;
const GRADES = ['A', 'B', 'C', 'D', 'E'] as const;

function add<K, V extends number[]>(m: Map<K, V>, k: K, v: V): void {
  const cur = m.get(k);
  if (!cur) m.set(k, [...v] as V);
  else v.forEach((x, i) => (cur[i]! += x));
}

export function clickhouseWorkload(o: {
  seed: number;
  merchants: number;
  payoutsPerMerchant: number;
  idPrefix: string;
  now: number;
  duplicateRate?: number;
  poisonRate?: number;
}): Workload {
  const rng = new Rng(o.seed);
  const records: Produced[] = [];
  const push = <T extends TopicName>(topic: T, key: string | null, value: TopicRecords[T] | Buffer): void => {
    records.push({ topic, key, value } as Produced);
  };
  const inputIds: Record<string, Set<string>> = {
    orders: new Set(),
    sales: new Set(),
    payouts: new Set(),
    loan_events: new Set(),
  };
  const counts = {
    deductions: 0,
    loan_states: 0,
    settlements: 0,
    payout_decisions: 0,
    eligibility_decisions: 0,
    dead_letters: 0,
  };
  const expected: Expected = {
    rows: {},
    dailyCollections: new Map(),
    eligibilityDaily: new Map(),
    settlementLag: new Map(),
    outstanding: new Map(),
    payoutDecisionsHourly: new Map(),
  };
  const latestState = new Map<string, LoanState>();
  const latestGrade = new Map<string, string>();
  const input = <
    T extends
      'marketplace.orders.v1' | 'marketplace.sales.v1' | 'marketplace.payouts.v1' | 'lending.loans.v1',
  >(
    topic: T,
    table: string,
    value: TopicRecords[T],
  ): void => {
    const key = (value as { merchant_id: string }).merchant_id;
    push(topic, key, value);
    inputIds[table]!.add((value as { event_id: string }).event_id);
    if (rng.chance(o.duplicateRate ?? 0.1)) push(topic, key, value);
    if (rng.chance(o.poisonRate ?? 0.02)) push(topic, key, Buffer.from([1, 0, 0, 0, 1, 2, 3]));
  };

  for (let m = 0; m < o.merchants; m++) {
    const merchant = `${o.idPrefix}m${m}`;
    const currency = rng.pick(['USD', 'EUR', 'GBP']);
    const loan = `${o.idPrefix}l${m}`;
    const fundedAt = o.now - 10 * DAY_MS - rng.int(0, DAY_MS);
    const principal = rng.int(100_000, 5_000_000);
    const fee = Math.floor(principal / 10);
    input(TOPICS.loanEvents, 'loan_events', {
      event_id: `${merchant}-funded`,
      loan_id: loan,
      merchant_id: merchant,
      type: 'FUNDED',
      occurred_at: fundedAt,
      principal_minor: principal,
      fee_minor: fee,
      holdback_rate_bps: rng.int(100, 2000),
      minimum_payment_minor: 0,
      period_days: 30,
      currency,
    });
    let collected = 0;
    let version = 1;
    const state = (status: LoanState['status'], at: number): void => {
      const s: LoanState = {
        loan_id: loan,
        merchant_id: merchant,
        status,
        principal_minor: principal,
        fee_minor: fee,
        collected_minor: collected,
        balance_minor: principal + fee - collected,
        period_index: 0,
        period_required_minor: 0,
        period_collected_minor: collected,
        missed_periods: status === 'BEHIND' ? 1 : status === 'DELINQUENT' ? 2 : 0,
        currency,
        updated_at: at,
        version: version++,
        holdback_rate_bps: 500,
        minimum_payment_minor: 0,
        period_days: 30,
        funded_at: fundedAt,
        period_ends_at: fundedAt + 30 * DAY_MS,
        pace: null,
        projected_period_collected_minor: null,
        closure: null,
      };
      push(TOPICS.loanStates, loan, s);
      counts.loan_states++;
      latestState.set(loan, s);
    };
    state('ACTIVE', fundedAt + 1);
    const decide = (at: number, trigger: string): void => {
      const grade = rng.pick(GRADES);
      const eligible = grade !== 'E' && rng.chance(0.8);
      const d: EligibilityDecision = {
        decision_id: `${merchant}-dec-${trigger}`,
        merchant_id: merchant,
        eligible,
        grade,
        limit_minor: eligible ? rng.int(10_000, 2_000_000) : 0,
        currency,
        reasons: eligible ? ['APPROVED'] : ['LOW_VOLUME', 'HIGH_REFUND_RATE'],
        features: { net_sales_90d_minor: rng.int(0, 9_000_000), refund_rate_bps: rng.int(0, 900) },
        policy_version: 'eligibility-test',
        computed_at: at,
        trigger_event_id: trigger,
      };
      push(TOPICS.eligibility, merchant, d);
      counts.eligibility_decisions++;
      latestGrade.set(merchant, grade);
      add(expected.eligibilityDaily, `${day(at)}|${grade}|${eligible ? 1 : 0}|${currency}`, [
        1,
        d.limit_minor,
      ]);
    };
    decide(fundedAt - 1000, `${merchant}-funded`);
    // Every time stays before `now`: the codec refuses timestamps too far in the future.
    const step = Math.max(120_000, Math.floor((6 * DAY_MS) / Math.max(1, o.payoutsPerMerchant)));
    for (let p = 0; p < o.payoutsPerMerchant; p++) {
      const at = fundedAt + (p + 1) * rng.int(step / 2, step);
      const orderId = `${merchant}-o${p}`;
      const amount = rng.int(1_000, 500_000);
      input(TOPICS.orders, 'orders', {
        event_id: `${orderId}-placed`,
        merchant_id: merchant,
        order_id: orderId,
        type: 'PLACED',
        amount_minor: amount,
        currency,
        occurred_at: at - 7200_000,
      });
      input(TOPICS.sales, 'sales', {
        event_id: `${orderId}-captured`,
        merchant_id: merchant,
        sale_id: `${orderId}-s`,
        order_id: rng.chance(0.5) ? orderId : null,
        type: rng.pick(['CAPTURED', 'CAPTURED', 'REFUNDED']),
        amount_minor: amount,
        currency,
        occurred_at: at - 3600_000,
      });
      const payout = `${merchant}-p${p}`;
      const gross = rng.int(10_000, 900_000);
      input(TOPICS.payouts, 'payouts', {
        event_id: `${payout}-scheduled`,
        merchant_id: merchant,
        payout_id: payout,
        type: 'SCHEDULED',
        gross_amount_minor: gross,
        withheld_minor: null,
        currency,
        occurred_at: at,
      });
      const withheld = Math.min(Math.floor(gross / 20), principal + fee - collected);
      if (withheld > 0) {
        collected += withheld;
        const d: Deduction = {
          deduction_id: `${payout}-${loan}-W`,
          type: 'WITHHOLD',
          payout_id: payout,
          loan_id: loan,
          merchant_id: merchant,
          amount_minor: withheld,
          gross_amount_minor: gross,
          holdback_rate_bps: 500,
          balance_after_minor: principal + fee - collected,
          currency,
          source_event_id: `${payout}-scheduled`,
          occurred_at: at,
          decided_at: at + 50,
        };
        push(TOPICS.deductions, merchant, d);
        counts.deductions++;
        add(expected.dailyCollections, `${day(at)}|${currency}`, [1, 0, withheld, 0]);
        state(rng.pick(STATUSES), at + 50);
      }
      // One decision per SCHEDULED event, as the repayment processor emits it: what it withheld,
      // or why nothing (here: the loan is repaid). Now and then the platform re-sends the payout
      // under another event_id: its decision withholds nothing, ALREADY_DECIDED.
      const decision = (event: string, code: string, amount: number, ids: string[]): void => {
        const d: PayoutDecision = {
          decision_id: `${event}-decision`,
          payout_id: payout,
          merchant_id: merchant,
          currency,
          gross_amount_minor: gross,
          withheld_minor: amount,
          reason_code: code,
          deduction_ids: ids,
          source_event_id: event,
          occurred_at: at,
          decided_at: at + 50,
        };
        push(TOPICS.payoutDecisions, merchant, d);
        counts.payout_decisions++;
        add(expected.payoutDecisionsHourly, `${hour(at)}|${code}|${currency}`, [1, gross, amount]);
      };
      if (withheld > 0) decision(`${payout}-scheduled`, 'WITHHELD', withheld, [`${payout}-${loan}-W`]);
      else decision(`${payout}-scheduled`, 'NO_LIVE_LOAN', 0, []);
      if (rng.chance(0.05)) {
        input(TOPICS.payouts, 'payouts', {
          event_id: `${payout}-scheduled-again`,
          merchant_id: merchant,
          payout_id: payout,
          type: 'SCHEDULED',
          gross_amount_minor: gross,
          withheld_minor: null,
          currency,
          occurred_at: at,
        });
        decision(`${payout}-scheduled-again`, 'ALREADY_DECIDED', 0, []);
      }
      const failed = withheld > 0 && rng.chance(0.15);
      const settledAt = at + rng.int(60_000, 2 * DAY_MS);
      if (failed) {
        collected -= withheld;
        push(TOPICS.deductions, merchant, {
          deduction_id: `${payout}-${loan}-R`,
          type: 'REVERSAL',
          payout_id: payout,
          loan_id: loan,
          merchant_id: merchant,
          amount_minor: withheld,
          gross_amount_minor: gross,
          holdback_rate_bps: 500,
          balance_after_minor: principal + fee - collected,
          currency,
          source_event_id: `${payout}-failed`,
          occurred_at: settledAt,
          decided_at: settledAt + 50,
        });
        counts.deductions++;
        add(expected.dailyCollections, `${day(settledAt)}|${currency}`, [0, 1, 0, withheld]);
        state('ACTIVE', settledAt + 50);
      }
      input(TOPICS.payouts, 'payouts', {
        event_id: `${payout}-${failed ? 'failed' : 'settled'}`,
        merchant_id: merchant,
        payout_id: payout,
        type: failed ? 'FAILED' : 'SETTLED',
        gross_amount_minor: gross,
        withheld_minor: failed ? null : withheld,
        currency,
        occurred_at: settledAt,
      });
      const known = rng.chance(0.9);
      const mismatch = !failed && rng.chance(0.1) ? Math.max(rng.int(-500, 500), -withheld) || 1 : 0;
      const s: PayoutSettlement = {
        payout_id: payout,
        merchant_id: merchant,
        currency,
        gross_amount_minor: gross,
        instructed_minor: withheld,
        reported_withheld_minor: failed ? null : withheld + mismatch,
        mismatch_minor: mismatch,
        status: failed ? 'FAILED' : 'SETTLED',
        scheduled_at: known ? at : null,
        first_withheld_decided_at: withheld > 0 ? at + 50 : null,
        settled_at: settledAt,
        source_event_id: `${payout}-${failed ? 'failed' : 'settled'}`,
        decided_at: settledAt + 50,
      };
      push(TOPICS.settlements, merchant, s);
      counts.settlements++;
      add(expected.settlementLag, `${day(settledAt)}|${currency}|${s.status}`, [
        1,
        known ? 1 : 0,
        known ? settledAt - at : 0,
        mismatch !== 0 ? 1 : 0,
      ]);
      if (rng.chance(0.3)) decide(at + 100, `${payout}-scheduled`);
    }
    if (rng.chance(0.2)) {
      push(TOPICS.dlq, merchant, {
        source_topic: TOPICS.payouts,
        partition: 0,
        offset: m,
        reason_code: 'NEGATIVE_AMOUNT',
        detail: 'PayoutEvent.gross_amount_minor: -5 is below 0',
        payload_sha256: 'ab'.repeat(32),
        payload: rng.chance(0.5) ? Buffer.from('raw') : null,
        failed_at: fundedAt + 5,
        // Either processor, or none (a letter written before contract v1.2).
        processor: (['repayment', 'eligibility', null] as const)[m % 3]!,
      });
      counts.dead_letters++;
    }
  }
  for (const s of latestState.values()) {
    const grade = latestGrade.get(s.merchant_id) ?? '';
    add(expected.outstanding, `${grade}|${s.status}|${s.currency}`, [1, s.balance_minor]);
  }
  expected.rows = {
    orders: inputIds['orders']!.size,
    sales: inputIds['sales']!.size,
    payouts: inputIds['payouts']!.size,
    loan_events: inputIds['loan_events']!.size,
    ...counts,
  };
  return { records, expected };
}
