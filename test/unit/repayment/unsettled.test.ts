/**
 * What ops watch (issue 7): withholdings whose payout has not settled, their amount per currency
 * and the oldest one's age, kept by the task as running totals from each open payout's entry
 * (Processor.unsettledEntry), and the same after a crash restores the entries from the changelog.
 */
import { BinaryWriter } from '../../../processors/binary';
import { repaymentStateSerde } from '../../../processors/repayment';
import { day, funded, payout } from './fixtures';
import { newDriver, send } from './table';

const totals = (d: ReturnType<typeof newDriver>) => {
  const u = d.unsettled();
  return { count: u.count, minor: Object.fromEntries(u.minorByCurrency), oldestAt: u.oldestAt };
};

describe('repayment: unsettled withholdings', () => {
  it('counts withholdings until their payout settles or fails, and knows the oldest', () => {
    const d = newDriver();
    send(d, funded('L1', day(0)));
    send(d, funded('L2', day(0), { currency: 'USD' }));
    expect(totals(d)).toEqual({ count: 0, minor: {}, oldestAt: undefined });

    send(d, payout('SCHEDULED', 'P1', 1000, day(1)), day(1)); // 100 EUR withheld
    send(d, payout('SCHEDULED', 'P2', 2000, day(2), { currency: 'USD' }), day(2)); // 200 USD
    send(d, payout('SCHEDULED', 'P3', 3000, day(3)), day(3)); // 300 EUR
    expect(totals(d)).toEqual({ count: 3, minor: { EUR: 400, USD: 200 }, oldestAt: day(1) });

    send(d, payout('SETTLED', 'P1', 1000, day(4), { withheld: 100 }), day(4));
    expect(totals(d)).toEqual({ count: 2, minor: { EUR: 300, USD: 200 }, oldestAt: day(2) });

    send(d, payout('FAILED', 'P2', 2000, day(5), { currency: 'USD' }), day(5)); // reversed
    // A currency once seen stays listed at 0, so its gauge series drops to 0 rather than vanishing.
    expect(totals(d)).toEqual({ count: 1, minor: { EUR: 300, USD: 0 }, oldestAt: day(3) });

    d.crash(); // the task is rebuilt from its changelog: the totals are recomputed from the entries
    expect(totals(d)).toEqual({ count: 1, minor: { EUR: 300 }, oldestAt: day(3) });

    send(d, payout('SETTLED', 'P3', 3000, day(6), { withheld: 250 }), day(6));
    expect(totals(d)).toEqual({ count: 0, minor: { EUR: 0 }, oldestAt: undefined });
  });

  it('does not count a payout that withheld nothing', () => {
    const d = newDriver();
    send(d, funded('L1', day(0)));
    send(d, payout('SCHEDULED', 'P1', 5, day(1)), day(1)); // floor(5 * 10%) = 0
    expect(totals(d)).toEqual({ count: 0, minor: {}, oldestAt: undefined });
  });

  it('keeps the merchant state the same size however many payouts wait for settlement', () => {
    const d = newDriver();
    send(d, funded('L1', day(0), { principal: 1e12, bps: 1 }));
    const sizes: number[] = [];
    for (let i = 1; i <= 200; i++) {
      send(d, payout('SCHEDULED', `P${i}`, 100_000, day(1) + i * 60_000), day(1) + i * 60_000);
      if (i % 50 === 0) sizes.push(repaymentStateSerde.encode(d.state('M1')!).length);
    }
    expect(totals(d).count).toBe(200);
    expect(d.state('M1')!.openPayouts).toBe(200);
    // Only the loan's varint-coded fields and the count may grow by a byte or two.
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(4);
  });

  it('restores a version 3 state, which listed its open payouts, as their count', () => {
    const d = newDriver();
    send(d, funded('L1', day(0)));
    send(d, payout('SCHEDULED', 'P1', 1000, day(1)), day(1));
    send(d, payout('SCHEDULED', 'P2', 2000, day(2)), day(2));
    const state = d.state('M1')!;
    // Version 4 ends with the open payouts' count and the legacy payouts' count (0 and 0 here);
    // version 3 had, in the count's place, each open payout: id, currency, withheld, withholdings,
    // decided at.
    const v4 = repaymentStateSerde.encode({ ...state, openPayouts: 0 });
    const open = new BinaryWriter(64);
    open.uint(2);
    open.string('P1').string('EUR').uint(100).uint(1).uint(day(1));
    open.string('P2').string('EUR').uint(200).uint(1).uint(day(2));
    open.uint(0);
    const v3 = Buffer.concat([Buffer.from([3]), v4.subarray(1, v4.length - 2), open.finish()]);
    expect(repaymentStateSerde.decode(v3)).toEqual(state);
    expect(state.openPayouts).toBe(2);
  });
});
