/**
 * What ops watch (issue 7): withholdings whose payout has not settled, their amount per currency
 * and the oldest one's age, kept by the task as running totals from Processor.unsettled, and the
 * same after a crash restores the state from the changelog.
 */
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

    d.crash(); // the task is rebuilt from its changelog: the totals are recomputed from the states
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
});
