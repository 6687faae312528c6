/**
 * Standby replicas (Kafka Streams' num.standby.replicas, issue 14): warm copies of tasks this
 * instance does not own, so that when a task moves here its restore reads only what its owner
 * wrote since, not the whole changelog.
 *
 * A standby is a Task that is fed the changelog partition of its task, read_committed, as a
 * restore feeds it, but continuously: it holds what a restore would build up to its position.
 * Compaction does not break that: a record the cleaner removes after the position has a later
 * record of the same key, which the standby reads. When the task is assigned here, its producer
 * is opened first (fencing: the previous owner's last transaction is completed or aborted), so the
 * changelog's end is final; the standby is read up to that end and becomes the task.
 *
 * Where the standbys go. Both assignors are functions of the sorted member ids and nothing else
 * (the co-partitioned round robin on kafkajs, librdkafka's range on rdkafka), and neither knows
 * about standbys, so Kafka Streams' placement (K copies on any K other instances) would often
 * warm the wrong one: a killed member's tasks, and tasks that move between survivors when the
 * assignment is recomputed, go where the assignor says. Each instance instead computes, from the
 * group's members (DescribeGroups), which tasks it would be given if any K other members left,
 * and keeps those warm. With K = 1 every task that moves on the loss of one instance finds its
 * state warm at its new owner. A member that joins is given tasks it has no standby for: it
 * restores them in full, as without standbys.
 *
 * The tail reader is one kafkajs consumer on both transports (the engine's admin calls are
 * kafkajs too): a group of its own over the changelog topic, every partition it does not keep
 * paused.
 */
import { AssignerProtocol, type Admin, type Consumer, type Kafka } from 'kafkajs';
import type { Task } from './task';
import type { Logger } from './runtime-base';

/** An assignor as a pure function: partitions 0..count-1 over the member ids. */
export type AssignFn = (memberIds: readonly string[], partitionCount: number) => Map<string, number[]>;

/** Subsets of `items` with 1 to `k` elements. */
function* subsets<T>(items: readonly T[], k: number): Generator<T[]> {
  function* from(start: number, chosen: T[]): Generator<T[]> {
    if (chosen.length > 0) yield chosen;
    if (chosen.length === k) return;
    for (let i = start; i < items.length; i++) yield* from(i + 1, [...chosen, items[i]!]);
  }
  yield* from(0, []);
}

/** Groups larger than this are given standbys for single losses only (the subsets grow fast). */
const MAX_EXACT_MEMBERS = 12;

/**
 * The partitions member `me` would be given, beyond those it owns now, if any `k` other members
 * left the group: where its standbys go.
 */
export function standbyPartitions(
  assign: AssignFn,
  memberIds: readonly string[],
  me: string,
  partitionCount: number,
  k: number,
): number[] {
  if (k <= 0 || !memberIds.includes(me)) return [];
  const owned = new Set(assign(memberIds, partitionCount).get(me) ?? []);
  const others = memberIds.filter((m) => m !== me);
  const depth = Math.min(k, others.length, memberIds.length > MAX_EXACT_MEMBERS ? 1 : k);
  const out = new Set<number>();
  for (const gone of subsets(others, depth)) {
    const left = memberIds.filter((m) => !gone.includes(m));
    for (const p of assign(left, partitionCount).get(me) ?? []) if (!owned.has(p)) out.add(p);
  }
  return [...out].sort((a, b) => a - b);
}

export interface GroupMember {
  readonly memberId: string;
  readonly clientId: string;
  /** Task partitions assigned to it (of any input topic; they are co-partitioned). */
  readonly partitions: readonly number[];
}

/** The group's members when it is stable (undefined while it rebalances or is empty). */
export async function stableMembers(admin: Admin, groupId: string): Promise<GroupMember[] | undefined> {
  const { groups } = await admin.describeGroups([groupId]);
  const g = groups[0];
  if (!g || g.state !== 'Stable' || g.members.length === 0) return undefined;
  return g.members.map((m) => {
    const partitions = new Set<number>();
    try {
      const a = AssignerProtocol.MemberAssignment.decode(m.memberAssignment);
      for (const ps of Object.values(a?.assignment ?? {})) for (const p of ps) partitions.add(p);
    } catch {
      // An assignment it cannot read: the member counts, its partitions are not needed here.
    }
    return { memberId: m.memberId, clientId: m.clientId, partitions: [...partitions] };
  });
}

interface Standby<S> {
  readonly task: Task<S, unknown>;
  /** The next changelog offset to apply (past records and transaction markers read). */
  position: number;
}

/** kafkajs's seek offset for "the log's start". */
const EARLIEST = '-2';

export interface StandbyOptions<S> {
  kafka: Kafka;
  /** A new, empty task for a partition, as the engine makes them (it becomes one when taken). */
  newTask: (partition: number) => Task<S, unknown>;
  changelog: string;
  groupId: string;
  log: Logger;
  /** Records applied to standbys (a counter). */
  onApplied?: (n: number) => void;
}

/** How long `take` waits for a standby to reach the changelog's end before restoring in full. */
export const TAKE_TIMEOUT_MS = 30_000;

export class StandbyReplicas<S> {
  private readonly standbys = new Map<number, Standby<S>>();
  /** Partitions the reader was told to pause (not kept here). */
  private readonly paused = new Set<number>();
  private consumer: Consumer | undefined;
  private waiters: Array<() => void> = [];
  private crashed: string | undefined;
  /** keep() calls, one at a time. */
  private chain: Promise<void> = Promise.resolve();
  private seq = 0;
  private stopped = false;

  constructor(private readonly o: StandbyOptions<S>) {}

  /** The partitions kept warm now. */
  get partitions(): number[] {
    return [...this.standbys.keys()].sort((a, b) => a - b);
  }

  /** Keeps exactly `partitions` warm: new ones are read from the changelog's start. */
  keep(partitions: readonly number[]): Promise<void> {
    // A failed call must not stop the next ones (the caller logs it and calls again).
    const next = this.chain.catch(() => undefined).then(() => this.apply(partitions));
    this.chain = next;
    return next;
  }

  private async apply(partitions: readonly number[]): Promise<void> {
    if (this.stopped) return;
    const wanted = new Set(partitions);
    for (const p of [...this.standbys.keys()]) if (!wanted.has(p)) this.drop(p);
    const added = partitions.filter((p) => !this.standbys.has(p));
    for (const p of added) this.standbys.set(p, this.fresh(p));
    if (added.length > 0) this.o.log.info('standby replicas', { partitions: this.partitions, added });
    if (this.standbys.size === 0) return;
    if (!this.consumer || this.crashed) {
      try {
        await this.startConsumer();
      } catch (e) {
        // Started again at the next call, from the start.
        this.crashed = e instanceof Error ? e.message : String(e);
        throw e;
      }
      return;
    }
    for (const p of added) {
      // Read from the start: a batch fetched before this seek is stale (eachBatch drops it).
      this.paused.delete(p);
      this.consumer.resume([{ topic: this.o.changelog, partitions: [p] }]);
      this.consumer.seek({ topic: this.o.changelog, partition: p, offset: EARLIEST });
    }
  }

  /**
   * The standby of `partition` as a task, once it has read the changelog to `end` (the end after
   * its producer fenced the previous owner); undefined when there is none or it does not get there
   * within `timeoutMs` (the caller restores in full). The standby is no longer kept.
   */
  async take(
    partition: number,
    end: number,
    timeoutMs = TAKE_TIMEOUT_MS,
  ): Promise<Task<S, unknown> | undefined> {
    const giveUpAt = Date.now() + timeoutMs;
    for (;;) {
      const s = this.standbys.get(partition);
      if (!s || this.crashed) return undefined;
      if (s.position >= end) {
        this.drop(partition);
        return s.task;
      }
      if (Date.now() >= giveUpAt) {
        this.o.log.warn('standby did not catch up; restoring in full', {
          partition,
          position: s.position,
          end,
        });
        this.drop(partition);
        return undefined;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 200);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.chain.catch(() => undefined);
    this.standbys.clear();
    await this.stopConsumer();
  }

  private fresh(partition: number): Standby<S> {
    return { task: this.o.newTask(partition), position: 0 };
  }

  private drop(partition: number): void {
    this.standbys.delete(partition);
    if (this.consumer && !this.paused.has(partition)) {
      this.paused.add(partition);
      this.consumer.pause([{ topic: this.o.changelog, partitions: [partition] }]);
    }
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  private async startConsumer(): Promise<void> {
    await this.stopConsumer();
    this.crashed = undefined;
    this.paused.clear();
    // A new group starts at the earliest offsets: every standby is read from the start again.
    for (const p of this.standbys.keys()) this.standbys.set(p, this.fresh(p));
    const consumer = this.o.kafka.consumer({
      groupId: `${this.o.groupId}-${++this.seq}`,
      readUncommitted: false,
      maxWaitTimeInMs: 100,
      maxBytesPerPartition: 4 << 20,
      retry: { retries: 5, restartOnFailure: async () => false },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (this.consumer !== consumer) return;
      this.crashed = payload.error.message;
      this.o.log.warn('standby reader crashed; it starts again at the next refresh', {
        error: payload.error.message,
      });
      this.notify();
    });
    // A fetch holding only a commit marker never reaches eachBatch: the position moves past it here.
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (this.consumer !== consumer || payload.batchSize > 0) return;
      const s = this.standbys.get(payload.partition);
      if (s && s.position > 0) s.position = Math.max(s.position, Number(payload.lastOffset) + 1);
      this.notify();
    });
    await consumer.connect();
    await consumer.subscribe({ topic: this.o.changelog, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch, pause, isStale }) => {
        if (this.consumer !== consumer || isStale()) return;
        const s = this.standbys.get(batch.partition);
        if (!s) {
          this.paused.add(batch.partition);
          pause();
          return;
        }
        let n = 0;
        for (const m of batch.messages) {
          const offset = Number(m.offset);
          if (offset < s.position) continue;
          const key = m.key?.toString('utf8');
          if (key !== undefined) s.task.restore(key, m.value);
          n++;
        }
        s.position = Math.max(s.position, Number(batch.lastOffset()) + 1);
        if (n > 0) this.o.onApplied?.(n);
        this.notify();
      },
    });
  }

  private async stopConsumer(): Promise<void> {
    const c = this.consumer;
    this.consumer = undefined;
    this.notify();
    await c?.disconnect().catch(() => undefined);
  }
}
