/**
 * Issue 13: one decision per event forever, and no valid record can stop a partition. Each table
 * is a sequence an independent check found wrong, through the broker-free driver.
 */
import { deductionId } from '../../../processors/repayment';
import { MAX_AMOUNT_MINOR, MAX_ID_LENGTH, validateRecord } from '../../../schemas/validate';
import { day, DAY, funded, loanEvent, payout } from './fixtures';
import { at, newDriver, runTable, send, tick } from './table';

describe('repayment: a loan event_id is one event, applied or rejected', () => {
  it('rejects a redelivered rejected RESUMED again: the lender’s newer PAUSED stands', () => {
    const driver = runTable([
      [
        funded('L1', day(0), { minimum: 500, periodDays: 10 }),
        ['L1 v1 ACTIVE bal=11000 col=0 p0 0/500 missed=0 ends=d10'],
      ],
      [loanEvent('RESUMED', 'L1', day(1), { eventId: 'e21' }), ['REJECTED INVALID_TRANSITION']],
      [
        loanEvent('PAUSED', 'L1', day(2), { eventId: 'e24' }),
        ['L1 v2 PAUSED bal=11000 col=0 p0 0/500 missed=0'],
      ],
      [loanEvent('RESUMED', 'L1', day(1), { eventId: 'e21' }), ['REJECTED INVALID_TRANSITION']],
      // The period clock stays stopped: 60 days later the loan is still PAUSED, no period missed.
      [tick(day(60)), []],
    ]);
    const [first, again] = driver.rejected().map((r) => r.detail);
    expect(again).toBe(first);
    expect(driver.state('M1')?.loans.get('L1')?.status).toBe('PAUSED');
  });
});

describe('repayment: a payout is decided once, also after the horizon', () => {
  it('does not withhold a SCHEDULED redelivered 57 days after its FAILED: BEYOND_DEDUP_HORIZON', () => {
    const driver = runTable([
      [funded('L1', day(0)), ['L1 v1 ACTIVE bal=11000 col=0 p0 0/0 missed=0 ends=d30']],
      [
        payout('SCHEDULED', 'p4', 1000, day(1)),
        ['WITHHOLD p4/L1 100 bal=10900', 'L1 v2 ACTIVE bal=10900 col=100 p0 100/0 missed=0 ends=d30'],
      ],
      [
        payout('FAILED', 'p4', 1000, day(2)),
        [
          'REVERSAL p4/L1 100 bal=11000',
          'FAILED p4 instructed=0 reported=- mismatch=0',
          'L1 v3 ACTIVE bal=11000 col=0 p0 0/0 missed=0 ends=d30',
        ].map((l) => l.replace('instructed=0', 'instructed=100')),
      ],
      // Redelivered 57 days later (a replay from old offsets): not decided again.
      [at(day(59), payout('SCHEDULED', 'p4', 1000, day(1))), ['REJECTED BEYOND_DEDUP_HORIZON']],
      [at(day(59), payout('FAILED', 'p4', 1000, day(2))), ['REJECTED BEYOND_DEDUP_HORIZON']],
    ]);
    expect(driver.rejected().map((r) => r.detail)).toEqual([
      expect.stringContaining('SCHEDULED of payout p4, which occurred 58 days before the merchant clock'),
      expect.stringContaining('FAILED of payout p4, which occurred 57 days before the merchant clock'),
    ]);
  });

  it('withholds each payout once whatever is redelivered: no deduction_id twice', () => {
    const driver = newDriver({ dedupHorizonMs: 3 * DAY });
    for (let d = 1; d <= 20; d++) {
      const p = payout('SCHEDULED', `P${d}`, 1000, day(d));
      runTable([[funded(`L${d}`, day(d - 0.5)), [expect.any(String) as unknown as string]]], driver);
      // Each SCHEDULED three times: at once, the next day, and ten days later.
      for (const now of [day(d), day(d + 1), day(d + 10)])
        runTable([[at(now, p), expect.any(Array) as never]], driver);
    }
    const withholds = driver.outputs('holdback.deductions.v1').map((o) => o.value);
    const ids = withholds.map((d) => d.deduction_id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(new Set(withholds.map((d) => d.payout_id)).size).toBe(20);
    // Every withholding was decided at the payout's first delivery.
    expect(withholds.every((d) => d.decided_at === d.occurred_at)).toBe(true);
  });
});

describe('repayment: no valid record throws', () => {
  it('withholds 10^13 one millisecond after a 30-day FUNDED: the projection is capped, not an error', () => {
    const driver = runTable([
      [
        funded('L1', day(0), { principal: MAX_AMOUNT_MINOR - 1000, fee: 1000, bps: 10_000, minimum: 1000 }),
        ['L1 v1 ACTIVE bal=10000000000000 col=0 p0 0/1000 missed=0 ends=d30'],
      ],
      [
        payout('SCHEDULED', 'P1', MAX_AMOUNT_MINOR / 2, day(0) + 1),
        [
          'WITHHOLD P1/L1 5000000000000 bal=5000000000000',
          'L1 v2 ACTIVE bal=5000000000000 col=5000000000000 p0 5000000000000/1000 missed=0 ON_PACE ends=d30',
        ],
      ],
    ]);
    const state = driver.outputs('holdback.loans.v1').at(-1)!.value;
    expect(state.projected_period_collected_minor).toBe(MAX_AMOUNT_MINOR);
  });

  it('refuses a FUNDED whose principal + fee exceeds the amount ceiling (its balance could not be reported)', () => {
    runTable([
      [funded('L1', day(0), { principal: MAX_AMOUNT_MINOR, fee: 1 }), ['REJECTED INVALID_LOAN_EVENT']],
    ]);
  });
});

describe('repayment: periods close by the rule’s time, not by when a timer fired', () => {
  const late = (): ReturnType<typeof payout> => payout('SCHEDULED', 'P1', 5000, day(9));
  const start = [funded('L1', day(0), { minimum: 500, periodDays: 10 })] as const;
  it('applies a late payout after the period that ended before now was closed, with or without the tick', () => {
    const withTick = newDriver();
    const withoutTick = newDriver();
    runTable(
      [
        [start[0], expect.any(Array) as never],
        [tick(day(11)), expect.any(Array) as never],
        [at(day(11), late()), expect.any(Array) as never],
      ],
      withTick,
    );
    runTable(
      [
        [start[0], expect.any(Array) as never],
        [at(day(11), late()), expect.any(Array) as never],
      ],
      withoutTick,
    );
    // The same loan, but for the versions the tick's own LoanState added.
    const loan = (d: typeof withTick): object => {
      const { version: _v, ...rest } = d.outputs('holdback.loans.v1').at(-1)!.value;
      return rest;
    };
    expect(loan(withoutTick)).toEqual(loan(withTick));
    // Period 0 ended at d10 with nothing collected: missed, then the payout counts in period 1.
    expect(loan(withTick)).toMatchObject({ status: 'BEHIND', period_index: 1, period_collected_minor: 500 });
  });
});

describe('repayment: outputs of ids at the limit still encode', () => {
  it('shortens a deduction_id of two 256-character ids with its hash, deterministically', () => {
    const payoutId = `P${'x'.repeat(MAX_ID_LENGTH - 1)}`;
    const loanId = `L${'y'.repeat(MAX_ID_LENGTH - 1)}`;
    const driver = newDriver();
    send(driver, funded(loanId, day(0), {}, { eventId: 'f1' }));
    send(driver, payout('SCHEDULED', payoutId, 1000, day(1), { eventId: 'p1' }));
    const [withhold] = driver.outputs('holdback.deductions.v1');
    expect(withhold!.value.deduction_id).toHaveLength(MAX_ID_LENGTH);
    expect(withhold!.value.deduction_id).toBe(deductionId(payoutId, loanId, 'WITHHOLD'));
    expect(deductionId(payoutId, loanId, 'REVERSAL')).not.toBe(withhold!.value.deduction_id);
    const checked = validateRecord('Deduction', withhold!.value, { now: day(1) });
    expect(checked).toEqual({ ok: true, value: withhold!.value });
  });
});
