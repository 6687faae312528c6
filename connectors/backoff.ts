/**
 * Exponential backoff and an interruptible sleep: the one retry helper of the runtime and the
 * ClickHouse sink, so that every wait on an outage ends promptly on SIGTERM.
 */

/** Doubles from `initialMs` to at most `maxMs`; `reset` after a success. */
export class Backoff {
  private current: number;

  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
  ) {
    this.current = initialMs;
  }

  /** The wait the next call of `next` returns. */
  peek(): number {
    return this.current;
  }

  /** The wait to do now; the one after it is twice as long, up to the maximum. */
  next(): number {
    const ms = this.current;
    this.current = Math.min(this.current * 2, this.maxMs);
    return ms;
  }

  reset(): void {
    this.current = this.initialMs;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Sleeps `ms`, or less: it looks at `stop` every 100 ms and returns once it says true. */
export async function sleepUnless(ms: number, stop: () => boolean): Promise<void> {
  const until = Date.now() + ms;
  while (!stop()) {
    const left = until - Date.now();
    if (left <= 0) return;
    await sleep(Math.min(left, 100));
  }
}
