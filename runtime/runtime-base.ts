/**
 * What the two Kafka transports (kafka-runtime.ts on kafkajs, rdkafka-runtime.ts on node-rdkafka)
 * share: the tasks and their handles, the timer loop (ticks, commits, gauges), concurrent
 * commits, crash-only restarts, health, and the processor's clock. A transport supplies the
 * consumer and producers: how the engine starts and stops, how one task commits, and how a
 * partition is paused when its task stops on a broken invariant.
 */
import { InvariantViolation } from '../processors/api';
import type { RuntimeOptions } from './kafka-runtime';
import { Mutex, sleep } from './mutex';
import type { Decoded, Flush, SourceRecord, Task } from './task';

/** One task and what a transport keeps beside it. */
export interface TaskHandleBase<S> {
  readonly partition: number;
  readonly task: Task<S>;
  isReady: boolean;
  lastCommitAt: number;
  /** Highest record timestamp processed (for --clock=stream); 0 before the first record. */
  streamTime: number;
  /** Wall time the oldest record not yet committed was fetched (holdback_fetch_to_commit_seconds). */
  oldestFetchedAt: number | undefined;
  stoppedBy?: string;
}

export function changelogTopic(applicationId: string): string {
  return `${applicationId}-state-changelog`;
}

export abstract class RuntimeBase<S, H extends TaskHandleBase<S>> {
  protected readonly lock = new Mutex();
  protected readonly tasks = new Map<number, H>();
  protected timer: NodeJS.Timeout | undefined;
  protected generation = 0;
  protected stopping = false;
  protected restarting = false;
  /** Set when the engine failed again while a restart was bringing it up. */
  private restartAgain = false;
  protected lastTickAt = 0;
  /** Health: the last time this instance made progress (committed, or found nothing to do). */
  protected progressAt = 0;
  protected lastError: string | undefined;
  /** Consumer lag per `<topic>/<partition>`, as last seen. */
  protected readonly lag = new Map<string, number>();

  protected abstract readonly transport: string;

  constructor(protected readonly o: RuntimeOptions<S>) {}

  // ---- what a transport provides ----

  protected abstract ensureChangelogTopic(): Promise<void>;
  protected abstract startEngine(): Promise<void>;
  protected abstract stopEngine(): Promise<void>;
  /** Commits the task's pending effects in one transaction (or, at least once, sends them). */
  protected abstract commit(h: H): Promise<void>;
  /** Pauses the task's partitions; called after `h.stoppedBy` is set. */
  protected abstract pausePartition(h: H): void;
  /** Whether a consumer is running now. */
  protected abstract engineRunning(): boolean;
  /** Whether the task may tick and commit now (the transport may hold it, e.g. between a revoke and an assign). */
  protected active(h: H): boolean {
    return h.isReady && !h.stoppedBy;
  }
  protected describeError(e: unknown): string {
    return String(e);
  }
  /** A short, bounded label for an error (metrics). */
  protected errorName(e: unknown): string {
    return e instanceof Error ? (e.name || 'Error').slice(0, 40) : 'unknown';
  }

  // ---- shared ----

  get changelog(): string {
    return changelogTopic(this.o.applicationId);
  }

  protected get name(): string {
    return this.o.processor.name;
  }

  protected get prefix(): string {
    return this.o.topicPrefix ?? '';
  }

  protected physical(topic: string): string {
    return this.prefix + topic;
  }

  protected inputTopics(): string[] {
    return this.o.processor.inputs.map((t) => this.physical(t));
  }

  async start(): Promise<void> {
    await this.ensureChangelogTopic();
    await this.startEngine();
    this.timer = setInterval(
      () => void this.onTimer(),
      Math.max(10, Math.min(this.o.commitIntervalMs, this.o.tickIntervalMs) / 2),
    );
  }

  /** Graceful: commit what is pending, leave the group, close producers. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    await this.lock.run(async () => {
      for (const h of this.tasks.values()) {
        if (!this.active(h)) continue;
        await this.commit(h).catch((e) =>
          this.o.log.warn('final commit failed', { error: this.describeError(e) }),
        );
      }
    });
    await this.stopEngine();
  }

  health(): { ok: boolean; detail: Record<string, unknown> } {
    const now = this.o.clock();
    const stalled = now - this.progressAt > Math.max(30_000, this.o.sessionTimeoutMs * 2);
    const stopped = [...this.tasks.values()].filter((h) => h.stoppedBy);
    return {
      ok: !this.stopping && !stalled && stopped.length === 0 && this.engineRunning(),
      detail: {
        processor: this.name,
        transport: this.transport,
        generation: this.generation,
        tasks: [...this.tasks.values()].map((h) => ({
          partition: h.partition,
          ready: h.isReady,
          keys: h.task.size,
          lastCommitAt: h.lastCommitAt,
          stoppedBy: h.stoppedBy,
        })),
        lagByPartition: Object.fromEntries(this.lag),
        msSinceProgress: now - this.progressAt,
        lastError: this.lastError,
      },
    };
  }

  /** Sum of the consumer lag this instance saw last, over its partitions. */
  totalLag(): number {
    let n = 0;
    for (const v of this.lag.values()) n += v;
    return n;
  }

  /**
   * Crash-only recovery: drop the consumer, the producers and the in-memory state, and start
   * again from the changelog, with backoff while Kafka is unreachable.
   */
  protected async restartEngine(reason: string): Promise<void> {
    if (this.stopping) return;
    if (this.restarting) {
      // The new engine failed while the restart was still starting it (a consumer crash on
      // "coordinator is loading" right after a broker restart): go round once more, or it
      // would be left dead with nothing left to restart it.
      this.restartAgain = true;
      this.lastError = reason;
      return;
    }
    this.restarting = true;
    this.lastError = reason;
    this.o.metrics.restarts.inc({ processor: this.name, reason: reason.split(':')[0]!.slice(0, 40) });
    this.o.log.warn('restarting the engine; state will be restored from the changelog', { reason });
    try {
      let backoff = 500;
      while (!this.stopping) {
        this.restartAgain = false;
        await this.stopEngine();
        try {
          await this.startEngine();
          if (!this.restartAgain) return;
          this.o.log.warn('the engine failed again while restarting; restarting once more', {
            reason: this.lastError,
          });
        } catch (e) {
          this.lastError = `restart failed: ${this.describeError(e)}`;
          this.o.log.warn('engine restart failed; retrying', {
            error: this.describeError(e),
            backoffMs: backoff,
          });
        }
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 15_000);
      }
    } finally {
      this.restarting = false;
    }
  }

  /** A broken invariant: stop this partition loudly, never skip money. Its uncommitted work is discarded. */
  protected stopTask(h: H, e: InvariantViolation): void {
    h.stoppedBy = e.message;
    this.lastError = `partition ${h.partition} stopped: ${e.message}`;
    this.o.metrics.stoppedPartitions.set(
      { processor: this.name },
      [...this.tasks.values()].filter((x) => x.stoppedBy).length,
    );
    this.o.log.error('broken invariant: partition stopped; fix and restart the processor', {
      partition: h.partition,
      error: e.message,
    });
    this.pausePartition(h);
  }

  /**
   * Decodes a record, waiting out a schema-registry outage with backoff: an unreachable registry
   * is transient, never a reason to dead-letter. `heartbeat` keeps the group membership alive
   * where the client needs it (kafkajs; librdkafka heartbeats on its own thread).
   */
  protected async decodeWithRetry(src: SourceRecord, heartbeat?: () => Promise<void>): Promise<Decoded> {
    let backoff = 200;
    for (;;) {
      try {
        return await this.o.codec.decode(src);
      } catch (e) {
        if (!this.o.codec.isTransient(e)) throw e;
        this.o.metrics.registryRetries.inc({ processor: this.name });
        this.lastError = `registry unavailable: ${String(e)}`;
        this.o.log.warn('schema registry unavailable; retrying (nothing goes to the DLQ)', {
          backoffMs: backoff,
        });
        await sleep(backoff);
        await heartbeat?.().catch(() => undefined);
        backoff = Math.min(backoff * 2, 10_000);
      }
    }
  }

  /** What a committed task transaction says, for the metrics; the task's fetch clock starts over. */
  protected recordCommit(
    h: H,
    t0: bigint,
    end: number,
    flush: Flush,
    outputsByTopic: ReadonlyMap<string, number>,
  ): void {
    this.o.metrics.recordCommit(this.name, {
      seconds: Number(process.hrtime.bigint() - t0) / 1e9,
      end,
      fetchedAt: h.oldestFetchedAt,
      flush,
      outputsByTopic,
    });
    h.oldestFetchedAt = undefined;
  }

  /** The consumer lag of one input partition, for health and the gauge. */
  protected recordLag(physicalTopic: string, partition: number, lag: number): void {
    this.lag.set(`${physicalTopic}/${partition}`, lag);
    this.o.metrics.consumerLag.set(
      { processor: this.name, topic: physicalTopic.slice(this.prefix.length), partition: String(partition) },
      lag,
    );
  }

  /** `now` for a processor step: the wall clock, or the task's stream time moved by this record. */
  protected processorNow(h: H, recordTimestamp: number): number {
    if (!this.o.streamTime) return this.o.clock();
    if (recordTimestamp > h.streamTime) h.streamTime = recordTimestamp;
    return h.streamTime;
  }

  /**
   * Commits every task whose commit interval has passed, concurrently: each task has its own
   * transactional producer, so four partitions cost one transaction's round trips, not four.
   * False when a commit failed (the engine is restarting).
   */
  protected async commitDue(now: number): Promise<boolean> {
    const due: H[] = [];
    for (const h of this.tasks.values()) {
      if (this.active(h) && now - h.lastCommitAt >= this.o.commitIntervalMs) due.push(h);
    }
    if (due.length === 0) return true;
    const ok = await Promise.all(due.map((h) => this.commitOrRestart(h)));
    return ok.every(Boolean);
  }

  /** Commits; on failure the in-memory state is ahead of what is durable, so the engine restarts. */
  protected async commitOrRestart(h: H): Promise<boolean> {
    try {
      await this.commit(h);
      return true;
    } catch (e) {
      this.o.metrics.aborts.inc({ processor: this.name, reason: this.errorName(e) });
      // Not awaited: the restart waits for the current batch to return.
      void this.restartEngine(`commit failed on partition ${h.partition}: ${this.describeError(e)}`);
      return false;
    }
  }

  /** Ticks due timers (wall or stream time), commits what is due, refreshes the gauges. */
  protected async onTimer(): Promise<void> {
    if (this.stopping || this.restarting) return;
    const generation = this.generation;
    await this.lock.run(async () => {
      if (generation !== this.generation || !this.engineRunning()) return;
      const now = this.o.clock();
      const tick = now - this.lastTickAt >= this.o.tickIntervalMs;
      if (tick) this.lastTickAt = now;
      let keys = 0;
      for (const h of this.tasks.values()) {
        if (!h.isReady || h.stoppedBy) continue;
        keys += h.task.size;
        if (!tick || !this.active(h)) continue;
        try {
          // Stream time: nothing is due before the task has seen a record.
          if (!this.o.streamTime) h.task.tickDue(now);
          else if (h.streamTime > 0) h.task.tickDue(h.streamTime);
        } catch (e) {
          if (!(e instanceof InvariantViolation)) throw e;
          this.stopTask(h, e);
        }
      }
      if (!(await this.commitDue(now))) return;
      this.o.metrics.stateKeys.set({ processor: this.name }, keys);
      if (this.o.processor.unsettled) {
        const ready = [...this.tasks.values()].filter((h) => h.isReady).map((h) => h.task);
        this.o.metrics.reportUnsettled(this.name, ready, now);
      }
      if (this.totalLag() === 0) this.progressAt = now;
    });
  }
}
