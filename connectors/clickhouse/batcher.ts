/**
 * The sink's buffer: rows grouped by table, flushed when it holds `maxRows` rows or its oldest
 * row is `maxAgeMs` old, whichever comes first. It also keeps, per topic-partition, the next
 * offset to accept: records below it are already in ClickHouse (or in this buffer) and are
 * dropped, so whatever position Kafka hands back (committed offsets are only advisory), a record
 * is never buffered twice. A partition with no position yet (not reconciled with ClickHouse)
 * accepts nothing. Pure: time is an argument.
 */
import type { TopicName, TopicRecords } from '../../schemas/topics';
import { tableOf, toRow, type Position, type Row } from './rows';

export interface BatchLimits {
  /** Flush when this many rows are buffered (over all tables). */
  readonly maxRows: number;
  /** Flush when the oldest buffered record is this old. */
  readonly maxAgeMs: number;
}

export type Offer = 'accepted' | 'skipped' | 'duplicate' | 'unpositioned';

export interface Drained {
  readonly byTable: ReadonlyMap<string, Row[]>;
  /** Next offset per topic-partition ("topic/partition") once these rows are durable. */
  readonly positions: ReadonlyMap<string, number>;
  readonly rows: number;
}

export function partitionKey(topic: TopicName, partition: number): string {
  return `${topic}/${partition}`;
}

export class Batcher {
  private byTable = new Map<string, Row[]>();
  private count = 0;
  private firstAt: number | undefined;
  private readonly next = new Map<string, number>();

  constructor(private readonly limits: BatchLimits) {
    if (!(limits.maxRows >= 1)) throw new Error('maxRows must be at least 1');
    if (!(limits.maxAgeMs >= 1)) throw new Error('maxAgeMs must be at least 1');
  }

  get rows(): number {
    return this.count;
  }

  /** Sets where a partition resumes (from ClickHouse). */
  setPosition(topic: TopicName, partition: number, nextOffset: number): void {
    this.next.set(partitionKey(topic, partition), nextOffset);
  }

  nextOffset(topic: TopicName, partition: number): number | undefined {
    return this.next.get(partitionKey(topic, partition));
  }

  /** Drops buffered rows and every position: the next reconcile starts from ClickHouse again. */
  reset(): void {
    this.byTable = new Map();
    this.count = 0;
    this.firstAt = undefined;
    this.next.clear();
  }

  /**
   * Offers one record. `value` undefined means it cannot be decoded (it is skipped, but its
   * offset is passed). Records below the partition's position are duplicates.
   */
  offer<T extends TopicName>(
    at: Position & { topic: T },
    value: TopicRecords[T] | undefined,
    now: number,
  ): Offer {
    const key = partitionKey(at.topic, at.partition);
    const next = this.next.get(key);
    if (next === undefined) return 'unpositioned';
    if (at.offset < next) return 'duplicate';
    this.next.set(key, at.offset + 1);
    if (value === undefined) return 'skipped';
    const table = tableOf(at.topic);
    let list = this.byTable.get(table);
    if (!list) this.byTable.set(table, (list = []));
    list.push(toRow(at.topic, value, at));
    this.count++;
    this.firstAt ??= now;
    return 'accepted';
  }

  isFull(): boolean {
    return this.count >= this.limits.maxRows;
  }

  isDue(now: number): boolean {
    return this.firstAt !== undefined && now - this.firstAt >= this.limits.maxAgeMs;
  }

  /** Takes the buffered rows; positions are the next offsets reached so far (skipped records included). */
  drain(): Drained {
    const drained: Drained = { byTable: this.byTable, positions: new Map(this.next), rows: this.count };
    this.byTable = new Map();
    this.count = 0;
    this.firstAt = undefined;
    return drained;
  }
}
