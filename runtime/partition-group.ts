/**
 * A task's input in time order, as Kafka Streams' PartitionGroup and `max.task.idle.ms` do it
 * (KIP-353, KIP-695): one bounded buffer per input topic-partition of the task, and the record
 * with the smallest timestamp among the buffers' heads is processed next. Ties go by a fixed
 * topic order (TOPIC_ORDER), then by offset.
 *
 * A head can only be trusted to be the smallest when every other partition of the task either
 * has something buffered too or is known to hold nothing more. For an empty partition:
 * - max-task-idle-ms 0 (the default): when the broker holds more for it than was fetched (known
 *   lag), the task waits for that fetch. When its lag is not known, or was last observed before
 *   the newest buffered data was fetched, the transport is asked for the partition's end first
 *   (`probe`), so that a record written before the competing data was fetched is never passed
 *   over. Caught up (lag 0, freshly observed): the task goes on without it ("enforced
 *   processing"). It never waits for data not yet written.
 * - a positive value: as 0, and once caught up it also waits that long for new data.
 * - -1: never waits; whatever is buffered is processed in time order.
 *
 * Pure: no I/O, no clock. The runtime feeds it fetched records, end offsets and the wall time,
 * and the test driver does the same, so unit tests can interleave topics exactly as fetches do.
 */
import type { TopicWithRecord } from '../processors/api';
import { TOPICS } from '../schemas/topics';

/** What the group orders: a fetched record with its offset and the time that orders it. */
export interface Stamped {
  readonly offset: number;
  /** Event time (runtime/event-time.ts), ms since the epoch. */
  readonly time: number;
}

/**
 * The documented order of topics whose records carry the same timestamp: the lender's loan
 * events first (a loan funded at t exists for a payout at t), Holdback's own loan states, then
 * payouts, sales and orders (docs/contract.md, "Time order").
 */
export const TOPIC_ORDER: readonly TopicWithRecord[] = [
  TOPICS.loanEvents,
  TOPICS.loanStates,
  TOPICS.payouts,
  TOPICS.sales,
  TOPICS.orders,
];

/** -1: never wait for an empty partition. */
export const NEVER_WAIT = -1;

export interface PartitionGroupOptions {
  /** The task's input topics (contract names). */
  readonly topics: readonly string[];
  /** max.task.idle.ms: 0, a positive wait, or -1 (never wait). */
  readonly maxTaskIdleMs: number;
  /** Records buffered per partition before the transport should pause fetching it. */
  readonly maxBuffered: number;
}

/** What the task may do next. */
export type Readiness =
  /** Process `next()`. `without` lists the empty partitions it goes on without (enforced processing). */
  | { readonly kind: 'ready'; readonly without: readonly string[] }
  /** Nothing is buffered. */
  | { readonly kind: 'empty' }
  /** Ask the broker for these topics' end offsets (lag unknown or older than the buffered data). */
  | { readonly kind: 'probe'; readonly topics: readonly string[] }
  /** The broker holds more of these; wait for the fetch. */
  | { readonly kind: 'fetch'; readonly topics: readonly string[] }
  /** Caught up; waiting for new data on an empty partition until `until` (wall time). */
  | { readonly kind: 'idle'; readonly until: number };

class Queue<R extends Stamped> {
  private records: R[] = [];
  private head = 0;
  /** The next offset the consumer fetches (past records and transaction markers it has read); undefined until known. */
  fetched: number | undefined;
  /** The partition's end (read_committed) as last observed, and when (wall time). */
  end: number | undefined;
  endAt = Number.NEGATIVE_INFINITY;
  /** Wall time at which waiting for new data on this empty partition ends (positive idle only). */
  idleUntil: number | undefined;
  /** Whether the transport was told to stop fetching it. */
  paused = false;

  constructor(
    readonly topic: string,
    readonly rank: number,
  ) {}

  get size(): number {
    return this.records.length - this.head;
  }

  peek(): R | undefined {
    return this.records[this.head];
  }

  push(r: R): void {
    this.records.push(r);
  }

  shift(): R {
    const r = this.records[this.head]!;
    this.records[this.head++] = undefined as unknown as R; // let the record go
    if (this.head === this.records.length) {
      this.records = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.records.length) {
      this.records = this.records.slice(this.head);
      this.head = 0;
    }
    return r;
  }

  clear(): void {
    this.records = [];
    this.head = 0;
  }
}

export class PartitionGroup<R extends Stamped> {
  private readonly queues: Array<Queue<R>>;
  private readonly byTopic = new Map<string, Queue<R>>();
  /** Wall time of the newest fetch into any queue: an empty partition's end must be observed after it. */
  private lastAddAt = Number.NEGATIVE_INFINITY;
  private buffered = 0;

  constructor(private readonly o: PartitionGroupOptions) {
    this.queues = o.topics.map((topic) => {
      const rank = TOPIC_ORDER.indexOf(topic as TopicWithRecord);
      return new Queue<R>(topic, rank < 0 ? TOPIC_ORDER.length : rank);
    });
    for (const q of this.queues) this.byTopic.set(q.topic, q);
  }

  get maxTaskIdleMs(): number {
    return this.o.maxTaskIdleMs;
  }

  /** Wall time of the newest fetch into any queue: an end observed before it no longer holds. */
  get lastFetchAt(): number {
    return this.lastAddAt;
  }

  /** Records buffered over all partitions. */
  get size(): number {
    return this.buffered;
  }

  sizeOf(topic: string): number {
    return this.queue(topic).size;
  }

  /**
   * Buffers fetched records of one partition (in offset order) at wall time `at`. `fetchedTo` is
   * the consumer's position after the fetch when the client knows it (it counts transaction
   * markers, which are never delivered); otherwise the last record's offset + 1.
   */
  add(topic: string, records: readonly R[], at: number, fetchedTo?: number): void {
    const q = this.queue(topic);
    let added = 0;
    for (const r of records) {
      // Already fetched (a client that re-fetches after a pause or a seek): keep the first copy.
      if (q.fetched !== undefined && r.offset < q.fetched) continue;
      q.push(r);
      added++;
    }
    this.buffered += added;
    const last = records.length > 0 ? records[records.length - 1]!.offset + 1 : undefined;
    const to = Math.max(fetchedTo ?? -1, last ?? -1);
    if (to >= 0) this.setFetched(topic, to);
    if (added > 0) {
      this.lastAddAt = at;
      q.idleUntil = undefined;
    }
  }

  /** The consumer's position for `topic` (on assignment: where it was positioned; after a marker-only fetch: past it). */
  setFetched(topic: string, next: number): void {
    const q = this.queue(topic);
    if (q.fetched === undefined || next > q.fetched) q.fetched = next;
  }

  /** The consumer's position for `topic` as the group knows it (undefined: not known yet). */
  fetchedOf(topic: string): number | undefined {
    return this.queue(topic).fetched;
  }

  /**
   * The broker's answer to a probe, observed at wall time `at`: the partition's read_committed
   * end and, when the consumer position is not known yet, its start (a fresh group begins there).
   */
  setEnd(topic: string, end: number, at: number, start?: number): void {
    const q = this.queue(topic);
    q.end = end;
    q.endAt = at;
    if (q.fetched === undefined && start !== undefined) q.fetched = start;
  }

  /** What the task may do now (wall time `now`); see the header. */
  readiness(now: number): Readiness {
    if (this.buffered === 0) return { kind: 'empty' };
    if (this.o.maxTaskIdleMs === NEVER_WAIT) return { kind: 'ready', without: [] };
    let probe: string[] | undefined;
    let fetch: string[] | undefined;
    let idleUntil: number | undefined;
    let without: string[] | undefined;
    for (const q of this.queues) {
      if (q.size > 0) continue;
      if (q.fetched === undefined || q.end === undefined || q.endAt < this.lastAddAt) {
        (probe ??= []).push(q.topic);
        q.idleUntil = undefined;
      } else if (q.end > q.fetched) {
        (fetch ??= []).push(q.topic);
        q.idleUntil = undefined;
      } else {
        if (this.o.maxTaskIdleMs > 0) {
          q.idleUntil ??= now + this.o.maxTaskIdleMs;
          if (now < q.idleUntil) {
            idleUntil = Math.min(idleUntil ?? q.idleUntil, q.idleUntil);
            continue;
          }
        }
        (without ??= []).push(q.topic);
      }
    }
    if (probe) return { kind: 'probe', topics: probe };
    if (fetch) return { kind: 'fetch', topics: fetch };
    if (idleUntil !== undefined) return { kind: 'idle', until: idleUntil };
    return { kind: 'ready', without: without ?? [] };
  }

  /** Takes the buffered record that comes next in time order (undefined: nothing buffered). */
  next(): R | undefined {
    let best: Queue<R> | undefined;
    let bestHead: R | undefined;
    for (const q of this.queues) {
      const head = q.peek();
      if (!head) continue;
      if (!bestHead || head.time < bestHead.time || (head.time === bestHead.time && q.rank < best!.rank)) {
        best = q;
        bestHead = head;
      }
    }
    if (!best) return undefined;
    this.buffered--;
    return best.shift();
  }

  /** Partitions whose buffer is full and not yet paused: the transport pauses them. */
  toPause(): string[] {
    const out: string[] = [];
    for (const q of this.queues) {
      if (!q.paused && q.size >= this.o.maxBuffered) {
        q.paused = true;
        out.push(q.topic);
      }
    }
    return out;
  }

  /** Paused partitions drained to half their bound: the transport resumes them. */
  toResume(): string[] {
    const out: string[] = [];
    for (const q of this.queues) {
      if (q.paused && q.size <= this.o.maxBuffered >> 1) {
        q.paused = false;
        out.push(q.topic);
      }
    }
    return out;
  }

  /**
   * Forgets everything buffered and every position, end and pause (the task is closed, or its
   * consumer starts again from what the task processed: setFetched tells the group where).
   */
  clear(): void {
    for (const q of this.queues) {
      q.clear();
      q.fetched = undefined;
      q.end = undefined;
      q.endAt = Number.NEGATIVE_INFINITY;
      q.idleUntil = undefined;
      q.paused = false;
    }
    this.buffered = 0;
    this.lastAddAt = Number.NEGATIVE_INFINITY;
  }

  private queue(topic: string): Queue<R> {
    const q = this.byTopic.get(topic);
    if (!q) throw new Error(`${topic} is not an input of this task`);
    return q;
  }
}
