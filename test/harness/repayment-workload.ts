/**
 * A seeded repayment workload for end-to-end and fault tests: merchants with one or two loans,
 * then payouts that are scheduled, some failed, most settled (a few with a reconciliation
 * mismatch), with duplicated events. Events of one merchant are in causal order; merchants
 * interleave; every loan is funded before any merchant's first payout. Times sit inside the loans' first period, so results do not depend on when the
 * wall clock fires timers.
 */
import type { LoanEvent, PayoutEvent } from '../../schemas/generated/types';
import { TOPICS } from '../../schemas/topics';
import { Rng } from './random';

export type WorkloadEvent =
  | { topic: typeof TOPICS.loanEvents; key: string; value: LoanEvent }
  | { topic: typeof TOPICS.payouts; key: string; value: PayoutEvent };

export interface WorkloadOptions {
  seed: number;
  merchants: number;
  payoutsPerMerchant: number;
  /** Share of events sent twice (same event_id). */
  duplicateRate: number;
  /** Start of event time; loans are funded here. */
  startAt: number;
  /** Prefix of every id, so runs sharing a broker never collide. */
  idPrefix: string;
}

export function repaymentWorkload(o: WorkloadOptions): WorkloadEvent[] {
  const rng = new Rng(o.seed);
  const perMerchant: WorkloadEvent[][] = [];
  for (let m = 0; m < o.merchants; m++) {
    const merchant = `${o.idPrefix}m${m}`;
    const events: WorkloadEvent[] = [];
    let t = o.startAt + rng.int(0, 3_600_000);
    const loans = rng.chance(0.3) ? 2 : 1;
    for (let l = 0; l < loans; l++) {
      const principal = rng.int(50, 500) * 1000;
      events.push({
        topic: TOPICS.loanEvents,
        key: merchant,
        value: {
          event_id: `${merchant}-l${l}-funded`,
          loan_id: `${merchant}-loan${l}`,
          merchant_id: merchant,
          type: 'FUNDED',
          occurred_at: (t += 1000),
          principal_minor: principal,
          fee_minor: Math.floor(principal / 10),
          holdback_rate_bps: rng.pick([500, 1000, 1500, 2000]),
          minimum_payment_minor: 0,
          period_days: 60,
          currency: 'USD',
        },
      });
    }
    // Payouts come an hour after every merchant's loans, in event time as in arrival: the
    // scenarios produce the loans first, and a replay in time order (holdback rebuild) must see
    // the same order (docs/contract.md, "Time order": each partition in event-time order).
    t += 3_600_000;
    for (let p = 0; p < o.payoutsPerMerchant; p++) {
      const payout = `${merchant}-p${p}`;
      const gross = rng.int(1, 20_000) * 100;
      const base = { merchant_id: merchant, payout_id: payout, gross_amount_minor: gross, currency: 'USD' };
      events.push({
        topic: TOPICS.payouts,
        key: merchant,
        value: {
          ...base,
          event_id: `${payout}-s`,
          type: 'SCHEDULED',
          withheld_minor: null,
          occurred_at: (t += 60_000),
        },
      });
      if (rng.chance(0.1)) {
        events.push({
          topic: TOPICS.payouts,
          key: merchant,
          value: {
            ...base,
            event_id: `${payout}-f`,
            type: 'FAILED',
            withheld_minor: null,
            occurred_at: (t += 60_000),
          },
        });
      } else if (rng.chance(0.9)) {
        // What the platform reports it withheld: the verifier compares against a clean run, so
        // any value works; some are null (not reported).
        const reported = rng.chance(0.3) ? null : rng.int(0, Math.floor(gross / 5));
        events.push({
          topic: TOPICS.payouts,
          key: merchant,
          value: {
            ...base,
            event_id: `${payout}-x`,
            type: 'SETTLED',
            withheld_minor: reported,
            occurred_at: (t += 60_000),
          },
        });
      }
    }
    perMerchant.push(events);
  }
  // Interleave merchants at random, keeping each merchant's order; duplicate some events.
  const out: WorkloadEvent[] = [];
  const cursors = perMerchant.map(() => 0);
  let live = perMerchant.filter((e) => e.length > 0).length;
  while (live > 0) {
    const m = rng.int(0, perMerchant.length - 1);
    const list = perMerchant[m]!;
    if (cursors[m]! >= list.length) continue;
    const e = list[cursors[m]!++]!;
    if (cursors[m] === list.length) live--;
    out.push(e);
    if (rng.chance(o.duplicateRate)) out.push(e);
  }
  return out;
}
