/** The state's binary layout, its changelog serde, and the documentation of the codes. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eligibilityStateSerde, STATE_BYTES, StateView } from '../../../processors/eligibility';
import { DEDUP_SLOT_BYTES } from '../../../processors/eligibility/state';
import { ELIGIBILITY_REASON_CODES } from '../../../schemas/reason-codes';
import { dailySales, feed, funded, loanState, newDriver, order, payout, sale } from './fixtures';

test('every state is STATE_BYTES one-byte characters plus 12 per event id remembered, and the serde round-trips it byte for byte', () => {
  const driver = newDriver();
  feed(driver, [
    ...dailySales(0, 40, (d) => 1000 + d),
    sale(39.6, 'REFUNDED', 77),
    sale(39.7, 'CHARGEBACK', 5),
    order(39.7, 'PLACED'),
    payout(39.8, 'FAILED'),
    funded(39.85, 'L1', 12_345, 67),
    loanState(39.9, 'L2', 'BEHIND', 10_000, 100),
  ]);
  const s = driver.state('M1')!;
  // Remembered: the event ids within an hour of the newest event that has one (FUNDED at day
  // 39.85; a LoanState has no event_id), so only the FUNDED's.
  const remembered = 1;
  expect(s.length).toBe(STATE_BYTES + DEDUP_SLOT_BYTES * remembered);
  expect(new StateView().load(s).rememberedIds).toBe(remembered);
  expect([...s].every((c) => c.charCodeAt(0) < 256)).toBe(true);
  const bytes = eligibilityStateSerde.encode(s);
  expect(bytes.length).toBe(s.length);
  expect(eligibilityStateSerde.decode(bytes)).toBe(s);
  // The scratch view reads back what was written.
  const v = new StateView().load(s);
  expect(v.currency).toBe('EUR');
  expect(v.store()).toBe(s);
});

test('the serde refuses a record of another size or layout version', () => {
  const s = new StateView().init(100).store();
  const bytes = eligibilityStateSerde.encode(s);
  expect(() => eligibilityStateSerde.decode(bytes.subarray(0, STATE_BYTES - 1))).toThrow(
    `eligibility state: ${STATE_BYTES - 1} bytes, the layout has ${STATE_BYTES} + ${DEDUP_SLOT_BYTES}n`,
  );
  expect(() => eligibilityStateSerde.decode(Buffer.concat([bytes, Buffer.alloc(5)]))).toThrow(
    `eligibility state: ${STATE_BYTES + 5} bytes`,
  );
  const other = Buffer.from(bytes);
  other[0] = 9;
  expect(() => eligibilityStateSerde.decode(other)).toThrow(
    'eligibility state: unsupported layout version 9',
  );
});

test('counters saturate instead of wrapping, and say so', () => {
  const v = new StateView().init(1000);
  v.addDaily(1000, 2 ** 31 - 10);
  v.addDaily(1000, 100);
  expect(v.daily(1000)).toBe(2 ** 31 - 1);
  v.addBlock('captures', 100, 2 ** 32 - 1);
  v.addBlock('captures', 100, 1);
  expect(v.block('captures', 100)).toBe(2 ** 32 - 1);
  v.addBlock('failures', 100, 300);
  expect(v.block('failures', 100)).toBe(255);
  expect(v.hasFlag(32)).toBe(true);
});

test('moving the clock clears exactly the days and blocks it passes', () => {
  const v = new StateView().init(1000);
  for (let d = 971; d <= 1000; d++) v.addDaily(d, d);
  v.addBlock('orders', 100, 5);
  v.addBlock('orders', 92, 3);
  v.advanceTo(1005);
  for (let d = 976; d <= 1000; d++) expect(v.daily(d)).toBe(d);
  for (let d = 1001; d <= 1005; d++) expect(v.daily(d)).toBe(0);
  expect(v.block('orders', 100)).toBe(5);
  expect(v.block('orders', 92)).toBe(3);
  v.advanceTo(1010); // block 101 begins: block 92 leaves the window (101 - 9)
  expect(v.block('orders', 92)).toBe(0);
  expect(v.block('orders', 101)).toBe(0);
  expect(v.block('orders', 100)).toBe(5);
  v.advanceTo(5000);
  expect(v.windowsEmpty()).toBe(true);
});

test('docs/reason-codes.md documents every eligibility reason code, in order', () => {
  const doc = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'reason-codes.md'), 'utf8');
  const section = doc.split(/^## /m).find((s) => s.startsWith('Eligibility reason codes'));
  expect(section).toBeDefined();
  const documented = [...section!.matchAll(/^\| `([A-Z_]+)`/gm)].map((m) => m[1]);
  expect(documented).toEqual(Object.keys(ELIGIBILITY_REASON_CODES));
});
