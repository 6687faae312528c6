/**
 * Runs one processor on Kafka with exactly-once effects, the way Kafka Streams' first EOS scheme
 * does (KIP-98 with one transactional producer per input partition):
 *
 * - a consumer group over the co-partitioned input topics; partition p of every input forms task p;
 * - task p owns a producer whose transactional id `<group>-<p>` is stable across restarts and
 *   instances, so initialising it fences any earlier owner (a zombie's late commit fails);
 * - each commit sends the task's outputs, dead letters, changelog entries (state of changed keys
 *   plus the task's input offsets) and the group offsets in ONE transaction;
 * - on assignment, the producer is initialised first (fencing, and completing the previous
 *   owner's transaction), then the state and offsets are restored from the changelog and the
 *   consumer is positioned from them. Offsets restored from the changelog are authoritative,
 *   which sidesteps kafkajs's old OffsetFetch (no KIP-447 "require stable" offsets);
 * - any failure to commit, or a consumer crash, restarts the engine: in-memory state is dropped
 *   and rebuilt from the changelog (crash-only recovery, the same path as a kill -9).
 */
import {
  Kafka,
  logLevel,
  type Consumer,
  type EachBatchPayload,
  type KafkaConfig,
  type Message,
  type Producer,
} from 'kafkajs';
import { InvariantViolation, type Processor } from '../processors/api';
import { createTopicsReady } from '../connectors/kafka-admin';
import { readToEnd } from '../connectors/kafka-read';
import { coPartitionedAssigner } from './assigner';
import type { RuntimeMetrics } from './metrics';
import { Task, type Decoded, type Flush, type Rejected, type SourceRecord } from './task';
import { sleep } from './mutex';
import { changelogTopic, RuntimeBase, type TaskHandleBase } from './runtime-base';

export { changelogTopic };

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
  processor: Processor<S>;
  kafka: KafkaConfig;
  /** Consumer group; also the prefix of transactional ids and the changelog topic. */
  applicationId: string;
  /**
   * Prepended to every contract topic name on the wire (default ''). Processors speak contract
   * names; a prefix gives tests, simulations and tenants their own topics.
   */
  topicPrefix?: string;
  codec: RuntimeCodec;
  deadLetters: DeadLetterSink;
  /** The wall clock: commits, metrics, and `now` for processors unless streamTime is set. */
  clock: () => number;
  /**
   * Processors' `now` is the task's stream time (the highest record timestamp it processed)
   * instead of the wall clock; timers fire as stream time passes them (--clock=stream).
   */
  streamTime?: boolean;
  guarantee: Guarantee;
  commitIntervalMs: number;
  /** How often the wall clock fires due timers. */
  tickIntervalMs: number;
  /** Commit early when a task holds this many pending effects. */
  maxPendingPerTask: number;
  sessionTimeoutMs: number;
  metrics: RuntimeMetrics;
  log: Logger;
}

interface TaskHandle<S> extends TaskHandleBase<S> {
  producer: Producer | undefined;
  /** Settles once the task's producer is initialised and its state restored. */
  ready: Promise<void>;
}

export class KafkaRuntime<S> extends RuntimeBase<S, TaskHandle<S>> {
  protected readonly transport = 'kafkajs';
  private readonly kafka: Kafka;
  private consumer: Consumer | undefined;
  private restoreSeq = 0;

  constructor(o: RuntimeOptions<S>) {
    super(o);
    this.kafka = new Kafka({ logLevel: logLevel.WARN, ...o.kafka });
  }

  protected engineRunning(): boolean {
    return this.consumer !== undefined;
  }

  protected pausePartition(h: TaskHandle<S>): void {
    this.consumer?.pause(this.inputTopics().map((topic) => ({ topic, partitions: [h.partition] })));
  }

  // ---- engine: consumer + tasks; restarted as a whole on failure ----

  protected async startEngine(): Promise<void> {
    const generation = ++this.generation;
    const consumer = this.kafka.consumer({
      groupId: this.o.applicationId,
      partitionAssigners: [coPartitionedAssigner],
      sessionTimeout: this.o.sessionTimeoutMs,
      heartbeatInterval: Math.max(500, Math.floor(this.o.sessionTimeoutMs / 5)),
      readUncommitted: false,
      maxBytesPerPartition: 1 << 20,
      maxWaitTimeInMs: 100,
      // We restart ourselves (dropping in-memory state); kafkajs must not resume on its own.
      retry: { retries: 5, restartOnFailure: async () => false },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      const partitions = new Set<number>();
      for (const ps of Object.values(payload.memberAssignment)) for (const p of ps) partitions.add(p);
      void this.lock.run(() => this.reconcile(generation, partitions));
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      // Only the current consumer counts: one being replaced may still report its own end.
      if (this.consumer !== consumer) return;
      void this.restartEngine(`consumer crashed: ${payload.error.message}`);
    });
    await consumer.connect();
    await consumer.subscribe({ topics: this.inputTopics(), fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 1,
      eachBatch: (payload) => this.lock.run(() => this.onBatch(generation, payload)),
    });
    this.progressAt = this.o.clock();
  }

  protected async stopEngine(): Promise<void> {
    // A new generation first: queued batches, timers and assignments of the old one become no-ops.
    this.generation++;
    const consumer = this.consumer;
    this.consumer = undefined;
    await consumer?.disconnect().catch(() => undefined);
    await this.lock.run(async () => {
      for (const h of this.tasks.values()) await h.producer?.disconnect().catch(() => undefined);
      this.tasks.clear();
      this.lag.clear();
    });
  }

  /** Aligns tasks with a new assignment: drops revoked tasks (their uncommitted work is redone by the new owner), opens new ones. */
  private async reconcile(generation: number, assigned: Set<number>): Promise<void> {
    if (generation !== this.generation) return;
    this.o.log.info('assignment', {
      partitions: [...assigned].sort((a, b) => a - b),
      revoked: [...this.tasks.keys()].filter((p) => !assigned.has(p)),
    });
    for (const [p, h] of this.tasks) {
      if (assigned.has(p)) continue;
      this.tasks.delete(p);
      await h.producer?.disconnect().catch(() => undefined);
      for (const t of this.inputTopics()) {
        this.lag.delete(`${t}/${p}`);
        // The new owner reports this partition's lag now; a stale series here would add to it.
        this.o.metrics.consumerLag.remove({
          processor: this.name,
          topic: t.slice(this.prefix.length),
          partition: String(p),
        });
      }
    }
    const fresh = [...assigned].filter((p) => !this.tasks.has(p));
    if (fresh.length === 0) return;
    const handles = fresh.map((p) => this.newHandle(p));
    const ready = this.openTasks(generation, handles);
    for (const h of handles) {
      h.ready = ready.then(() => {
        h.isReady = true;
      });
      this.tasks.set(h.partition, h);
    }
    // Do not hold the lock while restoring: batches for these partitions wait on `ready`.
    ready.catch((e) => void this.restartEngine(`task restore failed: ${String(e)}`));
  }

  private newHandle(partition: number): TaskHandle<S> {
    return {
      partition,
      task: new Task(this.o.processor, partition),
      producer: undefined,
      ready: Promise.resolve(),
      isReady: false,
      lastCommitAt: this.o.clock(),
      streamTime: 0,
      oldestFetchedAt: undefined,
    };
  }

  private async openTasks(generation: number, handles: TaskHandle<S>[]): Promise<void> {
    const t0 = Date.now();
    // 1. Fence earlier owners: initialising the transactional id aborts or completes their transaction.
    await Promise.all(
      handles.map(async (h) => {
        h.producer =
          this.o.guarantee === 'exactly_once'
            ? this.kafka.producer({
                transactionalId: `${this.o.applicationId}-${h.partition}`,
                idempotent: true,
                maxInFlightRequests: 1,
                transactionTimeout: Math.max(10_000, this.o.sessionTimeoutMs),
              })
            : this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
        await h.producer.connect();
      }),
    );
    // 2. Restore state and offsets from the changelog, now that no one else can write to it.
    const byPartition = new Map(handles.map((h) => [h.partition, h]));
    const restored = await readToEnd(this.kafka, {
      topic: this.changelog,
      partitions: [...byPartition.keys()],
      groupId: `${this.o.applicationId}-restore-${process.pid}-${++this.restoreSeq}`,
      onMessage: (partition, m) => {
        const key = m.key?.toString('utf8');
        if (key !== undefined) byPartition.get(partition)!.task.restore(key, m.value);
      },
    });
    this.o.metrics.restoredKeys.inc({ processor: this.name }, restored);
    this.o.metrics.restoreSeconds.observe({ processor: this.name }, (Date.now() - t0) / 1000);
    // 3. Position the consumer where the restored state ends.
    if (generation === this.generation && this.consumer) {
      for (const h of handles) {
        for (const topic of this.o.processor.inputs) {
          const next = h.task.nextOffset(topic);
          if (next !== undefined) {
            this.consumer.seek({ topic: this.physical(topic), partition: h.partition, offset: String(next) });
          }
        }
      }
    }
    this.o.log.info('tasks ready', {
      partitions: handles.map((h) => h.partition),
      restoredEntries: restored,
      ms: Date.now() - t0,
    });
  }

  // ---- the hot path ----

  private async onBatch(generation: number, payload: EachBatchPayload): Promise<void> {
    const { batch, heartbeat, isRunning, isStale, resolveOffset } = payload;
    if (generation !== this.generation || this.stopping) return;
    let h = this.tasks.get(batch.partition);
    if (!h) return; // not (or no longer) ours: the next rebalance settles it
    while (!h.isReady) {
      await Promise.race([h.ready.catch(() => undefined), sleep(1000)]);
      await heartbeat().catch(() => undefined);
      if (generation !== this.generation || !isRunning() || isStale()) return;
      h = this.tasks.get(batch.partition);
      if (!h) return;
    }
    if (h.stoppedBy) return;
    const t0 = process.hrtime.bigint();
    const fetchedAt = this.o.clock();
    const topic = batch.topic.slice(this.prefix.length);
    let n = 0;
    for (const m of batch.messages) {
      if (!isRunning() || isStale()) break;
      const src: SourceRecord = {
        topic,
        partition: batch.partition,
        offset: Number(m.offset),
        key: m.key,
        value: m.value,
        timestamp: Number(m.timestamp),
      };
      // kafkajs fetches from the last resolved offset: resolve every record handled (or skipped),
      // or it fetches the same batch again. Resolving commits nothing; commits are transactional.
      if (h.task.isDuplicate(src)) {
        resolveOffset(m.offset);
        continue;
      }
      const decoded = await this.decodeWithRetry(src, heartbeat);
      try {
        h.task.accept(src, decoded, this.processorNow(h, src.timestamp));
      } catch (e) {
        if (e instanceof InvariantViolation) return this.stopTask(h, e);
        throw e;
      }
      resolveOffset(m.offset);
      h.oldestFetchedAt ??= fetchedAt;
      n++;
      if (h.task.pendingCount >= this.o.maxPendingPerTask && !(await this.commitOrRestart(h))) return;
      if ((n & 1023) === 0) await heartbeat();
    }
    this.o.metrics.recordsIn.inc({ processor: this.name, topic }, n);
    this.o.metrics.batchSeconds.observe({ processor: this.name }, Number(process.hrtime.bigint() - t0) / 1e9);
    // A transactional input (holdback.loans.v1) ends in a commit marker that is never delivered;
    // kafkajs counts it in lastOffset(), so a fully handled batch has consumed up to there.
    let consumed = h.task.nextOffset(topic) ?? 0;
    if (isRunning() && !isStale()) consumed = Math.max(consumed, Number(batch.lastOffset()) + 1);
    const lag = Math.max(0, Number(batch.highWatermark) - consumed);
    this.recordLag(batch.topic, batch.partition, lag);
    await this.commitDue(this.o.clock());
  }

  protected async commit(h: TaskHandle<S>): Promise<void> {
    const now = this.o.clock();
    if (!h.task.hasPending()) {
      h.lastCommitAt = now;
      return;
    }
    const flush = h.task.drain();
    const topicMessages = this.messagesOf(flush, h.partition, now);
    const offsets = [...flush.offsets].map(([topic, offset]) => ({
      topic: this.physical(topic),
      partitions: [{ partition: h.partition, offset: String(offset) }],
    }));
    const t0 = process.hrtime.bigint();
    const producer = h.producer!;
    if (this.o.guarantee === 'exactly_once') {
      const txn = await producer.transaction();
      try {
        for (const chunk of chunkBySize(topicMessages, MAX_REQUEST_BYTES))
          await txn.sendBatch({ topicMessages: chunk, acks: -1 });
        await txn.sendOffsets({ consumerGroupId: this.o.applicationId, topics: offsets });
        await txn.commit();
      } catch (e) {
        await txn.abort().catch(() => undefined);
        throw e;
      }
    } else {
      for (const chunk of chunkBySize(topicMessages, MAX_REQUEST_BYTES))
        await producer.sendBatch({ topicMessages: chunk, acks: -1 });
      await this.consumer?.commitOffsets(
        offsets.flatMap((t) => t.partitions.map((p) => ({ topic: t.topic, ...p }))),
      );
    }
    const end = this.o.clock();
    h.lastCommitAt = end;
    this.progressAt = end;
    const outputsByTopic = new Map<string, number>();
    for (const tm of topicMessages) {
      if (tm.topic !== this.changelog)
        outputsByTopic.set(tm.topic.slice(this.prefix.length), tm.messages.length);
    }
    this.recordCommit(h, t0, end, flush, outputsByTopic);
  }

  private messagesOf(
    flush: Flush,
    partition: number,
    now: number,
  ): Array<{ topic: string; messages: Message[] }> {
    const byTopic = new Map<string, Message[]>();
    const add = (topic: string, m: Message): void => {
      let list = byTopic.get(topic);
      if (!list) byTopic.set(topic, (list = []));
      list.push(m);
    };
    // Every output goes to the task's own partition number: outputs are co-partitioned with the
    // inputs by merchant, whatever their key. holdback.loans.v1 is keyed by loan_id, but a loan
    // never changes merchant, so compaction still sees each key in one partition, and a
    // downstream processor (eligibility) reads a merchant's loan states beside its sales.
    flush.outputs.forEach((o, i) => {
      add(this.physical(o.topic), {
        key: o.key,
        value: this.o.codec.encode(o.topic, o.value),
        partition,
        timestamp: String(flush.outputTimestamps[i]),
      });
    });
    for (const r of flush.rejected) {
      add(this.physical(this.o.deadLetters.topic), {
        key: r.source.key,
        value: this.o.deadLetters.encode(r, now),
        partition,
      });
    }
    // State for partition p lives in changelog partition p, whatever its key hashes to.
    for (const c of flush.changelog) add(this.changelog, { key: c.key, value: c.value, partition });
    return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
  }

  protected async ensureChangelogTopic(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      // Inputs, outputs and the DLQ must all have the inputs' partition count: the runtime
      // writes a task's outputs to its own partition number (co-partitioned by merchant).
      const topics = [
        ...this.inputTopics(),
        ...this.o.processor.outputs.map((t) => this.physical(t)),
        this.physical(this.o.deadLetters.topic),
      ];
      const meta = await admin.fetchTopicMetadata({ topics: [...new Set(topics)] });
      const count = meta.topics[0]!.partitions.length;
      for (const t of meta.topics) {
        if (t.partitions.length !== count) {
          throw new Error(
            `${t.name} has ${t.partitions.length} partitions but ${meta.topics[0]!.name} has ${count}: ` +
              'inputs and outputs must be co-partitioned (create them with one partition count, ' +
              'as `holdback stack up` does)',
          );
        }
      }
      const existing = await admin.listTopics();
      if (!existing.includes(this.changelog)) {
        await createTopicsReady(admin, [
          {
            topic: this.changelog,
            numPartitions: count,
            replicationFactor: 1,
            configEntries: [
              { name: 'cleanup.policy', value: 'compact' },
              { name: 'min.compaction.lag.ms', value: '0' },
              { name: 'segment.ms', value: '600000' },
            ],
          },
        ]);
      } else {
        const [cl] = (await admin.fetchTopicMetadata({ topics: [this.changelog] })).topics;
        if (cl!.partitions.length !== count) {
          throw new Error(
            `${this.changelog} has ${cl!.partitions.length} partitions but the inputs have ${count}`,
          );
        }
      }
    } finally {
      await admin.disconnect();
    }
  }
}

/**
 * kafkajs sends one record batch per partition per request and never splits it; the broker
 * refuses a batch over message.max.bytes (1 MiB by default). Requests are kept well under it.
 */
const MAX_REQUEST_BYTES = 512 * 1024;

export function chunkBySize(
  topicMessages: ReadonlyArray<{ topic: string; messages: Message[] }>,
  maxBytes: number,
): Array<Array<{ topic: string; messages: Message[] }>> {
  const chunks: Array<Array<{ topic: string; messages: Message[] }>> = [];
  let current: Array<{ topic: string; messages: Message[] }> = [];
  let size = 0;
  for (const { topic, messages } of topicMessages) {
    let part: Message[] = [];
    for (const m of messages) {
      const bytes = 64 + byteLength(m.key) + byteLength(m.value);
      if (size + bytes > maxBytes && size > 0) {
        if (part.length > 0) current.push({ topic, messages: part });
        chunks.push(current);
        current = [];
        part = [];
        size = 0;
      }
      part.push(m);
      size += bytes;
    }
    if (part.length > 0) current.push({ topic, messages: part });
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

function byteLength(v: Buffer | string | null | undefined): number {
  if (v === null || v === undefined) return 0;
  return typeof v === 'string' ? Buffer.byteLength(v) : v.length;
}
