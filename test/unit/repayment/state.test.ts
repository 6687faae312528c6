import fc from 'fast-check';
import { BinaryReader, BinaryWriter } from '../../../processors/binary';
import {
  createRepaymentProcessor,
  deductionId,
  DEFAULT_REPAYMENT_CONFIG,
  repaymentStateSerde,
} from '../../../processors/repayment';
import { payoutRecordSerde } from '../../../processors/repayment/state';
import { day, funded, loanEvent, payout } from './fixtures';
import { newDriver, send } from './table';

describe('repayment: state serde and configuration', () => {
  it('round-trips a state whose ids are hostile object keys', () => {
    const driver = newDriver();
    const m = '__proto__';
    send(driver, funded('constructor', day(0), {}, { merchant: m, eventId: '__proto__' }));
    send(driver, payout('SCHEDULED', 'toString', 1000, day(1), { merchant: m, eventId: 'hasOwnProperty' }));
    const state = driver.state(m)!;
    const bytes = repaymentStateSerde.encode(state);
    expect(repaymentStateSerde.decode(bytes)).toEqual(state);
    expect(repaymentStateSerde.encode(repaymentStateSerde.decode(bytes)).equals(bytes)).toBe(true);
    expect([...state.loans.keys()]).toEqual(['constructor']);
    expect(state.openPayouts).toBe(1);
    expect([...driver.entries(m).keys()]).toEqual(['toString']);
    const record = driver.entries(m).get('toString')!;
    expect(payoutRecordSerde.decode(payoutRecordSerde.encode(record))).toEqual(record);
    expect(({} as Record<string, unknown>)['loanId']).toBeUndefined(); // no prototype was polluted
  });

  it('refuses a state written by an unknown serde version', () => {
    expect(() => repaymentStateSerde.decode(Buffer.from(JSON.stringify({ v: 2 })))).toThrow(/version 2/);
    expect(() => repaymentStateSerde.decode(Buffer.from('null'))).toThrow(/version/);
  });

  it('restores a version 1 (JSON) or 2 state, whose payouts the next step moves into entries', () => {
    const driver = newDriver();
    send(driver, funded('L1', day(0)));
    send(driver, payout('SCHEDULED', 'P1', 1000, day(1)));
    send(driver, payout('SCHEDULED', 'P2', 1000, day(2)));
    send(driver, payout('FAILED', 'P2', 1000, day(2)));
    const state = driver.state('M1')!;
    const entries = driver.entries('M1');
    const v1 = Buffer.from(
      JSON.stringify({
        v: 1,
        clock: state.clock,
        loans: [...state.loans.values()],
        payouts: [...entries].map(([id, { lastEventAt, ...p }]) => [id, { ...p, touchedAt: lastEventAt }]),
        seen: [['l:FUNDED:L1', day(0)]],
      }),
    );
    const restored = repaymentStateSerde.decode(v1);
    expect(restored).toEqual({ ...state, legacyPayouts: new Map(entries), rememberUntil: 0 });
    // The next step writes them as entries and leaves the state without them.
    const processor = createRepaymentProcessor();
    const step = processor.process(
      restored,
      {
        topic: 'marketplace.payouts.v1',
        key: 'M1',
        value: payout('SETTLED', 'P1', 1000, day(3), { withheld: 100 }),
        timestamp: day(3),
      },
      { now: day(3) },
    );
    expect(step.state?.legacyPayouts.size).toBe(0);
    expect(step.entries?.map((c) => c.id)).toEqual(['P1', 'P2', 'P1']);
    const v3 = repaymentStateSerde.encode(state);
    expect(v3.length * 3).toBeLessThan(v1.length); // what every commit writes per merchant
    expect(() => repaymentStateSerde.decode(v3.subarray(0, v3.length - 1))).toThrow(/truncated/);
    expect(() => repaymentStateSerde.decode(Buffer.concat([v3, Buffer.from([0])]))).toThrow(/trailing/);
  });

  it('remembers each loan event verdict with the state, rejections with their reason', () => {
    const driver = newDriver();
    send(driver, funded('L1', day(0)));
    send(driver, loanEvent('RESUMED', 'L1', day(1), { eventId: 'e21' }));
    const state = driver.state('M1')!;
    expect([...state.loanEvents]).toEqual([
      ['FUNDED:L1', null],
      [
        'e21',
        { reasonCode: 'INVALID_TRANSITION', detail: 'RESUMED does not apply to a loan that is ACTIVE' },
      ],
    ]);
    expect(repaymentStateSerde.decode(repaymentStateSerde.encode(state))).toEqual(state);
  });

  it('takes documented defaults and refuses unknown keys and bad values', () => {
    expect(DEFAULT_REPAYMENT_CONFIG.dedupHorizonMs).toBe(35 * 86_400_000);
    expect(() => createRepaymentProcessor({ retentionDays: 3 } as never)).toThrow(
      /unknown key 'retentionDays'/,
    );
    expect(() => createRepaymentProcessor({ dedupHorizonMs: -1 })).toThrow(/dedupHorizonMs/);
    expect(() => createRepaymentProcessor({ paceWarmupBps: 10_001 })).toThrow(/paceWarmupBps/);
  });

  it('declares its topics', () => {
    const p = createRepaymentProcessor();
    expect(p.inputs).toEqual(['lending.loans.v1', 'marketplace.payouts.v1']);
    expect(p.outputs).toEqual([
      'holdback.deductions.v1',
      'holdback.loans.v1',
      'holdback.settlements.v1',
      'holdback.payout-decisions.v1',
    ]);
  });
});

describe('repayment: deduction ids', () => {
  it('are readable, deterministic and unambiguous when ids contain the separator', () => {
    expect(deductionId('P1', 'L1', 'WITHHOLD')).toBe('P1:L1:WITHHOLD');
    expect(deductionId('a:b', 'c', 'REVERSAL')).toBe('a%3Ab:c:REVERSAL');
    expect(deductionId('a:b', 'c', 'WITHHOLD')).not.toBe(deductionId('a', 'b:c', 'WITHHOLD'));
    expect(deductionId('a%3Ab', 'c', 'WITHHOLD')).not.toBe(deductionId('a:b', 'c', 'WITHHOLD'));
  });
});

describe('binary state encoding', () => {
  it('round-trips every safe unsigned integer width and UTF-8 string, and refuses what it cannot write', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.nat(), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })), { maxLength: 20 }),
        fc.array(fc.string({ unit: 'grapheme' }), { maxLength: 5 }),
        (ints, strings) => {
          const w = new BinaryWriter(1);
          for (const n of ints) w.uint(n);
          for (const s of strings) w.string(s);
          const r = new BinaryReader(w.finish(), 'test');
          expect(ints.map(() => r.uint())).toEqual(ints);
          expect(strings.map(() => r.string())).toEqual(strings);
          r.end();
        },
      ),
    );
    for (const bad of [-1, 0.5, 2 ** 53, NaN]) expect(() => new BinaryWriter().uint(bad)).toThrow(/varint/);
  });
});
