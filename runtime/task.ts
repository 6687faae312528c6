/**
 * The heart of the runtime, with no I/O: one task owns one partition number of every input
 * topic (they are co-partitioned), the state of every key in it, its timers, and the effects of
 * the records it processed since the last commit. The Kafka runtime and the broker-free test
 * driver both run records through this class, so tests exercise the code path production uses.
 *
 * A record is processed at most once per task: the task remembers the next offset of each input
 * topic-partition, restores it from the changelog with the state, and skips anything below it
 * (a re-delivery after a seek or a rebalance).
 */
import {
  InvariantViolation,
  type EntryStore,
  type InputRecord,
  type OutputRecord,
  type Processor,
  type StepResult,
  type Unsettled,
} from '../processors/api';
import { Entries, entryChangelogKey, parseEntryChangelogKey } from './entries';
import { TimerQueue } from './timers';

/** A record as it came off Kafka, before decoding. */
export interface SourceRecord {
  readonly topic: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly timestamp: number;
}

export type Decoded = { ok: true; record: InputRecord } | { ok: false; reasonCode: string; detail: string };

/** A record the task could not accept: decoding failed or the processor rejected it. */
export interface Rejected {
  readonly source: SourceRecord;
  readonly reasonCode: string;
  readonly detail: string;
}

/** The state-changelog key under which a task keeps its input offsets (ids never start with NUL). */
export const OFFSETS_KEY = '\u0000offsets';

/** Everything a task must make durable in one commit. */
export interface Flush {
  readonly outputs: readonly OutputRecord[];
  /**
   * outputs[i]'s Kafka timestamp: the `now` of the step that produced it (stream time with
   * --clock=stream), as Kafka Streams propagates timestamps, so a downstream processor on stream
   * time sees the upstream's time, not the moment of producing.
   */
  readonly outputTimestamps: readonly number[];
  /** outputs[i] encoded (the Task's encoder), when the task has one. */
  readonly encoded: readonly Buffer[];
  readonly rejected: readonly Rejected[];
  /** Changed keys and their encoded state (null: deleted), plus the offsets entry. */
  readonly changelog: ReadonlyArray<{ key: string; value: Buffer | null }>;
  /** Next offset to consume per input topic: what the commit moves the group to. */
  readonly offsets: ReadonlyMap<string, number>;
  /** Source timestamps of the records in this flush, for latency metrics. */
  readonly oldestTimestamp: number | undefined;
}

export type AcceptResult = 'processed' | 'rejected' | 'skipped';

/** Turns an output into its bytes on the wire; throws when the output does not fit its schema. */
export type OutputEncoder = (output: OutputRecord) => Buffer;

/**
 * A step's output could not be encoded: a processor produced a record its schema refuses. The
 * step's effects were not applied and its input offset did not move, so everything before it can
 * still be committed; the runtime then stops the partition at this record.
 */
export class OutputEncodingError extends InvariantViolation {
  constructor(
    readonly source: SourceRecord,
    readonly output: OutputRecord,
    cause: unknown,
  ) {
    super(
      `${output.topic} output of ${source.topic}/${source.partition}@${source.offset} does not encode: ${
        cause instanceof Error ? cause.message : String(cause)
      }`,
    );
  }
}

const NO_ENTRIES: EntryStore<never> = { get: () => undefined };

export class Task<S, E = never> {
  private readonly state = new Map<string, S>();
  /** The processor's entries (Processor.entrySerde), when it keeps any. */
  private readonly entries: Entries<E> | undefined;
  private readonly timers = new TimerQueue();
  private readonly nextOffsets = new Map<string, number>();
  private outputs: OutputRecord[] = [];
  /** The `now` of the step that produced each output: its Kafka timestamp. */
  private outputTimes: number[] = [];
  private encoded: Buffer[] = [];
  private rejected: Rejected[] = [];
  private dirty = new Set<string>();
  private offsetsMoved = false;
  private oldestTimestamp: number | undefined;
  // What the keys' states and entries hold withheld and unsettled (Processor.unsettled and
  // unsettledEntry), kept as running totals so the gauges cost nothing per scrape: each state's or
  // entry's last contribution is replaced when it changes, and the oldest is a min-queue over
  // them. A state counts under its key, an entry under its changelog key (they cannot collide).
  private readonly unsettledByKey = new Map<string, Unsettled>();
  private readonly unsettledOldest = new TimerQueue();
  private unsettledCount = 0;
  private readonly unsettledMinor = new Map<string, number>();

  constructor(
    readonly processor: Processor<S, E>,
    readonly partition: number,
    /** Encode outputs as they are produced, so a bad one stops its step, not a whole commit. */
    private readonly encodeOutput?: OutputEncoder,
  ) {
    this.entries =
      processor.entrySerde &&
      new Entries(processor.entrySerde, (key, id) => this.track(entryChangelogKey(key, id), undefined));
  }

  // ---- restore (from the changelog, before any record is accepted) ----

  restore(key: string, value: Buffer | null): void {
    if (key === OFFSETS_KEY) {
      if (value === null) return;
      const offsets = JSON.parse(value.toString('utf8')) as Record<string, number>;
      for (const [topic, offset] of Object.entries(offsets)) this.nextOffsets.set(topic, offset);
      return;
    }
    const entry = parseEntryChangelogKey(key);
    if (entry) {
      if (!this.entries)
        throw new Error(
          `changelog holds entry ${JSON.stringify(key)}, but ${this.processor.name} keeps none`,
        );
      const e = this.entries.restore(entry.key, entry.id, value);
      this.trackEntry(entry.key, entry.id, e);
      return;
    }
    if (value === null) {
      this.state.delete(key);
      this.timers.delete(key);
      this.trackUnsettled(key, undefined);
      return;
    }
    const s = this.processor.stateSerde.decode(value);
    this.state.set(key, s);
    this.setTimer(key, s);
    this.trackUnsettled(key, s);
  }

  private trackUnsettled(key: string, s: S | undefined): void {
    const of = this.processor.unsettled;
    if (of) this.track(key, s === undefined ? undefined : of.call(this.processor, s));
  }

  private trackEntry(key: string, id: string, e: E | undefined): void {
    const of = this.processor.unsettledEntry;
    if (of) this.track(entryChangelogKey(key, id), e === undefined ? undefined : of.call(this.processor, e));
  }

  /** Replaces what `trackKey` (a state key, or an entry's changelog key) contributes to the totals. */
  private track(trackKey: string, after: Unsettled | undefined): void {
    const before = this.unsettledByKey.get(trackKey);
    if (before === undefined && after === undefined) return;
    if (before) {
      this.unsettledCount -= before.count;
      for (const [c, m] of before.minorByCurrency)
        this.unsettledMinor.set(c, this.unsettledMinor.get(c)! - m);
    }
    if (after) {
      this.unsettledCount += after.count;
      for (const [c, m] of after.minorByCurrency)
        this.unsettledMinor.set(c, (this.unsettledMinor.get(c) ?? 0) + m);
      this.unsettledByKey.set(trackKey, after);
      this.unsettledOldest.set(trackKey, after.oldestAt);
    } else if (before) {
      this.unsettledByKey.delete(trackKey);
      this.unsettledOldest.delete(trackKey);
    }
  }

  /**
   * Withheld and unsettled money over every key of the task: count, amount per currency (a
   * currency stays listed at 0 once seen, so its series drops to 0 rather than vanishing) and
   * when the oldest withholding was decided.
   */
  unsettled(): { count: number; minorByCurrency: ReadonlyMap<string, number>; oldestAt: number | undefined } {
    return {
      count: this.unsettledCount,
      minorByCurrency: this.unsettledMinor,
      oldestAt: this.unsettledOldest.peek(),
    };
  }

  /** Timers are derived from state (Processor.timerAt), so a restored task has them too. */
  private setTimer(key: string, s: S | undefined): void {
    const at = s === undefined ? undefined : this.processor.timerAt?.(s);
    if (at === undefined) this.timers.delete(key);
    else this.timers.set(key, at);
  }

  /** The next offset to consume for `topic` (undefined: none recorded; use the group's). */
  nextOffset(topic: string): number | undefined {
    return this.nextOffsets.get(topic);
  }

  get size(): number {
    return this.state.size;
  }

  get(key: string): S | undefined {
    return this.state.get(key);
  }

  /** How many entries the task holds over all keys. */
  get entryCount(): number {
    return this.entries?.size ?? 0;
  }

  /** The key's entries (tests and tools). */
  entriesOf(key: string): ReadonlyMap<string, E> {
    return this.entries?.of(key) ?? new Map<string, E>();
  }

  private view(key: string): EntryStore<E> {
    return this.entries ? this.entries.view(key) : NO_ENTRIES;
  }

  keys(): IterableIterator<string> {
    return this.state.keys();
  }

  // ---- processing ----

  /** True when this record was already processed (it is below the task's next offset). */
  isDuplicate(src: SourceRecord): boolean {
    const next = this.nextOffsets.get(src.topic);
    return next !== undefined && src.offset < next;
  }

  accept(src: SourceRecord, decoded: Decoded, now: number): AcceptResult {
    if (src.partition !== this.partition) {
      throw new InvariantViolation(
        `task ${this.partition} was handed partition ${src.partition} of ${src.topic}`,
      );
    }
    if (this.isDuplicate(src)) return 'skipped';
    if (!decoded.ok) {
      this.advance(src);
      this.rejected.push({ source: src, reasonCode: decoded.reasonCode, detail: decoded.detail });
      return 'rejected';
    }
    const { key } = decoded.record;
    const before = this.state.get(key);
    const step = this.processor.process(before, decoded.record, { now, entries: this.view(key) });
    if (step.rejection) {
      if (step.outputs.length > 0 || (step.entries?.length ?? 0) > 0) {
        throw new InvariantViolation(
          `${this.processor.name} rejected a record but emitted outputs or wrote entries`,
        );
      }
      this.advance(src);
      // A rejecting step may remember the rejection in the key's state, nothing else.
      if (step.state !== before) this.apply(key, { state: step.state, outputs: [] }, now, undefined);
      this.rejected.push({
        source: src,
        reasonCode: step.rejection.reasonCode,
        detail: step.rejection.detail,
      });
      return 'rejected';
    }
    // Encoded before anything is applied: a bad output leaves the task as it was before this record.
    const encoded = this.encodeOutput ? this.encodeAll(src, step.outputs) : undefined;
    this.advance(src);
    this.apply(key, step, now, encoded);
    return 'processed';
  }

  /**
   * Sends the record to the DLQ without processing it: an operator's decision about a record that
   * stopped the partition (RuntimeBase.skipStoppedRecord). It must be the task's next record of
   * its topic (transaction markers may lie between the last one processed and it).
   */
  skip(src: SourceRecord, reasonCode: string, detail: string): void {
    const next = this.nextOffsets.get(src.topic);
    if (src.partition !== this.partition || (next !== undefined && next > src.offset)) {
      throw new InvariantViolation(
        `task ${this.partition} is at ${src.topic}@${next}: cannot skip ${src.topic}/${src.partition}@${src.offset}`,
      );
    }
    this.advance(src);
    this.rejected.push({ source: src, reasonCode, detail });
  }

  private encodeAll(src: SourceRecord, outputs: readonly OutputRecord[]): Buffer[] {
    const out: Buffer[] = [];
    for (const o of outputs) {
      try {
        out.push(this.encodeOutput!(o));
      } catch (e) {
        throw new OutputEncodingError(src, o, e);
      }
    }
    return out;
  }

  /**
   * Calls `tick` for every key whose timer is due at `now`, or for the first `limit` of them (the
   * runtime commits between such slices, so one transaction stays bounded); returns how many
   * keys ticked. `hasDue(now)` says whether any is left.
   */
  tickDue(now: number, limit?: number): number {
    if (!this.processor.tick) return 0;
    let n = 0;
    for (const key of this.timers.popDue(now, limit)) if (this.tick(key, now)) n++;
    return n;
  }

  /** Whether a timer is due at `now`. */
  hasDue(now: number): boolean {
    const at = this.timers.peek();
    return this.processor.tick !== undefined && at !== undefined && at <= now;
  }

  /** Calls `tick` for `key` at `now`, whether or not its timer is due; false if the key has no state. */
  tick(key: string, now: number): boolean {
    const tick = this.processor.tick;
    const s = this.state.get(key);
    if (!tick || s === undefined) return false;
    const step = tick.call(this.processor, s, key, { now, entries: this.view(key) });
    this.apply(key, step, now, this.encodeOutput ? this.encodeTicked(key, step.outputs) : undefined);
    return true;
  }

  /** The key's pending timer (undefined: none). */
  timerAt(key: string): number | undefined {
    return this.timers.get(key);
  }

  /** The earliest pending timer of any key (undefined: none). */
  nextTimerAt(): number | undefined {
    return this.timers.peek();
  }

  private advance(src: SourceRecord): void {
    this.nextOffsets.set(src.topic, src.offset + 1);
    this.offsetsMoved = true;
    if (this.oldestTimestamp === undefined || src.timestamp < this.oldestTimestamp)
      this.oldestTimestamp = src.timestamp;
  }

  private encodeTicked(key: string, outputs: readonly OutputRecord[]): Buffer[] {
    try {
      return outputs.map((o) => this.encodeOutput!(o));
    } catch (e) {
      throw new InvariantViolation(
        `a timer output of key ${key} does not encode: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
  }

  private apply(key: string, step: StepResult<S, E>, now: number, encoded: Buffer[] | undefined): void {
    if (step.state === undefined) this.state.delete(key);
    else this.state.set(key, step.state);
    if (step.entries !== undefined || step.expireEntriesBefore !== undefined) {
      if (!this.entries)
        throw new InvariantViolation(`${this.processor.name} wrote entries without an entrySerde`);
      // Tracked before they apply: an entry the step's own expiry drops is then untracked.
      if (this.processor.unsettledEntry)
        for (const c of step.entries ?? []) this.trackEntry(key, c.id, c.value);
      this.entries.apply(key, step.entries, step.expireEntriesBefore);
    }
    // Every processed key is written to the changelog: a processor that mutated its state in
    // place and returned the same object must not lose the change on restore.
    this.dirty.add(key);
    this.setTimer(key, step.state);
    this.trackUnsettled(key, step.state);
    for (const o of step.outputs) {
      this.outputs.push(o);
      this.outputTimes.push(now);
    }
    if (encoded) for (const b of encoded) this.encoded.push(b);
  }

  // ---- commit ----

  get pendingCount(): number {
    return this.outputs.length + this.rejected.length + this.dirty.size + (this.entries?.pending ?? 0);
  }

  hasPending(): boolean {
    return this.offsetsMoved || this.pendingCount > 0;
  }

  /** Takes the effects since the last drain. The caller commits them atomically or discards the task. */
  drain(): Flush {
    const changelog: Array<{ key: string; value: Buffer | null }> = [];
    for (const key of this.dirty) {
      const s = this.state.get(key);
      changelog.push({ key, value: s === undefined ? null : this.processor.stateSerde.encode(s) });
    }
    if (this.entries) for (const c of this.entries.drain()) changelog.push(c);
    if (this.offsetsMoved) {
      changelog.push({
        key: OFFSETS_KEY,
        value: Buffer.from(JSON.stringify(Object.fromEntries(this.nextOffsets))),
      });
    }
    const flush: Flush = {
      outputs: this.outputs,
      outputTimestamps: this.outputTimes,
      encoded: this.encoded,
      rejected: this.rejected,
      changelog,
      offsets: new Map(this.nextOffsets),
      oldestTimestamp: this.oldestTimestamp,
    };
    this.outputs = [];
    this.outputTimes = [];
    this.encoded = [];
    this.rejected = [];
    this.dirty = new Set();
    this.offsetsMoved = false;
    this.oldestTimestamp = undefined;
    return flush;
  }
}
