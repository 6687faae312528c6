/**
 * The kafkajs transport of the engine (runtime-base.ts): the consumer, the producers, the admin
 * calls. Exactly once the way Kafka Streams' first EOS scheme does it (KIP-98 with one
 * transactional producer per input partition):
 *
 * - a consumer group over the co-partitioned input topics (coPartitionedAssigner); partition p
 *   of every input forms task p;
 * - task p owns a producer whose transactional id `<group>-<p>` is stable across restarts and
 *   instances, so initialising it fences any earlier owner (a zombie's late commit fails);
 * - on assignment (GROUP_JOIN) the engine opens the new tasks outside the lock (fence, restore);
 *   batches for them wait, heartbeating, until they are ready; then the consumer seeks to the
 *   restored offsets. Offsets restored from the changelog are authoritative, which sidesteps
 *   kafkajs's old OffsetFetch (no KIP-447 "require stable" offsets);
 * - each batch is buffered into its task and resolved at once (kafkajs fetches from the last
 *   resolved offset); the engine processes buffered records in time order;
 * - any failure to commit, or a consumer crash, restarts the engine: in-memory state is dropped
 *   and rebuilt from the changelog (crash-only recovery, the same path as a kill -9).
 */
import { sendByPartition } from '../connectors/kafka-send';
import {
  Kafka,
  logLevel,
  type Admin,
  type Consumer,
  type EachBatchPayload,
  type Message,
  type Producer,
} from 'kafkajs';
import { sleep } from '../connectors/backoff';
import { createTopicsReady } from '../connectors/kafka-admin';
import { createGroupConsumer, runGroupConsumer } from '../connectors/kafka-group';
import { readToEnd } from '../connectors/kafka-read';
import { assignPartitions, coPartitionedAssigner } from './assigner';
import type { SourceRecord } from './task';
import {
  changelogTopic,
  RuntimeBase,
  type OutgoingRecord,
  type PartitionBounds,
  type PartitionOffset,
  type RuntimeOptions,
  type TaskHandleBase,
  type TaskProducer,
} from './runtime-base';

export { changelogTopic };
export type { DeadLetterSink, Guarantee, Logger, RuntimeCodec, RuntimeOptions } from './runtime-base';

interface TaskHandle<S> extends TaskHandleBase<S> {
  /** Settles once the task's producer is initialised and its state restored. */
  ready: Promise<void>;
}

export class KafkaRuntime<S> extends RuntimeBase<S, TaskHandle<S>> {
  protected readonly transport = 'kafkajs';
  protected readonly assignor = assignPartitions;
  private readonly kafka: Kafka;
  private consumer: Consumer | undefined;
  /** One admin client for the engine's lifetime: end offsets for the time-order probes. */
  private admin: Admin | undefined;
  /**
   * When the newest fetch response arrived (kafkajs reports it before handing over its batches).
   * A batch handled now arrived at or before it: the time-order probes compare with it.
   */
  private lastFetchAt = Number.NEGATIVE_INFINITY;

  constructor(o: RuntimeOptions<S>) {
    super(o);
    this.kafka = new Kafka({ logLevel: logLevel.WARN, ...o.kafka });
  }

  protected engineRunning(): boolean {
    return this.consumer !== undefined;
  }

  protected pauseFetch(topics: readonly string[], partition: number): void {
    this.consumer?.pause(topics.map((topic) => ({ topic, partitions: [partition] })));
  }

  protected resumeFetch(topics: readonly string[], partition: number): void {
    this.consumer?.resume(topics.map((topic) => ({ topic, partitions: [partition] })));
  }

  // ---- engine: consumer + tasks; restarted as a whole on failure ----

  protected async startEngine(): Promise<void> {
    const generation = ++this.generation;
    const admin = this.kafka.admin();
    await admin.connect();
    this.admin = admin;
    const consumer = createGroupConsumer(this.kafka, {
      groupId: this.o.applicationId,
      partitionAssigners: [coPartitionedAssigner],
      sessionTimeoutMs: this.o.sessionTimeoutMs,
      maxBytesPerPartition: this.o.maxBytesPerPartition ?? 1 << 20,
      maxWaitTimeInMs: 100,
      isCurrent: (c) => this.consumer === c && generation === this.generation,
      onAssign: (assignment) => {
        const partitions = new Set<number>();
        for (const ps of Object.values(assignment)) for (const p of ps) partitions.add(p);
        this.underLock('assignment', () => this.reconcile(generation, partitions));
      },
      onCrash: (reason) => void this.restartEngine(reason),
      onFetch: () => (this.lastFetchAt = this.o.clock()),
      // The task learns that it has consumed past the marker, which may be what it waits for.
      onEmptyBatch: (topic, partition, lastOffset) => {
        const h = this.tasks.get(partition);
        if (!h?.isReady) return;
        h.group.setFetched(topic.slice(this.prefix.length), lastOffset + 1);
        this.underLock('processing', () =>
          generation === this.generation ? this.pump(h) : Promise.resolve(),
        );
      },
    });
    this.consumer = consumer;
    await runGroupConsumer(consumer, this.inputTopics(), (payload) =>
      this.lock.run(() => this.onBatch(generation, payload)),
    );
    this.progressAt = this.o.clock();
  }

  protected async stopEngine(): Promise<void> {
    // A new generation first: queued batches, timers and assignments of the old one become no-ops.
    this.generation++;
    const consumer = this.consumer;
    this.consumer = undefined;
    await consumer?.disconnect().catch(() => undefined);
    const admin = this.admin;
    this.admin = undefined;
    await admin?.disconnect().catch(() => undefined);
  }

  /** Aligns tasks with a new assignment: drops revoked tasks (their uncommitted work is redone by the new owner), opens new ones. */
  private async reconcile(generation: number, assigned: Set<number>): Promise<void> {
    if (generation !== this.generation) return;
    this.o.log.info('assignment', {
      partitions: [...assigned].sort((a, b) => a - b),
      revoked: [...this.tasks.keys()].filter((p) => !assigned.has(p)),
    });
    for (const p of [...this.tasks.keys()]) if (!assigned.has(p)) await this.dropTask(p);
    const fresh = [...assigned].filter((p) => !this.tasks.has(p));
    if (fresh.length === 0) return;
    const handles: Array<TaskHandle<S>> = fresh.map((p) => ({
      ...this.taskBase(p),
      ready: Promise.resolve(),
    }));
    const ready = this.openTasks(handles).then(() => {
      // Position the consumer where the restored state ends.
      if (generation !== this.generation || !this.consumer) return;
      for (const h of handles) {
        for (const { topic, partition, offset } of this.restoredOffsets(h)) {
          if (offset !== undefined) this.consumer.seek({ topic, partition, offset: String(offset) });
        }
      }
    });
    for (const h of handles) {
      h.ready = ready.then(() => {
        h.isReady = true;
      });
      // A failed restore restarts the engine (below). Each task's own promise fails with it, and
      // unless a batch happens to wait on it, Node ends the process for an unhandled rejection:
      // seen when a broker restart refused the restore's connection (cluster back-to-back test).
      h.ready.catch(() => undefined);
      this.tasks.set(h.partition, h);
    }
    // Do not hold the lock while restoring: batches for these partitions wait on `ready`.
    ready.catch((e) => void this.restartEngine(`task restore failed: ${String(e)}`));
  }

  protected readChangelog(
    partitions: readonly number[],
    groupId: string,
    onRecord: (partition: number, key: string, value: Buffer | null) => void,
    onRemaining: (read: number, remaining: number) => void,
  ): Promise<number> {
    return readToEnd(this.kafka, {
      onRemaining,
      topic: this.changelog,
      partitions: [...partitions],
      groupId,
      onMessage: (partition, m) => {
        const key = m.key?.toString('utf8');
        if (key !== undefined) onRecord(partition, key, m.value);
      },
    });
  }

  /** ListOffsets as a read_committed client sees them (the end is the last stable offset); kafkajs asks for the whole topic. */
  protected async endOffsets(
    topic: string,
    partitions: readonly number[],
  ): Promise<Map<number, PartitionBounds>> {
    if (!this.admin) throw new Error('the engine is not running');
    const offsets = await this.admin.fetchTopicOffsets(topic);
    const answers = new Map(
      offsets.map((p) => [p.partition, { start: Number(p.low), end: Number(p.offset) }]),
    );
    const missing = partitions.find((p) => !answers.has(p));
    if (missing !== undefined) throw new Error(`${topic} has no partition ${missing}`);
    return answers;
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
    if (h.stoppedBy || batch.messages.length === 0) return;
    const topic = batch.topic.slice(this.prefix.length);
    const records: SourceRecord[] = batch.messages.map((m) => ({
      topic,
      partition: batch.partition,
      offset: Number(m.offset),
      key: m.key,
      value: m.value,
      timestamp: Number(m.timestamp),
    }));
    // A transactional input (holdback.loans.v1) ends in a commit marker that is never delivered;
    // kafkajs counts it in lastOffset(), so the consumer has fetched up to there.
    const fetchedTo = Number(batch.lastOffset()) + 1;
    this.noteEnd(batch.topic, batch.partition, Number(batch.highWatermark));
    try {
      await this.buffer(h, topic, records, fetchedTo, heartbeat, this.fetchedAt());
    } catch (e) {
      if (this.isInterrupted(e)) return;
      throw e;
    }
    // kafkajs fetches from the last resolved offset: what is buffered is resolved, or it would be
    // fetched again. Resolving commits nothing; commits are transactional, from the task's offsets.
    resolveOffset(batch.lastOffset());
    try {
      await this.pump(h, heartbeat);
    } catch (e) {
      if (this.isInterrupted(e)) return;
      throw e;
    }
    this.commitDue(this.o.clock());
  }

  /** When the batch being handled arrived: the newest fetch response's time (now, if none was reported). */
  private fetchedAt(): number {
    const now = this.o.clock();
    return Number.isFinite(this.lastFetchAt) ? Math.min(this.lastFetchAt, now) : now;
  }

  protected async openProducer(partition: number): Promise<TaskProducer> {
    const eos = this.o.guarantee === 'exactly_once';
    const producer = eos
      ? this.kafka.producer({
          transactionalId: `${this.o.applicationId}-${partition}`,
          idempotent: true,
          maxInFlightRequests: 1,
          transactionTimeout: Math.max(10_000, this.o.sessionTimeoutMs),
        })
      : this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    if (eos) {
      // The fence, before the task's changelog is read. kafkajs's connect() initialises only an
      // idempotent producer id; the transactional InitProducerId, which bumps the epoch and makes
      // the coordinator finish or abort the previous owner's open transaction, comes with the
      // first transaction(). Restoring before it let a previous owner's commit land after the
      // restore read: its decisions were made again (duplicates in the cluster's back-to-back
      // restarts and the instance soak). An empty transaction ends locally (no EndTxn is sent).
      const fence = await producer.transaction();
      await fence.abort();
    }
    return {
      commit: (records, offsets) => this.send(producer, records, offsets),
      close: () => producer.disconnect(),
    };
  }

  private async send(
    producer: Producer,
    records: readonly OutgoingRecord[],
    offsets: readonly PartitionOffset[],
  ): Promise<void> {
    const chunks = chunkBySize(topicMessagesOf(records), MAX_REQUEST_BYTES);
    if (this.o.guarantee === 'exactly_once') {
      const txn = await producer.transaction();
      try {
        for (const chunk of chunks) {
          await sendByPartition((b) => txn.sendBatch(b), chunk, { inTransaction: true });
        }
        await txn.sendOffsets({
          consumerGroupId: this.o.applicationId,
          topics: offsets.map((o) => ({
            topic: o.topic,
            partitions: [{ partition: o.partition, offset: String(o.offset) }],
          })),
        });
        await txn.commit();
      } catch (e) {
        await txn.abort().catch(() => undefined);
        throw e;
      }
    } else {
      for (const chunk of chunks) {
        await sendByPartition((b) => producer.sendBatch(b), chunk, { inTransaction: false });
      }
      await this.consumer?.commitOffsets(
        offsets.map((o) => ({ topic: o.topic, partition: o.partition, offset: String(o.offset) })),
      );
    }
  }

  // ---- topics ----

  protected async partitionCounts(topics: readonly string[]): Promise<Map<string, number>> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      const present = topics.filter((t) => existing.has(t));
      const meta = present.length > 0 ? await admin.fetchTopicMetadata({ topics: present }) : { topics: [] };
      return new Map(meta.topics.map((t) => [t.name, t.partitions.length]));
    } finally {
      await admin.disconnect();
    }
  }

  protected async createCompactedTopic(
    topic: string,
    partitions: number,
    replicationFactor: number,
    config: Record<string, string>,
  ): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      await createTopicsReady(admin, [
        {
          topic,
          numPartitions: partitions,
          replicationFactor,
          configEntries: Object.entries(config).map(([name, value]) => ({ name, value })),
        },
      ]);
    } finally {
      await admin.disconnect();
    }
  }
}

/** Outgoing records grouped by topic, as kafkajs's sendBatch takes them. */
function topicMessagesOf(records: readonly OutgoingRecord[]): Array<{ topic: string; messages: Message[] }> {
  const byTopic = new Map<string, Message[]>();
  for (const r of records) {
    let list = byTopic.get(r.topic);
    if (!list) byTopic.set(r.topic, (list = []));
    list.push({
      key: r.key,
      value: r.value,
      partition: r.partition,
      ...(r.timestamp !== undefined && { timestamp: String(r.timestamp) }),
    });
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
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
