/**
 * A decision for every payout (issue 17): each SCHEDULED event yields one PayoutDecision saying
 * what was withheld, or why nothing was (docs/reason-codes.md, "Payout decision codes"): rows run
 * through the TestDriver like the money tables, with the decisions shown.
 */
import { PAYOUT_DECISION_CODES } from '../../../schemas/reason-codes';
import { TOPICS } from '../../../schemas/topics';
import type { PayoutDecision } from '../../../schemas/generated/types';
import { day, funded, loanEvent, payout } from './fixtures';
import { newDriver, runTable, send, type Row } from './table';

const table = (rows: Row[]) => runTable(rows, newDriver(), { decisions: true });

describe('repayment: one PayoutDecision per SCHEDULED event', () => {
  it('says WITHHELD with the deductions it made, oldest loan first', () => {
    table([
      [
        funded('L1', day(0), { principal: 1_000, fee: 0 }),
        ['L1 v1 ACTIVE bal=1000 col=0 p0 0/0 missed=0 ends=d30'],
      ],
      [funded('L2', day(1), { bps: 500 }), ['L2 v1 ACTIVE bal=11000 col=0 p0 0/0 missed=0 ends=d31']],
      [
        payout('SCHEDULED', 'P1', 2_000, day(2)),
        [
          'WITHHOLD P1/L1 200 bal=800',
          'WITHHOLD P1/L2 100 bal=10900',
          'DECIDED P1 WITHHELD withheld=300 [P1:L1:WITHHOLD P1:L2:WITHHOLD]',
          'L1 v2 ACTIVE bal=800 col=200 p0 200/0 missed=0 ends=d30',
          'L2 v2 ACTIVE bal=10900 col=100 p0 100/0 missed=0 ends=d31',
        ],
      ],
    ]);
  });

  it('says why nothing was withheld: no live loan, other currency, paused, a share of 0', () => {
    table([
      [payout('SCHEDULED', 'P0', 1_000, day(0)), ['DECIDED P0 NO_LIVE_LOAN withheld=0']],
      [funded('L1', day(1)), ['L1 v1 ACTIVE bal=11000 col=0 p0 0/0 missed=0 ends=d31']],
      [
        payout('SCHEDULED', 'P1', 1_000, day(2), { currency: 'USD' }),
        ['DECIDED P1 OTHER_CURRENCY withheld=0'],
      ],
      [payout('SCHEDULED', 'P2', 9, day(2)), ['DECIDED P2 SHARE_ROUNDS_TO_ZERO withheld=0']],
      [payout('SCHEDULED', 'P3', 0, day(2)), ['DECIDED P3 SHARE_ROUNDS_TO_ZERO withheld=0']],
      [loanEvent('PAUSED', 'L1', day(3)), ['L1 v2 PAUSED bal=11000 col=0 p0 0/0 missed=0']],
      [payout('SCHEDULED', 'P4', 1_000, day(4)), ['DECIDED P4 LOANS_PAUSED withheld=0']],
      [
        loanEvent('WRITTEN_OFF', 'L1', day(5)),
        ['L1 v3 WRITTEN_OFF bal=11000 col=0 p0 0/0 missed=0 closed=WRITTEN_OFF'],
      ],
      [payout('SCHEDULED', 'P5', 1_000, day(6)), ['DECIDED P5 NO_LIVE_LOAN withheld=0']],
    ]);
  });

  it('answers a payout seen before: already decided, failed earlier, settled earlier', () => {
    table([
      [funded('L1', day(0)), ['L1 v1 ACTIVE bal=11000 col=0 p0 0/0 missed=0 ends=d30']],
      [
        payout('SCHEDULED', 'P1', 1_000, day(1)),
        [
          'WITHHOLD P1/L1 100 bal=10900',
          'DECIDED P1 WITHHELD withheld=100 [P1:L1:WITHHOLD]',
          'L1 v2 ACTIVE bal=10900 col=100 p0 100/0 missed=0 ends=d30',
        ],
      ],
      [payout('SCHEDULED', 'P1', 1_000, day(1)), ['DECIDED P1 ALREADY_DECIDED withheld=0']], // same event
      [
        payout('SCHEDULED', 'P1', 5_000, day(2), { eventId: 'SCHEDULED:P1:retry' }),
        ['DECIDED P1 ALREADY_DECIDED withheld=0'],
      ],
      [payout('FAILED', 'P2', 1_000, day(3)), ['FAILED P2 instructed=0 reported=- mismatch=0']],
      [payout('SCHEDULED', 'P2', 1_000, day(3)), ['DECIDED P2 FAILED_EARLIER withheld=0']],
      [payout('SETTLED', 'P3', 1_000, day(4)), ['SETTLED P3 instructed=0 reported=- mismatch=0']],
      [payout('SCHEDULED', 'P3', 1_000, day(4)), ['DECIDED P3 SETTLED_EARLIER withheld=0']],
    ]);
  });

  it('gives a re-sent event the same decision_id, never the id of the decision it repeats', () => {
    const driver = newDriver();
    send(driver, funded('L1', day(0)));
    const ids = [1, 2, 3].map((n) => {
      const step = send(driver, payout('SCHEDULED', 'P1', 1_000, day(1)), day(n));
      const d = step.result.outputs.find((o) => o.topic === TOPICS.payoutDecisions)!.value as PayoutDecision;
      return d.decision_id;
    });
    expect(ids).toEqual(['P1:SCHEDULED%3AP1', 'P1:SCHEDULED%3AP1:again', 'P1:SCHEDULED%3AP1:again']);
  });

  it('dead-letters a malformed SCHEDULED, also of a payout already decided: a decision or a dead letter, never neither', () => {
    table([
      [funded('L1', day(0)), ['L1 v1 ACTIVE bal=11000 col=0 p0 0/0 missed=0 ends=d30']],
      [
        payout('SCHEDULED', 'P1', 1_000, day(1)),
        [
          'WITHHOLD P1/L1 100 bal=10900',
          'DECIDED P1 WITHHELD withheld=100 [P1:L1:WITHHOLD]',
          'L1 v2 ACTIVE bal=10900 col=100 p0 100/0 missed=0 ends=d30',
        ],
      ],
      [
        payout('SCHEDULED', 'P1', 1_000, day(2), { currency: 'eur', eventId: 'x' }),
        ['REJECTED INVALID_PAYOUT'],
      ],
    ]);
  });

  it('uses only documented codes', () => {
    // Every code is shown above; the list is the contract's (schemas/reason-codes.ts).
    expect(Object.keys(PAYOUT_DECISION_CODES)).toEqual([
      'WITHHELD',
      'ALREADY_DECIDED',
      'FAILED_EARLIER',
      'SETTLED_EARLIER',
      'NO_LIVE_LOAN',
      'OTHER_CURRENCY',
      'LOANS_PAUSED',
      'SHARE_ROUNDS_TO_ZERO',
    ]);
  });
});
