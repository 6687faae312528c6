/**
 * A broker-free driver for processors, like Kafka Streams' TopologyTestDriver: it feeds records
 * through the runtime's own Task (offsets, rejections, timers, changelog encoding), commits after
 * each record unless told otherwise, advances a manual clock, and can "crash" a task: pending
 * effects are lost and the task is rebuilt from its changelog, as after a kill -9.
 */
import type { InputRecord, OutputRecord, Processor, TopicWithRecord } from '../processors/api';
import type { TopicRecords } from '../schemas/topics';
import { Task, type Decoded, type Rejected, type SourceRecord } from './task';

export interface PipeOptions {
  key?: string;
  partition?: number;
  timestamp?: number;
}

export interface DriverOptions {
  /** Start of the manual clock, ms since the epoch. */
  startAt: number;
  /** Commit after every piped record (default true); otherwise call commit(). */
  autoCommit?: boolean;
  /**
   * How a piped value becomes a Decoded record; the default accepts it as is. The codec-backed
   * variant encodes to Avro and decodes through connectors/codec, as the Kafka runtime does.
   */
  decode?: (topic: TopicWithRecord, key: string, value: unknown) => Decoded;
}

export class TestDriver<S> {
  private nowMs: number;
  private readonly tasks = new Map<number, Task<S>>();
  private readonly changelogs = new Map<number, Map<string, Buffer | null>>();
  private readonly offsets = new Map<string, number>();
  private readonly committed: OutputRecord[] = [];
  private readonly deadLetters: Rejected[] = [];
  private readonly autoCommit: boolean;

  constructor(
    private readonly processor: Processor<S>,
    private readonly options: DriverOptions,
  ) {
    this.nowMs = options.startAt;
    this.autoCommit = options.autoCommit ?? true;
  }

  get now(): number {
    return this.nowMs;
  }

  pipe<T extends TopicWithRecord>(
    topic: T,
    value: TopicRecords[T],
    o: PipeOptions = {},
  ): 'processed' | 'rejected' | 'skipped' {
    const key = o.key ?? String((value as { merchant_id?: string }).merchant_id ?? '');
    const partition = o.partition ?? 0;
    const tp = `${topic}/${partition}`;
    const offset = this.offsets.get(tp) ?? 0;
    this.offsets.set(tp, offset + 1);
    const src: SourceRecord = {
      topic,
      partition,
      offset,
      key: Buffer.from(key),
      value: null,
      timestamp: o.timestamp ?? this.nowMs,
    };
    const decoded: Decoded = this.options.decode
      ? this.options.decode(topic, key, value)
      : { ok: true, record: { topic, key, value, timestamp: src.timestamp } as InputRecord };
    const result = this.task(partition).accept(src, decoded, this.nowMs);
    if (this.autoCommit) this.commit();
    return result;
  }

  /** Moves the clock forward and fires due timers (then commits, with autoCommit). */
  advanceTime(ms: number): void {
    this.setTime(this.nowMs + ms);
  }

  setTime(at: number): void {
    if (at < this.nowMs) throw new Error(`the driver's clock only moves forward (${at} < ${this.nowMs})`);
    this.nowMs = at;
    for (const t of this.tasks.values()) t.tickDue(this.nowMs);
    if (this.autoCommit) this.commit();
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
  }

  /** Loses every uncommitted effect and rebuilds each task from its changelog. */
  crash(): void {
    for (const p of [...this.tasks.keys()]) {
      this.tasks.delete(p);
      this.task(p);
    }
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

  private task(partition: number): Task<S> {
    let t = this.tasks.get(partition);
    if (!t) {
      t = new Task(this.processor, partition);
      let log = this.changelogs.get(partition);
      if (!log) this.changelogs.set(partition, (log = new Map()));
      for (const [key, value] of log) t.restore(key, value);
      this.tasks.set(partition, t);
    }
    return t;
  }
}
