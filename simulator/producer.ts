/**
 * `simulate(options, hooks)`: runs the marketplace (simulator/marketplace.ts) through the fault
 * layer (simulator/faults.ts) into Kafka, and returns a summary of what was produced (acked).
 *
 * - Kafka: one idempotent producer (acks=-1), keyed by merchant_id with the default (murmur2)
 *   partitioner so that the four input topics are co-partitioned; records go in batches with
 *   producer.sendBatch, one batch in flight while the next one is built. The Kafka timestamp
 *   of a record is its simulated time.
 * - Schemas: the ids of the registered subjects (lookupAll; registerAll when they are missing),
 *   values encoded by the Codec, which checks the contract's rules on every record.
 * - Topics: missing input topics are created with HOLDBACK_PARTITIONS partitions; existing ones
 *   must have the same partition count (co-partitioning), or the run stops before producing.
 * - Pacing: a token bucket caps records per second; a record is produced only once the
 *   simulated clock (startMs + speed x wall time elapsed, never past the wall clock) reaches its
 *   time, so no timestamp is ever in the future.
 * - Stops at --events, at --duration, when `signal` aborts, or, with neither limit, when the
 *   simulated clock has caught up with now and the next record lies in the future.
 */
import { Kafka, logLevel, Partitioners, type Message, type Producer } from 'kafkajs';
import { Codec } from '../connectors/codec';
import { loadConnections, registryOptions, type Connections } from '../connectors/connections';
import { checkKafka, kafkajsConfig } from '../connectors/kafka-client';
import { clusterReplication, createTopicsReady } from '../connectors/kafka-admin';
import { whileRetriable } from '../connectors/kafka-read';
import { keyPartitioner, sendEveryPartition } from '../connectors/kafka-send';
import { SchemaRegistryClient } from '../connectors/registry';
import type { TopicName } from '../schemas/topics';
import { RecordEncoder } from './encode';
import { FaultInjector, recordTime, recordTopic, type MalformedKind, type SimRecord } from './faults';
import { INPUT_TOPICS, Marketplace, type InputTopic } from './marketplace';
import { resolveOptions, type SimulateInput, type SimulateOptions } from './options';
import { SimClock, TokenBucket } from './pacing';

export interface TopicCounts {
  /** First sends of valid events. */
  readonly records: number;
  readonly byType: Readonly<Record<string, number>>;
}

export interface SimulationProgress {
  readonly elapsedMs: number;
  /** Records acked so far (events, duplicates and malformed). */
  readonly produced: number;
  /** Over the last progress interval. */
  readonly recordsPerSec: number;
  readonly byTopic: Readonly<Record<InputTopic, number>>;
  /** Simulated time of the latest record produced. */
  readonly simulatedAt: number;
}

export interface SimulationSummary {
  readonly seed: number;
  readonly merchants: number;
  readonly topicPrefix: string;
  readonly options: SimulateOptions;
  /** ISO 8601: the simulated start, and the simulated time of the last record produced. */
  readonly simulatedFrom: string;
  readonly simulatedUntil: string;
  readonly stoppedBy: 'events' | 'duration' | 'caught-up' | 'signal';
  readonly wallSeconds: number;
  /** Every record produced and acked: events, duplicates and malformed records. */
  readonly produced: number;
  readonly recordsPerSec: number;
  readonly topics: Readonly<Record<InputTopic, TopicCounts>>;
  readonly loansFunded: number;
  readonly duplicates: number;
  readonly reordered: number;
  readonly malformed: {
    readonly total: number;
    readonly byKind: Readonly<Partial<Record<MalformedKind, number>>>;
  };
  readonly payouts: {
    readonly scheduled: number;
    readonly settled: number;
    readonly failed: number;
    readonly mismatched: number;
  };
  /** The payouts whose SETTLED reports another amount than the platform withheld (payouts.mismatched of them). */
  readonly mismatchedPayouts: readonly string[];
  /** Payouts whose SETTLED was delayed: produced (settled) or still to come when the run stopped (pending). */
  readonly delayedSettlements: { readonly settled: readonly string[]; readonly pending: readonly string[] };
}

export interface SimulateHooks {
  onProgress?: (p: SimulationProgress) => void;
  progressIntervalMs?: number;
  signal?: AbortSignal;
  /** Connection settings; loadConnections() (HOLDBACK_*) by default. */
  connections?: Connections;
}

/**
 * Largest batch handed to one sendBatch. kafkajs groups a batch's messages by partition in
 * quadratic time (groupMessagesPerPartition copies the partition's array per message), so very
 * large batches cost more than the round trips they save: 2,000 measured best (simulator/README.md).
 */
const MAX_BATCH = 2000;
/** Longest sleep, so that progress, limits and the signal are checked often. */
const MAX_SLEEP_MS = 100;

export async function simulate(input: SimulateInput, hooks: SimulateHooks = {}): Promise<SimulationSummary> {
  const options = resolveOptions(input, Date.now());
  const connections = hooks.connections ?? loadConnections();
  const endpoints = connections.endpoints;
  await checkKafka(connections.kafka, 'holdback-simulate');
  const kafka = new Kafka(
    kafkajsConfig(connections.kafka, 'holdback-simulate', { logLevel: logLevel.NOTHING }),
  );
  const registry = new SchemaRegistryClient(registryOptions(connections.registry));
  const schemaIds = await schemaIdsOf(registry);
  const codec = new Codec({ source: registry, schemaIds });
  const partitions = await ensureInputTopics(kafka, options.topicPrefix, endpoints.partitions);

  const producer = kafka.producer({
    idempotent: true,
    maxInFlightRequests: 1,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
  await producer.connect();
  try {
    return await produceLoop(options, producer, new RecordEncoder(codec, schemaIds), partitions, hooks);
  } finally {
    await producer.disconnect();
  }
}

async function schemaIdsOf(registry: SchemaRegistryClient): Promise<Record<TopicName, number>> {
  try {
    return await registry.lookupAll();
  } catch (e) {
    if (e instanceof Error && /does not have the local/.test(e.message)) return registry.registerAll();
    throw e;
  }
}

/** Creates the missing input topics; returns their partition count (one for all, or it throws). */
async function ensureInputTopics(kafka: Kafka, prefix: string, partitions: number): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const wanted = INPUT_TOPICS.map((t) => prefix + t);
    const existing = new Set(await admin.listTopics());
    const missing = wanted.filter((t) => !existing.has(t));
    const { replicationFactor, minInsyncReplicas } = await clusterReplication(admin);
    await createTopicsReady(
      admin,
      missing.map((topic) => ({
        topic,
        numPartitions: partitions,
        replicationFactor,
        configEntries: [{ name: 'min.insync.replicas', value: String(minInsyncReplicas) }],
      })),
    );
    const meta = await whileRetriable(() => admin.fetchTopicMetadata({ topics: wanted }), 30_000);
    const counts = new Map(meta.topics.map((t) => [t.name, t.partitions.length]));
    if (new Set(counts.values()).size > 1) {
      throw new Error(
        `the input topics are not co-partitioned: ${[...counts].map(([t, n]) => `${t} has ${n}`).join(', ')}`,
      );
    }
    return [...counts.values()][0]!;
  } finally {
    await admin.disconnect();
  }
}

interface Batch {
  readonly topicMessages: Map<string, Message[]>;
  readonly records: SimRecord[];
  maxTime: number;
}

class Tally {
  produced = 0;
  duplicates = 0;
  reordered = 0;
  loansFunded = 0;
  simulatedAt = 0;
  readonly topics = Object.fromEntries(
    INPUT_TOPICS.map((t) => [t, { records: 0, byType: {} as Record<string, number> }]),
  ) as Record<InputTopic, { records: number; byType: Record<string, number> }>;
  readonly perTopic = Object.fromEntries(INPUT_TOPICS.map((t) => [t, 0])) as Record<InputTopic, number>;
  readonly malformed: Partial<Record<MalformedKind, number>> = {};
  malformedTotal = 0;
  readonly payouts = { scheduled: 0, settled: 0, failed: 0, mismatched: 0 };
  readonly lateSettled: string[] = [];
  readonly mismatchedIds: string[] = [];
  readonly latePending = new Set<string>();

  add(r: SimRecord): void {
    this.produced++;
    this.perTopic[recordTopic(r)]++;
    const t = recordTime(r);
    if (t > this.simulatedAt) this.simulatedAt = t;
    if (r.kind === 'malformed') {
      this.malformedTotal++;
      this.malformed[r.fault] = (this.malformed[r.fault] ?? 0) + 1;
      return;
    }
    if (r.kind === 'duplicate') {
      this.duplicates++;
      return;
    }
    if (r.reordered) this.reordered++;
    const e = r.event;
    const counts = this.topics[e.topic];
    counts.records++;
    counts.byType[e.value.type] = (counts.byType[e.value.type] ?? 0) + 1;
    if (e.topic === 'lending.loans.v1' && e.value.type === 'FUNDED') this.loansFunded++;
    if (e.topic === 'marketplace.payouts.v1') {
      const id = e.value.payout_id;
      switch (e.value.type) {
        case 'SCHEDULED':
          this.payouts.scheduled++;
          if (e.note.late) this.latePending.add(id);
          break;
        case 'SETTLED':
          this.payouts.settled++;
          if (e.note.mismatch) {
            this.payouts.mismatched++;
            this.mismatchedIds.push(id);
          }
          if (e.note.late) {
            this.latePending.delete(id);
            this.lateSettled.push(id);
          }
          break;
        case 'FAILED':
          this.payouts.failed++;
          break;
      }
    }
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function produceLoop(
  o: SimulateOptions,
  producer: Producer,
  encoder: RecordEncoder,
  partitions: number,
  hooks: SimulateHooks,
): Promise<SimulationSummary> {
  // Partitions are set here, as the default partitioner would choose them, so that each
  // send can be checked partition by partition.
  const partitionOf = keyPartitioner(partitions);
  const market = new Marketplace({
    seed: o.seed,
    merchants: o.merchants,
    startMs: o.startMs,
    failRate: o.failRate,
    lateSettlementRate: o.lateSettlementRate,
    lateSettlementDelayMs: o.lateSettlementDelayMs,
    mismatchRate: o.mismatchRate,
  });
  const faults = new FaultInjector(() => market.next(), {
    seed: o.seed,
    duplicateRate: o.duplicateRate,
    reorderRate: o.reorderRate,
    malformedRate: o.malformedRate,
  });
  const wallStart = Date.now();
  const clock = new SimClock(o.startMs, o.speed, wallStart);
  const burst = Math.max(1, Math.ceil(o.rate / 4));
  const bucket = new TokenBucket(o.rate, burst, wallStart);
  const maxBatch = Math.min(MAX_BATCH, burst);
  const tally = new Tally();
  const interval = hooks.progressIntervalMs ?? 1000;
  let lastProgress = { at: wallStart, produced: 0 };
  const report = (now: number): void => {
    if (!hooks.onProgress) return;
    const dt = Math.max(1, now - lastProgress.at);
    hooks.onProgress({
      elapsedMs: now - wallStart,
      produced: tally.produced,
      recordsPerSec: Math.round(((tally.produced - lastProgress.produced) * 1000) / dt),
      byTopic: { ...tally.perTopic },
      simulatedAt: tally.simulatedAt,
    });
    lastProgress = { at: now, produced: tally.produced };
  };

  let next: SimRecord = faults.next();
  let taken = 0; // records put into batches (acked or in flight)
  let inflight: { batch: Batch; sent: Promise<unknown> } | undefined;
  let stoppedBy: SimulationSummary['stoppedBy'] | undefined;
  const settle = async (): Promise<void> => {
    if (!inflight) return;
    const { batch, sent } = inflight;
    inflight = undefined;
    await sent;
    for (const r of batch.records) tally.add(r);
  };

  while (stoppedBy === undefined) {
    const now = Date.now();
    if (now - lastProgress.at >= interval) report(now);
    if (hooks.signal?.aborted) stoppedBy = 'signal';
    else if (o.events !== undefined && taken >= o.events) stoppedBy = 'events';
    else if (o.durationMs !== undefined && now - wallStart >= o.durationMs) stoppedBy = 'duration';
    if (stoppedBy) break;

    const simNow = clock.at(now);
    const nextTime = recordTime(next);
    if (nextTime > simNow) {
      if (o.events === undefined && o.durationMs === undefined && simNow >= now - 1000) {
        stoppedBy = 'caught-up';
        break;
      }
      await settle();
      await sleep(Math.max(1, Math.min(MAX_SLEEP_MS, clock.wallWhen(nextTime) - now)));
      continue;
    }
    const tokens = Math.min(
      bucket.available(now),
      maxBatch,
      o.events === undefined ? Infinity : o.events - taken,
    );
    if (tokens < 1) {
      await sleep(Math.max(1, Math.min(MAX_SLEEP_MS, bucket.msUntil(1, now))));
      continue;
    }
    const batch: Batch = { topicMessages: new Map(), records: [], maxTime: 0 };
    while (batch.records.length < tokens && recordTime(next) <= simNow) {
      const r = next;
      const topic = o.topicPrefix + recordTopic(r);
      let list = batch.topicMessages.get(topic);
      if (!list) batch.topicMessages.set(topic, (list = []));
      const time = recordTime(r);
      const key = r.kind === 'malformed' ? r.key : r.event.key;
      list.push({
        key,
        value: encoder.encode(r),
        timestamp: String(time),
        partition: partitionOf(topic, key),
      });
      batch.records.push(r);
      next = faults.next();
    }
    bucket.take(batch.records.length, now);
    taken += batch.records.length;
    await settle();
    // kafkajs may call a send done without having written some partitions: those are sent again
    // (connectors/kafka-send.ts; a record written twice is one event by its event_id).
    const sent = sendEveryPartition(
      (b) => producer.sendBatch(b),
      [...batch.topicMessages].map(([topic, messages]) => ({ topic, messages })),
    );
    sent.catch(() => undefined); // awaited in settle(); this only keeps a failure from being "unhandled" meanwhile
    inflight = { batch, sent };
    // Let the send start before building the next batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  await settle();
  const end = Date.now();
  report(end);
  const wallSeconds = (end - wallStart) / 1000;
  return {
    seed: o.seed,
    merchants: o.merchants,
    topicPrefix: o.topicPrefix,
    options: o,
    simulatedFrom: new Date(o.startMs).toISOString(),
    simulatedUntil: new Date(Math.max(o.startMs, tally.simulatedAt)).toISOString(),
    stoppedBy: stoppedBy ?? 'signal',
    wallSeconds,
    produced: tally.produced,
    recordsPerSec: Math.round(tally.produced / Math.max(wallSeconds, 0.001)),
    topics: tally.topics,
    loansFunded: tally.loansFunded,
    duplicates: tally.duplicates,
    reordered: tally.reordered,
    malformed: { total: tally.malformedTotal, byKind: tally.malformed },
    payouts: tally.payouts,
    mismatchedPayouts: tally.mismatchedIds,
    delayedSettlements: { settled: tally.lateSettled, pending: [...tally.latePending] },
  };
}
