/**
 * Issue 12's workload: loan, payout, sale and order events of many merchants, each topic in
 * event-time order, produced together in one burst: all topics in time order (live), or in an
 * order that is worst for a consumer that goes by arrival (a backlog where payouts run ahead of
 * the loans they depend on). Some payouts come before their
 * merchant's FUNDED and must not be withheld; the rest must. The expected outputs are those of
 * processing every record alone in time order (docs/contract.md, "Time order") through the same
 * processor, broker-free.
 */
import { createRepaymentProcessor } from '../../processors/repayment';
import { TOPIC_ORDER } from '../../runtime/partition-group';
import { TestDriver } from '../../runtime/test-driver';
import { TOPICS } from '../../schemas/topics';
import type { Produced } from './kafka';
import { Rng } from './random';
import { repaymentWorkload, type WorkloadEvent } from './repayment-workload';
import type { Outputs } from './verify';

export interface Burst {
  /**
   * Payouts running far ahead of the loans they depend on: the order of a backlog's partitions
   * as a consumer that goes by arrival would see them. Only a backlog (everything written before
   * it is processed) has one right answer in this order: a live processor that has caught up
   * with the payouts must go on before the older loans are even written (a late event).
   */
  records: Produced[];
  /** All topics together in event-time order, in the producer's batches: a burst produced live. */
  inTime: Produced[];
  /** The repayment inputs, for the reference run. */
  inputs: WorkloadEvent[];
  expected: Outputs;
}

const occurredAt = (r: Produced): number => (r.value as { occurred_at: number }).occurred_at;

export function burstWorkload(o: {
  seed: number;
  merchants: number;
  idPrefix: string;
  startAt: number;
}): Burst {
  const rng = new Rng(o.seed);
  const inputs = repaymentWorkload({ ...o, payoutsPerMerchant: 8, duplicateRate: 0.05 });
  // A third of the merchants were paid out before their loan was funded: nothing withheld then.
  for (const merchant of [...new Set(inputs.map((e) => e.key))].filter(() => rng.chance(0.33))) {
    const payout_id = `${merchant}-early`;
    const base = { merchant_id: merchant, payout_id, gross_amount_minor: 50_000, currency: 'USD' };
    const at = o.startAt - 600_000;
    inputs.push(
      {
        topic: TOPICS.payouts,
        key: merchant,
        value: {
          ...base,
          event_id: `${payout_id}-s`,
          type: 'SCHEDULED',
          withheld_minor: null,
          occurred_at: at,
        },
      },
      {
        topic: TOPICS.payouts,
        key: merchant,
        value: {
          ...base,
          event_id: `${payout_id}-x`,
          type: 'SETTLED',
          withheld_minor: 0,
          occurred_at: at + 1,
        },
      },
    );
  }
  const noise: Produced[] = [];
  for (const merchant of new Set(inputs.map((e) => e.key))) {
    for (let i = 0; i < 3; i++) {
      const at = o.startAt + rng.int(0, 3_600_000);
      const order_id = `${merchant}-o${i}`;
      noise.push(
        {
          topic: TOPICS.orders,
          key: merchant,
          value: {
            event_id: `${order_id}-p`,
            merchant_id: merchant,
            order_id,
            type: 'PLACED',
            amount_minor: 10_000,
            currency: 'USD',
            occurred_at: at,
          },
        },
        {
          topic: TOPICS.sales,
          key: merchant,
          value: {
            event_id: `${order_id}-c`,
            merchant_id: merchant,
            sale_id: `${order_id}-s`,
            order_id,
            type: 'CAPTURED',
            amount_minor: 10_000,
            currency: 'USD',
            occurred_at: at + 1,
          },
        },
      );
    }
  }
  // Each topic in event-time order (a platform's log), stable for equal times.
  const byTopic = new Map<string, Produced[]>();
  for (const r of [...inputs, ...noise]) {
    const list = byTopic.get(r.topic) ?? [];
    list.push(r);
    byTopic.set(r.topic, list);
  }
  for (const list of byTopic.values()) list.sort((a, b) => occurredAt(a) - occurredAt(b));
  // The burst: payouts run ahead, big chunks of them before small chunks of loans.
  const records: Produced[] = [];
  const cursors = new Map([...byTopic.keys()].map((t) => [t, 0]));
  const chunk = (t: string): number => (t === TOPICS.payouts ? 300 : t === TOPICS.loanEvents ? 15 : 100);
  for (let left = [...byTopic.values()].reduce((n, l) => n + l.length, 0); left > 0;) {
    for (const [topic, list] of byTopic) {
      const at = cursors.get(topic)!;
      const take = list.slice(at, at + rng.int(1, chunk(topic)));
      cursors.set(topic, at + take.length);
      records.push(...take);
      left -= take.length;
    }
  }
  const rank = (t: string): number => TOPIC_ORDER.indexOf(t as (typeof TOPIC_ORDER)[number]);
  const inTime = [...records].sort((a, b) => occurredAt(a) - occurredAt(b) || rank(a.topic) - rank(b.topic));
  return { records, inTime, inputs, expected: inTimeOrder(inputs) };
}

/** Every repayment input alone, in time order (event time, topic order, then as produced). */
export function inTimeOrder(inputs: readonly WorkloadEvent[]): Outputs {
  const driver = new TestDriver(createRepaymentProcessor(), { startAt: Date.now() });
  const rank = (t: string): number => TOPIC_ORDER.indexOf(t as (typeof TOPIC_ORDER)[number]);
  const ordered = inputs
    .map((e, i) => ({ e, i }))
    .sort(
      (a, b) =>
        a.e.value.occurred_at - b.e.value.occurred_at || rank(a.e.topic) - rank(b.e.topic) || a.i - b.i,
    );
  for (const { e } of ordered) driver.pipe(e.topic, e.value as never);
  return {
    deductions: driver.outputs(TOPICS.deductions).map((x) => x.value),
    loanStates: driver.outputs(TOPICS.loanStates).map((x) => x.value),
    decisions: driver.outputs(TOPICS.payoutDecisions).map((x) => x.value),
  };
}
