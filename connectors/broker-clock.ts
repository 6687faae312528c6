/**
 * The Kafka cluster's clock, which the rules run by under --clock=wall (docs/contract.md, "the
 * merchant clock"): a minimum-payment period closes when the cluster's time passes its end, not
 * when one machine's clock says so. A processor host whose clock is hours ahead would otherwise
 * close every period ending in those hours early, and one behind would close them late.
 *
 * The broker stamps each record appended to a `message.timestamp.type=LogAppendTime` topic with
 * its own clock and returns the stamp in the produce response. Every `intervalMs` a one-byte
 * record goes to the application's clock topic (`<application id>-clock`: one partition, an
 * hour's retention); the offset is the stamp minus the midpoint of the request's round trip on
 * this machine. The median of the last samples is used, and a sample whose round trip took
 * longer than MAX_RTT_MS is dropped: its midpoint says little.
 *
 * Brokers keep their clocks by NTP, as Kafka's own log retention and LogAppendTime need; this
 * trusts them over an application host.
 */
import { ConfigResourceTypes, Kafka, logLevel, type KafkaConfig, type Producer } from 'kafkajs';
import { clusterReplication, createTopicsReady } from './kafka-admin';
import { whileRetriable } from './kafka-read';

export interface BrokerClockOptions {
  kafka: KafkaConfig;
  /** The LogAppendTime topic the probes go to. */
  topic: string;
  /** How often the offset is sampled (ms). */
  intervalMs?: number;
  /** This machine's clock (Date.now; a test may skew it). */
  local?: () => number;
  onOffset?: (offsetMs: number) => void;
  log?: { warn(msg: string, fields?: Record<string, unknown>): void };
}

/** A probe whose round trip took longer than this is dropped. */
const MAX_RTT_MS = 1000;
/** Samples the median is taken over. */
const SAMPLES = 5;
/** An offset this large is logged: a host clock to fix. */
const WARN_OFFSET_MS = 5000;

export function clockTopic(applicationId: string): string {
  return `${applicationId}-clock`;
}

export class BrokerClock {
  private readonly samples: number[] = [];
  private offsetMs = 0;
  private producer: Producer | undefined;
  private timer: NodeJS.Timeout | undefined;
  private warned = false;
  private failing = false;
  private readonly local: () => number;

  constructor(private readonly o: BrokerClockOptions) {
    this.local = o.local ?? Date.now;
  }

  /** The rules' time: this machine's clock corrected by the broker's. */
  now(): number {
    return this.local() + this.offsetMs;
  }

  /** The broker's clock minus this machine's (ms), as last estimated. */
  get offset(): number {
    return this.offsetMs;
  }

  /** Ensures the clock topic, takes the first samples (so the first tick is already corrected), then samples on. */
  async start(): Promise<void> {
    const kafka = new Kafka({ logLevel: logLevel.NOTHING, ...this.o.kafka });
    await this.ensureTopic(kafka);
    this.producer = kafka.producer({ allowAutoTopicCreation: false });
    await this.producer.connect();
    for (let i = 0; i < 3; i++) await this.sample();
    if (this.samples.length === 0) {
      throw new Error(`no probe of the broker's clock on ${this.o.topic} answered within ${MAX_RTT_MS} ms`);
    }
    this.timer = setInterval(
      () =>
        void this.sample().then(
          () => (this.failing = false),
          (e: unknown) => {
            // The last offset stays in use; said once per run of failures.
            if (!this.failing)
              this.o.log?.warn('could not sample the broker clock; keeping the last offset', {
                error: String(e),
              });
            this.failing = true;
          },
        ),
      this.o.intervalMs ?? 10_000,
    );
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.producer?.disconnect().catch(() => undefined);
  }

  private async sample(): Promise<void> {
    const producer = this.producer;
    if (!producer) return;
    const t0 = this.local();
    const [meta] = await producer.send({ topic: this.o.topic, acks: 1, messages: [{ value: '' }] });
    const t1 = this.local();
    const stamp = Number(meta?.logAppendTime ?? -1);
    if (stamp < 0) {
      throw new Error(
        `${this.o.topic} does not stamp records with the broker's time: set message.timestamp.type=LogAppendTime on it`,
      );
    }
    if (t1 - t0 > MAX_RTT_MS) return;
    this.samples.push(stamp - (t0 + t1) / 2);
    if (this.samples.length > SAMPLES) this.samples.shift();
    const sorted = [...this.samples].sort((a, b) => a - b);
    this.offsetMs = Math.round(sorted[sorted.length >> 1]!);
    this.o.onOffset?.(this.offsetMs);
    if (Math.abs(this.offsetMs) > WARN_OFFSET_MS && !this.warned) {
      this.warned = true;
      this.o.log?.warn("this machine's clock is off the Kafka cluster's; the rules run by the cluster's", {
        offsetMs: this.offsetMs,
      });
    }
  }

  /** Creates the clock topic, or checks that it stamps with the broker's time. */
  private async ensureTopic(kafka: Kafka): Promise<void> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const topics = await whileRetriable(() => admin.listTopics());
      if (!topics.includes(this.o.topic)) {
        const { replicationFactor } = await clusterReplication(admin);
        await createTopicsReady(admin, [
          {
            topic: this.o.topic,
            numPartitions: 1,
            replicationFactor,
            configEntries: [
              { name: 'message.timestamp.type', value: 'LogAppendTime' },
              { name: 'cleanup.policy', value: 'delete' },
              { name: 'retention.ms', value: '3600000' },
              { name: 'segment.ms', value: '600000' },
            ],
          },
        ]).catch((e: unknown) => {
          // Another instance of the application created it meanwhile.
          if (!/already exists/i.test(String(e))) throw e;
        });
        return;
      }
      const described = await whileRetriable(() =>
        admin.describeConfigs({
          resources: [
            { type: ConfigResourceTypes.TOPIC, name: this.o.topic, configNames: ['message.timestamp.type'] },
          ],
          includeSynonyms: false,
        }),
      );
      const type = described.resources[0]?.configEntries.find(
        (e) => e.configName === 'message.timestamp.type',
      );
      if (type?.configValue !== 'LogAppendTime') {
        throw new Error(
          `${this.o.topic} has message.timestamp.type ${String(type?.configValue)}, not LogAppendTime: ` +
            `kafka-configs.sh --alter --entity-type topics --entity-name ${this.o.topic} ` +
            '--add-config message.timestamp.type=LogAppendTime, or run with --clock-reference=local',
        );
      }
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  }
}
