/**
 * The engine, once for both Kafka transports (kafka-runtime.ts on kafkajs, rdkafka-runtime.ts on
 * node-rdkafka), as Kafka Streams keeps one engine behind its KafkaClientSupplier:
 *
 * - tasks: partition p of every (co-partitioned) input topic is task p, with its state, timers,
 *   transactional producer and a PartitionGroup that buffers fetched records and hands them
 *   over in time order (runtime/partition-group.ts, `--max-task-idle-ms`);
 * - assignment, revocation and restore: fence the task's transactional id, read its changelog
 *   partition to the end, position the consumer where the restored state ends;
 * - the hot path: decode (waiting out a registry outage), merge, process, commit early when a
 *   task holds too much, pause fetching a partition whose buffer is full;
 * - commits: one transaction per task with its outputs, dead letters, changelog entries and
 *   input offsets, in one wire layout (recordsOf);
 * - topic checks, the timer loop (ticks, commits, gauges), crash-only restarts, health, and the
 *   processor's clock.
 *
 * A transport is a thin adapter: it runs the consumer and hands fetched records, assignments and
 * revocations to the engine; it pauses, resumes and positions partitions; it opens a task's
 * producer (whose commit is one transaction); it reads a changelog and a partition's end
 * offsets; it answers partition counts and creates the changelog topic.
 */
import { createHash } from 'node:crypto';
import { Kafka, logLevel, type Admin, type KafkaConfig } from 'kafkajs';
import { InvariantViolation, type Processor } from '../processors/api';
import { Restarter, retrying } from '../connectors/backoff';
import { eventTime } from './event-time';
import { partitionOfKey } from '../connectors/partitioner';
import { TOPIC_SPECS } from '../schemas/topics';
import type { RunOptions } from './config';
import type { RuntimeMetrics } from './metrics';
import { Mutex } from '../connectors/mutex';
import { whileRetriable } from '../connectors/kafka-read';
import { PartitionGroup, type Stamped } from './partition-group';
import { stableMembers, standbyPartitions, StandbyReplicas, type AssignFn } from './standby';
import {
  checkInternalTopic,
  committedPartitions,
  DurabilityError,
  internalTopicConfig,
  internalTopicSettings,
  recovery,
} from './internal-topics';
import {
  OutputEncodingError,
  Task,
  type Decoded,
  type Flush,
  type Rejected,
  type SourceRecord,
} from './task';

/**
 * How long the runtime's lock may stay held before /live reports the process wedged. Every
 * librdkafka and kafkajs call under it has its own shorter deadline (within(), 30 s at most), and
 * a commit or a restore step takes seconds, so five minutes means nothing is moving.
 */
export const LIVENESS_LOCK_MS = 5 * 60_000;

/** The inputs producers key by merchant_id and partition with murmur2 (docs/integration.md). */
const KEYED_BY_MERCHANT: ReadonlySet<string> = new Set(
  TOPIC_SPECS.filter((t) => t.role === 'input' && t.keyField === 'merchant_id').map((t) => t.name),
);

export type Guarantee = 'exactly_once' | 'at_least_once';

export interface RuntimeCodec {
  /** May return a promise when the writer schema is not cached yet. Throws a transient error on a registry outage. */
  decode(src: SourceRecord): Decoded | Promise<Decoded>;
  encode(topic: string, value: unknown): Buffer;
  /** A failure that is not the record's fault (registry down): retried, never dead-lettered. */
  isTransient(err: unknown): boolean;
}

export interface DeadLetterSink {
  topic: string;
  /** The DLQ record's value for a rejected source record, encoded. */
  encode(rejected: Rejected, now: number): Buffer;
}

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface RuntimeOptions<S> {
  processor: Processor<S, unknown>;
  kafka: KafkaConfig;
  /** Consumer group; also the prefix of transactional ids and the changelog topic. */
  applicationId: string;
  /**
   * Prepended to every contract topic name on the wire (default ''). Processors speak contract
   * names; a prefix gives tests, simulations and tenants their own topics.
   */
  topicPrefix?: string;
  /**
   * Prepended to the output and DLQ topics instead of topicPrefix (holdback rebuild writes its
   * outputs beside the published ones, to compare them).
   */
  outputPrefix?: string;
  /**
   * Where each input partition stops (exclusive), keyed `<contract topic>/<partition>`; a
   * partition not named stops at 0. Records at or past it are never processed and its fetching
   * pauses there; reachedStopBounds() says when every partition got there (holdback rebuild stops
   * at the offsets another group committed). Absent: no bound.
   */
  stopAt?: ReadonlyMap<string, number>;
  codec: RuntimeCodec;
  deadLetters: DeadLetterSink;
  /** The wall clock: commits, metrics, idle waits, and `now` for processors unless streamTime is set. */
  clock: () => number;
  /**
   * The time the rules run at under the wall clock (processors' `now`, their timers): the wall
   * clock corrected by the Kafka cluster's (connectors/broker-clock.ts). Default: clock.
   */
  rulesClock?: () => number;
  /**
   * Processors' `now` is the task's stream time (the highest event time it processed) instead of
   * the wall clock; timers fire as stream time passes them (--clock=stream).
   */
  streamTime?: boolean;
  guarantee: Guarantee;
  commitIntervalMs: number;
  /** How often the wall clock fires due timers. */
  tickIntervalMs: number;
  /** Commit early when a task holds this many pending effects. */
  maxPendingPerTask: number;
  /** max.task.idle.ms (runtime/partition-group.ts): 0 by default, a positive wait, or -1. */
  maxTaskIdleMs?: number;
  /** Records buffered per input partition before its fetching pauses (default 2000). */
  maxBufferedPerPartition?: number;
  sessionTimeoutMs: number;
  /** Consumer fetch bounds (tests use tiny ones to prove fetch sizes change nothing). */
  maxBytesPerPartition?: number;
  /** librdkafka compression.codec of everything produced (rdkafka transport only; default none). */
  compression?: RunOptions['compression'];
  /**
   * Standby replicas (runtime/standby.ts): keep warm copies of the tasks this instance would be
   * given if up to this many other instances left the group. 0 (default): none.
   */
  standbyReplicas?: number;
  /** The changelog's replication factor (default min(3, brokers)); checked at start. */
  internalReplicationFactor?: number;
  /** The changelog's min.insync.replicas (default min(2, replication factor)); checked at start. */
  internalMinInsyncReplicas?: number;
  metrics: RuntimeMetrics;
  log: Logger;
}

/** A record as a transport hands it to Kafka: every output of task p goes to partition p. */
export interface OutgoingRecord {
  topic: string;
  partition: number;
  key: Buffer | null;
  value: Buffer | null;
  /** Kafka timestamp (ms); the producer's clock when absent. */
  timestamp?: number;
}

export interface PartitionOffset {
  /** Physical topic name. */
  topic: string;
  partition: number;
  offset: number;
}

/** Where a partition's log starts and (read_committed) ends, as the broker answered. */
export interface PartitionBounds {
  readonly start: number;
  readonly end: number;
}

/** A task's producer: its transactional id is `<applicationId>-<partition>`; opening it fences earlier owners. */
export interface TaskProducer {
  /**
   * exactly_once: the records and the group offsets in one transaction, committed or aborted
   * (then it throws). at_least_once: the records, acknowledged, then the offsets.
   */
  commit(records: readonly OutgoingRecord[], offsets: readonly PartitionOffset[]): Promise<void>;
  close(): Promise<void>;
}

/** A fetched record, decoded, waiting in its task's PartitionGroup. */
export interface Buffered extends Stamped {
  readonly src: SourceRecord;
  readonly decoded: Decoded;
  /** Wall time it was fetched (holdback_fetch_to_commit_seconds). */
  readonly fetchedAt: number;
}

/** How often the standbys' placement is checked against the group's members (ms). */
const STANDBY_REFRESH_MS = 2000;

/** A restore in progress logs how far it is this often (ms). */
const RESTORE_LOG_EVERY_MS = 5000;

/** One task and what a transport keeps beside it. */
export interface TaskHandleBase<S> {
  readonly partition: number;
  /** Replaced by a standby's copy when the task opens from one (openTasks). */
  task: Task<S, unknown>;
  readonly group: PartitionGroup<Buffered>;
  producer: TaskProducer | undefined;
  isReady: boolean;
  lastCommitAt: number;
  /** Highest event time processed (for --clock=stream); 0 before the first record. */
  streamTime: number;
  /** Wall time the oldest record not yet committed was fetched (holdback_fetch_to_commit_seconds). */
  oldestFetchedAt: number | undefined;
  /**
   * The commit under way while the task goes on processing (commitDue), if any: the task's next
   * commit waits for it. Resolves false when it failed.
   */
  inflight?: Promise<boolean>;
  /**
   * Set for good when a commit failed: what came after it must never be committed, so every later
   * commit of this handle refuses. The engine restarts and opens a new handle from the changelog.
   */
  commitFailed?: string;
  stoppedBy?: string;
  /** The record that stopped the task (undefined: a timer did, or it runs). */
  stoppedAt?: SourceRecord;
}

/** What `skipStoppedRecord` was asked: the record an operator judged, and why it may go. */
export interface SkipRequest {
  readonly partition: number;
  readonly topic: string;
  readonly offset: number;
  readonly note: string;
}

/** The answer to a SkipRequest: an HTTP status and what was done or why not. */
export interface SkipResult {
  readonly status: 200 | 404 | 409 | 503;
  readonly message: string;
}

/** SHA-256 of a record's value, hex (empty string for a tombstone): how logs name a payload. */
export function payloadSha256(src: SourceRecord): string {
  return src.value ? createHash('sha256').update(src.value).digest('hex') : '';
}

export function changelogTopic(applicationId: string): string {
  return `${applicationId}-state-changelog`;
}

/**
 * The wire layout of one commit of task `partition`: outputs, dead letters and changelog
 * entries, all to the task's own partition number. Outputs are co-partitioned with the inputs by
 * merchant, whatever their key: holdback.loans.v1 is keyed by loan_id, but a loan never changes
 * merchant, so compaction still sees each key in one partition, and a downstream processor
 * (eligibility) reads a merchant's loan states beside its sales. State of task p lives in
 * changelog partition p, whatever its key hashes to.
 */
export function recordsOf(
  flush: Flush,
  partition: number,
  now: number,
  o: {
    codec: RuntimeCodec;
    deadLetters: DeadLetterSink;
    physical: (topic: string) => string;
    changelog: string;
  },
): OutgoingRecord[] {
  const out: OutgoingRecord[] = [];
  flush.outputs.forEach((r, i) => {
    out.push({
      topic: o.physical(r.topic),
      partition,
      key: Buffer.from(r.key, 'utf8'),
      value: flush.encoded[i] ?? o.codec.encode(r.topic, r.value),
      timestamp: flush.outputTimestamps[i],
    });
  });
  for (const r of flush.rejected) {
    out.push({
      topic: o.physical(o.deadLetters.topic),
      partition,
      key: r.source.key,
      value: o.deadLetters.encode(r, now),
      timestamp: now,
    });
  }
  for (const c of flush.changelog) {
    out.push({
      topic: o.changelog,
      partition,
      key: Buffer.from(c.key, 'utf8'),
      value: c.value,
      timestamp: now,
    });
  }
  return out;
}

/** Thrown out of a wait when the engine stops or restarts: the record in hand is not processed. */
class Interrupted extends Error {}

/** Records a task buffers per input partition before its fetch pauses (--max-buffered-per-partition). */
export const DEFAULT_MAX_BUFFERED = 2000;

export abstract class RuntimeBase<S, H extends TaskHandleBase<S>> {
  protected readonly lock = new Mutex();
  protected readonly tasks = new Map<number, H>();
  protected timer: NodeJS.Timeout | undefined;
  protected generation = 0;
  protected stopping = false;
  private readonly restarter = new Restarter({
    initialMs: 500,
    maxMs: 15_000,
    stop: () => this.stopping,
    attempt: async () => {
      await this.stopEngine();
      await this.closeTasks();
      await this.startEngine();
    },
    onFailure: (e, backoffMs) => {
      this.lastError = `restart failed: ${this.describeError(e)}`;
      this.o.log.warn('engine restart failed; retrying', { error: this.describeError(e), backoffMs });
    },
    onAgain: () =>
      this.o.log.warn('the engine failed again while restarting; restarting once more', {
        reason: this.lastError,
      }),
  });
  protected lastTickAt = 0;
  /** Health: the last time this instance made progress (committed, or found nothing to do). */
  protected progressAt = 0;
  protected lastError: string | undefined;
  /** Consumer lag per `<topic>/<partition>`, as last seen. */
  protected readonly lag = new Map<string, number>();
  /** The highest end offset (high watermark or probed end) seen per physical `<topic>/<partition>`. */
  private readonly ends = new Map<string, number>();
  /**
   * The broker's last answer per physical `<topic>/<partition>` and the wall time it was asked.
   * It serves every task whose newest data was fetched before that time, as a probe of its own
   * would: the tasks of one fetch response share one ListOffsets.
   */
  private readonly probed = new Map<string, PartitionBounds & { readonly at: number }>();
  private restoreSeq = 0;
  /** The input partitions' count, as ensureTopics found it. */
  private partitionCount: number | undefined;
  /** `<contract topic>/<partition>`s paused at their stop bound: never resumed. */
  private readonly atBound = new Set<string>();

  protected abstract readonly transport: string;
  /** The transport's assignor as a pure function of the member ids (standby placement). */
  protected abstract readonly assignor: AssignFn;
  /** Warm copies of other instances' tasks (--standby-replicas), and the admin that finds the group's members. */
  private standbys: StandbyReplicas<S> | undefined;
  private standbyAdmin: Admin | undefined;
  private standbyRefreshAt = 0;
  private standbyRefreshing = false;
  private standbyMispredicted = false;

  constructor(protected readonly o: RuntimeOptions<S>) {}

  // ---- what a transport provides ----

  /** Creates the consumer, subscribes it and starts fetching; assignments arrive later. */
  protected abstract startEngine(): Promise<void>;
  /** Closes the consumer (then the engine closes the tasks, see closeTasks). */
  protected abstract stopEngine(): Promise<void>;
  /** Whether a consumer is running now. */
  protected abstract engineRunning(): boolean;
  /** Opens task `partition`'s producer; for exactly_once, initialising its transactional id fences earlier owners. */
  protected abstract openProducer(partition: number): Promise<TaskProducer>;
  /** Reads changelog partitions from the start to their end (read_committed); returns how many records. */
  protected abstract readChangelog(
    partitions: readonly number[],
    groupId: string,
    onRecord: (partition: number, key: string, value: Buffer | null) => void,
    onRemaining: (read: number, remaining: number) => void,
  ): Promise<number>;
  /** Where `partitions` of a topic start (the log start offset) and end (read_committed), from the broker. */
  protected abstract endOffsets(
    physicalTopic: string,
    partitions: readonly number[],
  ): Promise<ReadonlyMap<number, PartitionBounds>>;
  protected abstract pauseFetch(physicalTopics: readonly string[], partition: number): void;
  protected abstract resumeFetch(physicalTopics: readonly string[], partition: number): void;
  /** Partition counts of existing topics (absent: the topic does not exist). */
  protected abstract partitionCounts(topics: readonly string[]): Promise<Map<string, number>>;
  protected abstract createCompactedTopic(
    topic: string,
    partitions: number,
    replicationFactor: number,
    config: Record<string, string>,
  ): Promise<void>;
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

  private get outPrefix(): string {
    return this.o.outputPrefix ?? this.prefix;
  }

  /** An output or DLQ topic's physical name. */
  protected physicalOut(topic: string): string {
    return this.outPrefix + topic;
  }

  /** Where input partition `topic/partition` stops (exclusive; stopAt). */
  protected boundOf(topic: string, partition: number): number {
    return this.o.stopAt ? (this.o.stopAt.get(`${topic}/${partition}`) ?? 0) : Number.POSITIVE_INFINITY;
  }

  /**
   * With stopAt: every input partition is owned here, restored, processed up to its bound and
   * nothing of it is buffered (what is pending is committed by stop()). A stopped task never
   * gets there: stoppedPartitions() says so.
   */
  reachedStopBounds(): boolean {
    if (!this.o.stopAt || this.partitionCount === undefined || this.tasks.size < this.partitionCount) {
      return false;
    }
    for (const h of this.tasks.values()) {
      if (!h.isReady || h.stoppedBy || h.group.size > 0) return false;
      for (const topic of this.o.processor.inputs) {
        const at = Math.max(h.task.nextOffset(topic) ?? 0, h.group.fetchedOf(topic) ?? 0);
        if (at < this.boundOf(topic, h.partition)) return false;
      }
    }
    return true;
  }

  /** The partitions this instance owns that an invariant stopped, with the reason. */
  stoppedPartitions(): Array<{ partition: number; reason: string }> {
    return [...this.tasks.values()]
      .filter((h) => h.stoppedBy)
      .map((h) => ({ partition: h.partition, reason: h.stoppedBy! }));
  }

  protected inputTopics(): string[] {
    return this.o.processor.inputs.map((t) => this.physical(t));
  }

  async start(): Promise<void> {
    await this.ensureTopics();
    if ((this.o.standbyReplicas ?? 0) > 0) {
      const kafka = new Kafka({ logLevel: logLevel.WARN, ...this.o.kafka });
      this.standbyAdmin = kafka.admin();
      await this.standbyAdmin.connect();
      this.standbys = new StandbyReplicas({
        kafka,
        newTask: (p) => this.taskBase(p).task,
        changelog: this.changelog,
        groupId: `${this.o.applicationId}-standby-${process.pid}`,
        log: this.o.log,
        onApplied: (n) => this.o.metrics.standbyRecords.inc({ processor: this.name }, n),
      });
    }
    await this.startEngine();
    this.timer = setInterval(
      () => void this.onTimer(),
      Math.max(10, Math.min(this.o.commitIntervalMs, this.o.tickIntervalMs) / 2),
    );
  }

  /**
   * Graceful: commit what is pending, leave the group, close producers. False when a final
   * commit failed: that work is redone by the next owner, but the stop was not clean.
   */
  async stop(): Promise<boolean> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    let clean = true;
    await this.lock.run(async () => {
      for (const h of this.tasks.values()) {
        if (!this.active(h)) continue;
        await h.inflight;
        // A task whose commit failed is being restarted: what it holds after the failure is
        // redone by the next owner, as the failed commit's own work is (already reported).
        if (h.commitFailed) continue;
        try {
          await this.commit(h);
        } catch (e) {
          clean = false;
          this.o.log.error('final commit failed; the next owner redoes the uncommitted work', {
            partition: h.partition,
            error: this.describeError(e),
          });
        }
      }
    });
    await this.stopEngine();
    await this.closeTasks();
    await this.standbys?.stop();
    await this.standbyAdmin?.disconnect().catch(() => undefined);
    return clean;
  }

  /**
   * Readiness (/ready): the engine runs, every task it owns is restored and none is stopped, and
   * progress is within bounds. A load balancer or an orchestrator routes by it; /health says why.
   */
  ready(): boolean {
    const tasks = [...this.tasks.values()];
    return (
      !this.stopping &&
      this.engineRunning() &&
      !this.stalled(this.o.clock()) &&
      tasks.every((h) => h.isReady && !h.stoppedBy)
    );
  }

  /**
   * Liveness (/live): whether restarting the process could help. Only a work loop wedged under
   * its lock (LIVENESS_LOCK_MS) says so. A stopped partition (an operator's decision waits), a
   * broker outage or a rebalance is not: a restart would come back to the same, in a loop.
   */
  live(): { ok: boolean; detail: Record<string, unknown> } {
    const lockHeldMs = this.lock.heldForMs();
    return { ok: lockHeldMs < LIVENESS_LOCK_MS, detail: { lockHeldMs } };
  }

  /** No progress for longer than a rebalance could explain. */
  private stalled(now: number): boolean {
    return now - this.progressAt > Math.max(30_000, this.o.sessionTimeoutMs * 2);
  }

  /**
   * An operator's decision (holdback dlq skip; docs/runbooks/HoldbackPartitionStopped.md): the
   * record that stopped partition `partition` goes to the DLQ as OPERATOR_SKIPPED, committed in
   * one transaction with the task's work before it, and the engine restarts so that the partition
   * goes on from the record after it (on whichever instance then owns it). The request must name
   * the very record the partition stopped at.
   */
  async skipStoppedRecord(req: SkipRequest): Promise<SkipResult> {
    return this.lock.run(async (): Promise<SkipResult> => {
      const h = this.tasks.get(req.partition);
      if (!h) return { status: 404, message: `partition ${req.partition} is not owned by this instance` };
      const at = h.stoppedAt;
      if (!h.stoppedBy) return { status: 409, message: `partition ${req.partition} is not stopped` };
      if (!at) {
        return {
          status: 409,
          message: `partition ${req.partition} was stopped by a timer, not a record: deploy a fix and restart`,
        };
      }
      const topic = at.topic;
      if (topic !== req.topic || at.offset !== req.offset) {
        return {
          status: 409,
          message: `partition ${req.partition} stopped at ${topic}@${at.offset}, not ${req.topic}@${req.offset}`,
        };
      }
      h.task.skip(
        at,
        'OPERATOR_SKIPPED',
        `skipped by an operator (${req.note}); it had stopped the partition: ${h.stoppedBy}`,
      );
      try {
        await this.commit(h);
      } catch (e) {
        return {
          status: 503,
          message: `the skip did not commit, the partition stays stopped: ${this.describeError(e)}`,
        };
      }
      this.o.metrics.operatorSkips.inc({ processor: this.name });
      this.o.log.warn('an operator moved the record that stopped the partition to the DLQ', {
        partition: req.partition,
        topic,
        offset: at.offset,
        payloadSha256: payloadSha256(at),
        note: req.note,
      });
      void this.restartEngine(`operator skip: ${topic}/${req.partition}@${at.offset}`);
      return {
        status: 200,
        message: `${topic}/${req.partition}@${at.offset} is in the DLQ as OPERATOR_SKIPPED; the partition resumes after it`,
      };
    });
  }

  health(): { ok: boolean; detail: Record<string, unknown> } {
    const now = this.o.clock();
    const stalled = this.stalled(now);
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
          entries: h.task.entryCount,
          buffered: h.group.size,
          // What the next record waits for (time order): a stalled task says why here.
          waiting: h.group.readiness(now),
          lastCommitAt: h.lastCommitAt,
          stoppedBy: h.stoppedBy,
          ...(h.stoppedAt && {
            stoppedAt: {
              topic: h.stoppedAt.topic,
              partition: h.stoppedAt.partition,
              offset: h.stoppedAt.offset,
              payloadSha256: payloadSha256(h.stoppedAt),
            },
          }),
        })),
        lagByPartition: Object.fromEntries(this.lag),
        msSinceProgress: now - this.progressAt,
        lockHeldMs: this.lock.heldForMs(),
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

  // ---- topics ----

  /**
   * Inputs, outputs and the DLQ must exist with one partition count: a task writes its outputs
   * to its own partition number (co-partitioned by merchant). The changelog is created with it.
   */
  protected async ensureTopics(): Promise<void> {
    const topics = [
      ...new Set([
        ...this.inputTopics(),
        ...this.o.processor.outputs.map((t) => this.physicalOut(t)),
        this.physicalOut(this.o.deadLetters.topic),
      ]),
    ];
    const counts = await this.partitionCounts([...topics, this.changelog]);
    const first = topics[0]!;
    const count = counts.get(first);
    if (count === undefined) throw new Error(`topic ${first} does not exist (holdback stack up creates it)`);
    this.partitionCount = count;
    for (const t of topics) {
      const n = counts.get(t);
      if (n === undefined) throw new Error(`topic ${t} does not exist (holdback stack up creates it)`);
      if (n !== count) {
        throw new Error(
          `${t} has ${n} partitions but ${first} has ${count}: inputs and outputs must be ` +
            'co-partitioned (create them with one partition count, as `holdback stack up` does)',
        );
      }
    }
    const admin = new Kafka({ logLevel: logLevel.WARN, ...this.o.kafka }).admin();
    await admin.connect();
    try {
      await this.ensureChangelog(admin, count, counts.get(this.changelog));
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }

  /**
   * The changelog exists with the configured replication, or is created with it; and it holds
   * what the group's committed offsets need, or start-up is refused (runtime/internal-topics.ts).
   */
  private async ensureChangelog(admin: Admin, count: number, existing: number | undefined): Promise<void> {
    const settings = await internalTopicSettings(admin, {
      replicationFactor: this.o.internalReplicationFactor,
      minInsyncReplicas: this.o.internalMinInsyncReplicas,
    });
    const committed = await committedPartitions(admin, this.o.applicationId, this.inputTopics());
    if (existing === undefined) {
      if (committed.length > 0) {
        const c = committed[0]!;
        throw new DurabilityError(
          `the changelog ${this.changelog} does not exist, but group ${this.o.applicationId} has ` +
            `committed offsets on ${committed.length} input partition(s) (${c.topic}/${c.partition} at ` +
            `${c.offset}): it was deleted, or the group belongs to another deployment. ` +
            recovery(this.o.applicationId),
        );
      }
      await this.createCompactedTopic(this.changelog, count, settings.replicationFactor, {
        'cleanup.policy': 'compact',
        'min.compaction.lag.ms': '0',
        'segment.ms': '600000',
        ...internalTopicConfig(settings),
      });
      return;
    }
    if (existing !== count) {
      throw new Error(`${this.changelog} has ${existing} partitions but the inputs have ${count}`);
    }
    await checkInternalTopic(admin, this.changelog, settings);
    const withOffsets = new Set(committed.map((c) => c.partition));
    for (const p of await whileRetriable(() => admin.fetchTopicOffsets(this.changelog))) {
      if (Number(p.low) > 0 && withOffsets.has(p.partition)) {
        throw new DurabilityError(
          `the changelog ${this.changelog} partition ${p.partition} starts at offset ${p.low}: its ` +
            `earlier records were deleted, while group ${this.o.applicationId} has committed input ` +
            `offsets for that partition. ` +
            recovery(this.o.applicationId),
        );
      }
    }
  }

  // ---- tasks: assignment, revocation, restore ----

  /** A task for `partition`, not yet open: no producer, no state. */
  protected taskBase(partition: number): TaskHandleBase<S> {
    return {
      partition,
      task: new Task(this.o.processor, partition, (out) => this.o.codec.encode(out.topic, out.value)),
      group: new PartitionGroup<Buffered>({
        topics: this.o.processor.inputs,
        maxTaskIdleMs: this.o.maxTaskIdleMs ?? 0,
        maxBuffered: this.o.maxBufferedPerPartition ?? DEFAULT_MAX_BUFFERED,
      }),
      producer: undefined,
      isReady: false,
      lastCommitAt: this.o.clock(),
      streamTime: 0,
      oldestFetchedAt: undefined,
    };
  }

  /**
   * Opens tasks: 1. their producers (fencing earlier owners: initialising a transactional id
   * aborts or completes their open transaction), 2. their state and offsets from the changelog,
   * which no one else can write to now. The consumer is positioned from `restoredOffsets`.
   */
  protected async openTasks(handles: readonly H[]): Promise<void> {
    const t0 = Date.now();
    try {
      await Promise.all(handles.map(async (h) => (h.producer = await this.openProducer(h.partition))));
      const warm = await this.fromStandbys(handles);
      const byPartition = new Map(
        handles.filter((h) => !warm.includes(h.partition)).map((h) => [h.partition, h]),
      );
      let counted = 0;
      let loggedAt = t0;
      const restored =
        byPartition.size === 0
          ? 0
          : await this.readChangelog(
              [...byPartition.keys()],
              `${this.o.applicationId}-restore-${process.pid}-${++this.restoreSeq}`,
              (partition, key, value) => byPartition.get(partition)?.task.restore(key, value),
              (read, remaining) => {
                this.o.metrics.restoredKeys.inc({ processor: this.name }, read - counted);
                counted = read;
                this.o.metrics.restoreRemaining.set({ processor: this.name }, remaining);
                const now = Date.now();
                if (now - loggedAt < RESTORE_LOG_EVERY_MS) return;
                loggedAt = now;
                this.o.log.info('restoring', {
                  partitions: handles.map((h) => h.partition),
                  records: read,
                  recordsPerSecond: Math.round(read / Math.max(0.001, (now - t0) / 1000)),
                  remaining,
                });
              },
            );
      this.o.metrics.restoreRemaining.set({ processor: this.name }, 0);
      for (const h of handles) this.resetGroup(h);
      this.o.metrics.restoredKeys.inc({ processor: this.name }, restored - counted);
      this.o.metrics.restoreSeconds.observe({ processor: this.name }, (Date.now() - t0) / 1000);
      this.o.log.info('tasks ready', {
        partitions: handles.map((h) => h.partition),
        ...(warm.length > 0 && { fromStandby: warm }),
        restoredEntries: restored,
        ms: Date.now() - t0,
      });
    } catch (e) {
      await Promise.all(handles.map((h) => this.closeProducer(h)));
      throw e;
    }
  }

  /**
   * Opens what it can of `handles` from their standbys (their producers are open, so each
   * changelog's end is final): each standby is read to that end and becomes the task. Returns
   * the partitions opened so; the others are restored in full.
   */
  private async fromStandbys(handles: readonly H[]): Promise<number[]> {
    const standbys = this.standbys;
    const kept = new Set(standbys?.partitions ?? []);
    const candidates = handles.filter((h) => kept.has(h.partition));
    if (!standbys || candidates.length === 0) return [];
    const ends = await this.endOffsets(
      this.changelog,
      candidates.map((h) => h.partition),
    );
    const warm: number[] = [];
    for (const h of candidates) {
      const task = await standbys.take(h.partition, ends.get(h.partition)?.end ?? 0);
      if (!task) continue;
      h.task = task;
      warm.push(h.partition);
      this.o.metrics.tasksFromStandby.inc({ processor: this.name });
    }
    this.o.metrics.standbyPartitions.set({ processor: this.name }, standbys.partitions.length);
    return warm;
  }

  /**
   * Places the standbys (runtime/standby.ts): from the group's members, the tasks this instance
   * would be given if up to --standby-replicas others left, less those it owns. Only while the
   * group is stable; this instance is the member with its client id.
   */
  private async refreshStandbys(): Promise<void> {
    const standbys = this.standbys;
    const admin = this.standbyAdmin;
    if (!standbys || !admin || this.partitionCount === undefined || this.standbyRefreshing) return;
    this.standbyRefreshing = true;
    try {
      const members = await stableMembers(admin, this.o.applicationId);
      if (this.stopping) return;
      const me = members?.filter((m) => m.clientId === this.o.kafka.clientId);
      if (!members || me?.length !== 1) return;
      const ids = members.map((m) => m.memberId);
      const owned = new Set(this.tasks.keys());
      const predicted = this.assignor(ids, this.partitionCount).get(me[0]!.memberId) ?? [];
      if (
        !this.standbyMispredicted &&
        predicted.join() !== [...me[0]!.partitions].sort((a, b) => a - b).join()
      ) {
        this.standbyMispredicted = true;
        this.o.log.warn(
          'the group assigned other tasks than standby placement predicts; standbys may be warm in the wrong place',
          {
            predicted,
            assigned: me[0]!.partitions,
          },
        );
      }
      const ready = new Set([...this.tasks.values()].filter((h) => h.isReady).map((h) => h.partition));
      const wanted = new Set(
        standbyPartitions(
          this.assignor,
          ids,
          me[0]!.memberId,
          this.partitionCount,
          this.o.standbyReplicas ?? 0,
        ).filter((p) => !ready.has(p)),
      );
      // A task assigned here and not open yet is about to take its standby: the group may already
      // be stable without the member that left (nothing left to stand by for), but that copy is
      // the one the failover needs. Seen on rdkafka: dropped here just before it was taken.
      const assigned = new Set([...me[0]!.partitions, ...owned]);
      for (const p of standbys.partitions) if (assigned.has(p) && !ready.has(p)) wanted.add(p);
      await standbys.keep([...wanted].sort((a, b) => a - b));
      this.o.metrics.standbyPartitions.set({ processor: this.name }, standbys.partitions.length);
    } catch (e) {
      this.o.log.warn('could not place standby replicas; trying again', { error: this.describeError(e) });
    } finally {
      this.standbyRefreshing = false;
    }
  }

  /** Empties the task's buffers: its consumer (re)starts at what the task processed. */
  protected resetGroup(h: TaskHandleBase<S>): void {
    h.group.clear();
    for (const topic of this.o.processor.inputs) {
      const next = h.task.nextOffset(topic);
      if (next !== undefined) h.group.setFetched(topic, next);
    }
  }

  /** Where task `h`'s consumer starts on each input: the restored offsets (undefined: the group's, else the earliest). */
  protected restoredOffsets(h: H): Array<{ topic: string; partition: number; offset: number | undefined }> {
    return this.o.processor.inputs.map((topic) => ({
      topic: this.physical(topic),
      partition: h.partition,
      offset: h.task.nextOffset(topic),
    }));
  }

  /** Revocation: the task goes with its buffers and uncommitted work (the new owner redoes it). */
  protected async dropTask(partition: number): Promise<void> {
    const h = this.tasks.get(partition);
    if (!h) return;
    this.tasks.delete(partition);
    h.group.clear();
    // A commit under way finishes first (the new owner then need not redo it); its failure is
    // no longer this instance's concern (commitFailure).
    await h.inflight;
    await this.closeProducer(h);
    for (const t of this.inputTopics()) {
      this.lag.delete(`${t}/${partition}`);
      this.ends.delete(`${t}/${partition}`);
      this.probed.delete(`${t}/${partition}`);
      // The new owner reports this partition's lag now; a stale series here would add to it.
      this.o.metrics.consumerLag.remove({
        processor: this.name,
        topic: t.slice(this.prefix.length),
        partition: String(partition),
      });
    }
  }

  protected async closeProducer(h: TaskHandleBase<S>): Promise<void> {
    const p = h.producer;
    h.producer = undefined;
    await p?.close().catch(() => undefined);
  }

  /** Closes every task's producer and forgets the tasks (after the consumer is closed). */
  protected async closeTasks(): Promise<void> {
    await this.lock.run(async () => {
      await Promise.all([...this.tasks.values()].map((h) => this.closeProducer(h)));
      for (const h of this.tasks.values()) h.group.clear();
      this.tasks.clear();
      this.lag.clear();
      this.ends.clear();
    });
  }

  // ---- the hot path ----

  /**
   * Buffers records fetched for one input partition of task `h`, decoded (a registry outage is
   * waited out), and pauses the partition when its buffer is full. `fetchedTo` is the consumer's
   * position after the fetch when the client tells it (past transaction markers).
   */
  protected async buffer(
    h: H,
    topic: string,
    records: readonly SourceRecord[],
    fetchedTo?: number,
    heartbeat?: () => Promise<void>,
    fetchedAt = this.o.clock(),
  ): Promise<void> {
    const generation = this.generation;
    const items: Buffered[] = [];
    const bound = this.boundOf(topic, h.partition);
    for (const src of records) {
      if (src.offset >= bound) break;
      if (h.task.isDuplicate(src)) continue;
      const decoded = this.inItsPartition(topic, src, await this.decodeWithRetry(src, generation, heartbeat));
      items.push({
        src,
        decoded,
        offset: src.offset,
        fetchedAt,
        time: decoded.ok ? eventTime(decoded.record) : Number.NEGATIVE_INFINITY,
      });
    }
    h.group.add(topic, items, fetchedAt, fetchedTo);
    if (this.o.stopAt && (h.group.fetchedOf(topic) ?? 0) >= bound) {
      // At its stop bound: nothing more of this partition is wanted.
      this.atBound.add(`${topic}/${h.partition}`);
      this.pauseFetch([this.physical(topic)], h.partition);
    }
    const full = h.group.toPause();
    if (full.length > 0)
      this.pauseFetch(
        full.map((t) => this.physical(t)),
        h.partition,
      );
  }

  /**
   * Processes task `h`'s buffered records in time order while its PartitionGroup says the next
   * one is known to be next (asking the broker for an empty partition's end where needed).
   * Commits early when the task holds maxPendingPerTask effects. Called under the lock.
   */
  protected async pump(h: H, heartbeat?: () => Promise<void>): Promise<void> {
    const generation = this.generation;
    const t0 = process.hrtime.bigint();
    const counts = new Map<string, number>();
    let n = 0;
    let counted = false;
    while (generation === this.generation && !this.stopping && this.active(h)) {
      const r = h.group.readiness(this.o.clock());
      if (r.kind === 'probe') {
        if (await this.probe(h, r.topics)) continue;
        break;
      }
      // 'fetch': the transport hands over the records (or a marker's position) when they come.
      if (r.kind !== 'ready') break;
      if (r.without.length > 0 && !counted) {
        counted = true;
        for (const t of r.without) this.o.metrics.enforcedProcessing.inc({ processor: this.name, topic: t });
      }
      const b = h.group.next()!;
      try {
        h.task.accept(b.src, b.decoded, this.processorNow(h, b.time));
      } catch (e) {
        if (!(e instanceof InvariantViolation)) throw e;
        // A bad output: what came before it is still good, so commit that first.
        if (e instanceof OutputEncodingError) await this.commitOrRestart(h);
        this.stopTask(h, e, b.src);
        return;
      }
      h.oldestFetchedAt ??= b.fetchedAt;
      counts.set(b.src.topic, (counts.get(b.src.topic) ?? 0) + 1);
      n++;
      if (h.task.pendingCount >= this.o.maxPendingPerTask && !(await this.commitOrRestart(h))) return;
      if ((n & 1023) === 0) await heartbeat?.().catch(() => undefined);
    }
    if (generation !== this.generation) return;
    this.reportLag(h);
    if (!h.stoppedBy) {
      const resume = h.group.toResume().filter((t) => !this.atBound.has(`${t}/${h.partition}`));
      if (resume.length > 0)
        this.resumeFetch(
          resume.map((t) => this.physical(t)),
          h.partition,
        );
    }
    if (n === 0) return;
    for (const [topic, k] of counts) this.o.metrics.recordsIn.inc({ processor: this.name, topic }, k);
    this.o.metrics.batchSeconds.observe({ processor: this.name }, Number(process.hrtime.bigint() - t0) / 1e9);
  }

  /**
   * Learns where task `h`'s empty partitions end: from an answer asked after the task's newest
   * data was fetched, else from the broker, for every partition this instance owns, so that the
   * other tasks of the same fetch need not ask again. False when the broker could not be asked
   * (the timer's pump retries).
   *
   * Asked under the lock. An ask off the lock (other tasks going on meanwhile, the task pumped
   * when the answer comes) was measured slower: repayment p99 891-1,613 ms against 585-732 ms
   * for the engine before time order (docs/performance.md, "Time order").
   */
  private async probe(h: H, topics: readonly string[]): Promise<boolean> {
    const after = h.group.lastFetchAt;
    const ask: string[] = [];
    for (const topic of topics) {
      const known = this.probed.get(`${this.physical(topic)}/${h.partition}`);
      if (known && known.at >= after) h.group.setEnd(topic, known.end, known.at, known.start);
      else ask.push(topic);
    }
    if (ask.length === 0) return true;
    const at = this.o.clock();
    const t0 = process.hrtime.bigint();
    const partitions = [...this.tasks.keys()];
    const answers = await Promise.all(
      ask.map((topic) =>
        this.endOffsets(this.physical(topic), partitions).then(
          (bounds) => ({ topic, physical: this.physical(topic), bounds }),
          (e: unknown) => ({ topic, physical: this.physical(topic), error: e }),
        ),
      ),
    );
    this.o.metrics.endProbeSeconds.observe(
      { processor: this.name },
      Number(process.hrtime.bigint() - t0) / 1e9,
    );
    let ok = true;
    for (const a of answers) {
      if ('error' in a) {
        ok = false;
        this.lastError = `end offsets of ${a.physical}: ${this.describeError(a.error)}`;
        this.o.log.warn('could not read partition ends; the task waits and retries', {
          topic: a.physical,
          error: this.describeError(a.error),
        });
        continue;
      }
      for (const [partition, answered] of a.bounds) {
        if (!this.tasks.has(partition)) continue;
        // Past a stop bound the partition ends there: what follows is not this run's.
        const bounds = { ...answered, end: Math.min(answered.end, this.boundOf(a.topic, partition)) };
        this.probed.set(`${a.physical}/${partition}`, { ...bounds, at });
        this.noteEnd(a.physical, partition, bounds.end);
        if (partition === h.partition) h.group.setEnd(a.topic, bounds.end, at, bounds.start);
      }
    }
    return ok;
  }

  /**
   * Crash-only recovery: drop the consumer, the producers and the in-memory state, and start
   * again from the changelog, with backoff while Kafka is unreachable.
   */
  protected async restartEngine(reason: string): Promise<void> {
    if (this.stopping) return;
    this.lastError = reason;
    // A failure during a restart is not a new restart: the one in progress goes round once more.
    if (!this.restarter.active) {
      this.o.metrics.restarts.inc({ processor: this.name, reason: reason.split(':')[0]!.slice(0, 40) });
      this.o.log.warn('restarting the engine; state will be restored from the changelog', { reason });
    }
    return this.restarter.request();
  }

  /**
   * A broken invariant: stop this partition loudly, never skip money. Its uncommitted work is
   * discarded; the record that stopped it is named (topic, partition, offset) in the log.
   */
  protected stopTask(h: H, e: InvariantViolation, at?: SourceRecord): void {
    h.stoppedBy = e.message;
    h.stoppedAt = at;
    this.lastError = `partition ${h.partition} stopped: ${e.message}`;
    this.o.metrics.stoppedPartitions.set(
      { processor: this.name },
      [...this.tasks.values()].filter((x) => x.stoppedBy).length,
    );
    this.o.metrics.partitionStops.inc({
      processor: this.name,
      reason: e instanceof OutputEncodingError ? 'output_encoding' : 'invariant',
    });
    this.o.log.error('partition stopped: see docs/runbooks/HoldbackPartitionStopped.md', {
      partition: h.partition,
      error: e.message,
      ...(at && {
        topic: at.topic,
        offset: at.offset,
        payloadSha256: payloadSha256(at),
      }),
    });
    h.group.clear();
    this.pauseFetch(this.inputTopics(), h.partition);
  }

  /**
   * A platform's or lender's record whose key the Java client's partitioner (murmur2) puts in
   * another partition is WRONG_PARTITION: its merchant's state lives in that other partition's
   * task, which would never see it, and co-partitioning would silently break (a producer on
   * librdkafka's default consistent_random partitioner does this). The key already matched the
   * record's merchant_id (KEY_MISMATCH comes first), so the detail names where it belongs.
   */
  private inItsPartition(topic: string, src: SourceRecord, decoded: Decoded): Decoded {
    const partitions = this.partitionCount;
    if (!decoded.ok || src.key === null || partitions === undefined || !KEYED_BY_MERCHANT.has(topic))
      return decoded;
    const expected = partitionOfKey(src.key, partitions);
    if (expected === src.partition) return decoded;
    return {
      ok: false,
      reasonCode: 'WRONG_PARTITION',
      detail:
        `expected partition ${expected}: key '${src.key.toString('utf8')}' hashes there with murmur2, the Java ` +
        `client's default partitioner, over ${partitions} partitions; the record is in partition ${src.partition}`,
    };
  }

  /**
   * Decodes a record, waiting out a schema-registry outage with backoff: an unreachable registry
   * is transient, never a reason to dead-letter. The wait ends when the engine stops or
   * restarts (the record is then not processed). `heartbeat` keeps the group membership alive
   * where the client needs it (kafkajs; librdkafka heartbeats on its own thread).
   */
  private async decodeWithRetry(
    src: SourceRecord,
    generation: number,
    heartbeat?: () => Promise<void>,
  ): Promise<Decoded> {
    const gone = () => this.stopping || generation !== this.generation;
    return retrying(async () => this.o.codec.decode(src), {
      initialMs: 200,
      maxMs: 10_000,
      stop: gone,
      stopped: () => new Interrupted('stopped while waiting for the schema registry'),
      isTransient: (e) => this.o.codec.isTransient(e),
      onRetry: async (e, backoffMs) => {
        this.o.metrics.registryRetries.inc({ processor: this.name });
        this.lastError = `registry unavailable: ${String(e)}`;
        this.o.log.warn('schema registry unavailable; retrying (nothing goes to the DLQ)', { backoffMs });
        await heartbeat?.().catch(() => undefined);
      },
    });
  }

  /**
   * Runs `work` under the lock for a client callback that cannot wait for it (an assignment, a
   * marker-only fetch). A failure restarts the engine, as one in the consume loop does; left
   * unhandled, it would end the process.
   */
  protected underLock(what: string, work: () => Promise<void>): void {
    this.lock.run(work).catch((e: unknown) => {
      if (!this.isInterrupted(e)) void this.restartEngine(`${what} failed: ${this.describeError(e)}`);
    });
  }

  /** Whether an error only says the engine stopped or restarted while a record was in hand. */
  protected isInterrupted(e: unknown): boolean {
    return e instanceof Interrupted;
  }

  // ---- commits ----

  /**
   * Commits the task's pending effects in one transaction (or, at least once, sends them), after
   * the commit under way, if any; resolves when they are durable.
   */
  protected async commit(h: H): Promise<void> {
    if (h.inflight) await h.inflight;
    await this.startCommit(h);
  }

  /**
   * Drains the task and sends what it drained: the drain is synchronous, so records processed
   * after it belong to the next commit. Refuses once a commit of this handle failed.
   */
  private async startCommit(h: H): Promise<void> {
    if (h.commitFailed)
      throw new Error(`an earlier commit of partition ${h.partition} failed: ${h.commitFailed}`);
    const now = this.o.clock();
    if (!h.task.hasPending()) {
      h.lastCommitAt = now;
      return;
    }
    const producer = h.producer;
    if (!producer) throw new Error(`task ${h.partition} has no producer`);
    const flush = h.task.drain();
    const fetchedAt = h.oldestFetchedAt;
    h.oldestFetchedAt = undefined;
    // Stamped with the rules' clock: a broker refuses records stamped more than
    // message.timestamp.after.max.ms (1 h in Kafka 4) ahead of its own clock, which a host whose
    // clock runs ahead would otherwise do to every changelog and DLQ record.
    const records = this.recordsOf(flush, h.partition, this.rulesNow());
    const offsets = [...flush.offsets].map(([topic, offset]) => ({
      topic: this.physical(topic),
      partition: h.partition,
      offset,
    }));
    const t0 = process.hrtime.bigint();
    try {
      await producer.commit(records, offsets);
    } catch (e) {
      h.commitFailed = this.describeError(e);
      throw e;
    }
    const end = this.o.clock();
    h.lastCommitAt = end;
    this.progressAt = end;
    const outputsByTopic = new Map<string, number>();
    for (const r of records) {
      if (r.topic === this.changelog) continue;
      const topic = r.topic.slice(this.outPrefix.length);
      outputsByTopic.set(topic, (outputsByTopic.get(topic) ?? 0) + 1);
    }
    this.o.metrics.recordCommit(this.name, {
      seconds: Number(process.hrtime.bigint() - t0) / 1e9,
      end,
      fetchedAt,
      flush,
      outputsByTopic,
    });
  }

  protected recordsOf(flush: Flush, partition: number, now: number): OutgoingRecord[] {
    return recordsOf(flush, partition, now, {
      codec: this.o.codec,
      deadLetters: this.o.deadLetters,
      physical: (t) => this.physicalOut(t),
      changelog: this.changelog,
    });
  }

  /** A partition end the client saw (a fetch response's high watermark): lag is measured against it. */
  protected noteEnd(physicalTopic: string, partition: number, end: number): void {
    const key = `${physicalTopic}/${partition}`;
    if (end > (this.ends.get(key) ?? -1)) this.ends.set(key, end);
  }

  /**
   * The task's lag per input partition: from what it processed (or, when nothing of the
   * partition is buffered, what the consumer has read, past any transaction marker) to the end.
   */
  protected reportLag(h: H): void {
    for (const topic of this.o.processor.inputs) {
      const physical = this.physical(topic);
      const end = this.ends.get(`${physical}/${h.partition}`);
      if (end === undefined) continue;
      const next = h.task.nextOffset(topic) ?? 0;
      const read = h.group.sizeOf(topic) === 0 ? Math.max(next, h.group.fetchedOf(topic) ?? 0) : next;
      this.recordLag(physical, h.partition, Math.max(0, end - read));
    }
  }

  /** The consumer lag of one input partition, for health and the gauge. */
  protected recordLag(physicalTopic: string, partition: number, lag: number): void {
    this.lag.set(`${physicalTopic}/${partition}`, lag);
    this.o.metrics.consumerLag.set(
      { processor: this.name, topic: physicalTopic.slice(this.prefix.length), partition: String(partition) },
      lag,
    );
  }

  /** The rules' wall time: the corrected clock when there is one. */
  protected rulesNow(): number {
    return (this.o.rulesClock ?? this.o.clock)();
  }

  /** `now` for a processor step: the rules' wall time, or the task's stream time moved by this record. */
  protected processorNow(h: H, eventTimeMs: number): number {
    if (!this.o.streamTime) return this.rulesNow();
    if (eventTimeMs > h.streamTime) h.streamTime = eventTimeMs;
    return h.streamTime;
  }

  /**
   * Starts a commit of every task whose commit interval has passed and that has none under way,
   * and returns without waiting for them: the task goes on processing while its transaction is
   * sent and committed (the round trips were 15-20% of a backlog drain spent idle, with the lock
   * held). Each task has its own transactional producer, so tasks commit concurrently; a task's
   * next commit waits for the one under way. A failed commit restarts the engine, and its handle
   * refuses every later commit (commitFailed), so nothing processed after the failure is ever
   * committed. False when the engine is already restarting for a failed commit.
   */
  protected commitDue(now: number): boolean {
    let ok = true;
    for (const h of this.tasks.values()) {
      if (h.commitFailed) ok = false;
      if (!this.active(h) || h.inflight || now - h.lastCommitAt < this.o.commitIntervalMs) continue;
      const generation = this.generation;
      const inflight = this.startCommit(h).then(
        () => true,
        (e: unknown) => {
          this.commitFailure(h, e, generation);
          return false;
        },
      );
      h.inflight = inflight;
      void inflight.then(() => {
        if (h.inflight === inflight) h.inflight = undefined;
      });
    }
    return ok;
  }

  /** Commits; on failure the in-memory state is ahead of what is durable, so the engine restarts. */
  protected async commitOrRestart(h: H): Promise<boolean> {
    const generation = this.generation;
    try {
      await this.commit(h);
      return true;
    } catch (e) {
      this.commitFailure(h, e, generation);
      return false;
    }
  }

  private commitFailure(h: H, e: unknown, generation: number): void {
    h.commitFailed ??= this.describeError(e);
    // A commit the engine's own restart broke (its producer closed), or of a task revoked
    // meanwhile, is not a new failure.
    if (generation !== this.generation || this.tasks.get(h.partition) !== h) return;
    this.o.metrics.aborts.inc({ processor: this.name, reason: this.errorName(e) });
    // Not awaited: the restart waits for the current batch to return.
    void this.restartEngine(`commit failed on partition ${h.partition}: ${this.describeError(e)}`);
  }

  /** Pumps waiting tasks (idle waits, probes), ticks due timers (wall or stream time), commits what is due, refreshes the gauges. */
  protected async onTimer(): Promise<void> {
    if (this.stopping || this.restarter.active) return;
    if (this.standbys && this.o.clock() - this.standbyRefreshAt >= STANDBY_REFRESH_MS) {
      this.standbyRefreshAt = this.o.clock();
      void this.refreshStandbys();
    }
    const generation = this.generation;
    await this.lock.run(async () => {
      if (generation !== this.generation || !this.engineRunning()) return;
      try {
        for (const h of this.tasks.values()) {
          if (this.active(h) && h.group.size > 0) await this.pump(h);
        }
      } catch (e) {
        if (this.isInterrupted(e)) return;
        void this.restartEngine(`processing failed: ${this.describeError(e)}`);
        return;
      }
      if (generation !== this.generation) return;
      const now = this.o.clock();
      const tick = now - this.lastTickAt >= this.o.tickIntervalMs;
      if (tick) this.lastTickAt = now;
      let keys = 0;
      let entries = 0;
      for (const h of this.tasks.values()) {
        if (!h.isReady || h.stoppedBy) continue;
        keys += h.task.size;
        entries += h.task.entryCount;
        this.reportLag(h);
        if (!tick || !this.active(h)) continue;
        // Stream time: nothing is due before the task has seen a record.
        const at = this.o.streamTime ? (h.streamTime > 0 ? h.streamTime : undefined) : this.rulesNow();
        if (at === undefined) continue;
        try {
          // In slices of maxPendingPerTask keys, each committed, as a batch of records is: a tick
          // that closes a million periods must not be one transaction (it outlived the 10 s
          // transaction timeout and was fenced, docs/performance.md "Failover").
          // At most as many slices as it takes to tick every key once: a timer a tick set to a
          // time already passed is left to the next round, as before slices.
          const limit = this.o.maxPendingPerTask;
          let slices = Math.ceil(h.task.size / limit);
          h.task.tickDue(at, limit);
          while (slices-- > 0 && h.task.hasDue(at)) {
            if (!(await this.commitOrRestart(h))) return;
            h.task.tickDue(at, limit);
          }
        } catch (e) {
          if (!(e instanceof InvariantViolation)) throw e;
          this.stopTask(h, e);
        }
      }
      if (!this.commitDue(now)) return;
      this.o.metrics.stateKeys.set({ processor: this.name }, keys);
      this.o.metrics.stateEntries.set({ processor: this.name }, entries);
      // Recounted here too: a restart or a revocation takes stopped tasks away.
      this.o.metrics.stoppedPartitions.set(
        { processor: this.name },
        [...this.tasks.values()].filter((h) => h.stoppedBy).length,
      );
      if (this.o.processor.unsettled || this.o.processor.unsettledEntry) {
        const ready = [...this.tasks.values()].filter((h) => h.isReady).map((h) => h.task);
        this.o.metrics.reportUnsettled(this.name, ready, now);
      }
      if (this.totalLag() === 0) this.progressAt = now;
    });
  }
}
