/**
 * What the table does not show: when decisions are emitted (material changes only, refill once),
 * the daily timer, duplicates, other currencies, ids and rejections.
 */
import { createEligibilityProcessor, DEFAULT_POLICY, isoDay, dayOf } from '../../../processors/eligibility';
import { TOPICS } from '../../../schemas/topics';
import {
  DAY,
  T0,
  dailySales,
  day,
  decisions,
  evaluation,
  feed,
  funded,
  lastDecision,
  loanState,
  newDriver,
  policyWith,
  sale,
  timeOf,
} from './fixtures';

test('decisions are emitted only on material changes: small limit moves are absorbed', () => {
  const driver = newDriver();
  // 1,000.00 a day with +-3% noise: the limit moves a little every day.
  feed(
    driver,
    dailySales(0, 200, (d) => 100_000 + ((d * 7919) % 7) * 1000 - 3000),
  );
  const ds = decisions(driver);
  expect(ds.length).toBeGreaterThan(1);
  expect(ds.length).toBeLessThan(12); // 200 events, a handful of decisions
  for (let i = 1; i < ds.length; i++) {
    const a = ds[i - 1]!;
    const b = ds[i]!;
    const limitMoved =
      Math.abs(b.limit_minor - a.limit_minor) >=
      Math.max(50_000, Math.floor((a.limit_minor * 1000) / 10_000));
    const reasonsMoved = !b.eligible && JSON.stringify(a.reasons) !== JSON.stringify(b.reasons);
    expect(a.eligible !== b.eligible || a.grade !== b.grade || limitMoved || reasonsMoved).toBe(true);
  }
});

test('every decision explains itself: policy version, features, reasons, ids and clock', () => {
  const driver = newDriver();
  feed(driver, dailySales(0, 100, 100_000));
  const d = lastDecision(driver)!;
  expect(d.policy_version).toBe('2026-11-default');
  expect(d.reasons.length).toBeGreaterThan(0);
  expect(d.features).toMatchObject({
    net_sales_30d_minor: 3_000_000,
    avg_monthly_net_sales_minor: 3_000_000,
    refund_rate_bps: 0,
    tenure_days: expect.any(Number),
    limit_multiple_bps: 6000,
    gross_limit_minor: 1_800_000,
    exposure_minor: 0,
  });
  for (const v of Object.values(d.features)) expect(Number.isSafeInteger(v)).toBe(true);
  expect(d.decision_id).toBe(`M1:s:${d.trigger_event_id}`);
  // computed_at is ctx.now when the trigger was processed (feed processes each event at its own time).
  expect(d.computed_at).toBe(day(Number(d.trigger_event_id.split('-')[3])));
});

test('a merchant who goes quiet loses eligibility as days roll off, by the daily timer; then the timer stops', () => {
  const driver = newDriver();
  feed(driver, dailySales(0, 100, 100_000));
  expect(lastDecision(driver)!.eligible).toBe(true);
  const lastSale = dayOf(day(99.5));
  expect(driver.timer('M1')).toBe(Date.UTC(2000, 0, 1) + (lastSale + 1) * DAY);
  driver.setTime(day(250));
  const ds = decisions(driver).filter((d) => d.trigger_event_id.startsWith('clock:'));
  const declined = ds.find((d) => !d.eligible)!;
  // Sales of the last 30 days fall first against the 30 before; in the end nothing is left.
  expect(declined.reasons).toEqual(['DECLINING_SALES']);
  expect(ds.at(-1)!.reasons).toEqual(['LOW_VOLUME']);
  expect(declined.trigger_event_id).toMatch(/^clock:\d{4}-\d{2}-\d{2}$/);
  expect(declined.decision_id).toBe(`M1:t:${declined.trigger_event_id.replace(':', '%3A')}`);
  // The limit shrinks day by day before the merchant is declined (material moves only).
  const limits = ds.filter((d) => d.eligible).map((d) => d.limit_minor);
  expect(limits.length).toBeGreaterThan(0);
  expect([...limits].sort((a, b) => b - a)).toEqual(limits);
  // Everything rolled out of the windows: no timer is left.
  expect(driver.timer('M1')).toBeUndefined();
});

test('isoDay is the UTC date of a day number', () => {
  expect(isoDay(0)).toBe('2000-01-01');
  expect(isoDay(dayOf(Date.UTC(2026, 1, 28)))).toBe('2026-02-28');
  expect(isoDay(dayOf(Date.UTC(2028, 1, 29, 23)))).toBe('2028-02-29');
  expect(isoDay(dayOf(Date.UTC(2100, 2, 1)))).toBe('2100-03-01');
});

test('the same event_id again changes nothing', () => {
  const driver = newDriver();
  feed(driver, dailySales(0, 95, 100_000));
  const before = driver.state('M1');
  const n = driver.outputs().length;
  const again = sale(94.5, 'CAPTURED', 100_000);
  feed(driver, [again]);
  expect(driver.state('M1')).toBe(before);
  expect(driver.outputs().length).toBe(n);
  // The same event_id on another topic is another event.
  const steps = driver.steps.length;
  feed(driver, [
    { topic: TOPICS.orders, value: { ...orderLike(again.value.event_id), occurred_at: day(94.6) } },
  ]);
  expect(driver.steps.length).toBe(steps + 1);
  expect(driver.state('M1')).not.toBe(before);
});

function orderLike(eventId: string) {
  return {
    event_id: eventId,
    merchant_id: 'M1',
    order_id: 'o1',
    type: 'PLACED' as const,
    amount_minor: 10,
    currency: 'EUR',
    occurred_at: day(94.6),
  };
}

test('events in another currency are counted and change no feature', () => {
  const driver = newDriver();
  feed(driver, dailySales(0, 95, 100_000));
  const before = evaluation(driver, DEFAULT_POLICY).features;
  feed(driver, [
    sale(94.7, 'CAPTURED', 9_999_999, { currency: 'USD' }),
    sale(94.8, 'REFUNDED', 5, { currency: 'GBP' }),
  ]);
  const after = evaluation(driver, DEFAULT_POLICY).features;
  expect({ ...after, other_currency_events: 0 }).toEqual({ ...before, other_currency_events: 0 });
  expect(after.other_currency_events).toBe(2);
  expect(lastDecision(driver)!.currency).toBe('EUR');
});

test('the refill signal is sent once per loan, when an ACTIVE loan passes the share repaid', () => {
  const driver = newDriver(policyWith({ loans: { refillShareRepaidBps: 7500 } }));
  feed(
    driver,
    [...dailySales(0, 100, 100_000), funded(60, 'L1', 1_000_000, 0)].sort((a, b) => timeOf(a) - timeOf(b)),
  );
  const refills = () => decisions(driver).filter((d) => d.reasons.includes('REFILL_ELIGIBLE'));
  feed(driver, [loanState(99.6, 'L1', 'ACTIVE', 1_000_000, 740_000)]);
  expect(refills()).toHaveLength(0);
  feed(driver, [loanState(99.7, 'L1', 'BEHIND', 1_000_000, 760_000)]); // passed, but not ACTIVE
  expect(refills()).toHaveLength(0);
  feed(driver, [loanState(99.8, 'L1', 'ACTIVE', 1_000_000, 760_000)]);
  expect(refills()).toHaveLength(1);
  expect(refills()[0]!.trigger_event_id).toMatch(/^L1@v\d+$/);
  feed(driver, [loanState(99.9, 'L1', 'ACTIVE', 1_000_000, 900_000)]);
  expect(refills()).toHaveLength(1);
});

test('exposure is the balance of open loans; a paid-off loan frees the limit', () => {
  const driver = newDriver(policyWith({ emission: { minLimitChangeBps: 0, minLimitChangeMinor: 0 } }));
  feed(driver, dailySales(0, 100, 100_000));
  expect(lastDecision(driver)!.limit_minor).toBe(1_800_000);
  feed(driver, [funded(99.6, 'L1', 500_000, 50_000)]);
  expect(lastDecision(driver)!.limit_minor).toBe(1_250_000);
  expect(lastDecision(driver)!.features['exposure_minor']).toBe(550_000);
  feed(driver, [loanState(99.7, 'L1', 'ACTIVE', 550_000, 150_000)]);
  expect(lastDecision(driver)!.limit_minor).toBe(1_400_000);
  feed(driver, [loanState(99.8, 'L1', 'PAID_OFF', 550_000, 550_000)]);
  expect(lastDecision(driver)!.limit_minor).toBe(1_800_000);
  // A late FUNDED of the closed loan does not open it again.
  feed(driver, [funded(99.9, 'L1', 500_000, 50_000, { id: 'late' })]);
  expect(evaluation(driver, DEFAULT_POLICY).features.exposure_minor).toBe(0);
});

test('more open loans than slots: exposure is unknown, so the merchant is at its limit', () => {
  const driver = newDriver();
  feed(driver, dailySales(0, 100, 100_000));
  feed(
    driver,
    [1, 2, 3].map((i) => funded(99.5 + i / 10, `L${i}`, 1000, 0)),
  );
  expect(lastDecision(driver)!.eligible).toBe(true);
  feed(driver, [funded(99.95, 'L4', 1000, 0)]);
  expect(lastDecision(driver)!).toMatchObject({ eligible: false, reasons: ['EXPOSURE_AT_LIMIT'] });
  expect(lastDecision(driver)!.features['loan_overflow']).toBe(1);
});

test('a record whose merchant_id is not its key is rejected and changes nothing', () => {
  const driver = newDriver();
  const s = sale(1, 'CAPTURED', 100);
  driver.setClock(s.value.occurred_at);
  expect(driver.pipe(TOPICS.sales, s.value, { key: 'M2' })).toBe('rejected');
  expect(driver.rejected()[0]!.reasonCode).toBe('MERCHANT_MISMATCH');
  expect(driver.state('M2')).toBeUndefined();
});

test('an event time far ahead of ctx.now moves the merchant clock at most a day past it', () => {
  const p = createEligibilityProcessor(DEFAULT_POLICY);
  const s = sale(500, 'CAPTURED', 100);
  const r = p.process(
    undefined,
    { topic: TOPICS.sales, key: 'M1', value: s.value, timestamp: T0 },
    { now: T0 },
  );
  expect(p.timerAt!(r.state!)).toBe(T0 + 2 * DAY);
});
