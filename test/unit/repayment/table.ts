/**
 * Table tests: each row is one input (an event, a tick or a move of the wall clock) and the exact
 * list of what it emits, rendered one line per output (fixtures.render); a rejection renders as
 * `REJECTED <code>`. Rows run through the runtime's TestDriver, with the state encoded and decoded
 * after every step and a check that no step changes the state it was given.
 *
 * Events and ticks happen at the time the row names and fire no timer: a row is exactly one call
 * of the processor. Only a `wall` row fires timers, each at its own time.
 */
import {
  createRepaymentProcessor,
  type PayoutRecord,
  type RepaymentConfig,
  type RepaymentState,
} from '../../../processors/repayment';
import { TestDriver, type DriverStep } from '../../../runtime/test-driver';
import { TOPICS } from '../../../schemas/topics';
import type { LoanEvent, PayoutEvent } from '../../../schemas/generated/types';
import { render, T0 } from './fixtures';

type Input = LoanEvent | PayoutEvent;
export type Driver = TestDriver<RepaymentState, PayoutRecord>;
export type Step = DriverStep<RepaymentState, PayoutRecord>;
export type Action =
  | { kind: 'event'; event: Input; now: number; key?: string }
  | { kind: 'tick'; now: number; key: string }
  | { kind: 'wall'; now: number };
export type Row = [Input | Action, string[]];

/** The event processed at a ctx.now other than its occurred_at. */
export const at = (now: number, event: Input): Action => ({ kind: 'event', event, now });
/** The event under a Kafka key other than its merchant_id. */
export const keyed = (key: string, event: Input): Action => ({
  kind: 'event',
  event,
  now: event.occurred_at,
  key,
});
/**
 * A tick of one key at `now`, whether or not its timer is due (a runtime ticks only due keys, but
 * possibly long after they fell due).
 */
export const tick = (now: number, key = 'M1'): Action => ({ kind: 'tick', now, key });
/** Move the wall clock: every timer due by then fires, at its own time. */
export const wall = (now: number): Action => ({ kind: 'wall', now });

export function newDriver(config: Partial<RepaymentConfig> = {}): Driver {
  return new TestDriver(createRepaymentProcessor(config), {
    startAt: T0,
    roundTripState: true,
    checkPurity: true,
  });
}

/** Processes one event at `now` (default: its occurred_at), firing no timer; returns its step. */
export function send(driver: Driver, event: Input, now = event.occurred_at, key?: string): Step {
  const n = driver.steps.length;
  driver.setClock(now);
  if ('payout_id' in event) driver.pipe(TOPICS.payouts, event, { key });
  else driver.pipe(TOPICS.loanEvents, event, { key });
  expect(driver.steps.length).toBe(n + 1);
  return driver.steps[n]!;
}

/**
 * What a step emits, one line per output. The money tables leave out the PayoutDecision each
 * SCHEDULED also emits (its own table, payout-decision.table.test.ts, shows them with
 * `decisions`), so that their rows read as the rules they check.
 */
function renderStep(s: Step, decisions: boolean): string[] {
  if (s.result.rejection) return [`REJECTED ${s.result.rejection.reasonCode}`];
  const shown = decisions
    ? s.result.outputs
    : s.result.outputs.filter((o) => o.topic !== TOPICS.payoutDecisions);
  return shown.map(render);
}

export function perform(driver: Driver, input: Input | Action, decisions = false): string[] {
  const action: Action = 'kind' in input ? input : { kind: 'event', event: input, now: input.occurred_at };
  switch (action.kind) {
    case 'event':
      return renderStep(send(driver, action.event, action.now, action.key), decisions);
    case 'tick': {
      driver.setClock(action.now);
      const step = driver.tick(action.key);
      return step ? renderStep(step, decisions) : [];
    }
    case 'wall': {
      const n = driver.steps.length;
      driver.setTime(action.now);
      return driver.steps.slice(n).flatMap((step) => renderStep(step, decisions));
    }
  }
}

/** Runs the rows in order on one driver; a failure names the row. */
export function runTable(rows: Row[], driver = newDriver(), { decisions = false } = {}): Driver {
  rows.forEach(([input, want], i) => {
    const got = perform(driver, input, decisions);
    expect({ row: i, outputs: got }).toEqual({ row: i, outputs: want });
  });
  return driver;
}
