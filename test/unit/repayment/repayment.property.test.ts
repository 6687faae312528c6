/**
 * Property tests over random histories of several merchants: loans funded (sometimes late),
 * paused, resumed and closed; payouts scheduled, settled and failed; ticks; exact redeliveries
 * (same event_id) and replays (same payout, new event_id); merchants interleaved at random.
 * Each run goes through the runtime's TestDriver and is checked against the reference model, the
 * invariants of reliability.md, the timer contract, a run with a state encode/decode between every
 * step, and a run that commits and crashes at random points.
 */
import fc from 'fast-check';
import type { StepResult } from '../../../processors/api';
import {
  createRepaymentProcessor,
  repaymentStateSerde,
  type PayoutRecord,
  type RepaymentState,
} from '../../../processors/repayment';
import { TestDriver } from '../../../runtime/test-driver';
import type { Deduction, LoanEvent, PayoutEvent } from '../../../schemas/generated/types';
import { TOPICS } from '../../../schemas/topics';
import { DAY, T0, funded, loanEvent, payout } from './fixtures';
import { decisionOf, ReferenceMerchant } from './reference-model';
import { send } from './table';

// Long retention: the reference model remembers everything.
const CONFIG = { dedupHorizonMs: 1e12 };

type Step =
  | { kind: 'event'; key: string; event: LoanEvent | PayoutEvent; now: number }
  | { kind: 'tick'; key: string; now: number };

const amount = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 20_000 }) },
  { weight: 1, arbitrary: fc.integer({ min: 2 ** 40, max: Number.MAX_SAFE_INTEGER }) }, // gross * bps > 2^53
);

const currency = fc.oneof(
  { weight: 4, arbitrary: fc.constant('EUR') },
  { weight: 1, arbitrary: fc.constant('USD') },
);
const loanEventType = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('PAUSED' as const, 'RESUMED' as const) },
  { weight: 1, arbitrary: fc.constantFrom('PAID_OFF_EXTERNALLY' as const, 'WRITTEN_OFF' as const) },
);

const fund = fc.record({
  k: fc.constant('fund' as const),
  loan: fc.nat(1),
  principal: fc.integer({ min: 1, max: 20_000 }),
  fee: fc.integer({ min: 0, max: 500 }),
  bps: fc.oneof(fc.integer({ min: 1, max: 10_000 }), fc.constantFrom(1, 2500, 10_000)),
  minimum: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 1500 })),
  periodDays: fc.integer({ min: 1, max: 3 }),
  currency,
});

const action = fc.oneof(
  { weight: 2, arbitrary: fund },
  {
    weight: 2,
    arbitrary: fc.record({ k: fc.constant('status' as const), loan: fc.nat(1), type: loanEventType }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant('schedule' as const),
      payout: fc.nat(3),
      gross: amount,
      currency,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('settle' as const),
      payout: fc.nat(3),
      withheld: fc.option(fc.integer({ min: 0, max: 3000 })),
    }),
  },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('fail' as const), payout: fc.nat(3) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('tick' as const) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('redeliver' as const), back: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('replay' as const), back: fc.nat() }) },
);

/** One merchant's actions, each after a wall-clock gap and with an occurred_at up to a day late. */
const timed = <T>(a: fc.Arbitrary<T>) =>
  fc.record({
    action: a,
    gapMs: fc.integer({ min: 0, max: DAY }),
    lateMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: DAY })),
  });
/** Mostly starting with a funding, so that payouts find loans. */
const merchantHistory = fc
  .tuple(fc.array(timed(fund), { maxLength: 2 }), fc.array(timed(action), { minLength: 3, maxLength: 40 }))
  .map(([first, rest]) => [...first, ...rest]);

type History = typeof merchantHistory extends fc.Arbitrary<infer T> ? T : never;

/** Turns one merchant's actions into concrete steps: ctx.now runs ahead, occurred_at may lag. */
function toSteps(key: string, history: History): Step[] {
  const steps: Step[] = [];
  const events: Array<LoanEvent | PayoutEvent> = [];
  let now = T0;
  history.forEach(({ action: a, gapMs, lateMs }, n) => {
    now += gapMs;
    const t = now - lateMs;
    const ids = { merchant: key, eventId: `${key}-e${n}` };
    const push = (event: LoanEvent | PayoutEvent): void => {
      events.push(event);
      steps.push({ kind: 'event', key, event, now });
    };
    switch (a.k) {
      case 'fund':
        return push(funded(`L${a.loan}`, t, a, ids));
      case 'status':
        return push(loanEvent(a.type, `L${a.loan}`, t, ids));
      case 'schedule':
        return push(payout('SCHEDULED', `P${a.payout}`, a.gross, t, { ...ids, currency: a.currency }));
      case 'settle':
        return push(payout('SETTLED', `P${a.payout}`, 1000, t, { ...ids, withheld: a.withheld }));
      case 'fail':
        return push(payout('FAILED', `P${a.payout}`, 1000, t, ids));
      case 'tick':
        return void steps.push({ kind: 'tick', key, now });
      case 'redeliver': {
        const e = events[a.back % Math.max(1, events.length)];
        return void (e && steps.push({ kind: 'event', key, event: e, now }));
      }
      case 'replay': {
        const payouts = events.filter((e): e is PayoutEvent => 'payout_id' in e);
        const e = payouts[a.back % Math.max(1, payouts.length)];
        return void (e && push({ ...e, event_id: ids.eventId }));
      }
    }
  });
  return steps;
}

/** Merges per-merchant steps in an order picked by `picks`, keeping each merchant's own order. */
function interleave(perKey: Step[][], picks: number[]): Step[] {
  const queues = perKey.map((s) => [...s]);
  const out: Step[] = [];
  let i = 0;
  while (queues.some((q) => q.length > 0)) {
    const live = queues.filter((q) => q.length > 0);
    out.push(live[(picks[i++ % Math.max(1, picks.length)] ?? 0) % live.length]!.shift()!);
  }
  return out;
}

const scenario = fc.record({
  histories: fc.array(merchantHistory, { minLength: 1, maxLength: 3 }),
  picks: fc.array(fc.nat(), { maxLength: 50 }),
  otherPicks: fc.array(fc.nat(), { maxLength: 50 }),
});

/**
 * Runs the steps one processor call each, at the step's own ctx.now: merchants interleave, so the
 * clock moves back and forth (setClock), and ticks are explicit (a merchant without state is not
 * ticked). Returns what each call returned.
 */
function run(steps: Step[], roundTripState: boolean): StepResult<RepaymentState, PayoutRecord>[] {
  const driver = new TestDriver(createRepaymentProcessor(CONFIG), {
    startAt: T0,
    roundTripState,
    checkPurity: true,
  });
  return steps.map((s) => {
    if (s.kind === 'event') return send(driver, s.event, s.now).result;
    driver.setClock(s.now);
    return driver.tick(s.key)?.result ?? { state: undefined, outputs: [] };
  });
}

const stepsOf = (sc: { histories: History[] }): Step[][] => sc.histories.map((h, i) => toSteps(`M${i}`, h));

const PARAMS = { numRuns: 300 };

describe('repayment: properties over random histories', () => {
  it('agrees with the reference model, step by step, whatever the interleaving of merchants', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const steps = interleave(stepsOf(sc), sc.picks);
        const results = run(steps, false);
        const models = new Map<string, ReferenceMerchant>();
        steps.forEach((s, i) => {
          const model = models.get(s.key) ?? new ReferenceMerchant();
          models.set(s.key, model);
          const want = s.kind === 'tick' ? model.tick(s.now) : model.process(s.event, s.now);
          // A tick for a merchant without state does nothing in the processor; the model agrees.
          expect({ step: i, got: decisionOf(results[i]!) }).toEqual({ step: i, got: want });
        });
      }),
      PARAMS,
    );
  });

  it('gives each merchant the same outputs in any interleaving', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const perKey = stepsOf(sc);
        const byKey = (steps: Step[]): Record<string, unknown[]> => {
          const results = run(steps, false);
          const out: Record<string, unknown[]> = {};
          steps.forEach((s, i) => (out[s.key] ??= []).push(results[i]));
          return out;
        };
        expect(byKey(interleave(perKey, sc.otherPicks))).toEqual(byKey(interleave(perKey, sc.picks)));
      }),
      PARAMS,
    );
  });

  it('keeps the money invariants of reliability.md', () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const results = run(interleave(stepsOf(sc), sc.picks), false);
        const outputs = results.flatMap((r) => r.outputs);
        const withheld = new Map<string, Deduction>();
        const reversed = new Set<string>();
        const perPayout = new Map<string, number>();
        const versions = new Map<string, number>();
        for (const o of outputs) {
          if (o.topic === 'holdback.deductions.v1') {
            const d = o.value;
            const pair = `${d.merchant_id}/${d.payout_id}/${d.loan_id}`;
            expect(Number.isSafeInteger(d.amount_minor) && d.amount_minor > 0).toBe(true);
            expect(d.balance_after_minor).toBeGreaterThanOrEqual(0);
            if (d.type === 'WITHHOLD') {
              expect(withheld.has(pair)).toBe(false); // one withholding per (payout, loan)
              withheld.set(pair, d);
              const cap = (BigInt(d.gross_amount_minor) * BigInt(d.holdback_rate_bps)) / 10_000n;
              expect(BigInt(d.amount_minor) <= cap).toBe(true);
              const payoutKey = `${d.merchant_id}/${d.payout_id}`;
              perPayout.set(payoutKey, (perPayout.get(payoutKey) ?? 0) + d.amount_minor);
              expect(perPayout.get(payoutKey)).toBeLessThanOrEqual(d.gross_amount_minor);
            } else {
              expect(reversed.has(pair)).toBe(false);
              reversed.add(pair);
              expect(d.amount_minor).toBe(withheld.get(pair)?.amount_minor); // exactly what was withheld
            }
          } else if (o.topic === 'holdback.loans.v1') {
            const l = o.value;
            expect(l.collected_minor + l.balance_minor).toBe(l.principal_minor + l.fee_minor);
            expect(l.balance_minor).toBeGreaterThanOrEqual(0);
            expect(l.collected_minor).toBeGreaterThanOrEqual(0);
            if (l.balance_minor === 0)
              expect(l.status === 'PAID_OFF' || l.status === 'WRITTEN_OFF').toBe(true);
            const key = `${l.merchant_id}/${l.loan_id}`;
            expect(l.version).toBe((versions.get(key) ?? 0) + 1); // one version per change
            versions.set(key, l.version);
          }
        }
      }),
      PARAMS,
    );
  });

  it('produces identical outputs when the state is encoded and decoded between every step', () => {
    const processor = createRepaymentProcessor(CONFIG);
    fc.assert(
      fc.property(scenario, (sc) => {
        const steps = interleave(stepsOf(sc), sc.picks);
        const strip = (rs: StepResult<RepaymentState, PayoutRecord>[]): unknown[] =>
          rs.map((r) => ({
            outputs: r.outputs,
            rejection: r.rejection,
            timerAt: r.state && processor.timerAt!(r.state),
          }));
        expect(strip(run(steps, true))).toEqual(strip(run(steps, false)));
      }),
      PARAMS,
    );
  });

  it('sets timerAt to the first instant a tick changes something, and no earlier', () => {
    const processor = createRepaymentProcessor(CONFIG);
    fc.assert(
      fc.property(scenario, (sc) => {
        const steps = interleave(stepsOf(sc), sc.picks);
        for (const r of run(steps, false)) {
          if (!r.state) continue;
          const tickAt = (now: number): StepResult<RepaymentState, PayoutRecord> =>
            processor.tick!(r.state!, 'k', { now });
          const timerAt = processor.timerAt!(r.state);
          if (timerAt === undefined) {
            expect(tickAt(r.state.clock + 1000 * DAY).outputs).toEqual([]);
            continue;
          }
          expect(timerAt).toBeGreaterThan(r.state.clock);
          expect(tickAt(timerAt - 1).outputs).toEqual([]);
          expect(tickAt(timerAt).outputs.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('commits exactly the effects of a crash-free run, however often it commits and crashes', () => {
    let redelivered = 0;
    /**
     * One wall clock that only moves forward, so timers fire by themselves, each at its own time;
     * `after(i)` runs after step i. The clock then runs 10 more days to fire the last timers.
     */
    const drive = (
      driver: TestDriver<RepaymentState, PayoutRecord>,
      steps: Step[],
      after: (i: number) => void,
    ): void => {
      steps.forEach((s, i) => {
        driver.setTime(Math.max(driver.now, s.now));
        if (s.kind === 'event') {
          if ('payout_id' in s.event) driver.pipe(TOPICS.payouts, s.event);
          else driver.pipe(TOPICS.loanEvents, s.event);
        }
        after(i);
      });
      driver.advanceTime(10 * DAY);
    };
    const encoded = (s: RepaymentState | undefined): string | undefined =>
      s && repaymentStateSerde.encode(s).toString('utf8');
    fc.assert(
      fc.property(
        scenario,
        fc.array(fc.nat(9), { minLength: 1, maxLength: 100 }),
        fc.boolean(),
        (sc, points, crashAtEnd) => {
          const steps = interleave(stepsOf(sc), sc.picks);
          const clean = new TestDriver(createRepaymentProcessor(CONFIG), { startAt: T0 });
          drive(clean, steps, () => undefined);
          // After each step: commit (3 in 10), crash (2 in 10: what was not committed is lost, and
          // Kafka redelivers it from the committed offsets), or neither.
          const crashy = new TestDriver(createRepaymentProcessor(CONFIG), { startAt: T0, autoCommit: false });
          drive(crashy, steps, (i) => {
            const p = points[i % points.length]!;
            if (p < 3) crashy.commit();
            else if (p < 5) redelivered += crashy.crash({ redeliver: true }).length;
          });
          if (crashAtEnd) redelivered += crashy.crash({ redeliver: true }).length;
          crashy.commit();
          expect(crashy.outputs()).toEqual(clean.outputs());
          expect(crashy.rejected()).toEqual(clean.rejected());
          sc.histories.forEach((_, i) => {
            const key = `M${i}`;
            expect({ key, state: encoded(crashy.state(key)) }).toEqual({
              key,
              state: encoded(clean.state(key)),
            });
            expect({ key, timer: crashy.timer(key) }).toEqual({ key, timer: clean.timer(key) });
            expect({ key, payouts: crashy.entries(key) }).toEqual({ key, payouts: clean.entries(key) });
          });
        },
      ),
      { numRuns: 200 },
    );
    expect(redelivered).toBeGreaterThan(0);
  });
});
