/**
 * A broker-free driver for processors, like Kafka Streams' TopologyTestDriver: it feeds records
 * through the runtime's own Task (offsets, rejections, timers, changelog encoding), commits after
 * each operation unless told otherwise, drives a manual clock, and can "crash" as after a kill -9.
 *
 * Time. A record is processed at the driver's clock (ctx.now) and fires no timer. setTime and
 * advanceTime move the clock forward and fire each timer that falls due on the way at its own
 * time, earliest first, as a runtime that ticks often would; a timer that was already due (a
 * record can leave one behind the clock) fires at once, at the current time. For processor-level
 * tests, setClock moves the clock either way without firing anything, and tick ticks one key at
 * the current time whether or not its timer is due.
 *
 * Crashes. crash() discards every effect since the last commit and rebuilds each task from its
 * changelog; the driver checks that the restored offsets resume exactly at the first record piped
 * since then. By default those records are dropped from their topics, as if never produced (the
 * next records piped take their offsets). With `redeliver`, Kafka redelivers them, and the restart
 * is replayed deterministically: the clock goes back to its reading at the last commit and every
 * operation since (pipe, setTime, advanceTime, setClock, tick) runs again. A runtime with
 * exactly-once effects then ends with the state and committed outputs it would have had without
 * the crash.
 *
 * Interleaving (the runtime's merge). pipe() hands one record to its task at once, as if it was
 * fetched alone. To test time order, enqueue() appends records to their topic-partitions without
 * processing them (Kafka has them, the task has not fetched them), fetch() moves some of one
 * partition into its task's PartitionGroup, the same class the Kafka runtime buffers fetches
 * in, and run() processes what the group says comes next in time order, exactly as the runtime
 * does (the driver knows every partition's end, so it answers the group's probes at once).
 * restart() loses what was not committed, including the buffers, and the next fetch starts
 * again where the restored offsets say, as a consumer after a crash does.
 */
import {
  InvariantViolation,
  type StepContext,
  type InputRecord,
  type OutputRecord,
  type Processor,
  type StepResult,
  type TopicWithRecord,
} from '../processors/api';
import type { TopicRecords } from '../schemas/topics';
import { eventTime } from './event-time';
import { PartitionGroup } from './partition-group';
import type { Buffered } from './runtime-base';
import { Task, type AcceptResult, type Decoded, type Rejected, type SourceRecord } from './task';

export interface PipeOptions {
  key?: string;
  partition?: number;
  timestamp?: number;
}

export interface DriverOptions {
  /** Start of the manual clock, ms since the epoch. */
  startAt: number;
  /** Commit after every operation (default true); otherwise call commit(). */
  autoCommit?: boolean;
  /**
   * How a piped value becomes a Decoded record; the default accepts it as is. The codec-backed
   * variant encodes to Avro and decodes through connectors/codec, as the Kafka runtime does.
   */
  decode?: (topic: TopicWithRecord, key: string, value: unknown) => Decoded;
  /** max.task.idle.ms for run(): 0 (default) or -1; a positive wait needs a wall clock the driver does not have. */
  maxTaskIdleMs?: number;
  /** Encode and decode every new state before the task keeps it, as a restore would (default false). */
  roundTripState?: boolean;
  /** Fail when the processor changes the state it was given: its encoding before and after each call must match (default false). */
  checkPurity?: boolean;
}

/** One call of the processor: which, for what key, at what ctx.now, and what it returned. */
export interface DriverStep<S, E = never> {
  readonly kind: 'process' | 'tick';
  readonly partition: number;
  readonly key: string;
  readonly now: number;
  /** As the processor returned it, before any roundTripState. */
  readonly result: StepResult<S, E>;
}

/** A piped record, where Kafka keeps it. */
export interface PipedRecord {
  readonly topic: TopicWithRecord;
  readonly partition: number;
  readonly offset: number;
  readonly key: string;
  readonly value: unknown;
  readonly timestamp: number;
}

/** An operation since the last commit: what a crash with redelivery replays. */
type Op =
  | { readonly op: 'pipe'; readonly record: PipedRecord }
  | { readonly op: 'setTime'; readonly at: number }
  | { readonly op: 'setClock'; readonly at: number }
  | { readonly op: 'tick'; readonly key: string; readonly partition: number };

export class TestDriver<S, E = never> {
  private nowMs: number;
  /** The processor as the tasks see it: each call recorded, and checked or round-tripped as the options say. */
  private readonly observed: Processor<S, E>;
  private readonly tasks = new Map<number, Task<S, E>>();
  private readonly changelogs = new Map<number, Map<string, Buffer | null>>();
  /** The end of each input topic-partition: the offset the next piped record gets. */
  private readonly logEnds = new Map<string, { topic: TopicWithRecord; partition: number; end: number }>();
  private readonly committed: OutputRecord[] = [];
  private readonly deadLetters: Rejected[] = [];
  private readonly stepLog: Array<DriverStep<S, E>> = [];
  private readonly autoCommit: boolean;
  private sinceCommit: Op[] = [];
  /** Every enqueued record per topic-partition (the merged API's logs). */
  private readonly logs = new Map<string, PipedRecord[]>();
  private readonly groups = new Map<number, PartitionGroup<Buffered>>();
  /** The next offset fetch() takes per topic-partition (absent: the task's restored offset). */
  private readonly positions = new Map<string, number>();
  /** The clock's reading at the last commit (or restart): where a replay starts. */
  private committedAt: number;
  private partitionInUse = 0;

  constructor(
    private readonly processor: Processor<S, E>,
    private readonly options: DriverOptions,
  ) {
    this.nowMs = options.startAt;
    this.committedAt = options.startAt;
    this.autoCommit = options.autoCommit ?? true;
    this.observed = this.observe(processor);
  }

  get now(): number {
    return this.nowMs;
  }

  /** Every call of the processor so far, in order, including those whose effects a crash lost. */
  get steps(): ReadonlyArray<DriverStep<S, E>> {
    return this.stepLog;
  }

  /** Appends a record to its topic-partition and processes it at the current clock. */
  pipe<T extends TopicWithRecord>(topic: T, value: TopicRecords[T], o: PipeOptions = {}): AcceptResult {
    const record = this.append(topic, value, o);
    this.sinceCommit.push({ op: 'pipe', record });
    const result = this.deliver(record);
    if (this.autoCommit) this.commit();
    return result;
  }

  /** Moves the clock forward by `ms`, firing due timers at their own times (see setTime). */
  advanceTime(ms: number): void {
    this.setTime(this.nowMs + ms);
  }

  /**
   * Moves the clock forward to `at`. Each timer due by then fires at its own time, earliest first
   * (one already due fires now), and a timer a tick sets is fired too if it falls due by `at`.
   */
  setTime(at: number): void {
    if (at < this.nowMs) throw new Error(`the driver's clock only moves forward (${at} < ${this.nowMs})`);
    this.sinceCommit.push({ op: 'setTime', at });
    this.fireUntil(at);
    if (this.autoCommit) this.commit();
  }

  /** Sets the clock, backwards too, and fires nothing: timers then due fire at the next setTime. */
  setClock(at: number): void {
    this.sinceCommit.push({ op: 'setClock', at });
    this.nowMs = at;
  }

  /** Ticks `key` at the current clock whether or not its timer is due; undefined if it has no state. */
  tick(key: string, partition = 0): DriverStep<S, E> | undefined {
    if (!this.processor.tick) throw new Error(`${this.processor.name} has no tick`);
    this.sinceCommit.push({ op: 'tick', key, partition });
    const step = this.tickKey(key, partition);
    if (this.autoCommit) this.commit();
    return step;
  }

  /** Makes every task's pending effects durable, as one transaction per task would. */
  commit(): void {
    for (const [p, t] of this.tasks) {
      const flush = t.drain();
      this.committed.push(...flush.outputs);
      this.deadLetters.push(...flush.rejected);
      const log = this.changelogs.get(p)!;
      for (const { key, value } of flush.changelog) log.set(key, value);
    }
    this.sinceCommit = [];
    this.committedAt = this.nowMs;
  }

  /**
   * Loses every uncommitted effect and rebuilds each task from its changelog (see Crashes above).
   * Returns the records piped since the last commit: dropped, or with `redeliver` processed again.
   */
  crash(o: { redeliver?: boolean } = {}): PipedRecord[] {
    for (const p of [...this.tasks.keys()]) {
      this.tasks.delete(p);
      this.task(p);
    }
    this.groups.clear();
    this.positions.clear();
    const ops = this.sinceCommit;
    const lost = ops.flatMap((op) => (op.op === 'pipe' ? [op.record] : []));
    this.checkResumePoints(lost);
    if (!o.redeliver) {
      for (const [tp, log] of this.logEnds) {
        const first = lost.find((r) => r.topic === log.topic && r.partition === log.partition);
        if (first) this.logEnds.set(tp, { ...log, end: first.offset });
      }
      this.sinceCommit = [];
      this.committedAt = this.nowMs;
      return lost;
    }
    this.nowMs = this.committedAt;
    for (const op of ops) {
      if (op.op === 'pipe') this.deliver(op.record);
      else if (op.op === 'setTime') this.fireUntil(op.at);
      else if (op.op === 'setClock') this.nowMs = op.at;
      else this.tickKey(op.key, op.partition);
    }
    return lost;
  }

  /** Appends a record to its topic-partition without processing it; returns its offset. */
  enqueue<T extends TopicWithRecord>(topic: T, value: TopicRecords[T], o: PipeOptions = {}): number {
    const record = this.append(topic, value, o);
    const tp = `${topic}/${record.partition}`;
    let list = this.logs.get(tp);
    if (!list) this.logs.set(tp, (list = []));
    list.push(record);
    return record.offset;
  }

  /** The record's place at the end of its topic-partition. */
  private append<T extends TopicWithRecord>(topic: T, value: TopicRecords[T], o: PipeOptions): PipedRecord {
    const key = o.key ?? String((value as { merchant_id?: string }).merchant_id ?? '');
    const partition = o.partition ?? 0;
    const tp = `${topic}/${partition}`;
    const log = this.logEnds.get(tp) ?? { topic, partition, end: 0 };
    this.logEnds.set(tp, { ...log, end: log.end + 1 });
    const record: PipedRecord = {
      topic,
      partition,
      offset: log.end,
      key,
      value,
      timestamp: o.timestamp ?? this.nowMs,
    };
    return record;
  }

  /** Moves up to `max` enqueued records of one topic-partition into its task's buffer (a fetch); returns how many. */
  fetch(topic: TopicWithRecord, partition = 0, max = Number.POSITIVE_INFINITY): number {
    const tp = `${topic}/${partition}`;
    const task = this.task(partition);
    const from = this.positions.get(tp) ?? task.nextOffset(topic) ?? 0;
    const log = this.logs.get(tp) ?? [];
    const items: Buffered[] = [];
    for (const r of log) {
      if (r.offset < from) continue;
      if (items.length >= max) break;
      const decoded = this.decode(r);
      items.push({
        src: this.sourceOf(r),
        decoded,
        offset: r.offset,
        fetchedAt: this.nowMs,
        time: decoded.ok ? eventTime(decoded.record) : Number.NEGATIVE_INFINITY,
      });
    }
    const to = items.length > 0 ? items[items.length - 1]!.offset + 1 : from;
    this.positions.set(tp, to);
    this.group(partition).add(topic, items, this.nowMs, to);
    return items.length;
  }

  /** Records enqueued but not yet fetched, over every topic-partition. */
  get unfetched(): number {
    let n = 0;
    for (const [tp, log] of this.logs) {
      const [topic, partition] = splitTopicPartition(tp);
      const from = this.positions.get(tp) ?? this.tasks.get(partition)?.nextOffset(topic) ?? 0;
      n += log.filter((r) => r.offset >= from).length;
    }
    return n;
  }

  /**
   * Processes buffered records in time order while each task's PartitionGroup says the next is
   * known to be next (a partition with unfetched records is waited for); commits unless
   * autoCommit is off. Returns how many records were handed to the processor.
   */
  run(): number {
    let n = 0;
    for (const [partition, group] of this.groups) {
      const task = this.task(partition);
      for (;;) {
        const r = group.readiness(this.nowMs);
        if (r.kind === 'probe') {
          for (const topic of r.topics) group.setEnd(topic, this.logEnd(topic, partition), this.nowMs, 0);
          continue;
        }
        if (r.kind !== 'ready') break;
        const b = group.next()!;
        this.partitionInUse = partition;
        task.accept(b.src, b.decoded, this.nowMs);
        n++;
      }
    }
    if (this.autoCommit) this.commit();
    return n;
  }

  /**
   * As a processor killed and started again while Kafka keeps every record: every effect since
   * the last commit and every buffer is lost, tasks are restored from their changelogs, and the
   * next fetch of each partition starts at its restored offset.
   */
  restart(): void {
    for (const p of [...this.tasks.keys()]) {
      this.tasks.delete(p);
      this.task(p);
    }
    this.groups.clear();
    this.positions.clear();
    this.sinceCommit = [];
    this.committedAt = this.nowMs;
  }

  private logEnd(topic: string, partition: number): number {
    return this.logEnds.get(`${topic}/${partition}`)?.end ?? 0;
  }

  private group(partition: number): PartitionGroup<Buffered> {
    let g = this.groups.get(partition);
    if (!g) {
      g = new PartitionGroup<Buffered>({
        topics: this.processor.inputs,
        maxTaskIdleMs: this.options.maxTaskIdleMs ?? 0,
        maxBuffered: Number.MAX_SAFE_INTEGER,
      });
      if ((this.options.maxTaskIdleMs ?? 0) > 0) {
        throw new Error('the driver has no wall clock to wait by: use maxTaskIdleMs 0 or -1');
      }
      const task = this.task(partition);
      for (const topic of this.processor.inputs) {
        const next = task.nextOffset(topic);
        if (next !== undefined) g.setFetched(topic, next);
      }
      this.groups.set(partition, g);
    }
    return g;
  }

  /** Committed outputs, optionally of one topic. */
  outputs<T extends TopicWithRecord>(topic?: T): Array<Extract<OutputRecord, { topic: T }>> {
    return this.committed.filter((o) => topic === undefined || o.topic === topic) as Array<
      Extract<OutputRecord, { topic: T }>
    >;
  }

  /** Committed rejections: what the Kafka runtime sends to the DLQ. */
  rejected(): readonly Rejected[] {
    return this.deadLetters;
  }

  state(key: string, partition = 0): S | undefined {
    return this.tasks.get(partition)?.get(key);
  }

  /** The key's entries (Processor.entrySerde), as the task holds them now. */
  entries(key: string, partition = 0): ReadonlyMap<string, E> {
    return this.tasks.get(partition)?.entriesOf(key) ?? new Map<string, E>();
  }

  /** The partition's withheld-and-unsettled totals, as the Kafka runtime reports them in gauges. */
  unsettled(partition = 0): ReturnType<Task<S, E>['unsettled']> {
    return this.task(partition).unsettled();
  }

  /** The key's pending timer (undefined: none). */
  timer(key: string, partition = 0): number | undefined {
    return this.tasks.get(partition)?.timerAt(key);
  }

  private deliver(r: PipedRecord): AcceptResult {
    this.partitionInUse = r.partition;
    return this.task(r.partition).accept(this.sourceOf(r), this.decode(r), this.nowMs);
  }

  private sourceOf(r: PipedRecord): SourceRecord {
    return {
      topic: r.topic,
      partition: r.partition,
      offset: r.offset,
      key: Buffer.from(r.key),
      value: null,
      timestamp: r.timestamp,
    };
  }

  private decode(r: PipedRecord): Decoded {
    return this.options.decode
      ? this.options.decode(r.topic, r.key, r.value)
      : {
          ok: true,
          record: { topic: r.topic, key: r.key, value: r.value, timestamp: r.timestamp } as InputRecord,
        };
  }

  private tickKey(key: string, partition: number): DriverStep<S, E> | undefined {
    const n = this.stepLog.length;
    this.partitionInUse = partition;
    return this.task(partition).tick(key, this.nowMs) ? this.stepLog[n] : undefined;
  }

  /** Fires each timer due by `at` at its own time (or now, if already due), earliest first; the clock ends at `at`. */
  private fireUntil(at: number): void {
    while (this.processor.tick) {
      const due = this.earliestTimer();
      if (due === undefined || due > at) break;
      const now = Math.max(due, this.nowMs);
      this.nowMs = now;
      for (const [p, t] of this.tasks) {
        this.partitionInUse = p;
        t.tickDue(now);
      }
      const next = this.earliestTimer();
      if (next !== undefined && next <= now) {
        throw new Error(`${this.processor.name}: a tick at ${now} left a timer at ${next}, not after it`);
      }
    }
    this.nowMs = at;
  }

  private earliestTimer(): number | undefined {
    let at: number | undefined;
    for (const t of this.tasks.values()) {
      const next = t.nextTimerAt();
      if (next !== undefined && (at === undefined || next < at)) at = next;
    }
    return at;
  }

  /** A restarted consumer resumes at the restored offsets: they must be the first records not committed. */
  private checkResumePoints(lost: readonly PipedRecord[]): void {
    for (const { topic, partition, end } of this.logEnds.values()) {
      const first = lost.find((r) => r.topic === topic && r.partition === partition)?.offset ?? end;
      const resumeAt = this.tasks.get(partition)?.nextOffset(topic) ?? 0;
      if (resumeAt !== first) {
        throw new InvariantViolation(
          `${topic}/${partition} would resume at offset ${resumeAt} after a crash, but ${first} is the first record not committed`,
        );
      }
    }
  }

  private observe(p: Processor<S, E>): Processor<S, E> {
    const serde = p.stateSerde;
    const { roundTripState = false, checkPurity = false } = this.options;
    const call = (
      kind: DriverStep<S, E>['kind'],
      key: string,
      state: S | undefined,
      now: number,
      run: () => StepResult<S, E>,
    ): StepResult<S, E> => {
      const before = checkPurity && state !== undefined ? serde.encode(state) : undefined;
      const result = run();
      if (before && state !== undefined && !serde.encode(state).equals(before)) {
        throw new Error(`${p.name} mutated the state it was given (${kind} of key ${key} at ${now})`);
      }
      this.stepLog.push({ kind, partition: this.partitionInUse, key, now, result });
      if (!roundTripState) return result;
      const entrySerde = p.entrySerde;
      const entries =
        entrySerde &&
        result.entries?.map((c) => ({
          ...c,
          value: c.value === undefined ? undefined : entrySerde.decode(entrySerde.encode(c.value)),
        }));
      const roundTripped =
        result.state === undefined || result.state === state
          ? result.state
          : serde.decode(serde.encode(result.state));
      return { ...result, state: roundTripped, ...(entries && { entries }) };
    };
    const { timerAt, tick, unsettled, unsettledEntry } = p;
    return {
      name: p.name,
      inputs: p.inputs,
      outputs: p.outputs,
      stateSerde: serde,
      ...(p.entrySerde && { entrySerde: p.entrySerde }),
      process: (state, input, ctx) =>
        call('process', input.key, state, ctx.now, () => p.process(state, input, ctx)),
      ...(timerAt && { timerAt: (s: S) => timerAt.call(p, s) }),
      ...(tick && {
        tick: (s: S, key: string, ctx: StepContext<E>) =>
          call('tick', key, s, ctx.now, () => tick.call(p, s, key, ctx)),
      }),
      ...(unsettled && { unsettled: (s: S) => unsettled.call(p, s) }),
      ...(unsettledEntry && { unsettledEntry: (e: E) => unsettledEntry.call(p, e) }),
    };
  }

  private task(partition: number): Task<S, E> {
    let t = this.tasks.get(partition);
    if (!t) {
      t = new Task(this.observed, partition);
      let log = this.changelogs.get(partition);
      if (!log) this.changelogs.set(partition, (log = new Map()));
      for (const [key, value] of log) t.restore(key, value);
      this.tasks.set(partition, t);
    }
    return t;
  }
}

function splitTopicPartition(tp: string): [string, number] {
  const i = tp.lastIndexOf('/');
  return [tp.slice(0, i), Number(tp.slice(i + 1))];
}
