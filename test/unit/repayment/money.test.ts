import fc from 'fast-check';
import { InvariantViolation } from '../../../processors/api';
import { mulDivFloor, shareOfBps } from '../../../processors/money';

const exact = (a: number, b: number, d: number): number => Number((BigInt(a) * BigInt(b)) / BigInt(d));

describe('money: the one rounding helper', () => {
  it.each([
    // [gross, bps, floor(gross * bps / 10000)]
    [999, 1000, 99],
    [10_005, 1000, 1000],
    [9, 1000, 0],
    [1, 10_000, 1],
    [0, 10_000, 0],
    [Number.MAX_SAFE_INTEGER, 10_000, Number.MAX_SAFE_INTEGER], // gross * bps > 2^53: BigInt path
    [Number.MAX_SAFE_INTEGER, 9999, exact(Number.MAX_SAFE_INTEGER, 9999, 10_000)],
    [2 ** 50 + 1, 7, exact(2 ** 50 + 1, 7, 10_000)],
  ])('shareOfBps(%d, %d) = %d', (gross, bps, want) => {
    expect(shareOfBps(gross, bps)).toBe(want);
  });

  it('equals exact BigInt arithmetic, on both sides of 2^53', () => {
    const around = fc.oneof(fc.nat(), fc.integer({ min: 2 ** 26, max: 2 ** 27 }), fc.maxSafeNat());
    fc.assert(
      fc.property(
        around,
        fc.integer({ min: 0, max: 10_000 }),
        fc.integer({ min: 1, max: 2 ** 40 }),
        (a, b, d) => {
          fc.pre(exact(a, b, d) <= Number.MAX_SAFE_INTEGER);
          expect(mulDivFloor(a, b, d)).toBe(exact(a, b, d));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('refuses what is not money instead of rounding it', () => {
    expect(() => mulDivFloor(-1, 1, 1)).toThrow(InvariantViolation);
    expect(() => mulDivFloor(1.5, 1, 1)).toThrow(InvariantViolation);
    expect(() => mulDivFloor(1, 1, 0)).toThrow(InvariantViolation);
    expect(() => mulDivFloor(Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, 1)).toThrow(
      InvariantViolation,
    );
  });
});
