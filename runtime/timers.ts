/**
 * Per-key timers: at most one pending time per key, popped in time order. A binary min-heap with
 * lazy deletion (an entry is live only while it matches the key's current time), so setting and
 * replacing a timer are O(log n) and nothing scans all keys.
 */
export class TimerQueue {
  private readonly at = new Map<string, number>();
  private heap: Array<{ at: number; key: string }> = [];

  set(key: string, at: number): void {
    if (this.at.get(key) === at) return;
    this.at.set(key, at);
    this.push({ at, key });
    if (this.heap.length > 64 && this.heap.length > 4 * this.at.size) this.rebuild();
  }

  delete(key: string): void {
    this.at.delete(key);
  }

  /** The key's pending time, if any. */
  get(key: string): number | undefined {
    return this.at.get(key);
  }

  get size(): number {
    return this.at.size;
  }

  /** Removes and returns the keys whose time is <= now, earliest first: all of them, or the first `limit`. */
  popDue(now: number, limit = Number.POSITIVE_INFINITY): string[] {
    const due: string[] = [];
    while (this.heap.length > 0 && this.heap[0]!.at <= now && due.length < limit) {
      const top = this.pop();
      if (this.at.get(top.key) !== top.at) continue; // replaced or deleted
      this.at.delete(top.key);
      due.push(top.key);
    }
    // Stale entries can pile up when timers are replaced often; rebuild when they dominate.
    if (this.heap.length > 64 && this.heap.length > 4 * this.at.size) this.rebuild();
    return due;
  }

  /** The earliest pending time, if any. */
  peek(): number | undefined {
    while (this.heap.length > 0 && this.at.get(this.heap[0]!.key) !== this.heap[0]!.at) this.pop();
    return this.heap[0]?.at;
  }

  private rebuild(): void {
    this.heap = [];
    for (const [key, at] of this.at) this.push({ at, key });
  }

  private push(e: { at: number; key: string }): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.at <= h[i]!.at) break;
      [h[parent], h[i]] = [h[i]!, h[parent]!];
      i = parent;
    }
  }

  private pop(): { at: number; key: string } {
    const h = this.heap;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      while (true) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l]!.at < h[m]!.at) m = l;
        if (r < h.length && h[r]!.at < h[m]!.at) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }
}
