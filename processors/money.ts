/**
 * Money arithmetic for processors. Amounts are integers in minor units (safe integers, never
 * floats), and this file is the one place where a quotient is rounded: always down (floor).
 */
import { InvariantViolation } from './api';

export const BPS_DENOMINATOR = 10_000;

/**
 * floor(a * b / divisor), exact for any non-negative safe integers a and b, even when a * b
 * exceeds 2^53: the product is computed in BigInt only on that slow path.
 */
export function mulDivFloor(a: number, b: number, divisor: number): number {
  if (!isMinor(a) || !isMinor(b) || !Number.isSafeInteger(divisor) || divisor <= 0) {
    throw new InvariantViolation(
      `mulDivFloor needs non-negative safe integers and a positive divisor: ${a}*${b}/${divisor}`,
    );
  }
  const product = a * b; // exact, and safe, exactly when a * b < 2^53
  if (Number.isSafeInteger(product)) {
    // For a safe integer numerator the float quotient errs by less than 1/divisor, so its floor is exact.
    return Math.floor(product / divisor);
  }
  const exact = (BigInt(a) * BigInt(b)) / BigInt(divisor); // BigInt division truncates: floor for >= 0
  if (exact > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new InvariantViolation(`mulDivFloor result exceeds 2^53: ${a}*${b}/${divisor}`);
  }
  return Number(exact);
}

/**
 * min(floor(a * b / divisor), cap), exact: for figures that only describe (a projection), where a
 * quotient past the cap is valid input, not a broken invariant. Comparing the result with an
 * amount at most `cap` gives the same answer as comparing the exact quotient.
 */
export function mulDivFloorCapped(a: number, b: number, divisor: number, cap: number): number {
  if (
    isMinor(a) &&
    isMinor(b) &&
    !Number.isSafeInteger(a * b) &&
    Number.isSafeInteger(divisor) &&
    divisor > 0
  ) {
    const exact = (BigInt(a) * BigInt(b)) / BigInt(divisor);
    return exact > BigInt(cap) ? cap : Number(exact);
  }
  return Math.min(mulDivFloor(a, b, divisor), cap);
}

/** floor(amount * bps / 10000): the share of an amount at a rate in basis points (0..10000). */
export function shareOfBps(amountMinor: number, bps: number): number {
  return mulDivFloor(amountMinor, bps, BPS_DENOMINATOR);
}

/** A valid amount: a non-negative safe integer. */
export function isMinor(x: unknown): x is number {
  return typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
}
