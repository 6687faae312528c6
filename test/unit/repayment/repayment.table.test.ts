/**
 * The contract's repayment rules, one table per rule: each row is an input and exactly what it
 * emits (see table.ts for the rendering). Defaults unless a row says otherwise: merchant M1,
 * principal 10000, fee 1000, 10% holdback (1000 bps), no minimum, 30-day periods, EUR, funded at d0;
 * ctx.now = the event's occurred_at.
 */
import { repaymentStateSerde } from '../../../processors/repayment';
import type { PayoutEvent } from '../../../schemas/generated/types';
import { TOPICS } from '../../../schemas/topics';
import { DAY, day, funded, loanEvent, payout, render } from './fixtures';
import { at, keyed, newDriver, runTable, send, tick, wall } from './table';

describe('repayment: withholding', () => {
  it('floors the share and caps the last withholding by the balance', () => {
    const small = { principal: 1000, fee: 100 };
    runTable([
      [funded('L1', day(0), small), ['L1 v1 ACTIVE bal=1100 col=0 p0 0/0 missed=0 ends=d30']],
      [payout('SCHEDULED', 'P0', 9, day(0.5)), []], // floor(9 * 1000 / 10000) = 0: nothing to emit
      [
        payout('SCHEDULED', 'P1', 999, day(1)),
        ['WITHHOLD P1/L1 99 bal=1001', 'L1 v2 ACTIVE bal=1001 col=99 p0 99/0 missed=0 ends=d30'],
      ],
      [
        payout('SCHEDULED', 'P2', 10_005, day(2)),
        ['WITHHOLD P2/L1 1000 bal=1', 'L1 v3 ACTIVE bal=1 col=1099 p0 1099/0 missed=0 ends=d30'],
      ],
      [
        payout('SCHEDULED', 'P3', 5000, day(3)),
        ['WITHHOLD P3/L1 1 bal=0', 'L1 v4 PAID_OFF bal=0 col=1100 p0 1100/0 missed=0 closed=COLLECTED'],
      ],
      [payout('SCHEDULED', 'P4', 5000, day(4)), []],
    ]);
  });

  it('shares one payout between loans, oldest funding first (loan_id breaks ties), the next capped by what is left', () => {
    const t = { bps: 6000 };
    runTable([
      [funded('LZ', day(1), t), ['LZ v1 ACTIVE bal=11000 col=0 p0 0/0 missed=0 ends=d31']],
      [at(day(1), funded('LB', day(0), t)), ['LB v1 ACTIVE bal=11000 col=0 p0 0/0 missed=0 ends=d30']],
      [at(day(1), funded('LA', day(0), t)), ['LA v1 ACTIVE bal=11000 col=0 p0 0/0 missed=0 ends=d30']],
      // LA: min(600, 11000, 1000); LB: min(600, 11000, 1000 - 600); LZ: nothing left
      [
        payout('SCHEDULED', 'P1', 1000, day(2)),
        [
          'WITHHOLD P1/LA 600 bal=10400',
          'WITHHOLD P1/LB 400 bal=10600',
          'LA v2 ACTIVE bal=10400 col=600 p0 600/0 missed=0 ends=d30',
          'LB v2 ACTIVE bal=10600 col=400 p0 400/0 missed=0 ends=d30',
        ],
      ],
    ]);
  });

  it('withholds only for loans in the payout currency', () => {
    runTable([
      [funded('L1', day(0)), ['L1 v1 ACTIVE bal=11000 col=0 p0 0/0 missed=0 ends=d30']],
      [funded('L2', day(0), { currency: 'USD' }), ['L2 v1 ACTIVE bal=11000 col=0 p0 0/0 missed=0 ends=d30']],
      [
        payout('SCHEDULED', 'P1', 1000, day(1), { currency: 'USD' }),
        ['WITHHOLD P1/L2 100 bal=10900', 'L2 v2 ACTIVE bal=10900 col=100 p0 100/0 missed=0 ends=d30'],
      ],
      [payout('SCHEDULED', 'P2', 1000, day(2), { currency: 'GBP' }), []],
    ]);
  });

  it('does not withhold for a loan whose FUNDED arrives after the payout', () => {
    runTable([
      [payout('SCHEDULED', 'P1', 1000, day(0)), []],
      [funded('L1', day(1)), ['L1 v1 ACTIVE bal=11000 col=0 p0 0/0 missed=0 ends=d31']],
      [payout('SCHEDULED', 'P1', 1000, day(1), { eventId: 'replay-of-P1' }), []],
      [
        payout('SCHEDULED', 'P2', 1000, day(2)),
        ['WITHHOLD P2/L1 100 bal=10900', 'L1 v2 ACTIVE bal=10900 col=100 p0 100/0 missed=0 ends=d31'],
      ],
    ]);
  });
});

describe('repayment: idempotency', () => {
  it('treats a redelivered event_id as one event and a payout seen again as already withheld', () => {
    const driver = runTable([
      [funded('L1', day(0)), ['L1 v1 ACTIVE bal=11000 col=0 p0 0/0 missed=0 ends=d30']],
      [funded('L1', day(0)), []], // same event_id
      [funded('L1', day(0), {}, { eventId: 'FUNDED:L1:again' }), ['REJECTED DUPLICATE_LOAN']],
      [
        payout('SCHEDULED', 'P1', 1000, day(1)),
        ['WITHHOLD P1/L1 100 bal=10900', 'L1 v2 ACTIVE bal=10900 col=100 p0 100/0 missed=0 ends=d30'],
      ],
      [payout('SCHEDULED', 'P1', 1000, day(1)), []], // same event_id
      [payout('SCHEDULED', 'P1', 1000, day(2), { eventId: 'SCHEDULED:P1:retry' }), []], // same payout, new event_id
      [payout('SCHEDULED', 'P1', 9000, day(3), { eventId: 'SCHEDULED:P1:bigger' }), []], // first SCHEDULED counts
    ]);
    const before = driver.state('M1');
    const again = send(driver, payout('SCHEDULED', 'P1', 1000, day(1)), day(9));
    expect(again.result.state).toBe(before);
    // Nothing changes; the only output is the answer that the payout was already decided.
    expect(again.result.outputs.map(render)).toEqual(['DECIDED P1 ALREADY_DECIDED withheld=0']);
  });
});

describe('repayment: failed and settled payouts', () => {
  it('reverses exactly what was withheld when a payout fails, re-opening a paid-off loan; its SCHEDULED then withholds nothing', () => {
    const small = { principal: 400, fee: 100 };
    runTable([
      [funded('L1', day(0), small), ['L1 v1 ACTIVE bal=500 col=0 p0 0/0 missed=0 ends=d30']],
      [
        payout('SCHEDULED', 'P1', 10_000, day(1)),
        ['WITHHOLD P1/L1 500 bal=0', 'L1 v2 PAID_OFF bal=0 col=500 p0 500/0 missed=0 closed=COLLECTED'],
      ],
      // Re-opened: status from missed periods; the period clock restarts, its end moved by the 2 days PAID_OFF.
      [
        payout('FAILED', 'P1', 10_000, day(3)),
        [
          'REVERSAL P1/L1 500 bal=500',
          'FAILED P1 instructed=500 reported=- mismatch=0',
          'L1 v3 ACTIVE bal=500 col=0 p0 0/0 missed=0 ends=d32',
        ],
      ],
      [payout('SCHEDULED', 'P1', 10_000, day(4), { eventId: 'SCHEDULED:P1:after-failure' }), []],
      [payout('FAILED', 'P1', 10_000, day(4), { eventId: 'FAILED:P1:again' }), []],
      [
        payout('SCHEDULED', 'P2', 2000, day(5)),
        ['WITHHOLD P2/L1 200 bal=300', 'L1 v4 ACTIVE bal=300 col=200 p0 200/0 missed=0 ends=d32'],
      ],
    ]);
  });

  it('withholds nothing for a SCHEDULED that arrives after its own FAILED', () => {
    runTable([
      [funded('L1', day(0)), ['L1 v1 ACTIVE bal=11000 col=0 p0 0/0 missed=0 ends=d30']],
      [payout('FAILED', 'P9', 1000, day(1)), ['FAILED P9 instructed=0 reported=- mismatch=0']],
      [payout('SCHEDULED', 'P9', 1000, day(2)), []],
    ]);
  });

  it('reports a SETTLED whose withheld_minor differs from what was withheld as a mismatch, and corrects nothing', () => {
    const driver = runTable([
      [funded('L1', day(0)), ['L1 v1 ACTIVE bal=11000 col=0 p0 0/0 missed=0 ends=d30']],
      [
        payout('SCHEDULED', 'P1', 10_000, day(1)),
        ['WITHHOLD P1/L1 1000 bal=10000', 'L1 v2 ACTIVE bal=10000 col=1000 p0 1000/0 missed=0 ends=d30'],
      ],
      [
        payout('SETTLED', 'P1', 10_000, day(2), { withheld: 900 }),
        ['SETTLED P1 instructed=1000 reported=900 mismatch=-100'],
      ],
      [payout('SETTLED', 'P1', 10_000, day(2), { withheld: 1000, eventId: 'SETTLED:P1:again' }), []],
      [
        payout('SCHEDULED', 'P2', 5000, day(3)),
        ['WITHHOLD P2/L1 500 bal=9500', 'L1 v3 ACTIVE bal=9500 col=1500 p0 1500/0 missed=0 ends=d30'],
      ],
      [
        payout('SETTLED', 'P2', 5000, day(4), { withheld: 500 }),
        ['SETTLED P2 instructed=500 reported=500 mismatch=0'],
      ],
      [
        payout('SETTLED', 'P3', 700, day(4), { withheld: 70 }),
        ['SETTLED P3 instructed=0 reported=70 mismatch=70'],
      ],
      [
        payout('SCHEDULED', 'P4', 1000, day(5)),
        ['WITHHOLD P4/L1 100 bal=9400', 'L1 v4 ACTIVE bal=9400 col=1600 p0 1600/0 missed=0 ends=d30'],
      ],
      [
        payout('SETTLED', 'P4', 1000, day(6), { withheld: null }),
        ['SETTLED P4 instructed=100 reported=- mismatch=0'],
      ],
    ]);
    const p1 = driver.steps[2]?.result.outputs[0];
    expect(p1).toEqual({
      topic: 'holdback.settlements.v1',
      key: 'M1',
      value: {
        payout_id: 'P1',
        merchant_id: 'M1',
        currency: 'EUR',
        gross_amount_minor: 10_000,
        instructed_minor: 1000,
        reported_withheld_minor: 900,
        mismatch_minor: -100,
        status: 'SETTLED',
        scheduled_at: day(1),
        first_withheld_decided_at: day(1),
        settled_at: day(2),
        source_event_id: 'SETTLED:P1',
        decided_at: day(2),
      },
    });
  });

  it('reverses a payout that fails after it settled; a SETTLED after FAILED has nothing instructed', () => {
    runTable([
      [funded('L1', day(0)), ['L1 v1 ACTIVE bal=11000 col=0 p0 0/0 missed=0 ends=d30']],
      [
        payout('SCHEDULED', 'P1', 10_000, day(1)),
        ['WITHHOLD P1/L1 1000 bal=10000', 'L1 v2 ACTIVE bal=10000 col=1000 p0 1000/0 missed=0 ends=d30'],
      ],
      [
        payout('SETTLED', 'P1', 10_000, day(2), { withheld: 1000 }),
        ['SETTLED P1 instructed=1000 reported=1000 mismatch=0'],
      ],
      [
        payout('FAILED', 'P1', 10_000, day(3)),
        [
          'REVERSAL P1/L1 1000 bal=11000',
          'FAILED P1 instructed=1000 reported=- mismatch=0',
          'L1 v3 ACTIVE bal=11000 col=0 p0 0/0 missed=0 ends=d30',
        ],
      ],
      [
        payout('SCHEDULED', 'P2', 10_000, day(4)),
        ['WITHHOLD P2/L1 1000 bal=10000', 'L1 v4 ACTIVE bal=10000 col=1000 p0 1000/0 missed=0 ends=d30'],
      ],
      [
        payout('FAILED', 'P2', 10_000, day(5)),
        [
          'REVERSAL P2/L1 1000 bal=11000',
          'FAILED P2 instructed=1000 reported=- mismatch=0',
          'L1 v5 ACTIVE bal=11000 col=0 p0 0/0 missed=0 ends=d30',
        ],
      ],
      [
        payout('SETTLED', 'P2', 10_000, day(6), { withheld: 1000 }),
        ['SETTLED P2 instructed=0 reported=1000 mismatch=1000'],
      ],
    ]);
  });
});

describe('repayment: loan lifecycle', () => {
  it('neither withholds from nor runs the period clock of a PAUSED loan; RESUMED moves the period end by the paused time', () => {
    const t = { minimum: 500, periodDays: 10 };
    runTable([
      [funded('L1', day(0), t), ['L1 v1 ACTIVE bal=11000 col=0 p0 0/500 missed=0 ends=d10']],
      [loanEvent('PAUSED', 'L1', day(4)), ['L1 v2 PAUSED bal=11000 col=0 p0 0/500 missed=0']],
      [payout('SCHEDULED', 'P1', 2000, day(5)), []],
      [tick(day(11)), []], // period 0 would have closed at d10
      // paused d4..d12: the period ends at d18; 4 of its 10 days have run with nothing collected
      [
        loanEvent('RESUMED', 'L1', day(12)),
        ['L1 v3 ACTIVE bal=11000 col=0 p0 0/500 missed=0 AT_RISK ends=d18'],
      ],
      [tick(day(17.9)), []],
      [tick(day(18)), ['L1 v4 BEHIND bal=11000 col=0 p1 0/500 missed=1 ends=d28']],
      [loanEvent('PAUSED', 'L1', day(19)), ['L1 v5 PAUSED bal=11000 col=0 p1 0/500 missed=1']],
      [loanEvent('RESUMED', 'L1', day(20)), ['L1 v6 BEHIND bal=11000 col=0 p1 0/500 missed=1 ends=d29']],
    ]);
  });

  it('keeps WRITTEN_OFF terminal: no withholding, no transitions; a later failure still reverses', () => {
    runTable([
      [funded('L1', day(0)), ['L1 v1 ACTIVE bal=11000 col=0 p0 0/0 missed=0 ends=d30']],
      [
        payout('SCHEDULED', 'P1', 10_000, day(1)),
        ['WITHHOLD P1/L1 1000 bal=10000', 'L1 v2 ACTIVE bal=10000 col=1000 p0 1000/0 missed=0 ends=d30'],
      ],
      [
        loanEvent('WRITTEN_OFF', 'L1', day(2)),
        ['L1 v3 WRITTEN_OFF bal=10000 col=1000 p0 1000/0 missed=0 closed=WRITTEN_OFF'],
      ],
      [payout('SCHEDULED', 'P2', 10_000, day(3)), []],
      [
        payout('FAILED', 'P1', 10_000, day(4)),
        [
          'REVERSAL P1/L1 1000 bal=11000',
          'FAILED P1 instructed=1000 reported=- mismatch=0',
          'L1 v4 WRITTEN_OFF bal=11000 col=0 p0 0/0 missed=0 closed=WRITTEN_OFF',
        ],
      ],
      [loanEvent('PAUSED', 'L1', day(5)), ['REJECTED INVALID_TRANSITION']],
      [loanEvent('PAID_OFF_EXTERNALLY', 'L1', day(5)), ['REJECTED INVALID_TRANSITION']],
    ]);
  });

  it('keeps PAID_OFF_EXTERNALLY terminal, with the uncollected balance; it does not re-open on a failure', () => {
    runTable([
      [funded('L1', day(0)), ['L1 v1 ACTIVE bal=11000 col=0 p0 0/0 missed=0 ends=d30']],
      [
        payout('SCHEDULED', 'P1', 10_000, day(1)),
        ['WITHHOLD P1/L1 1000 bal=10000', 'L1 v2 ACTIVE bal=10000 col=1000 p0 1000/0 missed=0 ends=d30'],
      ],
      [
        loanEvent('PAID_OFF_EXTERNALLY', 'L1', day(2)),
        ['L1 v3 PAID_OFF bal=10000 col=1000 p0 1000/0 missed=0 closed=PAID_OFF_EXTERNALLY'],
      ],
      [
        payout('FAILED', 'P1', 10_000, day(3)),
        [
          'REVERSAL P1/L1 1000 bal=11000',
          'FAILED P1 instructed=1000 reported=- mismatch=0',
          'L1 v4 PAID_OFF bal=11000 col=0 p0 0/0 missed=0 closed=PAID_OFF_EXTERNALLY',
        ],
      ],
      [payout('SCHEDULED', 'P2', 10_000, day(4)), []],
      [loanEvent('WRITTEN_OFF', 'L1', day(5)), ['REJECTED INVALID_TRANSITION']],
    ]);
  });

  it('makes a loan PAID_OFF by collection terminal when the lender reports PAID_OFF_EXTERNALLY', () => {
    runTable([
      [
        funded('L1', day(0), { principal: 400, fee: 100 }),
        ['L1 v1 ACTIVE bal=500 col=0 p0 0/0 missed=0 ends=d30'],
      ],
      [
        payout('SCHEDULED', 'P1', 10_000, day(1)),
        ['WITHHOLD P1/L1 500 bal=0', 'L1 v2 PAID_OFF bal=0 col=500 p0 500/0 missed=0 closed=COLLECTED'],
      ],
      [
        loanEvent('PAID_OFF_EXTERNALLY', 'L1', day(2)),
        ['L1 v3 PAID_OFF bal=0 col=500 p0 500/0 missed=0 closed=PAID_OFF_EXTERNALLY'],
      ],
      [
        payout('FAILED', 'P1', 10_000, day(3)),
        [
          'REVERSAL P1/L1 500 bal=500',
          'FAILED P1 instructed=500 reported=- mismatch=0',
          'L1 v4 PAID_OFF bal=500 col=0 p0 0/0 missed=0 closed=PAID_OFF_EXTERNALLY',
        ],
      ],
    ]);
  });

  it('rejects what it cannot apply, as data, in a fixed order of checks', () => {
    const driver = runTable([
      [loanEvent('PAUSED', 'L9', day(0)), ['REJECTED UNKNOWN_LOAN']],
      [funded('L1', day(0), { bps: 0 }), ['REJECTED INVALID_LOAN_EVENT']],
      // A rejected event is remembered: its redelivery is rejected alike, even with other content.
      [funded('L1', day(0)), ['REJECTED INVALID_LOAN_EVENT']],
      // The lender's correction is a new event.
      [
        funded('L1', day(0), {}, { eventId: 'FUNDED:L1:corrected' }),
        ['L1 v1 ACTIVE bal=11000 col=0 p0 0/0 missed=0 ends=d30'],
      ],
      [keyed('M2', payout('SCHEDULED', 'P1', 1000, day(1))), ['REJECTED MERCHANT_MISMATCH']],
      [keyed('M2', payout('SCHEDULED', 'P2', -5, day(1))), ['REJECTED MERCHANT_MISMATCH']], // the first check wins
      [payout('SCHEDULED', 'P2', -5, day(1)), ['REJECTED INVALID_PAYOUT']],
      [payout('SCHEDULED', 'P3', 1000, day(1), { currency: 'eur' }), ['REJECTED INVALID_PAYOUT']],
      [loanEvent('RESUMED', 'L1', day(2)), ['REJECTED INVALID_TRANSITION']],
      [funded('L1', day(2), {}, { eventId: 'FUNDED:L1:second' }), ['REJECTED DUPLICATE_LOAN']],
      [funded('L3', day(2), { periodDays: 0 }), ['REJECTED INVALID_LOAN_EVENT']],
    ]);
    // Each went to the dead-letter queue with its reason, under the key and offset it came with.
    expect(driver.rejected().map((r) => [r.source.offset, r.source.key?.toString(), r.reasonCode])).toEqual([
      [0, 'M1', 'UNKNOWN_LOAN'],
      [1, 'M1', 'INVALID_LOAN_EVENT'],
      [2, 'M1', 'INVALID_LOAN_EVENT'],
      [0, 'M2', 'MERCHANT_MISMATCH'],
      [1, 'M2', 'MERCHANT_MISMATCH'],
      [2, 'M1', 'INVALID_PAYOUT'],
      [3, 'M1', 'INVALID_PAYOUT'],
      [4, 'M1', 'INVALID_TRANSITION'],
      [5, 'M1', 'DUPLICATE_LOAN'],
      [6, 'M1', 'INVALID_LOAN_EVENT'],
    ]);
  });
});

describe('repayment: minimum-payment periods', () => {
  const t = { minimum: 500, periodDays: 10 };

  it('goes BEHIND after one missed period, DELINQUENT after two, ACTIVE after a met one; required is capped by the balance', () => {
    runTable([
      [funded('L1', day(0), t), ['L1 v1 ACTIVE bal=11000 col=0 p0 0/500 missed=0 ends=d10']],
      [
        payout('SCHEDULED', 'P1', 3000, day(2)),
        ['WITHHOLD P1/L1 300 bal=10700', 'L1 v2 ACTIVE bal=10700 col=300 p0 300/500 missed=0 ends=d10'],
      ],
      [tick(day(10)), ['L1 v3 BEHIND bal=10700 col=300 p1 0/500 missed=1 ends=d20']],
      [tick(day(20)), ['L1 v4 DELINQUENT bal=10700 col=300 p2 0/500 missed=2 ends=d30']],
      [
        payout('SCHEDULED', 'P2', 6000, day(21)),
        [
          'WITHHOLD P2/L1 600 bal=10100',
          'L1 v5 DELINQUENT bal=10100 col=900 p2 600/500 missed=2 ON_PACE ends=d30',
        ],
      ],
      [tick(day(30)), ['L1 v6 ACTIVE bal=10100 col=900 p3 0/500 missed=0 ends=d40']],
      [
        payout('SCHEDULED', 'P3', 100_000, day(31)),
        [
          'WITHHOLD P3/L1 10000 bal=100',
          'L1 v7 ACTIVE bal=100 col=10900 p3 10000/500 missed=0 ON_PACE ends=d40',
        ],
      ],
      [tick(day(40)), ['L1 v8 ACTIVE bal=100 col=10900 p4 0/100 missed=0 ends=d50']],
    ]);
  });

  it('lets a merchant who goes quiet fall behind through timers alone', () => {
    const driver = runTable([
      [funded('L1', day(0), t), ['L1 v1 ACTIVE bal=11000 col=0 p0 0/500 missed=0 ends=d10']],
      [
        wall(day(25)),
        [
          'L1 v2 ACTIVE bal=11000 col=0 p0 0/500 missed=0 AT_RISK ends=d10', // d2.5: a quarter of the period, nothing collected
          'L1 v3 BEHIND bal=11000 col=0 p1 0/500 missed=1 ends=d20', // d10
          'L1 v4 BEHIND bal=11000 col=0 p1 0/500 missed=1 AT_RISK ends=d20', // d12.5
          'L1 v5 DELINQUENT bal=11000 col=0 p2 0/500 missed=2 ends=d30', // d20
          'L1 v6 DELINQUENT bal=11000 col=0 p2 0/500 missed=2 AT_RISK ends=d30', // d22.5
        ],
      ],
    ]);
    expect(driver.steps.slice(1).map((s) => s.now)).toEqual([
      day(2.5),
      day(10),
      day(12.5),
      day(20),
      day(22.5),
    ]);
    expect(driver.timer('M1')).toBe(day(30));
  });

  it('counts a late payout in the open period, and lets no far-future timestamp close periods early', () => {
    const driver = runTable([
      [funded('L1', day(0), t), ['L1 v1 ACTIVE bal=11000 col=0 p0 0/500 missed=0 ends=d10']],
      [tick(day(10)), ['L1 v2 BEHIND bal=11000 col=0 p1 0/500 missed=1 ends=d20']],
      [
        at(day(10), payout('SCHEDULED', 'P1', 1000, day(9))),
        ['WITHHOLD P1/L1 100 bal=10900', 'L1 v3 BEHIND bal=10900 col=100 p1 100/500 missed=1 ends=d20'],
      ],
      // occurred_at d100 but ctx.now d11: the merchant clock moves only to d11 + 1 day of tolerance
      [
        at(day(11), payout('SCHEDULED', 'P2', 1000, day(100))),
        ['WITHHOLD P2/L1 100 bal=10800', 'L1 v4 BEHIND bal=10800 col=200 p1 200/500 missed=1 ends=d20'],
      ],
    ]);
    expect(driver.state('M1')?.clock).toBe(day(12));
  });

  it('restarts the clock of a re-opened loan where it stopped when it was paid off', () => {
    runTable([
      [
        funded('L1', day(0), { principal: 1000, fee: 100, bps: 10_000, ...t }),
        ['L1 v1 ACTIVE bal=1100 col=0 p0 0/500 missed=0 ends=d10'],
      ],
      [
        payout('SCHEDULED', 'P1', 2000, day(2)),
        ['WITHHOLD P1/L1 1100 bal=0', 'L1 v2 PAID_OFF bal=0 col=1100 p0 1100/500 missed=0 closed=COLLECTED'],
      ],
      [tick(day(30)), []],
      [
        payout('FAILED', 'P1', 2000, day(30)),
        [
          'REVERSAL P1/L1 1100 bal=1100',
          'FAILED P1 instructed=1100 reported=- mismatch=0',
          'L1 v3 ACTIVE bal=1100 col=0 p0 0/500 missed=0 ends=d38',
        ],
      ],
    ]);
  });
});

describe('repayment: pace', () => {
  it('flags AT_RISK when the linear projection of the period falls short of its minimum, before the period closes', () => {
    const t = { minimum: 1000, periodDays: 10 };
    const driver = runTable([
      [funded('L1', day(0), t), ['L1 v1 ACTIVE bal=11000 col=0 p0 0/1000 missed=0 ends=d10']],
      // d1: too early to judge (under 25% of the period)
      [
        payout('SCHEDULED', 'P1', 2000, day(1)),
        ['WITHHOLD P1/L1 200 bal=10800', 'L1 v2 ACTIVE bal=10800 col=200 p0 200/1000 missed=0 ends=d10'],
      ],
      // d3: 200 over 3 of 10 days projects to 666 < 1000
      [tick(day(3)), ['L1 v3 ACTIVE bal=10800 col=200 p0 200/1000 missed=0 AT_RISK ends=d10']],
      // d4: 500 over 4 days projects to 1250
      [
        payout('SCHEDULED', 'P2', 3000, day(4)),
        [
          'WITHHOLD P2/L1 300 bal=10500',
          'L1 v4 ACTIVE bal=10500 col=500 p0 500/1000 missed=0 ON_PACE ends=d10',
        ],
      ],
    ]);
    const atRisk = driver.steps[2]?.result.outputs[0]?.value as { projected_period_collected_minor: number };
    expect(atRisk.projected_period_collected_minor).toBe(666);
    // 500 over 5 days projects to exactly 1000: still on pace; one millisecond later it is not.
    expect(driver.timer('M1')).toBe(day(5) + 1);
    runTable(
      [
        [tick(day(5)), []],
        [tick(day(5) + 1), ['L1 v5 ACTIVE bal=10500 col=500 p0 500/1000 missed=0 AT_RISK ends=d10']],
      ],
      driver,
    );
  });
});

describe('repayment: bounded state', () => {
  it('forgets a concluded payout after the horizon and refuses its old events then (BEYOND_DEDUP_HORIZON)', () => {
    const driver = newDriver({ dedupHorizonMs: 5 * DAY });
    runTable(
      [
        [funded('L1', day(0)), ['L1 v1 ACTIVE bal=11000 col=0 p0 0/0 missed=0 ends=d30']],
        [
          payout('SCHEDULED', 'P1', 1000, day(1)),
          ['WITHHOLD P1/L1 100 bal=10900', 'L1 v2 ACTIVE bal=10900 col=100 p0 100/0 missed=0 ends=d30'],
        ],
        [
          payout('SETTLED', 'P1', 1000, day(1), { withheld: 100 }),
          ['SETTLED P1 instructed=100 reported=100 mismatch=0'],
        ],
        // Inside the horizon a retry under a new event_id is the same event.
        [payout('SCHEDULED', 'P1', 1000, day(3), { eventId: 'retry-1' }), []],
        [
          payout('SCHEDULED', 'P2', 1000, day(9)),
          ['WITHHOLD P2/L1 100 bal=10800', 'L1 v3 ACTIVE bal=10800 col=200 p0 200/0 missed=0 ends=d30'],
        ],
        // P1 is forgotten; its events, redelivered 9 days later, are not decided again.
        [payout('SCHEDULED', 'P1', 1000, day(1)), ['REJECTED BEYOND_DEDUP_HORIZON']],
        [payout('FAILED', 'P1', 1000, day(1)), ['REJECTED BEYOND_DEDUP_HORIZON']],
      ],
      driver,
    );
    expect([...driver.entries('M1').keys()]).toEqual(['P2']);
    expect(driver.rejected().at(-1)?.detail).toMatch(/FAILED of payout P1, which occurred 8 days before/);
  });

  it('remembers a payout whose withholding is unsettled until it settles, however long that takes', () => {
    const driver = newDriver({ dedupHorizonMs: 5 * DAY });
    runTable(
      [
        [funded('L1', day(0)), ['L1 v1 ACTIVE bal=11000 col=0 p0 0/0 missed=0 ends=d30']],
        [
          payout('SCHEDULED', 'P1', 1000, day(1)),
          ['WITHHOLD P1/L1 100 bal=10900', 'L1 v2 ACTIVE bal=10900 col=100 p0 100/0 missed=0 ends=d30'],
        ],
        [payout('SCHEDULED', 'P9', 0, day(20)), []],
        [payout('SCHEDULED', 'P1', 1000, day(1)), []],
        [
          payout('FAILED', 'P1', 1000, day(21)),
          [
            'REVERSAL P1/L1 100 bal=11000',
            'FAILED P1 instructed=100 reported=- mismatch=0',
            'L1 v3 ACTIVE bal=11000 col=0 p0 0/0 missed=0 ends=d30',
          ],
        ],
      ],
      driver,
    );
    expect(driver.state('M1')?.openPayouts).toBe(0);
  });

  it('keeps the state of a merchant with a payout a day for three years small', () => {
    const driver = newDriver();
    send(driver, funded('L1', day(0), { principal: 1e12, bps: 1 }));
    // The wall clock runs with the payouts: each 30-day period closes on its timer.
    const payoutAt = (e: PayoutEvent): void => {
      driver.setTime(e.occurred_at);
      driver.pipe(TOPICS.payouts, e);
    };
    for (let d = 1; d <= 3 * 365; d++) {
      payoutAt(payout('SCHEDULED', `P${d}`, 100_000, day(d)));
      payoutAt(payout('SETTLED', `P${d}`, 100_000, day(d + 0.5), { withheld: 10 }));
    }
    expect(driver.steps.filter((s) => s.kind === 'tick').map((s) => s.now)).toEqual(
      Array.from({ length: 36 }, (_, i) => day(30 * (i + 1))),
    );
    const state = driver.state('M1')!;
    // 35 days of payouts are remembered, each as its own entry; the state holds only the loan.
    expect(driver.entries('M1').size).toBeLessThanOrEqual(37);
    expect(state.openPayouts).toBe(0);
    expect(state.loanEvents.size).toBe(1);
    expect(repaymentStateSerde.encode(state).length).toBeLessThan(200);
  });
});
