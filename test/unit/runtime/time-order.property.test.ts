/**
 * Issue 12: the same history gives the same money however it is fetched. Random histories of
 * loan and payout events for several merchants over two partitions are processed by the real
 * repayment processor through the driver's merge (the runtime's PartitionGroup): fetched in
 * batches of random sizes, from the partitions in random order, with restarts at random points.
 * Every such run must give exactly the outputs and states of processing the records one by one
 * in time order (event time, then the documented topic order, then offset).
 */
import fc from 'fast-check';
import type { OutputRecord } from '../../../processors/api';
import { createRepaymentProcessor } from '../../../processors/repayment';
import { TOPIC_ORDER } from '../../../runtime/partition-group';
import { TestDriver } from '../../../runtime/test-driver';
import type { LoanEvent, PayoutEvent } from '../../../schemas/generated/types';
import { TOPICS } from '../../../schemas/topics';
import { DAY, T0, funded, payout } from '../repayment/fixtures';

type Input =
  | { topic: typeof TOPICS.loanEvents; value: LoanEvent; partition: number }
  | { topic: typeof TOPICS.payouts; value: PayoutEvent; partition: number };

const MERCHANTS = ['M1', 'M2', 'M3', 'M4'];
const partitionOf = (m: string): number => MERCHANTS.indexOf(m) % 2;

/** A history: per merchant, loans funded and payouts scheduled, failed and settled, at random times. */
const history = fc
  .array(
    fc.record({
      merchant: fc.constantFrom(...MERCHANTS),
      kind: fc.constantFrom('fund', 'schedule', 'fail', 'settle'),
      id: fc.nat(3),
      amount: fc.integer({ min: 1, max: 50_000 }),
      // Few distinct times, so ties between topics are common.
      at: fc.integer({ min: 0, max: 40 }),
    }),
    { minLength: 1, maxLength: 60 },
  )
  .map((events) => {
    const inputs: Input[] = events.map((e) => {
      const at = T0 + e.at * 60_000;
      const partition = partitionOf(e.merchant);
      const opts = { merchant: e.merchant };
      if (e.kind === 'fund') {
        return {
          topic: TOPICS.loanEvents,
          partition,
          value: funded(`${e.merchant}-L${e.id}`, at, { principal: e.amount, bps: 2000 }, opts),
        };
      }
      const type = e.kind === 'schedule' ? 'SCHEDULED' : e.kind === 'fail' ? 'FAILED' : 'SETTLED';
      return {
        topic: TOPICS.payouts,
        partition,
        value: payout(type, `${e.merchant}-P${e.id}`, e.amount * 3, at, {
          ...opts,
          eventId: `${type}:${e.merchant}-P${e.id}:${e.at}`,
          withheld: type === 'SETTLED' ? 0 : null,
        }),
      };
    });
    // Producers write each partition in time order, as a platform's event log is.
    return inputs.sort((a, b) => a.value.occurred_at - b.value.occurred_at);
  });

/** A schedule of fetches: which partition next, how many records, and whether to restart first. */
const fetches = fc.array(
  fc.record({
    pick: fc.nat(3),
    size: fc.integer({ min: 1, max: 7 }),
    restart: fc.boolean(),
    run: fc.boolean(),
  }),
  { minLength: 1, maxLength: 80 },
);

// The wall clock a day after the events: inside the de-duplication horizon, past every event.
const START = T0 + DAY;

/** Outputs per merchant, in order: tasks (partitions) run independently, so only that order is defined. */
function render(outputs: readonly OutputRecord[]): Record<string, string[]> {
  const by: Record<string, string[]> = {};
  for (const o of outputs) {
    const m = (o.value as { merchant_id: string }).merchant_id;
    (by[m] ??= []).push(`${o.topic} ${o.key} ${JSON.stringify(o.value)}`);
  }
  return by;
}

/** The reference: every record handed over alone, in time order. */
function inTimeOrder(inputs: readonly Input[]): {
  outputs: Record<string, string[]>;
  states: Map<string, unknown>;
} {
  const d = new TestDriver(createRepaymentProcessor(), { startAt: START });
  const rank = (t: string): number => TOPIC_ORDER.indexOf(t as (typeof TOPIC_ORDER)[number]);
  const ordered = inputs
    .map((input, i) => ({ input, i }))
    .sort(
      (a, b) =>
        a.input.value.occurred_at - b.input.value.occurred_at ||
        rank(a.input.topic) - rank(b.input.topic) ||
        a.i - b.i,
    );
  for (const { input } of ordered) d.pipe(input.topic, input.value as never, { partition: input.partition });
  return {
    outputs: render(d.outputs()),
    states: new Map(
      MERCHANTS.map((m) => [m, { state: d.state(m, partitionOf(m)), payouts: d.entries(m, partitionOf(m)) }]),
    ),
  };
}

test('any interleaving of fetched batches, with restarts, gives the outputs of time order', () => {
  fc.assert(
    fc.property(history, fetches, fc.boolean(), (inputs, schedule, autoCommit) => {
      const expected = inTimeOrder(inputs);
      const d = new TestDriver(createRepaymentProcessor(), { startAt: START, autoCommit });
      for (const input of inputs)
        d.enqueue(input.topic, input.value as never, { partition: input.partition });
      const sources = [0, 1].flatMap((p) => [TOPICS.loanEvents, TOPICS.payouts].map((t) => [t, p] as const));
      for (const f of schedule) {
        if (f.restart) {
          if (autoCommit) d.restart();
          else if (f.run) d.commit();
          else d.restart();
        }
        const [topic, partition] = sources[f.pick % sources.length]!;
        d.fetch(topic, partition, f.size);
        if (f.run) d.run();
      }
      // Then everything left, fetched in full.
      for (let guard = 0; d.unfetched > 0 || guard === 0; guard++) {
        for (const [topic, partition] of sources) d.fetch(topic, partition);
        d.run();
        if (guard > 10) throw new Error('the merge did not finish');
      }
      if (!autoCommit) d.commit();
      expect(render(d.outputs())).toEqual(expected.outputs);
      for (const m of MERCHANTS)
        expect({ state: d.state(m, partitionOf(m)), payouts: d.entries(m, partitionOf(m)) }).toEqual(
          expected.states.get(m),
        );
    }),
    { numRuns: 300 },
  );
});

test('without the merge (-1, whatever each fetch brings) a payout can pass its loan: the test can fail', () => {
  const d = new TestDriver(createRepaymentProcessor(), { startAt: START, maxTaskIdleMs: -1 });
  d.enqueue(TOPICS.loanEvents, funded('L1', T0, { principal: 1000, bps: 1000 }));
  d.enqueue(TOPICS.payouts, payout('SCHEDULED', 'P1', 10_000, T0 + 60_000));
  d.fetch(TOPICS.payouts);
  d.run();
  d.fetch(TOPICS.loanEvents);
  d.run();
  expect(d.outputs(TOPICS.deductions)).toEqual([]);

  const merged = new TestDriver(createRepaymentProcessor(), { startAt: START });
  merged.enqueue(TOPICS.loanEvents, funded('L1', T0, { principal: 1000, bps: 1000 }));
  merged.enqueue(TOPICS.payouts, payout('SCHEDULED', 'P1', 10_000, T0 + 60_000));
  merged.fetch(TOPICS.payouts);
  expect(merged.run()).toBe(0); // the loan partition has unfetched records: wait for them
  merged.fetch(TOPICS.loanEvents);
  merged.run();
  expect(merged.outputs(TOPICS.deductions).map((o) => o.value.amount_minor)).toEqual([1000]);
});
