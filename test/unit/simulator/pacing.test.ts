/** The rate limiter and the simulated clock, on a hand-driven wall clock. */
import { SimClock, TokenBucket } from '../../../simulator/pacing';

test('the token bucket grants the rate on average, plus at most one burst', () => {
  const t0 = 1_000_000;
  const bucket = new TokenBucket(1000, 250, t0);
  let granted = 0;
  // A greedy caller polling every 7 ms for 10 s.
  for (let now = t0; now <= t0 + 10_000; now += 7) {
    const n = bucket.available(now);
    if (n > 0) {
      bucket.take(n, now);
      granted += n;
    }
  }
  expect(granted).toBeGreaterThanOrEqual(10_000);
  expect(granted).toBeLessThanOrEqual(10_000 + 250);
});

test('the token bucket never holds more than its burst, and says how long to wait', () => {
  const bucket = new TokenBucket(100, 10, 0);
  expect(bucket.available(60_000)).toBe(10);
  bucket.take(10, 60_000);
  expect(bucket.available(60_000)).toBe(0);
  expect(bucket.msUntil(1, 60_000)).toBe(10);
  expect(bucket.msUntil(50, 60_000)).toBe(100); // capped at the burst
  expect(bucket.available(60_010)).toBe(1);
  expect(() => bucket.take(2, 60_010)).toThrow('took 2 tokens, 1 available');
});

test('the simulated clock runs speed times faster, and never past the wall clock', () => {
  const wall0 = Date.UTC(2025, 5, 1);
  const start = wall0 - 10 * 86_400_000;
  const clock = new SimClock(start, 86_400, wall0); // a day per second
  expect(clock.at(wall0)).toBe(start);
  expect(clock.at(wall0 + 1000)).toBe(start + 86_400_000);
  expect(clock.at(wall0 + 5_500)).toBe(start + 5.5 * 86_400_000);
  // After about 10 s it has caught up: from then on it is the wall clock.
  expect(clock.at(wall0 + 20_000)).toBe(wall0 + 20_000);
  expect(clock.wallWhen(start + 2 * 86_400_000)).toBe(wall0 + 2000);
  expect(clock.wallWhen(wall0 + 60_000)).toBe(wall0 + 60_000);
});
