/**
 * Property tests over random histories of two merchants: sales, orders, payouts, loans funded and
 * closed, loan states, late events and days of silence (the daily timer fires on the way). For
 * every history and policy: decisions are deterministic (two runs, and a run that encodes and
 * decodes the state after every step, agree exactly), an event delivered again (same event_id)
 * changes nothing, and every decision is well-formed.
 */
import fc from 'fast-check';
import {
  DEFAULT_POLICY,
  type EligibilityPolicy,
  type EligibilityState,
} from '../../../processors/eligibility';
import { createEligibilityProcessor } from '../../../processors/eligibility';
import { TestDriver } from '../../../runtime/test-driver';
import type { EligibilityDecision, LoanStatus } from '../../../schemas/generated/types';
import { TOPICS } from '../../../schemas/topics';
import {
  EVERY_CHANGE,
  T0,
  funded,
  loanEvent,
  loanState,
  order,
  payout,
  policyWith,
  sale,
  type Input,
} from './fixtures';

const DAYS = 220;
const merchant = fc.constantFrom('M1', 'M2');
const when = fc.record({
  day: fc.double({ min: 0, max: DAYS, noNaN: true }),
  late: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 45, noNaN: true })),
});

const event = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record({
      k: fc.constant('sale' as const),
      m: merchant,
      w: when,
      type: fc.constantFrom(
        'CAPTURED' as const,
        'CAPTURED' as const,
        'CAPTURED' as const,
        'REFUNDED' as const,
        'CHARGEBACK' as const,
      ),
      amount: fc.integer({ min: 1, max: 400_000 }),
      usd: fc.integer({ min: 0, max: 15 }).map((x) => x === 0),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant('order' as const),
      m: merchant,
      w: when,
      type: fc.constantFrom('PLACED' as const, 'CANCELLED' as const, 'FULFILLED' as const),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('payout' as const),
      m: merchant,
      w: when,
      type: fc.constantFrom('SCHEDULED' as const, 'SETTLED' as const, 'FAILED' as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('funded' as const),
      m: merchant,
      w: when,
      loan: fc.nat(4),
      principal: fc.integer({ min: 1, max: 3_000_000 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant('close' as const),
      m: merchant,
      w: when,
      loan: fc.nat(4),
      type: fc.constantFrom('WRITTEN_OFF' as const, 'PAID_OFF_EXTERNALLY' as const),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('state' as const),
      m: merchant,
      w: when,
      loan: fc.nat(4),
      status: fc.constantFrom<LoanStatus>('ACTIVE', 'ACTIVE', 'BEHIND', 'DELINQUENT', 'PAUSED', 'PAID_OFF'),
      collectedBps: fc.integer({ min: 0, max: 10_000 }),
    }),
  },
);

type Gen = typeof event extends fc.Arbitrary<infer T> ? T : never;

/** A history: inputs in arrival order, each with the wall-clock time it arrives at. */
interface Arrival {
  at: number;
  input: Input;
}

function toHistory(gens: Gen[]): Arrival[] {
  const sorted = gens.map((g, i) => ({ g, i })).sort((a, b) => a.g.w.day - b.g.w.day || a.i - b.i);
  return sorted.map(({ g, i }) => {
    const d = Math.max(0, g.w.day - g.w.late); // event time; arrival at g.w.day
    const o = { merchant: g.m, id: `e${i}` };
    let input: Input;
    switch (g.k) {
      case 'sale':
        input = sale(d, g.type, g.amount, { ...o, currency: g.usd ? 'USD' : 'EUR' });
        break;
      case 'order':
        input = order(d, g.type, { ...o, n: i });
        break;
      case 'payout':
        input = payout(d, g.type, o);
        break;
      case 'funded':
        input = funded(d, `${g.m}-L${g.loan}`, g.principal, 0, o);
        break;
      case 'close':
        input = loanEvent(d, `${g.m}-L${g.loan}`, g.type, o);
        break;
      case 'state': {
        const principal = 1_000_000;
        input = loanState(
          d,
          `${g.m}-L${g.loan}`,
          g.status,
          principal,
          Math.floor((principal * g.collectedBps) / 10_000),
          { merchant: g.m, version: i + 1 },
        );
        break;
      }
    }
    return { at: T0 + Math.round(g.w.day * 86_400_000), input };
  });
}

interface Run {
  decisions: EligibilityDecision[];
  states: Array<EligibilityState | undefined>;
  /** event_ids dead-lettered as BEYOND_DEDUP_HORIZON: late events, at or before an event time forgotten. */
  beyondHorizon: string[];
}

function run(history: readonly Arrival[], policy: EligibilityPolicy, roundTripState: boolean): Run {
  const driver = new TestDriver(createEligibilityProcessor(policy), {
    startAt: T0,
    roundTripState,
    checkPurity: true,
  });
  for (const a of history) {
    if (a.at > driver.now) driver.setTime(a.at);
    driver.pipe(a.input.topic, a.input.value as never, { key: a.input.value.merchant_id });
  }
  driver.setTime(T0 + (DAYS + 120) * 86_400_000);
  // Valid events are never rejected, except a late one the window can no longer vouch for.
  const rejected = driver.rejected();
  expect(rejected.filter((r) => r.reasonCode !== 'BEYOND_DEDUP_HORIZON')).toEqual([]);
  return {
    decisions: driver.outputs(TOPICS.eligibility).map((o) => o.value),
    states: ['M1', 'M2'].map((m) => driver.state(m)),
    beyondHorizon: rejected.map((r) => /^event (\S+) /.exec(r.detail)?.[1] ?? r.detail),
  };
}

const POLICIES = fc.constantFrom(
  DEFAULT_POLICY,
  policyWith({
    emission: EVERY_CHANGE,
    eligibility: { minTenureDays: 20, minAvgMonthlyNetSalesMinor: 100_000 },
  }),
);
const history = fc.array(event, { minLength: 1, maxLength: 120 });

test('decisions are deterministic for a given history and policy, and survive a state encode/decode at every step', () => {
  fc.assert(
    fc.property(history, POLICIES, (gens, policy) => {
      const h = toHistory(gens);
      const a = run(h, policy, false);
      const b = run(h, policy, false);
      const c = run(h, policy, true);
      expect(b).toEqual(a);
      expect(c).toEqual(a);
    }),
    { numRuns: 60 },
  );
});

test('an event delivered again changes nothing: it is remembered, or it is dead-lettered as beyond the horizon', () => {
  fc.assert(
    fc.property(history, POLICIES, fc.nat(), fc.nat(6), (gens, policy, pick, gap) => {
      const h = toHistory(gens);
      const candidates = h.map((a, i) => ({ a, i })).filter(({ a }) => a.input.topic !== TOPICS.loanStates);
      fc.pre(candidates.length > 0);
      const { a: original, i } = candidates[pick % candidates.length]!;
      const at = Math.min(h.length, i + 1 + gap);
      const withDuplicate = [...h.slice(0, at), { at: h[at - 1]!.at, input: original.input }, ...h.slice(at)];
      const once = run(h, policy, true);
      const twice = run(withDuplicate, policy, true);
      expect({ decisions: twice.decisions, states: twice.states }).toEqual({
        decisions: once.decisions,
        states: once.states,
      });
      // The only new dead letter, if any, is the duplicate itself.
      const extra = [...twice.beyondHorizon];
      for (const id of once.beyondHorizon) extra.splice(extra.indexOf(id), 1);
      expect(extra.every((id) => id === (original.input.value as { event_id: string }).event_id)).toBe(true);
    }),
    { numRuns: 80 },
  );
});

test('every decision is well-formed: eligible ones approved with a rounded limit within the policy, declined ones with limit 0 and their reasons', () => {
  fc.assert(
    fc.property(history, POLICIES, (gens, policy) => {
      const { decisions } = run(toHistory(gens), policy, false);
      const ids = new Set<string>();
      for (const d of decisions) {
        expect(ids.has(d.decision_id)).toBe(false);
        ids.add(d.decision_id);
        expect(d.currency).toMatch(/^(EUR|USD)$/);
        expect(d.policy_version).toBe(policy.version);
        for (const v of Object.values(d.features)) expect(Number.isSafeInteger(v)).toBe(true);
        if (d.eligible) {
          expect(d.reasons[0]).toBe('APPROVED');
          expect(d.limit_minor).toBeGreaterThanOrEqual(policy.limits.minOfferMinor);
          expect(d.limit_minor).toBeLessThanOrEqual(policy.limits.maxLimitMinor);
          expect(d.limit_minor % policy.limits.roundingStepMinor).toBe(0);
        } else {
          expect(d.limit_minor).toBe(0);
          expect(d.reasons.length).toBeGreaterThan(0);
          expect(d.reasons).not.toContain('APPROVED');
          expect(d.reasons).not.toContain('REFILL_ELIGIBLE');
        }
      }
    }),
    { numRuns: 60 },
  );
});
