/** One async critical section at a time, in call order; a failure does not block the next. */
export class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  /** When the section running now began (Date.now()), for health: a lock held for good says so. */
  private runningSince: number | undefined;

  run<T>(fn: () => Promise<T>): Promise<T> {
    const section = async (): Promise<T> => {
      this.runningSince = Date.now();
      try {
        return await fn();
      } finally {
        this.runningSince = undefined;
      }
    };
    const next = this.tail.then(section, section);
    this.tail = next.catch(() => undefined);
    return next;
  }

  /** How long the running section has held the lock (ms), or 0. */
  heldForMs(now = Date.now()): number {
    return this.runningSince === undefined ? 0 : now - this.runningSince;
  }
}
