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
import { pemFile } from '../connectors/connections';
import { rangePartitions } from './assigner';
import type { SourceRecord } from './task';
import { sleep } from '../connectors/backoff';
import { DEFAULT_STALL_MS } from '../connectors/kafka-read';
import {
  RuntimeBase,
  type OutgoingRecord,
  type PartitionBounds,
  type PartitionOffset,
  type RuntimeOptions,
  type TaskHandleBase,
  type TaskProducer,
  DEFAULT_MAX_BUFFERED,
} from './runtime-base';

/** librdkafka's codes used here (rdkafka.h). */
const ERR_REVOKE_PARTITIONS = -174;
const ERR_ASSIGN_PARTITIONS = -175;
const ERR_QUEUE_FULL = -184;
const ERR_FATAL = -150;
/** How long a call that failed with ERR__FATAL waits for the error event that names its cause. */
const FATAL_CAUSE_WAIT_MS = 2000;
const ERR_TOPIC_ALREADY_EXISTS = 36;
const OFFSET_BEGINNING = -2;
/** Bound on every transactional call, so a dead broker ends in a restart rather than a hang. */
const TXN_CALL_TIMEOUT_MS = 30_000;
const CONSUME_BATCH = 1000;
/**
 * The stall watchdog: a consume loop that has had nothing for this long (and at least
 * STALL_EMPTY_CONSUMES empty returns, so that a process just resumed from SIGSTOP is not taken
 * for stalled) asks the brokers where its idle partitions end.
 */
const STALL_AFTER_MS = 30_000;
const STALL_EMPTY_CONSUMES = 100;
/** A consume() (its timeout is 100 ms) that has not returned after this long has wedged the consumer. */
const CONSUME_WEDGED_MS = 30_000;

interface TaskHandle<S> extends TaskHandleBase<S> {
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

/**
 * A librdkafka call that fails because the handle hit a fatal error answers only "Local: Fatal
 * error" (-150); the cause (fenced by a newer instance, invalid producer epoch) arrives on the
 * handle's error event, sometimes just after. This keeps the latest error event so that such a
 * failure can be reported with its cause.
 */
class FatalCause {
  private last: { err: LibrdKafkaError; at: number } | undefined;
  private waiters: Array<() => void> = [];

  saw(err: LibrdKafkaError): void {
    this.last = { err, at: Date.now() };
    for (const w of this.waiters.splice(0)) w();
  }

  /** The error to report for `e`: for ERR__FATAL, its cause appended (waiting briefly for it). */
  async explain(e: unknown): Promise<unknown> {
    if ((e as LibrdKafkaError | undefined)?.code !== ERR_FATAL) return e;
    // An error event from long before is not this failure's cause.
    if (this.last && Date.now() - this.last.at > FATAL_CAUSE_WAIT_MS) this.last = undefined;
    if (!this.last) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, FATAL_CAUSE_WAIT_MS);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    if (!this.last) return e;
    const fatal = e as LibrdKafkaError;
    return Object.assign(new Error(`${fatal.message}: ${describe(this.last.err)}`), {
      code: fatal.code,
      isFatal: true,
    });
  }
}

function call(fn: (cb: (err: LibrdKafkaError | null | undefined) => void) => void): Promise<void> {
  return new Promise((resolve, reject) => fn((err) => (err ? reject(err) : resolve())));
}

/**
 * A librdkafka call whose own timeout is `ms` (or that should be quick), failed on the JavaScript
 * side 5 s after that if its callback has not come: a call made under the engine's lock must
 * never hold it for good (the engine then restarts, as after any failed commit).
 */
function within<T>(what: string, ms: number, p: Promise<T>): Promise<T> {
  return withTimeout(p, ms + 5000, `librdkafka's ${what}`);
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
 * librdkafka settings for the kafkajs-style `KafkaConfig` the runtime options carry
 * (connectors/kafka-client.ts builds it from HOLDBACK_KAFKA_*): brokers, client id, TLS with a CA
 * bundle and a client certificate (from the files they were read from, ssl.*.location, else as
 * PEM text, ssl.*.pem), SASL PLAIN, SCRAM and OAUTHBEARER (its token is given to each client:
 * `authorize`). Anything else is refused rather than dropped: the two transports must connect
 * alike.
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
    const { ca, cert, key, passphrase, ...rest } = kafka.ssl;
    const unsupported = Object.keys(rest);
    if (unsupported.length > 0)
      throw new Error(`the rdkafka transport cannot honour the TLS option(s) ${unsupported.join(', ')}`);
    const pem = (v: unknown, what: string): string => {
      const list = Array.isArray(v) ? v : [v];
      if (!list.every((x) => typeof x === 'string' || Buffer.isBuffer(x)))
        throw new Error(`the rdkafka transport takes the TLS ${what} as PEM text`);
      return list.map((x) => (Buffer.isBuffer(x) ? x.toString('utf8') : (x as string))).join('\n');
    };
    // The file the PEM came from when there is one (connections.ts, pemFile), else the text.
    const set = (name: string, v: unknown, what: string): void => {
      const text = pem(v, what);
      const file = pemFile(text);
      if (file !== undefined) conf[`ssl.${name}.location`] = file;
      else conf[`ssl.${name}.pem`] = text;
    };
    if (ca !== undefined) set('ca', ca, 'CA');
    if (cert !== undefined) set('certificate', cert, 'certificate');
    if (key !== undefined) set('key', key, 'key');
    if (passphrase !== undefined) conf['ssl.key.password'] = passphrase;
  }
  const sasl = kafka.sasl;
  if (sasl) {
    const mechanism = sasl.mechanism.toLowerCase();
    if (mechanism === 'oauthbearer') {
      conf['sasl.mechanisms'] = 'OAUTHBEARER';
    } else if (['plain', 'scram-sha-256', 'scram-sha-512'].includes(mechanism) && 'username' in sasl) {
      conf['sasl.mechanisms'] = mechanism.toUpperCase();
      conf['sasl.username'] = (sasl as { username: string }).username;
      conf['sasl.password'] = (sasl as { password: string }).password;
    } else {
      throw new Error(`the rdkafka transport does not support SASL mechanism ${sasl.mechanism}`);
    }
  }
  conf['security.protocol'] = `${sasl ? 'sasl_' : ''}${kafka.ssl ? 'ssl' : 'plaintext'}`;
  return conf;
}

/** The clients that took an OAUTHBEARER token, to be given a fresh one every minute. */
const tokenHolders = new Set<WeakRef<{ setOauthBearerToken(token: string): unknown }>>();
let tokenRefresh: { timer: NodeJS.Timeout; token: () => Promise<string> } | undefined;
const TOKEN_REFRESH_MS = 60_000;

/**
 * Gives a client the OAUTHBEARER token before it connects (no-op without one), and every client
 * that took one a fresh token every minute from then on (node-rdkafka sets tokens with no expiry
 * and has no refresh callback: a reconnection would otherwise present a token that has expired).
 */
export async function authorize(
  client: { setOauthBearerToken(token: string): unknown },
  token: (() => Promise<string>) | undefined,
): Promise<void> {
  if (!token) return;
  client.setOauthBearerToken(await token());
  tokenHolders.add(new WeakRef(client));
  if (!tokenRefresh) {
    const timer = setInterval(() => {
      void token().then(
        (fresh) => {
          for (const ref of tokenHolders) {
            const c = ref.deref();
            if (!c) tokenHolders.delete(ref);
            else
              try {
                c.setOauthBearerToken(fresh);
              } catch {
                tokenHolders.delete(ref); // disconnected
              }
          }
        },
        () => undefined, // the next minute tries again; the current token stays
      );
    }, TOKEN_REFRESH_MS);
    timer.unref();
    tokenRefresh = { timer, token };
  }
}

/** The OAUTHBEARER token getter of a KafkaConfig, if it uses one (for `authorize`). */
export function oauthToken(kafka: KafkaConfig): (() => Promise<string>) | undefined {
  const sasl = kafka.sasl;
  if (!sasl || sasl.mechanism.toLowerCase() !== 'oauthbearer') return undefined;
  const provider = (sasl as { oauthBearerProvider: () => Promise<{ value: string }> }).oauthBearerProvider;
  return async () => (await provider()).value;
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

export class RdKafkaRuntime<S> extends RuntimeBase<S, TaskHandle<S>> {
  protected readonly transport = 'rdkafka';
  /** The stall watchdog (watchForStall): since when, and how many consume() calls in a row, nothing came. */
  private emptySince: number | undefined;
  private emptyConsumes = 0;
  private stallCheck = false;
  /** When the consume() in flight was called (undefined between calls), and the timer that watches it. */
  private consumeCalledAt: number | undefined;
  private consumeWatch: NodeJS.Timeout | undefined;
  protected readonly assignor = rangePartitions;
  private readonly base: Record<string, string | number | boolean>;
  private consumer: KafkaConsumer | undefined;
  /**
   * Answers the engine's end-offset probes on its own connections: the broker handles one
   * request per connection at a time, so on the consumer's own connections a ListOffsets waits
   * behind a parked or large Fetch (tens of ms each, measured in the backlog benchmark).
   */
  private prober: KafkaConsumer | undefined;
  private loopDone: Promise<void> = Promise.resolve();

  /** OAUTHBEARER only: a fresh token, given to every client before it connects and again every minute. */
  private readonly token: (() => Promise<string>) | undefined;

  constructor(o: RuntimeOptions<S>) {
    super(o);
    this.base = rdkafkaClientConfig(o.kafka);
    this.token = oauthToken(o.kafka);
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

  protected pauseFetch(topics: readonly string[], partition: number): void {
    const consumer = this.consumer;
    if (consumer) this.safely(() => consumer.pause(topics.map((topic) => ({ topic, partition }))));
  }

  protected resumeFetch(topics: readonly string[], partition: number): void {
    const consumer = this.consumer;
    if (consumer) this.safely(() => consumer.resume(topics.map((topic) => ({ topic, partition }))));
  }

  /**
   * Where the consumer is for one partition: librdkafka's application position, which moves past
   * transaction markers (never delivered). Read only when a consume() call has just returned,
   * before the next one, so that it never runs ahead of what was handed to the tasks.
   */
  private position(consumer: KafkaConsumer, topic: string, partition: number): number | undefined {
    try {
      const [p] = consumer.position([{ topic, partition }]);
      return p && typeof p.offset === 'number' && p.offset >= 0 ? p.offset : undefined;
    } catch {
      return undefined;
    }
  }

  // ---- engine: consumer + tasks; restarted as a whole on failure ----

  protected async startEngine(): Promise<void> {
    const generation = ++this.generation;
    this.emptySince = undefined;
    this.emptyConsumes = 0;
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
        ...this.prefetch(),
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
      await authorize(consumer, this.token);
      await new Promise<void>((resolve, reject) =>
        consumer.connect({ timeout: 30_000 }, (err) => (err ? reject(err) : resolve())),
      );
      consumer.subscribe(this.inputTopics());
    } catch (e) {
      this.consumer = undefined;
      throw e;
    }
    this.prober = await this.openProber(generation);
    this.loopDone = this.consumeLoop(generation, consumer);
    clearInterval(this.consumeWatch);
    this.consumeWatch = setInterval(() => this.watchConsume(generation), 5000);
    this.consumeWatch.unref();
    this.progressAt = this.o.clock();
  }

  /**
   * librdkafka's own prefetch, sized to the engine's buffer. The engine's PartitionGroup is the
   * buffer that matters: it pauses a partition whose buffer is full, and a pause purges what
   * librdkafka had prefetched for it (librdkafka#5343), so a deep prefetch is fetched and thrown
   * away again and again under a backlog. Its defaults (100k messages, 64 MiB, 1 MiB per
   * partition) did exactly that in the backlog benchmark and halved its rate; and after a full
   * queue librdkafka postpones the next fetch by fetch.queue.backoff.ms (1 s by default), which
   * stalled a task whose other partition it was waiting for.
   */
  private prefetch(): Record<string, number> {
    return {
      'queued.min.messages': this.o.maxBufferedPerPartition ?? DEFAULT_MAX_BUFFERED,
      'queued.max.messages.kbytes': 16_384,
      'fetch.queue.backoff.ms': 20,
      'max.partition.fetch.bytes': this.o.maxBytesPerPartition ?? 262_144,
    };
  }

  private async openProber(generation: number): Promise<KafkaConsumer> {
    const prober = new KafkaConsumer(
      {
        ...this.base,
        'client.id': `${String(this.base['client.id'])}-probe`,
        // Never joins or commits: it only asks for partition ends.
        'group.id': `${this.o.applicationId}-probe-${process.pid}-${generation}`,
        'enable.auto.commit': false,
        'isolation.level': 'read_committed',
      },
      {},
    );
    await authorize(prober, this.token);
    await new Promise<void>((resolve, reject) =>
      prober.connect({ timeout: 30_000 }, (err) => (err ? reject(err) : resolve())),
    );
    return prober;
  }

  private async consumeLoop(generation: number, consumer: KafkaConsumer): Promise<void> {
    while (generation === this.generation) {
      let messages: RdMessage[];
      try {
        this.consumeCalledAt = this.o.clock();
        messages = await new Promise<RdMessage[]>((resolve, reject) =>
          consumer.consume(CONSUME_BATCH, (err, ms) => (err ? reject(err) : resolve(ms))),
        ).finally(() => (this.consumeCalledAt = undefined));
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
      // An empty consume still counts: the consumer may have read past a transaction marker.
      try {
        await this.lock.run(() => this.onMessages(generation, consumer, messages));
      } catch (e) {
        void this.restartEngine(`processing failed: ${describe(e)}`);
        return;
      }
      this.watchForStall(generation, messages.length);
    }
  }

  /**
   * A consume() whose 100 ms timeout has long passed without an answer has wedged the consumer:
   * seen after brokers were restarted back to back (cluster broker-faults test), every task then
   * idle with an empty buffer, no error and no restart, while the partitions filled; the cause
   * inside librdkafka or node-rdkafka is not known. The engine restarts: new clients, state from the
   * changelog (the stuck consumer is closed under it, or left behind if closing hangs too).
   */
  private watchConsume(generation: number): void {
    const calledAt = this.consumeCalledAt;
    if (generation !== this.generation || calledAt === undefined) return;
    const waited = this.o.clock() - calledAt;
    if (waited < CONSUME_WEDGED_MS) return;
    this.consumeCalledAt = undefined;
    void this.restartEngine(
      `the consumer wedged: consume() has not returned for ${Math.round(waited / 1000)} s`,
    );
  }

  /**
   * After a run of brokers restarted back to back, librdkafka's consumer was seen to deliver
   * nothing more, for minutes, while its partitions filled: every task idle with an empty buffer,
   * no error, no restart (cluster broker-faults test; the cause inside librdkafka is not known).
   * So a consume loop that has had nothing for STALL_AFTER_MS asks the brokers, off the lock,
   * where its idle partitions end. Records past what the tasks have read (their stop bounds
   * aside), or ends that cannot be asked, restart the engine: new clients, fresh metadata, state
   * from the changelog. A truly idle instance is left alone and looked at again later.
   */
  private watchForStall(generation: number, delivered: number): void {
    const now = this.o.clock();
    if (delivered > 0 || this.emptySince === undefined) {
      this.emptySince = delivered > 0 ? undefined : now;
      this.emptyConsumes = 0;
      return;
    }
    this.emptyConsumes++;
    if (
      this.stallCheck ||
      this.emptyConsumes < STALL_EMPTY_CONSUMES ||
      now - this.emptySince < STALL_AFTER_MS
    )
      return;
    this.stallCheck = true;
    void this.checkStall(generation, now - this.emptySince).finally(() => (this.stallCheck = false));
  }

  private async checkStall(generation: number, quietMs: number): Promise<void> {
    const idle = [...this.tasks.values()].filter(
      (h) => h.isReady && h.assigned && !h.stoppedBy && h.group.size === 0,
    );
    if (idle.length === 0) return;
    const behind: string[] = [];
    for (const topic of this.o.processor.inputs) {
      let ends: Map<number, PartitionBounds>;
      try {
        ends = await this.endOffsets(
          this.physical(topic),
          idle.map((h) => h.partition),
        );
      } catch (e) {
        behind.push(`${topic}: its ends cannot be asked (${describe(e)})`);
        continue;
      }
      for (const h of idle) {
        const at = Math.max(h.task.nextOffset(topic) ?? 0, h.group.fetchedOf(topic) ?? 0);
        const end = Math.min(ends.get(h.partition)?.end ?? 0, this.boundOf(topic, h.partition));
        if (end > at) behind.push(`${topic}/${h.partition}: ${end - at} offsets`);
      }
    }
    // Something arrived meanwhile, or the engine moved on: not stalled.
    if (generation !== this.generation || this.emptySince === undefined) return;
    if (behind.length === 0) {
      this.emptySince = this.o.clock();
      this.emptyConsumes = 0;
      return;
    }
    void this.restartEngine(
      `the consumer delivered nothing for ${Math.round(quietMs / 1000)} s while ${behind.join(', ')} waited`,
    );
  }

  protected async stopEngine(): Promise<void> {
    // A new generation first: queued batches, timers and rebalances of the old one become no-ops.
    this.generation++;
    clearInterval(this.consumeWatch);
    this.consumeWatch = undefined;
    const consumer = this.consumer;
    this.consumer = undefined;
    const prober = this.prober;
    this.prober = undefined;
    // Bounded: a consume() that librdkafka does not return (seen once after a broker was killed:
    // the engine then never restarted) must not hold the restart; closing the consumer below
    // ends it, and its generation is stale by then.
    await withTimeout(this.loopDone, 20_000, 'the consume loop to end').catch((e) =>
      this.o.log.warn('the consume loop did not end; closing the consumer under it', { error: describe(e) }),
    );
    if (prober) await this.closeProber(prober);
    if (consumer) {
      // Closing runs the revoke callback, which (stale now) unassigns at once.
      await withTimeout(
        call((cb) => consumer.disconnect(cb)),
        15_000,
        'closing the consumer',
      ).catch((e) => this.o.log.warn('consumer close failed', { error: describe(e) }));
    }
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
      this.underLock('assignment', () => this.onAssign(generation, consumer, assignment));
    } else if (code === ERR_REVOKE_PARTITIONS) {
      this.underLock('revocation', () => this.onRevoke(generation, consumer));
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
      // A task whose commit failed is already being restarted (commitFailed): nothing to commit.
      const ready = [...this.tasks.values()].filter((h) => h.isReady && !h.stoppedBy && !h.commitFailed);
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
    for (const p of [...this.tasks.keys()]) if (!assigned.includes(p)) await this.dropTask(p);
    const fresh: Array<TaskHandle<S>> = assigned
      .filter((p) => !this.tasks.has(p))
      .map((p) => ({ ...this.taskBase(p), assigned: false }));
    if (fresh.length > 0) {
      try {
        await this.openTasks(fresh);
      } catch (e) {
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
      // A task kept across the rebalance starts again from what it processed: its buffer goes.
      this.resetGroup(h);
      for (const { topic, partition, offset } of this.restoredOffsets(h)) {
        // No offset recorded: the group's committed offset, else the earliest.
        positions.push(offset === undefined ? { topic, partition } : { topic, partition, offset });
      }
    }
    consumer.assign(positions);
    // librdkafka keeps an application pause across unassign and assign, while the tasks' groups
    // start again unpaused (resetGroup): a partition paused for a full buffer before the rebalance
    // would never be fetched again. A task kept across a rebalance stalled so, its buffer full of
    // loans and waiting for payouts that never came (bench/scaling.bench.ts, 4 instances joining).
    for (const p of assigned) this.resumeFetch(this.inputTopics(), p);
    const stopped = assigned.filter((p) => this.tasks.get(p)!.stoppedBy);
    for (const p of stopped) this.pauseFetch(this.inputTopics(), p);
  }

  protected async openProducer(partition: number): Promise<TaskProducer> {
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
      'compression.codec': this.o.compression ?? 'none',
      dr_cb: false,
    });
    const fatal = new FatalCause();
    producer.on('event.error', (err: LibrdKafkaError) => {
      fatal.saw(err);
      this.o.log.warn('producer error', { partition, error: describe(err) });
    });
    await authorize(producer, this.token);
    await new Promise<void>((resolve, reject) =>
      producer.connect({ timeout: 30_000 }, (err) => (err ? reject(err) : resolve())),
    );
    producer.setPollInterval(100);
    if (eos) {
      await within(
        'initTransactions',
        TXN_CALL_TIMEOUT_MS,
        call((cb) => producer.initTransactions(TXN_CALL_TIMEOUT_MS, cb)),
      );
    }
    return {
      commit: (records, offsets) =>
        this.send(producer, records, offsets).catch(async (e: unknown) => {
          throw await fatal.explain(e);
        }),
      close: () =>
        withTimeout(
          call((cb) => producer.disconnect(5000, cb)),
          10_000,
          'closing a producer',
        ),
    };
  }

  /** Reads changelog partitions from the beginning to their end (read_committed). */
  protected async readChangelog(
    partitions: readonly number[],
    groupId: string,
    onRecord: (partition: number, key: string, value: Buffer | null) => void,
    onRemaining: (read: number, remaining: number) => void,
  ): Promise<number> {
    const reader = new KafkaConsumer(
      {
        ...this.base,
        'client.id': `${String(this.base['client.id'])}-restore`,
        // Never joins or commits: partitions are assigned directly.
        'group.id': groupId,
        'enable.auto.commit': false,
        'isolation.level': 'read_committed',
        'enable.partition.eof': true,
        'fetch.wait.max.ms': 50,
        'max.partition.fetch.bytes': 4 << 20,
      },
      {},
    );
    await authorize(reader, this.token);
    await new Promise<void>((resolve, reject) =>
      reader.connect({ timeout: 30_000 }, (err) => (err ? reject(err) : resolve())),
    );
    let read = 0;
    try {
      const pending = new Set<number>();
      /** Offsets still to read per partition (records and transaction markers). */
      const ends = new Map<number, number>();
      const left = new Map<number, number>();
      for (const p of partitions) {
        const w = await watermarks(reader, this.changelog, p);
        if (w.highOffset <= w.lowOffset) continue;
        pending.add(p);
        ends.set(p, w.highOffset);
        left.set(p, w.highOffset - w.lowOffset);
      }
      if (pending.size === 0) return 0;
      // The end is the partition's end for read_committed: our producer was initialised first, so
      // no transaction of another owner can still be open on it.
      reader.on('partition.eof', (e) => {
        pending.delete(e.partition);
        left.set(e.partition, 0);
      });
      reader.assign(
        [...pending].map((partition) => ({ topic: this.changelog, partition, offset: OFFSET_BEGINNING })),
      );
      reader.setDefaultConsumeTimeout(100);
      // No deadline for the whole restore, which grows with the state: only for nothing arriving.
      let lastAt = Date.now();
      while (pending.size > 0) {
        const messages = await new Promise<RdMessage[]>((resolve, reject) =>
          reader.consume(5000, (err, ms) => (err ? reject(err) : resolve(ms))),
        );
        if (messages.length > 0 || pending.size === 0) lastAt = Date.now();
        else if (Date.now() - lastAt > DEFAULT_STALL_MS) {
          const remaining = [...left.values()].reduce((a, b) => a + b, 0);
          throw new Error(
            `reading ${this.changelog} to its end: nothing arrived for ${DEFAULT_STALL_MS} ms, ` +
              `${read} records read, ${remaining} offsets left`,
          );
        }
        for (const m of messages) {
          left.set(m.partition, Math.max(0, (ends.get(m.partition) ?? 0) - (m.offset + 1)));
          if (m.key === undefined || m.key === null) continue;
          onRecord(m.partition, m.key.toString(), m.value);
          read++;
        }
        onRemaining(
          read,
          [...left.values()].reduce((a, b) => a + b, 0),
        );
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

  /** The probe client is read_committed, so librdkafka asks for the last stable offset (one request per partition). */
  protected async endOffsets(
    topic: string,
    partitions: readonly number[],
  ): Promise<Map<number, PartitionBounds>> {
    const prober = this.prober ?? (await this.reopenProber());
    try {
      const answers = await Promise.all(partitions.map((p) => watermarks(prober, topic, p)));
      return new Map(
        partitions.map((p, i) => [p, { start: answers[i]!.lowOffset, end: answers[i]!.highOffset }]),
      );
    } catch (e) {
      // librdkafka sends ListOffsets to the leader its metadata names. After that broker died, a
      // client subscribed to nothing was seen asking it again and timing out again for minutes
      // (the leader killed on the three-node cluster): the tasks waited on their probes while
      // their records sat buffered. The next probe uses a new client, with fresh metadata.
      if (this.prober === prober) {
        this.prober = undefined;
        void this.closeProber(prober);
      }
      throw e;
    }
  }

  /** Disconnects a probe client, within 10 s; a failure is logged, never thrown. */
  private async closeProber(prober: KafkaConsumer): Promise<void> {
    await withTimeout(
      call((cb) => prober.disconnect(cb)),
      10_000,
      'closing the probe client',
    ).catch((e) => this.o.log.warn('probe client close failed', { error: describe(e) }));
  }

  /** A new probe client for the running engine (its last one failed). */
  private async reopenProber(): Promise<KafkaConsumer> {
    const generation = this.generation;
    if (!this.consumer) throw new Error('the engine is not running');
    const prober = await this.openProber(generation);
    if (generation !== this.generation || this.prober) {
      // The engine stopped or restarted meanwhile, or another probe opened one: not needed.
      await this.closeProber(prober);
      if (this.prober) return this.prober;
      throw new Error('the engine is not running');
    }
    this.prober = prober;
    return prober;
  }

  // ---- the hot path ----

  private async onMessages(
    generation: number,
    consumer: KafkaConsumer,
    messages: RdMessage[],
  ): Promise<void> {
    if (generation !== this.generation || this.stopping) return;
    const fetchedAt = this.o.clock();
    // One fetch, grouped by task and topic, buffered whole before any of it is processed.
    const byTask = new Map<number, Map<string, SourceRecord[]>>();
    for (const m of messages) {
      const h = this.tasks.get(m.partition);
      // Not ours (any more), between a revoke and an assignment, or stopped: not handled.
      if (!h || !h.isReady || !h.assigned || h.stoppedBy) continue;
      const topic = m.topic.slice(this.prefix.length);
      let topics = byTask.get(m.partition);
      if (!topics) byTask.set(m.partition, (topics = new Map()));
      let list = topics.get(topic);
      if (!list) topics.set(topic, (list = []));
      const key =
        m.key === undefined || m.key === null ? null : Buffer.isBuffer(m.key) ? m.key : Buffer.from(m.key);
      list.push({
        topic,
        partition: m.partition,
        offset: m.offset,
        key,
        value: m.value,
        timestamp: m.timestamp ?? -1,
      });
    }
    try {
      for (const [partition, topics] of byTask) {
        const h = this.tasks.get(partition)!;
        for (const [topic, records] of topics) {
          const physical = this.physical(topic);
          this.noteHighWatermark(consumer, physical, partition);
          await this.buffer(
            h,
            topic,
            records,
            this.position(consumer, physical, partition),
            undefined,
            fetchedAt,
          );
          if (generation !== this.generation) return;
        }
      }
      for (const h of this.tasks.values()) {
        if (!h.isReady || !h.assigned || h.stoppedBy) continue;
        // Partitions with no records in this consume may have moved past a marker.
        let moved = byTask.has(h.partition);
        for (const topic of this.o.processor.inputs) {
          if (byTask.get(h.partition)?.has(topic)) continue;
          const pos = this.position(consumer, this.physical(topic), h.partition);
          if (pos === undefined) continue;
          const before = h.group.fetchedOf(topic);
          h.group.setFetched(topic, pos);
          if (h.group.fetchedOf(topic) !== before) moved = true;
        }
        if (moved && h.group.size > 0) await this.pump(h);
        if (generation !== this.generation) return;
      }
    } catch (e) {
      if (this.isInterrupted(e)) return;
      throw e;
    }
    this.commitDue(this.o.clock());
  }

  /** librdkafka caches each partition's high watermark from its fetch responses. */
  private noteHighWatermark(consumer: KafkaConsumer, topic: string, partition: number): void {
    try {
      const high = consumer.getWatermarkOffsets(topic, partition).highOffset;
      if (typeof high === 'number' && high >= 0) this.noteEnd(topic, partition, high);
    } catch {
      // not known yet
    }
  }

  private async send(
    producer: Producer,
    records: readonly OutgoingRecord[],
    offsets: readonly PartitionOffset[],
  ): Promise<void> {
    const consumer = this.consumer;
    if (!consumer) throw new Error('the engine is not running');
    if (this.o.guarantee === 'exactly_once') {
      await within(
        'beginTransaction',
        0,
        call((cb) => producer.beginTransaction(cb)),
      );
      try {
        await this.produceAll(producer, records);
        await within(
          'sendOffsetsToTransaction',
          TXN_CALL_TIMEOUT_MS,
          call((cb) => producer.sendOffsetsToTransaction([...offsets], consumer, TXN_CALL_TIMEOUT_MS, cb)),
        );
        await within(
          'commitTransaction',
          TXN_CALL_TIMEOUT_MS,
          call((cb) => producer.commitTransaction(TXN_CALL_TIMEOUT_MS, cb)),
        );
      } catch (e) {
        await within(
          'abortTransaction',
          TXN_CALL_TIMEOUT_MS,
          call((cb) => producer.abortTransaction(TXN_CALL_TIMEOUT_MS, cb)),
        ).catch(() => undefined);
        throw e;
      }
    } else {
      await this.produceAll(producer, records);
      await within(
        'flush',
        TXN_CALL_TIMEOUT_MS,
        call((cb) => producer.flush(TXN_CALL_TIMEOUT_MS, cb)),
      );
      consumer.commitSync([...offsets]);
    }
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

  private async withMetadataClient<T>(fn: (metadata: () => Promise<Metadata>) => Promise<T>): Promise<T> {
    const client = new Producer({ ...this.base, 'client.id': `${String(this.base['client.id'])}-admin` });
    await authorize(client, this.token);
    await new Promise<void>((resolve, reject) =>
      client.connect({ timeout: 30_000 }, (err) => (err ? reject(err) : resolve())),
    );
    try {
      return await fn(
        () =>
          new Promise((resolve, reject) =>
            client.getMetadata({ allTopics: true, timeout: 10_000 }, (err, m) =>
              err ? reject(err) : resolve(m),
            ),
          ),
      );
    } finally {
      await withTimeout(
        call((cb) => client.disconnect(cb)),
        10_000,
        'closing the admin client',
      ).catch(() => undefined);
    }
  }

  protected partitionCounts(topics: readonly string[]): Promise<Map<string, number>> {
    return this.withMetadataClient(async (metadata) => {
      const wanted = new Set(topics);
      const meta = await metadata();
      return new Map(meta.topics.filter((t) => wanted.has(t.name)).map((t) => [t.name, t.partitions.length]));
    });
  }

  protected async createCompactedTopic(
    topic: string,
    partitions: number,
    replicationFactor: number,
    config: Record<string, string>,
  ): Promise<void> {
    const admin = AdminClient.create(
      { ...this.base, 'client.id': `${String(this.base['client.id'])}-admin` },
      this.token ? await this.token() : undefined,
    );
    try {
      await call((cb) =>
        admin.createTopic(
          { topic, num_partitions: partitions, replication_factor: replicationFactor, config },
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
    await this.withMetadataClient(async (metadata) => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        const t = (await metadata()).topics.find((x) => x.name === topic);
        if (t && t.partitions.length === partitions && t.partitions.every((p) => p.leader >= 0)) return;
        if (Date.now() > deadline) throw new Error(`${topic} has no leaders after 30 s`);
        await sleep(200);
      }
    });
  }
}

/** A partition's low and high watermark as `client` sees them (read_committed: the end is the last stable offset). */
function watermarks(
  client: KafkaConsumer,
  topic: string,
  partition: number,
): Promise<{ lowOffset: number; highOffset: number }> {
  return within(
    'queryWatermarkOffsets',
    10_000,
    new Promise((resolve, reject) =>
      client.queryWatermarkOffsets(topic, partition, 10_000, (err, o) => (err ? reject(err) : resolve(o))),
    ),
  );
}

/**
 * A client that asks partitions' high watermarks: their ends past any open transaction
 * (read_uncommitted), which kafkajs's admin cannot ask for (its list-offsets is read_committed,
 * the last stable offset). `holdback rebuild` compares the two to know its last transaction's
 * markers are written.
 */
export async function openWatermarkClient(kafka: KafkaConfig): Promise<{
  highWatermarks(topic: string, partitions: readonly number[]): Promise<Map<number, number>>;
  close(): Promise<void>;
}> {
  const client = new KafkaConsumer(
    {
      ...rdkafkaClientConfig(kafka),
      'group.id': `${kafka.clientId ?? 'holdback'}-watermarks-${process.pid}`,
      'enable.auto.commit': false,
      'isolation.level': 'read_uncommitted',
    },
    {},
  );
  await authorize(client, oauthToken(kafka));
  await new Promise<void>((resolve, reject) =>
    client.connect({ timeout: 30_000 }, (err) => (err ? reject(err) : resolve())),
  );
  return {
    async highWatermarks(topic, partitions) {
      const ends = await Promise.all(partitions.map((p) => watermarks(client, topic, p)));
      return new Map(partitions.map((p, i) => [p, ends[i]!.highOffset]));
    },
    close: () =>
      withTimeout(
        call((cb) => client.disconnect(cb)),
        10_000,
        'closing the watermark client',
      ).catch(() => undefined),
  };
}
