/** A binary min-heap of timed items, ties broken by insertion order: the simulation's agenda. */
export interface Timed<T> {
  readonly t: number;
  readonly seq: number;
  readonly item: T;
}

export class Agenda<T> {
  private readonly heap: Array<Timed<T>> = [];
  private seq = 0;

  get size(): number {
    return this.heap.length;
  }

  push(t: number, item: T): void {
    const h = this.heap;
    h.push({ t, seq: this.seq++, item });
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(h[i]!, h[parent]!)) break;
      [h[i], h[parent]] = [h[parent]!, h[i]!];
      i = parent;
    }
  }

  peek(): Timed<T> | undefined {
    return this.heap[0];
  }

  pop(): Timed<T> | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && before(h[l]!, h[m]!)) m = l;
        if (r < h.length && before(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before<T>(a: Timed<T>, b: Timed<T>): boolean {
  return a.t < b.t || (a.t === b.t && a.seq < b.seq);
}
