/**
 * The one retry loop and the one restart loop that the runtime and the ClickHouse sink share.
 */
import { Backoff, Restarter, retrying } from '../../connectors/backoff';

class Stopped extends Error {}

describe('retrying', () => {
  it('retries transient failures with doubling waits until it succeeds', async () => {
    const waits: number[] = [];
    let calls = 0;
    const v = await retrying(
      async () => {
        if (++calls < 4) throw new Error('down');
        return 'up';
      },
      {
        initialMs: 1,
        maxMs: 3,
        stop: () => false,
        stopped: () => new Stopped(),
        onRetry: (_e, w) => void waits.push(w),
      },
    );
    expect(v).toBe('up');
    expect(waits).toEqual([1, 2, 3]);
  });

  it('throws a failure that is not transient at once', async () => {
    let calls = 0;
    await expect(
      retrying(
        async () => {
          calls++;
          throw new TypeError('bad');
        },
        {
          initialMs: 1,
          maxMs: 1,
          stop: () => false,
          stopped: () => new Stopped(),
          isTransient: (e) => !(e instanceof TypeError),
          onRetry: () => undefined,
        },
      ),
    ).rejects.toBeInstanceOf(TypeError);
    expect(calls).toBe(1);
  });

  it('ends a long wait with `stopped()` soon after a stop', async () => {
    let stop = false;
    const started = Date.now();
    const p = retrying(
      async () => {
        throw new Error('down');
      },
      {
        initialMs: 60_000,
        maxMs: 60_000,
        stop: () => stop,
        stopped: () => new Stopped(),
        onRetry: () => undefined,
      },
    );
    setTimeout(() => (stop = true), 50);
    await expect(p).rejects.toBeInstanceOf(Stopped);
    expect(Date.now() - started).toBeLessThan(2000);
  });
});

describe('Restarter', () => {
  it('retries a failed attempt with backoff', async () => {
    let attempts = 0;
    const failures: number[] = [];
    const r = new Restarter({
      initialMs: 1,
      maxMs: 2,
      stop: () => false,
      attempt: async () => {
        if (++attempts < 3) throw new Error('broker down');
      },
      onFailure: (_e, w) => void failures.push(w),
      onAgain: () => undefined,
    });
    await r.request();
    expect(attempts).toBe(3);
    expect(failures).toEqual([1, 2]);
    expect(r.active).toBe(false);
  });

  it('goes round once more when asked again during an attempt, never dropping the request', async () => {
    let attempts = 0;
    let again = 0;
    const r: Restarter = new Restarter({
      initialMs: 1,
      maxMs: 1,
      stop: () => false,
      attempt: async () => {
        attempts++;
        // The component fails again right after the restart started it.
        if (attempts === 1) void r.request();
      },
      onFailure: () => undefined,
      onAgain: () => void again++,
    });
    await r.request();
    expect(attempts).toBe(2);
    expect(again).toBe(1);
  });

  it('does nothing once stopped', async () => {
    let attempts = 0;
    const r = new Restarter({
      initialMs: 1,
      maxMs: 1,
      stop: () => true,
      attempt: async () => void attempts++,
      onFailure: () => undefined,
      onAgain: () => undefined,
    });
    await r.request();
    expect(attempts).toBe(0);
  });
});

describe('Backoff', () => {
  it('doubles up to its maximum and resets', () => {
    const b = new Backoff(100, 300);
    expect([b.next(), b.next(), b.next(), b.peek()]).toEqual([100, 200, 300, 300]);
    b.reset();
    expect(b.next()).toBe(100);
  });
});
