/**
 * Exponential backoff, an interruptible sleep, the one retry loop and the one restart loop of the
 * runtime and the ClickHouse sink, so that every wait on an outage ends promptly on SIGTERM.
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

export interface RetryOptions {
  initialMs: number;
  maxMs: number;
  /** Checked before each try and during each wait: once true, the retry ends with `stopped()`. */
  stop: () => boolean;
  stopped: () => Error;
  /** Which failures are worth another try; the rest are thrown at once. All by default. */
  isTransient?: (e: unknown) => boolean;
  /** Told of each failure before its wait (log, metric, heartbeat). */
  onRetry: (e: unknown, waitMs: number) => void | Promise<void>;
}

/** Runs `fn` until it succeeds, waiting with backoff after each transient failure. */
export async function retrying<T>(fn: () => Promise<T>, o: RetryOptions): Promise<T> {
  const backoff = new Backoff(o.initialMs, o.maxMs);
  for (;;) {
    if (o.stop()) throw o.stopped();
    try {
      return await fn();
    } catch (e) {
      if (o.isTransient && !o.isTransient(e)) throw e;
      await o.onRetry(e, backoff.peek());
      await sleepUnless(backoff.next(), o.stop);
    }
  }
}

export interface RestarterOptions {
  initialMs: number;
  maxMs: number;
  stop: () => boolean;
  /** Tears down and starts again; a throw is retried with backoff. */
  attempt: () => Promise<void>;
  onFailure: (e: unknown, waitMs: number) => void;
  /** A restart was asked for while one was in progress: it goes round once more. */
  onAgain: () => void;
}

/**
 * Crash-only restarts, one at a time. A restart asked for while another is in progress is not
 * dropped: the component may have failed again right after the restart started it (a consumer
 * crash on "coordinator is loading" after a broker restart), and would otherwise be left dead
 * with nothing left to restart it.
 */
export class Restarter {
  private running = false;
  private again = false;

  constructor(private readonly o: RestarterOptions) {}

  get active(): boolean {
    return this.running;
  }

  async request(): Promise<void> {
    if (this.o.stop()) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      const backoff = new Backoff(this.o.initialMs, this.o.maxMs);
      while (!this.o.stop()) {
        this.again = false;
        try {
          await this.o.attempt();
          if (!this.again) return;
          this.o.onAgain();
        } catch (e) {
          this.o.onFailure(e, backoff.peek());
        }
        await sleepUnless(backoff.next(), this.o.stop);
      }
    } finally {
      this.running = false;
    }
  }
}
