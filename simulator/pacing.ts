/**
 * Pacing of the producing loop, pure (wall time is a parameter): the token bucket that caps the
 * record rate, and the simulated clock that runs `speed` times faster than the wall clock but
 * never past it.
 */

/** At most `ratePerSec` on average, with bursts of at most `burst` records. */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly ratePerSec: number,
    readonly burst: number,
    now: number,
  ) {
    if (!(ratePerSec > 0) || !(burst >= 1))
      throw new Error(`bad token bucket: ${ratePerSec}/s, burst ${burst}`);
    this.tokens = burst;
    this.last = now;
  }

  /** Whole tokens available at `now`. */
  available(now: number): number {
    this.refill(now);
    return Math.floor(this.tokens);
  }

  /** Takes `n` tokens; the caller checked `available`. */
  take(n: number, now: number): void {
    this.refill(now);
    if (n > Math.floor(this.tokens))
      throw new Error(`took ${n} tokens, ${Math.floor(this.tokens)} available`);
    this.tokens -= n;
  }

  /** How long until `n` (at most `burst`) tokens are available. */
  msUntil(n: number, now: number): number {
    this.refill(now);
    const missing = Math.min(n, this.burst) - this.tokens;
    return missing <= 0 ? 0 : Math.ceil((missing * 1000) / this.ratePerSec);
  }

  private refill(now: number): void {
    if (now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) * this.ratePerSec) / 1000);
      this.last = now;
    }
  }
}

/** Simulated time: from `startMs` at wall time `wallStart`, `speed` times faster, capped at the wall clock. */
export class SimClock {
  constructor(
    readonly startMs: number,
    readonly speed: number,
    readonly wallStart: number,
  ) {}

  at(wallNow: number): number {
    return Math.min(wallNow, this.startMs + Math.floor((wallNow - this.wallStart) * this.speed));
  }

  /** Wall time at which the simulated clock reads `simMs` (the wall clock itself once caught up). */
  wallWhen(simMs: number): number {
    const fast = this.wallStart + (simMs - this.startMs) / this.speed;
    return Math.max(Math.ceil(fast), simMs);
  }
}
