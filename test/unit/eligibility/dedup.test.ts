/**
 * Eligibility's de-duplication window (issue 17): the same event_id seen twice is one event. Each
 * merchant remembers the ids of its events within the horizon (60 minutes of event time) of the
 * newest, at most maxEvents of them; an event not remembered at or before the latest time it has
 * forgotten may be a re-send and is dead-lettered (BEYOND_DEDUP_HORIZON), never counted twice.
 */
import {
  computeFeatures,
  createEligibilityProcessor,
  DEFAULT_POLICY,
  eligibilityStateSerde,
  STATE_BYTES,
  StateView,
  type EligibilityState,
} from '../../../processors/eligibility';
import { DEDUP_SLOT_BYTES, hash32 } from '../../../processors/eligibility/state';
import { TestDriver } from '../../../runtime/test-driver';
import { TOPICS } from '../../../schemas/topics';
import { feed, funded, newDriver, sale, T0, type Driver } from './fixtures';

const MIN = 1 / 1440; // a minute, in days

const captures = (driver: Driver, m = 'M1'): number =>
  computeFeatures(new StateView().load(driver.state(m)!)).captures_90d_minor;
const reasons = (driver: Driver): string[] => driver.rejected().map((r) => r.reasonCode);

test('a re-send inside the horizon is the same event: nothing changes, nothing is dead-lettered', () => {
  const driver = newDriver();
  const first = sale(10, 'CAPTURED', 1000, { id: 'c1' });
  feed(driver, [first, sale(10 + 30 * MIN, 'CAPTURED', 500, { id: 'c2' })]);
  const before = driver.state('M1');
  driver.setClock(T0 + 11 * 86_400_000); // re-sent a day later: the horizon is event time
  driver.pipe(first.topic, first.value, { key: 'M1' });
  expect(driver.state('M1')).toBe(before);
  expect(captures(driver)).toBe(1500);
  expect(driver.rejected()).toEqual([]);
});

test('a re-send of an event forgotten is dead-lettered as beyond the horizon, never counted twice', () => {
  const driver = newDriver();
  const first = sale(10, 'CAPTURED', 1000, { id: 'c1' });
  feed(driver, [first, sale(10 + 61 * MIN, 'CAPTURED', 500, { id: 'c2' })]); // c1 is forgotten now
  feed(driver, [first]);
  expect(captures(driver)).toBe(1500);
  expect(reasons(driver)).toEqual(['BEYOND_DEDUP_HORIZON']);
  expect(driver.rejected()[0]!.detail).toMatch(
    /^event c1 occurred 61 minutes before the merchant's newest event/,
  );
});

test('a late event never seen is applied while it is later than everything forgotten, dead-lettered after', () => {
  const driver = newDriver();
  feed(driver, [
    sale(10, 'CAPTURED', 1, { id: 'a' }),
    sale(10 + 120 * MIN, 'CAPTURED', 10, { id: 'b' }), // forgets a (10:00)
    sale(10 + 30 * MIN, 'CAPTURED', 100, { id: 'late' }), // 90 minutes late, after a: applied, then forgotten
    sale(10 + 20 * MIN, 'CAPTURED', 1000, { id: 'later' }), // before 'late', which is forgotten
  ]);
  expect(captures(driver)).toBe(111);
  expect(reasons(driver)).toEqual(['BEYOND_DEDUP_HORIZON']);
});

test('event ids are per topic: a sale and an order with one event_id are two events', () => {
  const driver = newDriver();
  const s = sale(10, 'CAPTURED', 1000, { id: 'x' });
  feed(driver, [s]);
  driver.pipe(
    TOPICS.orders,
    {
      event_id: 'x',
      merchant_id: 'M1',
      order_id: 'o1',
      type: 'PLACED',
      amount_minor: 1000,
      currency: 'EUR',
      occurred_at: s.value.occurred_at,
    },
    { key: 'M1' },
  );
  expect(computeFeatures(new StateView().load(driver.state('M1')!)).orders_90d).toBe(1);
});

test('a busy merchant remembers its last maxEvents ids: the state stays bounded, the horizon shrinks to them', () => {
  const driver = new TestDriver(
    createEligibilityProcessor(DEFAULT_POLICY, { horizonMinutes: 60, maxEvents: 16 }),
    {
      startAt: T0,
      roundTripState: true,
      checkPurity: true,
    },
  );
  const events = Array.from({ length: 40 }, (_, k) => sale(10 + k * MIN, 'CAPTURED', 1, { id: `e${k}` }));
  feed(driver, events);
  expect(driver.state('M1')!.length).toBe(STATE_BYTES + DEDUP_SLOT_BYTES * 16);
  feed(driver, [events[39]!, events[24]!]); // remembered: dropped
  expect(driver.rejected()).toEqual([]);
  feed(driver, [events[23]!]); // the newest forgotten: possibly a re-send
  expect(captures(driver)).toBe(40);
  expect(reasons(driver)).toEqual(['BEYOND_DEDUP_HORIZON']);
});

test('loan events are remembered but never dead-lettered: their effect is set, not counted', () => {
  const driver = newDriver();
  const loan = funded(10, 'L1', 10_000, 1_000);
  feed(driver, [sale(10 - 5 * MIN, 'CAPTURED', 1, { id: 'a' }), loan, sale(12, 'CAPTURED', 1, { id: 'b' })]);
  feed(driver, [loan, funded(10 - 10 * MIN, 'L2', 5_000, 500)]);
  expect(driver.rejected()).toEqual([]);
});

test('the window configuration is checked', () => {
  expect(() => createEligibilityProcessor(DEFAULT_POLICY, { horizonMinutes: 0, maxEvents: 8 })).toThrow(
    'whole minutes >= 1',
  );
  expect(() => createEligibilityProcessor(DEFAULT_POLICY, { horizonMinutes: 60, maxEvents: 0 })).toThrow(
    'holds 1..4096 events',
  );
});

test('a layout 1 state (last 8 ids as 32-bit hashes) is restored: its ids are still recognised, then age out', () => {
  // Build the layout 2 state of one sale, then write it as layout 1 would have: 360 bytes, the
  // sale's 32-bit hash (seed 2: sales) in the first of 8 slots at 328.
  const driver = newDriver();
  const first = sale(10, 'CAPTURED', 1000, { id: 'c1' });
  feed(driver, [first]);
  const v2 = eligibilityStateSerde.encode(driver.state('M1')!);
  const v1 = Buffer.alloc(360);
  v2.copy(v1, 0, 0, 328);
  v1[0] = 1;
  v1.writeUInt32LE(hash32(2, 'c1'), 328);
  const restored = eligibilityStateSerde.decode(v1);
  expect(restored.length).toBe(STATE_BYTES + DEDUP_SLOT_BYTES);

  const p = createEligibilityProcessor(DEFAULT_POLICY);
  const ctx = { now: first.value.occurred_at };
  const input = { topic: first.topic, key: 'M1', value: first.value, timestamp: ctx.now };
  const again = p.process(restored, input, ctx);
  expect(again.state).toBe(restored); // recognised: nothing changes
  const other = p.process(restored, { ...input, value: { ...first.value, event_id: 'c2' } }, ctx);
  const s = other.state as EligibilityState;
  expect(computeFeatures(new StateView().load(s)).captures_90d_minor).toBe(2000);
  // Two days on, the legacy id is forgotten like any other and the state is layout 2 throughout.
  const later = sale(12, 'CAPTURED', 1, { id: 'c3' });
  const after = p.process(
    s,
    { ...input, value: later.value, timestamp: later.value.occurred_at },
    {
      now: later.value.occurred_at,
    },
  ).state as EligibilityState;
  expect(new StateView().load(after).hasFlag(64)).toBe(false);
  expect(after.length).toBe(STATE_BYTES + DEDUP_SLOT_BYTES);
});
