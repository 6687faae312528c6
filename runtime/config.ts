/**
 * Options of `holdback run <processor>`: a schema with documented defaults that rejects unknown
 * keys, and one help line per option. A bad option stops start-up naming the option and the
 * reason (an OptionError, a ConfigError: exit 2).
 */
import { z } from 'zod';
import { kebab, OptionError, parseFlags } from '../connectors/flags';

export const RUN_OPTIONS = z
  .object({
    /** exactly_once: outputs, state and offsets in one transaction; at_least_once: lower latency, duplicates possible after a crash. */
    guarantee: z.enum(['exactly_once', 'at_least_once']).default('exactly_once'),
    /** How often each task commits its transaction (ms). */
    commitIntervalMs: z.coerce.number().int().min(1).max(60_000).default(100),
    /**
     * What `now` is for processors and their timers: wall (the machine's clock; production) or
     * stream (per task, the highest record timestamp it has processed, as Kafka Streams'
     * stream-time punctuation): for replays and simulations whose event time runs faster than
     * the wall clock, so periods close when the stream reaches their end, not all at once.
     */
    clock: z.enum(['wall', 'stream']).default('wall'),
    /**
     * Under --clock=wall, whose clock the rules run by: broker (this machine's clock corrected by
     * the Kafka cluster's, sampled through a LogAppendTime topic <application id>-clock, so a
     * skewed host neither closes periods early nor late) or local (this machine's as it is).
     */
    clockReference: z.enum(['broker', 'local']).default('broker'),
    /** How often the runtime checks for due timers (ms). */
    tickIntervalMs: z.coerce.number().int().min(10).max(3_600_000).default(1000),
    /** Commit early once a task holds this many pending effects. */
    maxPendingPerTask: z.coerce.number().int().min(1).max(1_000_000).default(5000),
    /**
     * How long a task waits for data on an empty input partition before it goes on in time
     * order without it (ms), as Kafka Streams' max.task.idle.ms. 0: it waits only while the
     * broker is known to hold more for that partition, never for data not yet written; a
     * positive value also waits that long for new data; -1 never waits (order then depends on
     * what each fetch brings).
     */
    maxTaskIdleMs: z.coerce.number().int().min(-1).max(3_600_000).default(0),
    /** Records buffered per input partition before its fetching pauses (bounds memory on a backlog). */
    maxBufferedPerPartition: z.coerce.number().int().min(1).max(1_000_000).default(2000),
    /** Most bytes one fetch returns per partition (kafkajs maxBytesPerPartition, librdkafka max.partition.fetch.bytes). */
    maxFetchBytesPerPartition: z.coerce
      .number()
      .int()
      .min(1024)
      .max(64 << 20)
      .default(1 << 20),
    /**
     * Standby replicas, as Kafka Streams' num.standby.replicas: each instance keeps warm copies
     * of the tasks it would be given if up to this many other instances left the group, so a
     * failover reads only the changelog written since instead of restoring in full. Costs that
     * state's memory and the reading of its changelog. 0: none.
     */
    standbyReplicas: z.coerce.number().int().min(0).max(8).default(0),
    /** Consumer group session timeout (ms): how long a silent instance keeps its partitions. */
    sessionTimeoutMs: z.coerce.number().int().min(3000).max(300_000).default(10_000),
    /**
     * The changelog's replication factor: created with it, and checked at start (a mismatch
     * stops start-up). Default min(3, the cluster's brokers).
     */
    internalReplicationFactor: z.coerce.number().int().min(1).max(32).optional(),
    /** The changelog's min.insync.replicas, created and checked likewise. Default min(2, its replication factor). */
    internalMinInsyncReplicas: z.coerce.number().int().min(1).max(32).optional(),
    /** /metrics, /health, /live, /ready port; 0 picks a free one (Prometheus finds it through file_sd). Default HOLDBACK_METRICS_PORT, else 0. */
    metricsPort: z.coerce.number().int().min(0).max(65535).optional(),
    /** Consumer group and transactional-id prefix; default holdback-<processor>. */
    applicationId: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,100}$/)
      .optional(),
    /** Prepended to every contract topic (tests, simulations, tenants). */
    topicPrefix: z
      .string()
      .regex(/^[A-Za-z0-9._-]{0,100}$/)
      .default(''),
    /**
     * Prepended to every output topic and the DLQ instead of --topic-prefix: a shadow run that
     * reads the same inputs and writes elsewhere (benchmarks comparing engines on one input).
     */
    outputPrefix: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,100}$/)
      .optional(),
    /** Keep the raw payload of dead letters (otherwise only its SHA-256). */
    dlqPayload: z.stringbool().default(false),
    /** The Kafka client under the runtime: rdkafka (node-rdkafka, librdkafka; the default since issue 16) or kafkajs (pure JS); same guarantees. */
    transport: z.enum(['kafkajs', 'rdkafka']).default('rdkafka'),
    /**
     * Compression of what the processor produces (outputs and changelog), librdkafka's
     * compression.codec; rdkafka only. gzip and none only: every reader must decode it, and
     * kafkajs (the ClickHouse sink, the kafkajs transport) has no lz4, snappy or zstd codec
     * built in. docs/performance.md, "Compression", has the measurement.
     */
    compression: z.enum(['none', 'gzip']).default('none'),
    /** eligibility only: the policy file (JSON), validated at start-up; default policies/default.json. */
    policy: z.string().min(1).optional(),
    /**
     * repayment only: how long a payout is remembered after its latest event (days; one with
     * unsettled withholdings until it settles or fails). An event of a forgotten payout older than
     * this goes to the DLQ as BEYOND_DEDUP_HORIZON (docs/contract.md, "One decision per event").
     * Default 35.
     */
    dedupHorizonDays: z.coerce.number().int().min(1).max(3660).optional(),
    /**
     * eligibility only: its de-duplication window, the event ids of each merchant's events within
     * this many minutes (event time) of its newest (processors/eligibility/README.md). Default 60.
     */
    dedupWindowMinutes: z.coerce.number().int().min(1).max(525_600).optional(),
    /** eligibility only: at most this many event ids remembered per merchant (12 bytes each). Default 256. */
    dedupWindowEvents: z.coerce.number().int().min(1).max(4096).optional(),
  })
  .strict();

export type RunOptions = z.infer<typeof RUN_OPTIONS>;
type RunOptionKey = Extract<keyof typeof RUN_OPTIONS.shape, string>;

/** One line of `holdback run --help` per option (the schema's comments above say more). */
export const RUN_OPTION_HELP: Readonly<Record<RunOptionKey, string>> = {
  guarantee:
    'exactly_once: outputs, state and offsets in one transaction; at_least_once: lower latency, duplicates possible after a crash',
  commitIntervalMs: 'how often each task commits its transaction (ms)',
  clock:
    "what `now` is for the rules and timers: wall (this machine's clock) or stream (per task, the highest record timestamp; replays, simulations)",
  clockReference:
    "under --clock=wall, whose clock: broker (corrected by the Kafka cluster's, through <application id>-clock) or local",
  tickIntervalMs: 'how often the runtime checks for due timers (ms)',
  maxPendingPerTask: 'commit early once a task holds this many pending effects',
  maxTaskIdleMs:
    "how long a task waits for data on an empty input partition before going on in time order (ms; Kafka Streams' max.task.idle.ms); -1 never waits",
  maxBufferedPerPartition: 'records buffered per input partition before its fetching pauses',
  maxFetchBytesPerPartition: 'most bytes one fetch returns per partition',
  standbyReplicas:
    "warm copies of other instances' tasks kept here, for a fast failover (Kafka Streams' num.standby.replicas)",
  sessionTimeoutMs: 'consumer group session timeout (ms): how long a silent instance keeps its partitions',
  internalReplicationFactor:
    "the changelog's replication factor, created with it and checked at start (default min(3, the cluster's brokers))",
  internalMinInsyncReplicas:
    "the changelog's min.insync.replicas, created and checked likewise (default min(2, its replication factor))",
  metricsPort:
    '/metrics, /health, /live, /ready port; 0 picks a free one (default HOLDBACK_METRICS_PORT, else 0)',
  applicationId: 'consumer group and transactional-id prefix (default holdback-<processor>)',
  topicPrefix: 'prepended to every contract topic (tests, simulations, tenants)',
  outputPrefix:
    'prepended to every output topic and the DLQ instead of --topic-prefix: a shadow run writing elsewhere',
  dlqPayload:
    'keep the raw payload of dead letters, so that `holdback dlq replay` can re-send them (otherwise only its SHA-256)',
  transport: 'the Kafka client under the runtime: rdkafka (librdkafka) or kafkajs (pure JS); same guarantees',
  compression: 'compression of what the processor produces (outputs and changelog); rdkafka only',
  policy: 'the eligibility policy file (JSON), validated at start-up (default policies/default.json)',
  dedupHorizonDays:
    'how long a payout is remembered after its latest event (days; default 35); older events of a forgotten one go to the DLQ',
  dedupWindowMinutes:
    "eligibility's de-duplication window: event ids within this many minutes of a merchant's newest event are remembered (default 60)",
  dedupWindowEvents:
    'at most this many event ids remembered per merchant, 12 bytes each (default 256); beyond, the window is the last ones',
};

/** Options of one processor only: `holdback run <other> --<option>` is refused, naming it. */
export const PROCESSOR_ONLY: Readonly<Partial<Record<RunOptionKey, string>>> = {
  policy: 'eligibility',
  dedupHorizonDays: 'repayment',
  dedupWindowMinutes: 'eligibility',
  dedupWindowEvents: 'eligibility',
};

/** Given bare, these mean true (`--dlq-payload`); `--dlq-payload=false` works too. */
export const RUN_BOOLEANS: ReadonlySet<RunOptionKey> = new Set(['dlqPayload']);

/** What the schema alone cannot check: options that contradict each other, or the processor. */
export function checkRunOptions<O extends RunOptions>(options: O, processor?: string): O {
  if (options.transport === 'kafkajs' && options.compression !== 'none')
    throw new OptionError(
      `option --compression=${options.compression} needs --transport=rdkafka (the kafkajs transport does not compress)`,
    );
  if (processor !== undefined) {
    for (const [key, only] of Object.entries(PROCESSOR_ONLY)) {
      if (options[key as RunOptionKey] !== undefined && only !== processor)
        throw new OptionError(`--${kebab(key)} is an option of ${only}, not of ${processor}`);
    }
  }
  return options;
}

/** Parses `--key=value` / `--key value` / `--flag` arguments into RunOptions (commander, then the schema). */
export function parseRunOptions(args: readonly string[]): RunOptions {
  return checkRunOptions(parseFlags(RUN_OPTIONS, args, RUN_BOOLEANS));
}
