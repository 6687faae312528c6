/**
 * A load generator that is not the bottleneck (issue 16): real contract records, encoded once,
 * replayed at a fixed rate.
 *
 * 1. stage: the simulator writes its traffic (Avro, registry framing, keyed by merchant_id,
 *    timestamps in simulated time) into staging topics, as fast as it can, before anything runs;
 * 2. load: those records' bytes are read back into memory, packed in large buffers (a record is
 *    its key and value bytes, its timestamp and its partition: about 130 bytes, no object each);
 * 3. replay: they are produced, bytes unchanged, to the same partition of the benchmark's input
 *    topics at the asked rate, by one librdkafka producer (idempotent, acks=all). Each staged
 *    partition keeps its order; partitions are interleaved by timestamp, as the simulator made them.
 *
 * Nothing is encoded while the pipeline runs, so the generator costs a produce() call per record
 * (measured alongside: its CPU time is reported).
 */
import { CODES, KafkaConsumer, Producer, type LibrdKafkaError, type Message } from 'node-rdkafka';
import { simulate } from '../simulator';
import { INPUT_TOPICS } from '../simulator/marketplace';
import { endpoints } from '../test/harness/kafka';

const CHUNK_BYTES = 64 * 2 ** 20;

/** Staged records, packed: record i is bytes [start[i], start[i] + keyLen[i] + valueLen[i]) of chunk chunkOf[i]. */
export class StagedRecords {
  private readonly chunks: Buffer[] = [];
  private used = CHUNK_BYTES;
  private n = 0;
  private topicOf = new Uint8Array(1024);
  private partitionOf = new Uint16Array(1024);
  private chunkOf = new Uint16Array(1024);
  private start = new Uint32Array(1024);
  private keyLen = new Uint16Array(1024);
  private valueLen = new Uint32Array(1024);
  private time = new Float64Array(1024);

  constructor(readonly topics: readonly string[]) {}

  get length(): number {
    return this.n;
  }

  add(topic: number, partition: number, key: Buffer, value: Buffer, timestamp: number): void {
    const size = key.length + value.length;
    if (this.used + size > CHUNK_BYTES) {
      this.chunks.push(Buffer.allocUnsafe(Math.max(CHUNK_BYTES, size)));
      this.used = 0;
    }
    if (this.n === this.time.length) this.grow();
    const chunk = this.chunks[this.chunks.length - 1]!;
    key.copy(chunk, this.used);
    value.copy(chunk, this.used + key.length);
    const i = this.n++;
    this.topicOf[i] = topic;
    this.partitionOf[i] = partition;
    this.chunkOf[i] = this.chunks.length - 1;
    this.start[i] = this.used;
    this.keyLen[i] = key.length;
    this.valueLen[i] = value.length;
    this.time[i] = timestamp;
    this.used += size;
  }

  topic(i: number): number {
    return this.topicOf[i]!;
  }
  partition(i: number): number {
    return this.partitionOf[i]!;
  }
  timestamp(i: number): number {
    return this.time[i]!;
  }
  key(i: number): Buffer {
    const s = this.start[i]!;
    return this.chunks[this.chunkOf[i]!]!.subarray(s, s + this.keyLen[i]!);
  }
  value(i: number): Buffer {
    const s = this.start[i]! + this.keyLen[i]!;
    return this.chunks[this.chunkOf[i]!]!.subarray(s, s + this.valueLen[i]!);
  }

  private grow(): void {
    const size = this.time.length * 2;
    const bigger = <T extends Uint8Array | Uint16Array | Uint32Array | Float64Array>(a: T): T => {
      const b = new (a.constructor as new (n: number) => T)(size);
      b.set(a);
      return b;
    };
    this.topicOf = bigger(this.topicOf);
    this.partitionOf = bigger(this.partitionOf);
    this.chunkOf = bigger(this.chunkOf);
    this.start = bigger(this.start);
    this.keyLen = bigger(this.keyLen);
    this.valueLen = bigger(this.valueLen);
    this.time = bigger(this.time);
  }
}

/**
 * Simulates `records` records into the staging prefix at the simulator's full speed. Enough
 * merchants are simulated for 120 days of their traffic to hold that many records (about 680
 * per merchant), so the simulated clock never catches up with now before the count is reached.
 */
export async function stage(
  stagePrefix: string,
  records: number,
  merchants: number,
  onProgress: (produced: number, perSec: number) => void,
): Promise<{ produced: number; seconds: number; merchants: number }> {
  const m = Math.max(merchants, Math.ceil(records / 500));
  const summary = await simulate(
    {
      merchants: m,
      rate: 10_000_000,
      events: records,
      seed: 7,
      speed: 1e9,
      start: '120d',
      topicPrefix: stagePrefix,
      failRate: 0.02,
    },
    { onProgress: (p) => onProgress(p.produced, p.recordsPerSec) },
  );
  return { produced: summary.produced, seconds: summary.wallSeconds, merchants: m };
}

const call = <T>(f: (cb: (err: LibrdKafkaError | null | undefined, v: T) => void) => void): Promise<T> =>
  new Promise((resolve, reject) => f((err, v) => (err ? reject(err) : resolve(v))));

/** Reads every staged input topic from the beginning to its end into memory. */
export async function load(stagePrefix: string, partitions: number): Promise<StagedRecords> {
  const topics = INPUT_TOPICS.map((t) => stagePrefix + t);
  const staged = new StagedRecords(INPUT_TOPICS);
  const consumer = new KafkaConsumer(
    {
      'bootstrap.servers': endpoints.kafkaBrokers.join(','),
      'group.id': `${stagePrefix}load`,
      'enable.auto.commit': false,
      'fetch.max.bytes': 64 * 2 ** 20,
      'max.partition.fetch.bytes': 8 * 2 ** 20,
    },
    { 'auto.offset.reset': 'earliest' },
  );
  await call<unknown>((cb) => consumer.connect({ timeout: 30_000 }, cb));
  try {
    const ends = new Map<string, number>();
    let remaining = 0;
    for (const topic of topics)
      for (let p = 0; p < partitions; p++) {
        const w = await call<{ highOffset: number }>((cb) =>
          consumer.queryWatermarkOffsets(topic, p, 10_000, cb),
        );
        ends.set(`${topic}/${p}`, w.highOffset);
        remaining += w.highOffset;
      }
    consumer.assign(
      topics.flatMap((topic) =>
        Array.from({ length: partitions }, (_, partition) => ({ topic, partition, offset: 0 })),
      ),
    );
    consumer.setDefaultConsumeTimeout(500);
    const topicIndex = new Map(topics.map((t, i) => [t, i]));
    while (remaining > 0) {
      const batch = await call<Message[]>((cb) => consumer.consume(10_000, cb));
      for (const m of batch) {
        if (m.offset >= (ends.get(`${m.topic}/${m.partition}`) ?? 0)) continue;
        staged.add(
          topicIndex.get(m.topic)!,
          m.partition,
          Buffer.isBuffer(m.key) ? m.key : Buffer.from(m.key ?? ''),
          m.value ?? Buffer.alloc(0),
          m.timestamp ?? 0,
        );
        remaining--;
      }
    }
  } finally {
    await call<unknown>((cb) => consumer.disconnect(cb)).catch(() => undefined);
  }
  return staged;
}

/**
 * The replay order: each staged topic-partition in its own order, merged by timestamp (the
 * earliest head first), which is the order the simulator produced them in up to its reordering.
 */
export function replayOrder(staged: StagedRecords): Uint32Array {
  const lanes = new Map<string, number[]>();
  for (let i = 0; i < staged.length; i++) {
    const lane = `${staged.topic(i)}/${staged.partition(i)}`;
    let l = lanes.get(lane);
    if (!l) lanes.set(lane, (l = []));
    l.push(i);
  }
  const queues = [...lanes.values()];
  const heads = new Array<number>(queues.length).fill(0);
  const order = new Uint32Array(staged.length);
  for (let k = 0; k < order.length; k++) {
    let best = -1;
    let bestTime = Infinity;
    for (let q = 0; q < queues.length; q++) {
      const i = queues[q]![heads[q]!];
      if (i !== undefined && staged.timestamp(i) < bestTime) [best, bestTime] = [q, staged.timestamp(i)];
    }
    order[k] = queues[best]![heads[best]!++]!;
  }
  return order;
}

export interface ReplayResult {
  produced: number;
  seconds: number;
  recordsPerSec: number;
  /** CPU seconds of this (the benchmark's) process while it replayed. */
  cpuSeconds: number;
}

/**
 * Produces the staged records, in order, to `prefix` + their topic at `rate` records/s for at most
 * `seconds` (or until they run out). `onSecond` is called about once a second.
 */
export async function replay(
  staged: StagedRecords,
  order: Uint32Array,
  prefix: string,
  rate: number,
  seconds: number,
  onSecond: (produced: number, elapsedMs: number) => void | Promise<void>,
): Promise<ReplayResult> {
  const producer = new Producer({
    'bootstrap.servers': endpoints.kafkaBrokers.join(','),
    'client.id': `${prefix}replay`,
    'enable.idempotence': true,
    acks: -1,
    'linger.ms': 5,
    'batch.num.messages': 10_000,
    'queue.buffering.max.messages': 1_000_000,
    'queue.buffering.max.kbytes': 1_048_576,
    dr_cb: false,
  } as ConstructorParameters<typeof Producer>[0]);
  await call<unknown>((cb) => producer.connect({ timeout: 30_000 }, cb));
  producer.setPollInterval(100);
  const names = staged.topics.map((t) => prefix + t);
  const limit = Math.min(order.length, Math.floor(rate * seconds));
  const cpu0 = process.cpuUsage();
  const t0 = Date.now();
  let sent = 0;
  let lastReport = t0;
  try {
    while (sent < limit) {
      const elapsed = Date.now() - t0;
      const due = Math.min(limit, Math.floor((rate * elapsed) / 1000));
      while (sent < due) {
        const i = order[sent]!;
        try {
          producer.produce(
            names[staged.topic(i)]!,
            staged.partition(i),
            staged.value(i),
            staged.key(i),
            staged.timestamp(i),
          );
          sent++;
        } catch (e) {
          // The local queue is full: librdkafka is behind; try again after a pause. Anything else stops the run.
          if ((e as LibrdKafkaError).code !== CODES.ERRORS.ERR__QUEUE_FULL) throw e;
          break;
        }
      }
      if (Date.now() - lastReport >= 1000) {
        lastReport = Date.now();
        await onSecond(sent, lastReport - t0);
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise<void>((resolve, reject) =>
      producer.flush(60_000, (err) => (err ? reject(err) : resolve())),
    );
  } finally {
    await call<unknown>((cb) => producer.disconnect(10_000, cb)).catch(() => undefined);
  }
  const wall = (Date.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    produced: sent,
    seconds: Math.round(wall * 10) / 10,
    recordsPerSec: Math.round(sent / wall),
    cpuSeconds: Math.round((cpu.user + cpu.system) / 1e5) / 10,
  };
}
