/**
 * The simulated platform withholds what Holdback would: the simulator's loans and payouts run
 * through the real repayment processor (in the runtime's broker-free TestDriver, in the order they
 * would be produced), and every settlement it emits agrees with the simulator: instructed_minor is
 * what the platform withheld, and mismatch_minor is non-zero exactly for the injected mismatches.
 */
import { createRepaymentProcessor } from '../../../processors/repayment';
import { TestDriver } from '../../../runtime/test-driver';
import { TOPICS } from '../../../schemas/topics';
import { eventsFor, CLEAN, START } from './helpers';

test('settlements agree with the platform: mismatches are exactly the injected ones', () => {
  const events = eventsFor(
    { ...CLEAN, merchants: 200, failRate: 0.08, mismatchRate: 0.05, lateSettlementRate: 0.1 },
    200,
  );
  const driver = new TestDriver(createRepaymentProcessor(), { startAt: START });
  const notes = new Map<string, { instructed: number; mismatch: boolean }>();
  let withheldPayouts = 0;
  for (const e of events) {
    if (e.topic === TOPICS.payouts) {
      driver.setClock(e.time);
      driver.pipe(TOPICS.payouts, e.value);
      if (e.value.type === 'SETTLED')
        notes.set(e.value.payout_id, { instructed: e.note.instructedMinor, mismatch: e.note.mismatch });
      if (e.value.type === 'SCHEDULED' && e.note.instructedMinor > 0) withheldPayouts++;
    } else if (e.topic === TOPICS.loanEvents) {
      driver.setClock(e.time);
      driver.pipe(TOPICS.loanEvents, e.value);
    }
  }
  const rejected = driver.steps.filter((s) => s.result.rejection).map((s) => s.result.rejection!.reasonCode);
  expect(rejected).toEqual([]);

  const settlements = driver.outputs(TOPICS.settlements).map((o) => o.value);
  const settled = settlements.filter((s) => s.status === 'SETTLED');
  expect(settled.length).toBe(notes.size);
  const disagreements = settled.filter((s) => {
    const n = notes.get(s.payout_id)!;
    return s.instructed_minor !== n.instructed || (s.mismatch_minor !== 0) !== n.mismatch;
  });
  expect(disagreements).toEqual([]);
  // The comparison is not vacuous: loans were repaid from many payouts, and some mismatched.
  expect(withheldPayouts).toBeGreaterThan(500);
  expect(settled.filter((s) => s.mismatch_minor !== 0).length).toBeGreaterThan(50);
  expect(driver.outputs(TOPICS.deductions).filter((d) => d.value.type === 'REVERSAL').length).toBeGreaterThan(
    10,
  );
  const states = driver.outputs(TOPICS.loanStates).map((o) => o.value);
  for (const status of ['PAUSED', 'PAID_OFF', 'BEHIND', 'WRITTEN_OFF'])
    expect(states.map((s) => s.status)).toContain(status);
  // Payouts that repaid two loans (oldest first), and paid-off loans re-opened by a failed payout.
  const loansPerPayout = new Map<string, Set<string>>();
  for (const d of driver.outputs(TOPICS.deductions)) {
    if (d.value.type === 'WITHHOLD')
      loansPerPayout.set(
        d.value.payout_id,
        (loansPerPayout.get(d.value.payout_id) ?? new Set()).add(d.value.loan_id),
      );
  }
  expect([...loansPerPayout.values()].filter((l) => l.size > 1).length).toBeGreaterThan(5);
  const paidOff = new Set<string>();
  let reopened = 0;
  for (const s of states) {
    if (s.status === 'PAID_OFF') paidOff.add(s.loan_id);
    else if (paidOff.delete(s.loan_id)) reopened++;
  }
  expect(reopened).toBeGreaterThan(0);
});
