/**
 * The ClickHouse sink: one consumer group over every input and output topic (read_committed),
 * decoded with the contract codec, buffered by table (batcher.ts) and written exactly once
 * (writer.ts). ClickHouse, not Kafka, holds the sink's positions: on every assignment the sink
 * drops what it buffered, reads max(_offset) per partition from each table and seeks there.
 * Kafka offsets are committed after each durable flush, for lag monitoring only.
 *
 * While ClickHouse is unreachable the flush retries with backoff inside the batch handler, so
 * consumption stops (backpressure) while the group membership is kept alive by heartbeats.
 */
import { Kafka, logLevel, type Consumer, type EachBatchPayload, type KafkaConfig } from 'kafkajs';
import { Restarter, retrying } from '../backoff';
import { RegistryUnavailableError, type Codec } from '../codec';
import { createGroupConsumer, runGroupConsumer } from '../kafka-group';
import { Mutex } from '../mutex';
import { whileRetriable } from '../kafka-read';
import { TOPICS, type TopicName } from '../../schemas/topics';
import { Batcher, partitionKey, type BatchLimits, type Drained } from './batcher';
import { appliedMigrations, loadMigrations } from './migrate';
import type { SinkMetrics } from './metrics';
import type { ClickHouseConnection } from '../connections';
import { RAW_TABLES, SINK_TOPICS, tableOf } from './rows';
import { ClickHouseWriter, SinkStopping, type KeepAlive, type Logger } from './writer';

export interface SinkOptions {
  kafka: KafkaConfig;
  groupId: string;
  topicPrefix: string;
  clickhouse: ClickHouseConnection;
  database: string;
  codec: Codec;
  limits: BatchLimits;
  insertTimeoutMs: number;
  sessionTimeoutMs: number;
  metrics: SinkMetrics;
  log: Logger;
  clock?: () => number;
}

export class ClickHouseSink {
  readonly writer: ClickHouseWriter;
  private readonly kafka: Kafka;
  private readonly batcher: Batcher;
  private readonly lock = new Mutex();
  private readonly clock: () => number;
  private consumer: Consumer | undefined;
  private generation = 0;
  private reconciling = false;
  private stopping = false;
  private readonly restarter = new Restarter({
    initialMs: 500,
    maxMs: 15_000,
    stop: () => this.stopping,
    attempt: async () => {
      await this.stopConsumer();
      await this.lock.run(async () => this.batcher.reset());
      await this.startConsumer();
    },
    onFailure: (e) => {
      this.lastError = `restart failed: ${String(e)}`;
    },
    onAgain: () =>
      this.o.log.warn('the consumer failed again while restarting; restarting once more', {
        reason: this.lastError,
      }),
  });
  private timer: NodeJS.Timeout | undefined;
  private heartbeat: KeepAlive = async () => undefined;
  /** Next offset durable in ClickHouse, per "topic/partition" (contract topic names). */
  private readonly durable = new Map<string, number>();
  private readonly highWatermarks = new Map<string, number>();
  private progressAt = 0;
  private lastError: string | undefined;
  private flushedRows = 0;
  /** The write under way, if any (at most one). */
  private inflight: Promise<void> | undefined;
  /** A write gave up (stop, or a bug): its rows are read again after a restart. */
  private abandoned = false;
  /** Set by stop(): when writes stop retrying. */
  private giveUpAt: number | undefined;

  constructor(private readonly o: SinkOptions) {
    this.clock = o.clock ?? Date.now;
    this.kafka = new Kafka({ logLevel: logLevel.WARN, ...o.kafka });
    this.batcher = new Batcher(o.limits);
    this.writer = new ClickHouseWriter({
      connection: o.clickhouse,
      database: o.database,
      insertTimeoutMs: o.insertTimeoutMs,
      metrics: o.metrics,
      log: o.log,
    });
  }

  /** Rows made durable by this process. */
  get rowsFlushed(): number {
    return this.flushedRows;
  }

  private physical(topic: TopicName): string {
    return this.o.topicPrefix + topic;
  }

  private logical(physical: string): TopicName | undefined {
    if (!physical.startsWith(this.o.topicPrefix)) return undefined;
    const t = physical.slice(this.o.topicPrefix.length) as TopicName;
    return SINK_TOPICS.includes(t) ? t : undefined;
  }

  async start(): Promise<void> {
    const version = await this.writer.init();
    const applied = await appliedMigrations(this.writer.client, this.o.database);
    const latest = loadMigrations().length;
    if (applied.length < latest) {
      throw new Error(
        `ClickHouse database ${this.o.database} has ${applied.length} of ${latest} migrations: run \`holdback clickhouse migrate --database=${this.o.database}\` first`,
      );
    }
    await this.writer.loadLayouts(RAW_TABLES);
    this.o.log.info('ClickHouse ready', { version, database: this.o.database, migrations: applied.length });
    await this.startConsumer();
    this.timer = setInterval(() => void this.onTimer(), Math.max(50, Math.floor(this.o.limits.maxAgeMs / 4)));
  }

  /** Graceful: flush what is buffered (giving up after `graceMs` if ClickHouse is down), commit, leave. */
  async stop(graceMs = 15_000): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    // A write under way, and the final one, get graceMs to succeed if ClickHouse is failing.
    this.giveUpAt = Date.now() + graceMs;
    // No new batches from here on; a write under way still completes (or gives up) first.
    this.stopping = true;
    await this.lock.run(async () => {
      this.abandoned = false;
      await this.startFlush();
      await this.settled();
      if (this.abandoned)
        this.o.log.warn('final flush abandoned; the rows will be read again on the next start', {
          error: this.lastError,
        });
    });
    await this.stopConsumer();
    await this.writer.close();
  }

  health(): { ok: boolean; detail: Record<string, unknown> } {
    const now = this.clock();
    const lag = this.totalLag();
    const stalled = lag > 0 && now - this.progressAt > 60_000;
    return {
      ok: !this.stopping && this.consumer !== undefined && !stalled,
      detail: {
        database: this.o.database,
        generation: this.generation,
        bufferedRows: this.batcher.rows,
        rowsFlushed: this.flushedRows,
        lag,
        msSinceProgress: now - this.progressAt,
        lastError: this.lastError,
      },
    };
  }

  totalLag(): number {
    let n = 0;
    for (const [key, high] of this.highWatermarks) n += Math.max(0, high - (this.durable.get(key) ?? 0));
    return n;
  }

  // ---- consumer lifecycle ----

  private async startConsumer(): Promise<void> {
    const generation = ++this.generation;
    const consumer = createGroupConsumer(this.kafka, {
      groupId: this.o.groupId,
      sessionTimeoutMs: this.o.sessionTimeoutMs,
      maxBytesPerPartition: 1 << 20,
      maxWaitTimeInMs: 200,
      isCurrent: (c) => this.consumer === c && generation === this.generation,
      onAssign: (assignment) => {
        this.reconciling = true;
        void this.lock
          .run(() => this.reconcile(generation, assignment))
          .catch((e) => void this.restart(`reconcile failed: ${String(e)}`))
          .finally(() => {
            if (generation === this.generation) this.reconciling = false;
          });
      },
      onCrash: (reason) => void this.restart(reason),
    });
    this.consumer = consumer;
    await runGroupConsumer(
      consumer,
      SINK_TOPICS.map((t) => this.physical(t)),
      (payload) => this.onBatch(generation, payload),
    );
    this.progressAt = this.clock();
  }

  private async stopConsumer(): Promise<void> {
    this.generation++;
    const c = this.consumer;
    this.consumer = undefined;
    await c?.disconnect().catch(() => undefined);
  }

  private async restart(reason: string): Promise<void> {
    if (this.stopping) return;
    this.lastError = reason;
    if (!this.restarter.active)
      this.o.log.warn('restarting the consumer; positions will be read from ClickHouse again', { reason });
    return this.restarter.request();
  }

  /**
   * A new assignment: buffered rows are dropped (they will be read again), positions come from
   * ClickHouse, and every assigned partition is sought to its next offset.
   */
  private async reconcile(generation: number, assignment: Record<string, number[]>): Promise<void> {
    if (generation !== this.generation) return;
    await this.settled();
    this.batcher.reset();
    this.durable.clear();
    this.highWatermarks.clear();
    const stop = (): boolean => this.stopping || generation !== this.generation;
    const known = await this.retrying('read positions from ClickHouse', stop, async () => {
      await this.writer.barrier(() => this.keepAlive());
      const out = new Map<TopicName, Map<number, number>>();
      for (const [physical] of Object.entries(assignment)) {
        const topic = this.logical(physical);
        if (topic) out.set(topic, await this.writer.positions(tableOf(topic)));
      }
      return out;
    });
    const admin = this.kafka.admin();
    await admin.connect();
    const seeks: Array<{ topic: string; partition: number; offset: number; from: string }> = [];
    try {
      for (const [physical, partitions] of Object.entries(assignment)) {
        const topic = this.logical(physical);
        if (!topic) continue;
        const low = new Map(
          (await whileRetriable(() => admin.fetchTopicOffsets(physical))).map((p) => [
            p.partition,
            Number(p.low),
          ]),
        );
        for (const p of partitions) {
          const max = known.get(topic)?.get(p);
          const next = max === undefined ? (low.get(p) ?? 0) : max + 1;
          this.batcher.setPosition(topic, p, next);
          this.durable.set(partitionKey(topic, p), next);
          seeks.push({
            topic: physical,
            partition: p,
            offset: next,
            from: max === undefined ? 'start' : 'clickhouse',
          });
        }
      }
    } finally {
      await admin.disconnect();
    }
    if (generation !== this.generation || !this.consumer) return;
    for (const s of seeks)
      this.consumer.seek({ topic: s.topic, partition: s.partition, offset: String(s.offset) });
    this.o.log.info('assignment reconciled with ClickHouse', {
      partitions: seeks.length,
      resumedFromClickHouse: seeks.filter((s) => s.from === 'clickhouse').length,
    });
  }

  private retrying<T>(what: string, stop: () => boolean, fn: () => Promise<T>): Promise<T> {
    return retrying(fn, {
      initialMs: 250,
      maxMs: 5000,
      stop,
      stopped: () => new SinkStopping(`stopped while trying to ${what}`),
      isTransient: (e) => !(e instanceof SinkStopping),
      onRetry: async (e, backoffMs) => {
        this.lastError = `${what}: ${String(e)}`;
        this.o.metrics.clickhouseUp.set(0);
        this.o.log.warn(`cannot ${what}; retrying`, { error: String(e).slice(0, 300), backoffMs });
        await this.keepAlive();
      },
    });
  }

  private async keepAlive(): Promise<void> {
    await this.heartbeat().catch(() => undefined);
  }

  // ---- the hot path ----

  private async onBatch(generation: number, payload: EachBatchPayload): Promise<void> {
    // While reconciling, return at once (nothing resolved): kafkajs keeps heartbeating and
    // fetches again from the position the reconcile seeks to.
    if (this.reconciling || generation !== this.generation || this.stopping) return;
    await this.lock.run(async () => {
      const { batch, heartbeat, resolveOffset, isRunning, isStale } = payload;
      if (this.reconciling || generation !== this.generation || this.stopping || isStale()) return;
      this.heartbeat = heartbeat;
      const topic = this.logical(batch.topic);
      if (!topic) return;
      const codec = this.o.codec;
      let accepted = 0;
      let skipped = 0;
      let duplicate = 0;
      // Resolved once, after the loop: the last offset handled (per message, kafkajs's offset
      // bookkeeping cost more than the rest of the loop).
      let handled: string | undefined;
      const now = this.clock();
      try {
        for (const m of batch.messages) {
          if (!isRunning() || isStale()) break;
          const offset = Number(m.offset);
          const next = this.batcher.nextOffset(topic, batch.partition);
          if (next === undefined) return; // not reconciled: leave it unresolved
          if (offset < next) {
            duplicate++;
            handled = m.offset;
            continue;
          }
          // Validated against the record's own timestamp, as the processor saw it on arrival.
          const at = Number(m.timestamp);
          let r = codec.tryDecodeCached(topic, m.key, m.value, at);
          if (r === undefined) {
            try {
              r = await this.decodeWithRetry(topic, m.key, m.value, at);
            } catch (e) {
              if (e instanceof SinkStopping) return; // unresolved: read again on the next start
              throw e;
            }
          }
          const value = r.ok ? r.value : undefined;
          const outcome = this.batcher.offer(
            { topic, partition: batch.partition, offset, timestampMs: at },
            value as never,
            now,
          );
          if (outcome === 'accepted') accepted++;
          else if (outcome === 'skipped') skipped++;
          handled = m.offset;
          if (this.batcher.isFull()) {
            await this.startFlush();
            if (generation !== this.generation) return;
          }
        }
      } finally {
        if (handled !== undefined) resolveOffset(handled);
      }
      const key = partitionKey(topic, batch.partition);
      this.highWatermarks.set(key, Number(batch.highWatermark));
      if (accepted) this.o.metrics.records.inc({ topic, outcome: 'accepted' }, accepted);
      if (skipped) this.o.metrics.records.inc({ topic, outcome: 'skipped' }, skipped);
      if (duplicate) this.o.metrics.records.inc({ topic, outcome: 'duplicate' }, duplicate);
      this.o.metrics.consumerLag.set(
        { topic, partition: String(batch.partition) },
        Math.max(0, Number(batch.highWatermark) - (this.durable.get(key) ?? 0)),
      );
      if (this.batcher.isDue(this.clock())) await this.startFlush();
    });
  }

  private async decodeWithRetry(
    topic: TopicName,
    key: Buffer | null,
    value: Buffer | null,
    at: number,
  ): ReturnType<Codec['decode']> {
    return retrying(() => this.o.codec.decode(topic, key, value, at), {
      initialMs: 200,
      maxMs: 10_000,
      stop: () => this.stopping,
      stopped: () => new SinkStopping('stopped while waiting for the schema registry'),
      isTransient: (e) => e instanceof RegistryUnavailableError,
      onRetry: async (e, backoffMs) => {
        this.lastError = `registry unavailable: ${(e as Error).message}`;
        this.o.log.warn('schema registry unavailable; retrying', { backoffMs });
        await this.keepAlive();
      },
    });
  }

  private async onTimer(): Promise<void> {
    if (this.stopping || this.reconciling) return;
    await this.lock.run(async () => {
      if (this.batcher.isDue(this.clock())) await this.startFlush();
      else if (this.batcher.rows === 0 && this.totalLag() === 0) this.progressAt = this.clock();
    });
  }

  /** A write gives up retrying once the sink is stopping and its grace is over. */
  private giveUp(): boolean {
    return this.stopping && (this.giveUpAt === undefined || Date.now() > this.giveUpAt);
  }

  /**
   * Starts a flush, under the lock: waits for the previous write, then drains the buffer into a
   * new one. Consumption goes on while it is written; only one write is ever in flight, so each
   * table's rows in ClickHouse stay a prefix of what the sink sent, per partition, which is what
   * makes max(_offset) an exact resume point (writer.ts). A write that fails (a stop, or a bug)
   * drops the buffer and restarts the consumer from ClickHouse's positions.
   */
  private async startFlush(): Promise<void> {
    await this.settled();
    if (this.batcher.rows === 0 && !this.positionsAhead()) return;
    const generation = this.generation;
    const write = this.write(this.batcher.drain(), () => this.giveUp()).catch((e: unknown) => {
      this.lastError = `flush failed: ${String(e)}`;
      this.abandoned = true;
      // Only a stop (or a bug) gets here; the drained rows were not all made durable, so the
      // positions in memory are ahead of ClickHouse: start over from ClickHouse.
      if (generation === this.generation) this.batcher.reset();
      if (!(e instanceof SinkStopping)) void this.restart(`flush failed: ${String(e)}`);
    });
    this.inflight = write;
    void write.finally(() => {
      if (this.inflight === write) this.inflight = undefined;
    });
  }

  /** Resolves when no write is in flight (a failed one has already reset the buffer). */
  private async settled(): Promise<void> {
    while (this.inflight) await this.inflight;
  }

  /**
   * Writes drained rows, each table's INSERT in parallel with the others', then (advisory)
   * commits the positions to Kafka.
   */
  private async write(d: Drained, shouldStop: () => boolean): Promise<void> {
    const t0 = process.hrtime.bigint();
    const written = await Promise.allSettled(
      [...d.byTable].map(([table, rows]) =>
        this.writer.insertExactlyOnce(table, rows, () => this.keepAlive(), shouldStop),
      ),
    );
    const failed = written.find((w): w is PromiseRejectedResult => w.status === 'rejected');
    if (failed) throw failed.reason;
    for (const [k, v] of d.positions) this.durable.set(k, v);
    this.flushedRows += d.rows;
    this.progressAt = this.clock();
    this.o.metrics.flushSeconds.observe(Number(process.hrtime.bigint() - t0) / 1e9);
    this.o.metrics.lastFlush.set(Date.now() / 1000);
    await this.commitToKafka();
  }

  private positionsAhead(): boolean {
    for (const [k, v] of this.durable) {
      const [topic, p] = splitKey(k);
      const next = this.batcher.nextOffset(topic, p);
      if (next !== undefined && next > v) return true;
    }
    return false;
  }

  /** Advisory only (monitoring, `kafka-consumer-groups`): the sink resumes from ClickHouse. */
  private async commitToKafka(): Promise<void> {
    const consumer = this.consumer;
    if (!consumer) return;
    const offsets = [...this.durable].map(([k, next]) => {
      const [topic, partition] = splitKey(k);
      return { topic: this.physical(topic), partition, offset: String(next) };
    });
    if (offsets.length === 0) return;
    await consumer.commitOffsets(offsets).catch((e: unknown) => {
      this.o.log.warn('advisory Kafka offset commit failed (harmless: positions live in ClickHouse)', {
        error: String(e).slice(0, 200),
      });
    });
  }
}

function splitKey(key: string): [TopicName, number] {
  const i = key.lastIndexOf('/');
  return [key.slice(0, i) as TopicName, Number(key.slice(i + 1))];
}

/** The contract topics by table, for tools (status, tests). */
export const TOPIC_OF_TABLE: ReadonlyMap<string, TopicName> = new Map(
  Object.values(TOPICS).map((t) => [tableOf(t), t]),
);
