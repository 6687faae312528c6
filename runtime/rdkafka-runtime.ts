/**
 * The node-rdkafka (librdkafka) transport: the same runtime as runtime/kafka-runtime.ts, behind the
 * same options and public methods, running the same `Task`, codec adapter, dead-letter sink and
 * metrics, with the same exactly-once scheme and the same on-the-wire layout, so that the two
 * transports are interchangeable on one application id (they share consumer group, transactional
 * ids and state changelog, and fence each other).
 *
 * Why one transactional producer per task (`<applicationId>-<p>`) and not one per instance with
 * KIP-447 fencing through the consumer group, although librdkafka could do the latter:
 * - interchangeability: a kafkajs instance of the same application can only be fenced through
 *   those transactional ids (kafkajs has no KIP-447), so an rdkafka instance must use them too;
 * - the restore: a task's state and offsets are read from the changelog before it runs. With a
 *   producer per task, initialising `<applicationId>-<p>` aborts (or completes) the previous
 *   owner's open transaction first, so the read ends at once at the partition's end. With one
 *   producer per instance, nothing would end a paused zombie's open transaction but its timeout,
 *   and the new owner's read_committed restore would wait for it.
 * Each commit still sends the consumer's group metadata with the offsets (librdkafka's
 * sendOffsetsToTransaction always does), so a commit from a member whose generation is stale is
 * refused by the group coordinator as well: both fences apply.
 *
 * How librdkafka is driven:
 * - eager rebalancing with the `range` assignor: for topics with equal partition counts it gives
 *   partition p of every input topic to the same member (members are sorted the same way for every
 *   topic), i.e. co-partitioned tasks; every assignment is checked (taskPartitions) and an
 *   assignment that splits a task restarts the engine instead of running half a task;
 * - the rebalance callback does the work librdkafka waits for: on revoke, pending work is committed
 *   before unassign(); on assign, new tasks are opened (producer initialised = fencing, then state
 *   and offsets restored from the changelog) BEFORE assign() is called, and assign() is given the
 *   restored offsets, so the consumer starts exactly where the state ends (librdkafka keeps
 *   heartbeating while it waits for the assign call). Tasks kept across a rebalance keep their
 *   state; a member that lost its partitions in between is caught by the producer fence;
 * - a consume loop fetches batches (consume(n)) and runs them through the tasks under one lock
 *   shared with the rebalance handling and the commit timer; the next batch is fetched only when
 *   this one is handled (backpressure);
 * - any failed commit or fatal client error restarts the engine: consumer and producers closed,
 *   in-memory state dropped and rebuilt from the changelog (crash-only, as after kill -9).
 */
import {
  AdminClient,
  KafkaConsumer,
  Producer,
  type LibrdKafkaError,
  type Message as RdMessage,
  type Metadata,
  type TopicPartition,
  type TopicPartitionOffset,
} from 'node-rdkafka';
import type { KafkaConfig } from 'kafkajs';
import { InvariantViolation } from '../processors/api';
import type { DeadLetterSink, RuntimeCodec, RuntimeOptions } from './kafka-runtime';
import { Task, type Flush, type SourceRecord } from './task';
import { sleep } from './mutex';
import { RuntimeBase, type TaskHandleBase } from './runtime-base';

/** librdkafka's codes used here (rdkafka.h). */
const ERR_REVOKE_PARTITIONS = -174;
const ERR_ASSIGN_PARTITIONS = -175;
const ERR_QUEUE_FULL = -184;
const ERR_TOPIC_ALREADY_EXISTS = 36;
const OFFSET_BEGINNING = -2;
/** Bound on every transactional call, so a dead broker ends in a restart rather than a hang. */
const TXN_CALL_TIMEOUT_MS = 30_000;
const CONSUME_BATCH = 1000;

interface TaskHandle<S> extends TaskHandleBase<S> {
  producer: Producer | undefined;
  /** False between a revoke and the next assignment: fetched records of the task are not handled. */
  assigned: boolean;
}

/** A librdkafka error as text: its message and code (the code says what the message may not). */
function describe(e: unknown): string {
  if (e && typeof e === 'object' && 'code' in e && 'message' in e) {
    const k = e as LibrdKafkaError;
    return `${k.message} (librdkafka code ${k.code}${k.isFatal ? ', fatal' : ''})`;
  }
  return String(e);
}

function call(fn: (cb: (err: LibrdKafkaError | null | undefined) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * librdkafka settings for the kafkajs-style `KafkaConfig` the runtime options carry (brokers,
 * client id, TLS on/off, SASL PLAIN/SCRAM). Anything else is refused rather than dropped.
 */
export function rdkafkaClientConfig(kafka: KafkaConfig): Record<string, string | number | boolean> {
  if (!Array.isArray(kafka.brokers) || kafka.brokers.length === 0) {
    throw new Error('the rdkafka transport needs a list of brokers');
  }
  const conf: Record<string, string | number | boolean> = {
    'metadata.broker.list': kafka.brokers.join(','),
    'client.id': kafka.clientId ?? 'holdback',
  };
  if (kafka.connectionTimeout !== undefined)
    conf['socket.connection.setup.timeout.ms'] = kafka.connectionTimeout;
  if (kafka.ssl !== undefined && kafka.ssl !== false && kafka.ssl !== true) {
    throw new Error(
      'the rdkafka transport takes ssl: true only (librdkafka reads certificates from ssl.* files)',
    );
  }
  const sasl = kafka.sasl;
  if (sasl) {
    const mechanism = sasl.mechanism.toLowerCase();
    if (!['plain', 'scram-sha-256', 'scram-sha-512'].includes(mechanism) || !('username' in sasl)) {
      throw new Error(`the rdkafka transport does not support SASL mechanism ${sasl.mechanism}`);
    }
    conf['sasl.mechanisms'] = mechanism.toUpperCase();
    conf['sasl.username'] = (sasl as { username: string }).username;
    conf['sasl.password'] = (sasl as { password: string }).password;
  }
  conf['security.protocol'] = `${sasl ? 'sasl_' : ''}${kafka.ssl ? 'ssl' : 'plaintext'}`;
  return conf;
}

/**
 * The task (partition) numbers of an assignment. Every input topic must be assigned the same
 * partition numbers: a task needs partition p of every input, or a merchant's loans and payouts
 * would be split between two members (and two owners of `<applicationId>-<p>` would fence each
 * other forever).
 */
export function taskPartitions(
  assignment: readonly TopicPartition[],
  inputTopics: readonly string[],
): number[] {
  const byTopic = new Map<string, Set<number>>(inputTopics.map((t) => [t, new Set<number>()]));
  for (const tp of assignment) {
    const set = byTopic.get(tp.topic);
    if (!set) throw new Error(`assigned ${tp.topic}/${tp.partition}, which is not an input topic`);
    set.add(tp.partition);
  }
  const all = new Set<number>();
  for (const set of byTopic.values()) for (const p of set) all.add(p);
  for (const [topic, set] of byTopic) {
    const missing = [...all].filter((p) => !set.has(p));
    if (missing.length > 0) {
      throw new Error(
        `assignment is not co-partitioned: ${topic} lacks partition(s) ${missing.join(',')} ` +
          'assigned for another input topic (inputs must have equal partition counts)',
      );
    }
  }
  return [...all].sort((a, b) => a - b);
}

export interface OutgoingRecord {
  topic: string;
  partition: number;
  key: Buffer | null;
  value: Buffer | null;
  /** Kafka timestamp (ms); the producer's clock when absent. */
  timestamp?: number;
}

/**
 * What one commit of task `partition` writes: outputs, dead letters and changelog entries, all to
 * the task's own partition number (outputs are co-partitioned with the inputs by merchant,
 * whatever their key; state of task p lives in changelog partition p), exactly as the kafkajs
 * runtime writes them (see messagesOf in kafka-runtime.ts).
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
      value: o.codec.encode(r.topic, r.value),
      timestamp: flush.outputTimestamps[i],
    });
  });
  for (const r of flush.rejected) {
    out.push({
      topic: o.physical(o.deadLetters.topic),
      partition,
      key: r.source.key,
      value: o.deadLetters.encode(r, now),
    });
  }
  for (const c of flush.changelog) {
    out.push({ topic: o.changelog, partition, key: Buffer.from(c.key, 'utf8'), value: c.value });
  }
  return out;
}

export class RdKafkaRuntime<S> extends RuntimeBase<S, TaskHandle<S>> {
  protected readonly transport = 'rdkafka';
  private readonly base: Record<string, string | number | boolean>;
  private consumer: KafkaConsumer | undefined;
  private loopDone: Promise<void> = Promise.resolve();
  private restoreSeq = 0;

  constructor(o: RuntimeOptions<S>) {
    super(o);
    this.base = rdkafkaClientConfig(o.kafka);
  }

  protected engineRunning(): boolean {
    return this.consumer !== undefined;
  }

  /** Between a revoke and the next assignment a task neither ticks nor commits. */
  protected override active(h: TaskHandle<S>): boolean {
    return super.active(h) && h.assigned;
  }

  protected override describeError(e: unknown): string {
    return describe(e);
  }

  protected override errorName(e: unknown): string {
    if (e && typeof e === 'object' && 'code' in e) return `rdkafka_${String((e as LibrdKafkaError).code)}`;
    return super.errorName(e);
  }

  protected pausePartition(h: TaskHandle<S>): void {
    const consumer = this.consumer;
    if (consumer) this.safely(() => consumer.pause(this.partitionsOf([h.partition])));
  }

  // ---- engine: consumer + tasks; restarted as a whole on failure ----

  protected async startEngine(): Promise<void> {
    const generation = ++this.generation;
    const consumer = new KafkaConsumer(
      {
        ...this.base,
        'group.id': this.o.applicationId,
        'partition.assignment.strategy': 'range',
        'session.timeout.ms': this.o.sessionTimeoutMs,
        'heartbeat.interval.ms': Math.max(500, Math.floor(this.o.sessionTimeoutMs / 5)),
        'isolation.level': 'read_committed',
        'enable.auto.commit': false,
        'enable.auto.offset.store': false,
        'enable.partition.eof': false,
        'fetch.wait.max.ms': 100,
        'max.partition.fetch.bytes': 1 << 20,
        rebalance_cb: (err: LibrdKafkaError | undefined, assignment: TopicPartition[]) =>
          this.onRebalance(generation, consumer, err, assignment),
      },
      { 'auto.offset.reset': 'earliest' },
    );
    consumer.on('event.error', (err: LibrdKafkaError) => {
      if (generation !== this.generation) return;
      // librdkafka recovers from broker and network errors by itself; a fatal error it cannot.
      if (err.isFatal) void this.restartEngine(`consumer fatal error: ${describe(err)}`);
      else this.o.log.warn('consumer error (librdkafka retries)', { error: describe(err) });
    });
    consumer.setDefaultConsumeTimeout(100);
    this.consumer = consumer;
    try {
      await new Promise<void>((resolve, reject) =>
        consumer.connect({ timeout: 30_000 }, (err) => (err ? reject(err) : resolve())),
      );
      consumer.subscribe(this.inputTopics());
    } catch (e) {
      this.consumer = undefined;
      throw e;
    }
    this.loopDone = this.consumeLoop(generation, consumer);
    this.progressAt = this.o.clock();
  }

  private async consumeLoop(generation: number, consumer: KafkaConsumer): Promise<void> {
    while (generation === this.generation) {
      let messages: RdMessage[];
      try {
        messages = await new Promise<RdMessage[]>((resolve, reject) =>
          consumer.consume(CONSUME_BATCH, (err, ms) => (err ? reject(err) : resolve(ms))),
        );
      } catch (e) {
        if (generation !== this.generation) return;
        if ((e as LibrdKafkaError).isFatal) {
          void this.restartEngine(`consumer fatal error: ${describe(e)}`);
          return;
        }
        this.o.log.warn('consume failed (retrying)', { error: describe(e) });
        await sleep(200);
        continue;
      }
      if (messages.length === 0) continue;
      try {
        await this.lock.run(() => this.onMessages(generation, consumer, messages));
      } catch (e) {
        void this.restartEngine(`processing failed: ${describe(e)}`);
        return;
      }
    }
  }

  protected async stopEngine(): Promise<void> {
    // A new generation first: queued batches, timers and rebalances of the old one become no-ops.
    this.generation++;
    const consumer = this.consumer;
    this.consumer = undefined;
    await this.loopDone.catch(() => undefined);
    if (consumer) {
      // Closing runs the revoke callback, which (stale now) unassigns at once.
      await withTimeout(
        call((cb) => consumer.disconnect(cb)),
        15_000,
        'closing the consumer',
      ).catch((e) => this.o.log.warn('consumer close failed', { error: describe(e) }));
    }
    await this.lock.run(async () => {
      await Promise.all([...this.tasks.values()].map((h) => this.closeProducer(h)));
      this.tasks.clear();
      this.lag.clear();
    });
  }

  private async closeProducer(h: TaskHandle<S>): Promise<void> {
    const p = h.producer;
    h.producer = undefined;
    if (!p) return;
    await withTimeout(
      call((cb) => p.disconnect(5000, cb)),
      10_000,
      'closing a producer',
    ).catch(() => undefined);
  }

  // ---- rebalancing ----

  private onRebalance(
    generation: number,
    consumer: KafkaConsumer,
    err: LibrdKafkaError | undefined,
    assignment: TopicPartition[],
  ): void {
    const code = err?.code;
    if (generation !== this.generation) {
      // The engine is closing this consumer: librdkafka waits for the unassign to finish closing.
      if (code !== ERR_ASSIGN_PARTITIONS) this.safely(() => consumer.unassign());
      return;
    }
    if (code === ERR_ASSIGN_PARTITIONS) {
      void this.lock.run(() => this.onAssign(generation, consumer, assignment));
    } else if (code === ERR_REVOKE_PARTITIONS) {
      void this.lock.run(() => this.onRevoke(generation, consumer));
    } else {
      this.o.log.warn('rebalance error; unassigning', { error: describe(err) });
      this.safely(() => consumer.unassign());
    }
  }

  private safely(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.o.log.warn('rebalance call failed', { error: describe(e) });
    }
  }

  /** Commits every task's pending work before the partitions go (Kafka Streams does the same). */
  private async onRevoke(generation: number, consumer: KafkaConsumer): Promise<void> {
    if (generation === this.generation) {
      for (const h of this.tasks.values()) h.assigned = false;
      const ready = [...this.tasks.values()].filter((h) => h.isReady && !h.stoppedBy);
      const ok = await Promise.all(ready.map((h) => this.commitOrRestart(h)));
      if (ok.every(Boolean)) this.o.log.info('partitions revoked; pending work committed');
    }
    this.safely(() => consumer.unassign());
  }

  /** Drops tasks no longer assigned, opens new ones (fence, restore), then assigns at the restored offsets. */
  private async onAssign(
    generation: number,
    consumer: KafkaConsumer,
    assignment: TopicPartition[],
  ): Promise<void> {
    if (generation !== this.generation) return;
    let assigned: number[];
    try {
      assigned = taskPartitions(assignment, this.inputTopics());
    } catch (e) {
      void this.restartEngine(`bad assignment: ${describe(e)}`);
      return;
    }
    this.o.log.info('assignment', {
      partitions: assigned,
      revoked: [...this.tasks.keys()].filter((p) => !assigned.includes(p)),
    });
    for (const [p, h] of this.tasks) {
      if (assigned.includes(p)) continue;
      this.tasks.delete(p);
      await this.closeProducer(h);
      for (const t of this.inputTopics()) {
        this.lag.delete(`${t}/${p}`);
        this.o.metrics.consumerLag.remove({
          processor: this.name,
          topic: t.slice(this.prefix.length),
          partition: String(p),
        });
      }
    }
    const fresh = assigned.filter((p) => !this.tasks.has(p)).map((p) => this.newHandle(p));
    if (fresh.length > 0) {
      try {
        await this.openTasks(fresh);
      } catch (e) {
        await Promise.all(fresh.map((h) => this.closeProducer(h)));
        void this.restartEngine(`task restore failed: ${describe(e)}`);
        return;
      }
      if (generation !== this.generation) {
        await Promise.all(fresh.map((h) => this.closeProducer(h)));
        return;
      }
      for (const h of fresh) {
        h.isReady = true;
        this.tasks.set(h.partition, h);
      }
    }
    const positions: Array<TopicPartition | TopicPartitionOffset> = [];
    for (const p of assigned) {
      const h = this.tasks.get(p)!;
      h.assigned = true;
      for (const topic of this.o.processor.inputs) {
        const next = h.task.nextOffset(topic);
        // No offset recorded: the group's committed offset, else the earliest.
        positions.push(
          next === undefined
            ? { topic: this.physical(topic), partition: p }
            : { topic: this.physical(topic), partition: p, offset: next },
        );
      }
    }
    consumer.assign(positions);
    const stopped = assigned.filter((p) => this.tasks.get(p)!.stoppedBy);
    if (stopped.length > 0) consumer.pause(this.partitionsOf(stopped));
  }

  private partitionsOf(partitions: number[]): TopicPartition[] {
    return partitions.flatMap((partition) => this.inputTopics().map((topic) => ({ topic, partition })));
  }

  private newHandle(partition: number): TaskHandle<S> {
    return {
      partition,
      task: new Task(this.o.processor, partition),
      producer: undefined,
      isReady: false,
      assigned: false,
      lastCommitAt: this.o.clock(),
      streamTime: 0,
      oldestFetchedAt: undefined,
    };
  }

  private async openTasks(handles: TaskHandle<S>[]): Promise<void> {
    const t0 = Date.now();
    // 1. Fence earlier owners: initialising the transactional id aborts or completes their transaction.
    await Promise.all(handles.map(async (h) => (h.producer = await this.openProducer(h.partition))));
    // 2. Restore state and offsets from the changelog, now that no one else can write to it.
    const restored = await this.restore(handles);
    this.o.metrics.restoredKeys.inc({ processor: this.name }, restored);
    this.o.metrics.restoreSeconds.observe({ processor: this.name }, (Date.now() - t0) / 1000);
    this.o.log.info('tasks ready', {
      partitions: handles.map((h) => h.partition),
      restoredEntries: restored,
      ms: Date.now() - t0,
    });
  }

  private async openProducer(partition: number): Promise<Producer> {
    const eos = this.o.guarantee === 'exactly_once';
    const producer = new Producer({
      ...this.base,
      'client.id': `${String(this.base['client.id'])}-${partition}`,
      'enable.idempotence': true,
      ...(eos
        ? {
            'transactional.id': `${this.o.applicationId}-${partition}`,
            'transaction.timeout.ms': Math.max(10_000, this.o.sessionTimeoutMs),
          }
        : {}),
      'linger.ms': 5,
      dr_cb: false,
    });
    producer.on('event.error', (err: LibrdKafkaError) =>
      this.o.log.warn('producer error', { partition, error: describe(err) }),
    );
    await new Promise<void>((resolve, reject) =>
      producer.connect({ timeout: 30_000 }, (err) => (err ? reject(err) : resolve())),
    );
    producer.setPollInterval(100);
    if (eos) await call((cb) => producer.initTransactions(TXN_CALL_TIMEOUT_MS, cb));
    return producer;
  }

  /** Reads changelog partitions from the beginning to their end (read_committed), into the tasks. */
  private async restore(handles: TaskHandle<S>[]): Promise<number> {
    const byPartition = new Map(handles.map((h) => [h.partition, h]));
    const reader = new KafkaConsumer(
      {
        ...this.base,
        'client.id': `${String(this.base['client.id'])}-restore`,
        // Never joins or commits: partitions are assigned directly.
        'group.id': `${this.o.applicationId}-restore-${process.pid}-${++this.restoreSeq}`,
        'enable.auto.commit': false,
        'isolation.level': 'read_committed',
        'enable.partition.eof': true,
        'fetch.wait.max.ms': 50,
        'max.partition.fetch.bytes': 4 << 20,
      },
      {},
    );
    await new Promise<void>((resolve, reject) =>
      reader.connect({ timeout: 30_000 }, (err) => (err ? reject(err) : resolve())),
    );
    let read = 0;
    try {
      const pending = new Set<number>();
      for (const p of byPartition.keys()) {
        const w = await new Promise<{ lowOffset: number; highOffset: number }>((resolve, reject) =>
          reader.queryWatermarkOffsets(this.changelog, p, 10_000, (err, o) =>
            err ? reject(err) : resolve(o),
          ),
        );
        if (w.highOffset > w.lowOffset) pending.add(p);
      }
      if (pending.size === 0) return 0;
      // The end is the partition's end for read_committed: our producer was initialised first, so
      // no transaction of another owner can still be open on it.
      reader.on('partition.eof', (e) => pending.delete(e.partition));
      reader.assign(
        [...pending].map((partition) => ({ topic: this.changelog, partition, offset: OFFSET_BEGINNING })),
      );
      reader.setDefaultConsumeTimeout(100);
      const deadline = Date.now() + 120_000;
      while (pending.size > 0) {
        if (Date.now() > deadline)
          throw new Error(`reading ${this.changelog} to its end took longer than 120 s`);
        const messages = await new Promise<RdMessage[]>((resolve, reject) =>
          reader.consume(5000, (err, ms) => (err ? reject(err) : resolve(ms))),
        );
        for (const m of messages) {
          const key = m.key === undefined || m.key === null ? undefined : m.key.toString();
          const h = byPartition.get(m.partition);
          if (key !== undefined && h) {
            h.task.restore(key, m.value);
            read++;
          }
        }
      }
    } finally {
      await withTimeout(
        call((cb) => reader.disconnect(cb)),
        10_000,
        'closing the restore reader',
      ).catch(() => undefined);
    }
    return read;
  }

  // ---- the hot path ----

  private async onMessages(
    generation: number,
    consumer: KafkaConsumer,
    messages: RdMessage[],
  ): Promise<void> {
    if (generation !== this.generation || this.stopping) return;
    const t0 = process.hrtime.bigint();
    const fetchedAt = this.o.clock();
    const counts = new Map<string, number>();
    const seen = new Map<string, { partition: number; topic: string; physical: string }>();
    for (const m of messages) {
      const h = this.tasks.get(m.partition);
      // Not ours (any more), between a revoke and an assignment, or stopped: not handled.
      if (!h || !h.isReady || !h.assigned || h.stoppedBy) continue;
      const topic = m.topic.slice(this.prefix.length);
      const key =
        m.key === undefined || m.key === null ? null : Buffer.isBuffer(m.key) ? m.key : Buffer.from(m.key);
      const src: SourceRecord = {
        topic,
        partition: m.partition,
        offset: m.offset,
        key,
        value: m.value,
        timestamp: m.timestamp ?? this.o.clock(),
      };
      seen.set(`${m.topic}/${m.partition}`, { partition: m.partition, topic, physical: m.topic });
      if (h.task.isDuplicate(src)) continue;
      const decoded = await this.decodeWithRetry(src);
      if (generation !== this.generation) return;
      try {
        h.task.accept(src, decoded, this.processorNow(h, src.timestamp));
      } catch (e) {
        if (e instanceof InvariantViolation) {
          this.stopTask(h, e);
          continue;
        }
        throw e;
      }
      h.oldestFetchedAt ??= fetchedAt;
      counts.set(topic, (counts.get(topic) ?? 0) + 1);
      if (h.task.pendingCount >= this.o.maxPendingPerTask && !(await this.commitOrRestart(h))) return;
    }
    for (const [topic, n] of counts) this.o.metrics.recordsIn.inc({ processor: this.name, topic }, n);
    this.o.metrics.batchSeconds.observe({ processor: this.name }, Number(process.hrtime.bigint() - t0) / 1e9);
    for (const { partition, topic, physical } of seen.values()) {
      const h = this.tasks.get(partition);
      if (!h) continue;
      let high: number | undefined;
      try {
        high = consumer.getWatermarkOffsets(physical, partition).highOffset;
      } catch {
        high = undefined;
      }
      if (high === undefined || high < 0) continue;
      const lag = Math.max(0, high - (h.task.nextOffset(topic) ?? 0));
      this.recordLag(physical, partition, lag);
    }
    await this.commitDue(this.o.clock());
  }

  protected async commit(h: TaskHandle<S>): Promise<void> {
    const now = this.o.clock();
    if (!h.task.hasPending()) {
      h.lastCommitAt = now;
      return;
    }
    const producer = h.producer;
    const consumer = this.consumer;
    if (!producer || !consumer) throw new Error(`task ${h.partition} has no producer or consumer`);
    const flush = h.task.drain();
    const records = recordsOf(flush, h.partition, now, {
      codec: this.o.codec,
      deadLetters: this.o.deadLetters,
      physical: (t) => this.physical(t),
      changelog: this.changelog,
    });
    const offsets: TopicPartitionOffset[] = [...flush.offsets].map(([topic, offset]) => ({
      topic: this.physical(topic),
      partition: h.partition,
      offset,
    }));
    const t0 = process.hrtime.bigint();
    if (this.o.guarantee === 'exactly_once') {
      await call((cb) => producer.beginTransaction(cb));
      try {
        await this.produceAll(producer, records);
        await call((cb) => producer.sendOffsetsToTransaction(offsets, consumer, TXN_CALL_TIMEOUT_MS, cb));
        await call((cb) => producer.commitTransaction(TXN_CALL_TIMEOUT_MS, cb));
      } catch (e) {
        await call((cb) => producer.abortTransaction(TXN_CALL_TIMEOUT_MS, cb)).catch(() => undefined);
        throw e;
      }
    } else {
      await this.produceAll(producer, records);
      await call((cb) => producer.flush(TXN_CALL_TIMEOUT_MS, cb));
      consumer.commitSync(offsets);
    }
    const end = this.o.clock();
    h.lastCommitAt = end;
    this.progressAt = end;
    const outputsByTopic = new Map<string, number>();
    for (const r of records) {
      if (r.topic === this.changelog) continue;
      const topic = r.topic.slice(this.prefix.length);
      outputsByTopic.set(topic, (outputsByTopic.get(topic) ?? 0) + 1);
    }
    this.recordCommit(h, t0, end, flush, outputsByTopic);
  }

  /** Hands records to librdkafka's queue; a full queue is drained by waiting, never by dropping. */
  private async produceAll(producer: Producer, records: readonly OutgoingRecord[]): Promise<void> {
    for (const r of records) {
      for (let attempt = 0; ; attempt++) {
        try {
          producer.produce(r.topic, r.partition, r.value, r.key, r.timestamp);
          break;
        } catch (e) {
          if ((e as LibrdKafkaError).code !== ERR_QUEUE_FULL || attempt > 1000) throw e;
          producer.poll();
          await sleep(5);
        }
      }
    }
  }

  // ---- topics ----

  protected async ensureChangelogTopic(): Promise<void> {
    const client = new Producer({ ...this.base, 'client.id': `${String(this.base['client.id'])}-admin` });
    await new Promise<void>((resolve, reject) =>
      client.connect({ timeout: 30_000 }, (err) => (err ? reject(err) : resolve())),
    );
    try {
      const metadata = (): Promise<Metadata> =>
        new Promise((resolve, reject) =>
          client.getMetadata({ allTopics: true, timeout: 10_000 }, (err, m) =>
            err ? reject(err) : resolve(m),
          ),
        );
      const topics = [
        ...new Set([
          ...this.inputTopics(),
          ...this.o.processor.outputs.map((t) => this.physical(t)),
          this.physical(this.o.deadLetters.topic),
        ]),
      ];
      const meta = await metadata();
      const counts = new Map(meta.topics.map((t) => [t.name, t.partitions.length]));
      const count = counts.get(topics[0]!);
      if (count === undefined) throw new Error(`topic ${topics[0]} does not exist`);
      for (const t of topics) {
        const n = counts.get(t);
        if (n === undefined) throw new Error(`topic ${t} does not exist`);
        if (n !== count) {
          throw new Error(
            `${t} has ${n} partitions but ${topics[0]} has ${count}: ` +
              'inputs and outputs must be co-partitioned (create them with one partition count, ' +
              'as `holdback stack up` does)',
          );
        }
      }
      const existing = counts.get(this.changelog);
      if (existing === undefined) {
        const admin = AdminClient.create({
          ...this.base,
          'client.id': `${String(this.base['client.id'])}-admin`,
        });
        try {
          await call((cb) =>
            admin.createTopic(
              {
                topic: this.changelog,
                num_partitions: count,
                replication_factor: 1,
                config: { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '0', 'segment.ms': '600000' },
              },
              30_000,
              cb,
            ),
          ).catch((e: LibrdKafkaError) => {
            if (e.code !== ERR_TOPIC_ALREADY_EXISTS) throw e;
          });
        } finally {
          admin.disconnect();
        }
        // Wait for every partition to have a leader.
        const deadline = Date.now() + 30_000;
        for (;;) {
          const t = (await metadata()).topics.find((x) => x.name === this.changelog);
          if (t && t.partitions.length === count && t.partitions.every((p) => p.leader >= 0)) break;
          if (Date.now() > deadline) throw new Error(`${this.changelog} has no leaders after 30 s`);
          await sleep(200);
        }
      } else if (existing !== count) {
        throw new Error(`${this.changelog} has ${existing} partitions but the inputs have ${count}`);
      }
    } finally {
      await withTimeout(
        call((cb) => client.disconnect(cb)),
        10_000,
        'closing the admin client',
      ).catch(() => undefined);
    }
  }
}
