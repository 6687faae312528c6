/**
 * `holdback run <processor> [options]`: runs one processor on Kafka until SIGTERM/SIGINT.
 * Exits 2 on a bad option or setting (a bad policy too), 1 when it cannot start (unregistered
 * schemas, Kafka down) or when a final commit fails on the way out; after a clean stop, 0.
 */
import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { Codec } from '../../connectors/codec';
import { ConfigError } from '../../connectors/endpoints';
import { BrokerClock, clockTopic } from '../../connectors/broker-clock';
import { describeConnections, loadConnections, registryOptions } from '../../connectors/connections';
import { describeConnectionSettings } from '../../connectors/connection-settings';
import { checkKafka, kafkajsConfig } from '../../connectors/kafka-client';
import { startMetricsServer, type MetricsServer } from '../../connectors/metrics-server';
import { SchemaRegistryClient } from '../../connectors/registry';
import { PROCESSORS, type ProcessorOptions } from '../../processors';
import { deadLetterSink, runtimeCodec } from '../../runtime/codec-adapter';
import type { Processor } from '../../processors/api';
import {
  checkRunOptions,
  PROCESSOR_ONLY,
  RUN_BOOLEANS,
  RUN_OPTION_HELP,
  RUN_OPTIONS,
  type RunOptions,
} from '../../runtime/config';
import { KafkaRuntime, type Logger, type RuntimeOptions } from '../../runtime/kafka-runtime';
import type { RdKafkaRuntime } from '../../runtime/rdkafka-runtime';
import { jsonLogger } from '../../runtime/log';
import { RuntimeMetrics } from '../../runtime/metrics';
import { parseSkipRequest } from '../../runtime/skip-command';
import { scrapeTargetsDir } from '../../stack/components';
import { commandModule, HoldbackCommand } from '../program';

/** One line per processor for `holdback run --help` (and `rebuild`). */
export const PROCESSOR_SUMMARIES: Readonly<Record<string, string>> = {
  repayment: 'withhold loan repayments from payouts: deductions and loan states, exactly once',
  eligibility: "decide each merchant's eligibility, grade and limit from its sales, payouts and loans",
};

/** The option spec of `holdback run <processor>` (and `rebuild`): the other processors' options hidden. */
export function runOptionSpec(processor: string) {
  return {
    help: RUN_OPTION_HELP,
    booleans: RUN_BOOLEANS,
    hidden: new Set(
      (Object.keys(PROCESSOR_ONLY) as Array<keyof typeof PROCESSOR_ONLY>).filter(
        (k) => PROCESSOR_ONLY[k] !== processor,
      ),
    ),
    placeholder: { policy: 'file', applicationId: 'id', topicPrefix: 'prefix', outputPrefix: 'prefix' },
  } as const;
}

function create(): HoldbackCommand {
  const run = new HoldbackCommand('run').description(
    'Runs one processor on Kafka until SIGTERM/SIGINT, with exactly-once effects. Exits 0 after a ' +
      'clean stop, 1 when it cannot start (unregistered schemas, Kafka down) or a final commit fails, ' +
      '2 on a bad option or setting.',
  );
  run.operandNoun = 'processor';
  for (const name of Object.keys(PROCESSORS)) {
    const summary = PROCESSOR_SUMMARIES[name] ?? `the ${name} processor`;
    const p = run.command(name).summary(summary).description(`Runs the ${name} processor: ${summary}.`);
    const options = p.schemaOptions(RUN_OPTIONS, runOptionSpec(name));
    p.addHelpText('after', `\n${describeConnectionSettings()}`);
    p.runs((cmd) => runProcessor(name, checkRunOptions(options(cmd), name)));
  }
  return run;
}

export const command = commandModule(create);

async function runProcessor(name: string, options: RunOptions): Promise<number> {
  // Signals are handled from the first moment: a SIGTERM during start-up stops cleanly too.
  let signalled: (signal: string) => void = () => undefined;
  const stopRequested = new Promise<string>((resolve) => (signalled = resolve));
  process.once('SIGTERM', () => signalled('SIGTERM'));
  process.once('SIGINT', () => signalled('SIGINT'));
  // A bad policy stops start-up, naming the file, the key and the reason (a configuration error).
  const processor = processorOrConfigError(PROCESSORS[name]!, options);
  const { runtime, server, log, brokerClock } = await serve(
    processor,
    options,
    options.outputPrefix !== undefined ? { outputPrefix: options.outputPrefix } : {},
  );
  try {
    await brokerClock?.start();
    await runtime.start();
    const signal = await stopRequested;
    log.info('stopping', { signal });
    if (await runtime.stop()) return 0;
    log.error('stopped, but a final commit failed: its work is redone by the next owner');
    return 1;
  } catch (e) {
    log.error('stopped on an error', { error: String(e) });
    await runtime.stop().catch(() => undefined);
    return 1;
  } finally {
    await brokerClock?.stop();
    await server.close();
  }
}

/** processorFrom, with a policy it cannot read or accept as a ConfigError (exit 2). */
export function processorOrConfigError(
  factory: (o: ProcessorOptions) => Processor<unknown, unknown>,
  options: ProcessorRunOptions,
): Processor<unknown, unknown> {
  try {
    return processorFrom(factory, options);
  } catch (e) {
    throw new ConfigError(e instanceof Error ? e.message : String(e));
  }
}

/** The processor a factory makes with the options `holdback run` (and `rebuild`) was given; a bad policy throws. */
export function processorFrom(
  factory: (o: ProcessorOptions) => Processor<unknown, unknown>,
  options: ProcessorRunOptions,
): Processor<unknown, unknown> {
  return factory({
    policyPath: options.policy,
    readFile: (p) => readFileSync(p, 'utf8'),
    dedupHorizonDays: options.dedupHorizonDays,
    dedupWindowMinutes: options.dedupWindowMinutes,
    dedupWindowEvents: options.dedupWindowEvents,
  });
}

/** The run options that make a processor what it is (the rest are the runtime's). */
type ProcessorRunOptions = Pick<
  RunOptions,
  'policy' | 'dedupHorizonDays' | 'dedupWindowMinutes' | 'dedupWindowEvents'
>;

/** A processor's runtime and its HTTP endpoint (/metrics, /health, /ready, /admin/skip), wired as `holdback run` does. */
export async function serve(
  processor: Processor<unknown, unknown>,
  options: RunOptions,
  /** What `holdback rebuild` adds: where outputs go and where inputs stop. */
  extra: Pick<RuntimeOptions<unknown>, 'outputPrefix' | 'stopAt'> = {},
): Promise<{
  runtime: KafkaRuntime<unknown> | RdKafkaRuntime<unknown>;
  server: MetricsServer;
  log: Logger;
  /** Started before the runtime (the first tick is then already corrected); stopped after it. */
  brokerClock: BrokerClock | undefined;
}> {
  const connections = loadConnections();
  await checkKafka(connections.kafka, options.applicationId ?? `holdback-${processor.name}`);
  const clock = (): number => Date.now();
  const applicationId = options.applicationId ?? `holdback-${processor.name}`;
  const instance = `${hostname()}-${process.pid}`;
  const log = jsonLogger({ processor: processor.name, instance });
  const metrics = new RuntimeMetrics();
  // Under the wall clock the rules run by the Kafka cluster's clock (connectors/broker-clock.ts).
  const brokerClock =
    options.clock === 'wall' && options.clockReference === 'broker'
      ? new BrokerClock({
          kafka: kafkajsConfig(connections.kafka, `${applicationId}-clock`),
          topic: clockTopic(applicationId),
          onOffset: (ms) => metrics.clockOffset.set(ms / 1000),
          log,
        })
      : undefined;
  const rulesClock = brokerClock ? () => brokerClock.now() : clock;

  const registry = new SchemaRegistryClient(registryOptions(connections.registry));
  const codec = new Codec({ source: registry, schemaIds: await registry.lookupAll() });
  const runtimeOptions: RuntimeOptions<unknown> = {
    processor,
    // One client id per instance: the standby placement finds this instance among the group's members by it.
    kafka: kafkajsConfig(connections.kafka, `${applicationId}-${instance}`),
    applicationId,
    topicPrefix: options.topicPrefix,
    codec: runtimeCodec(codec, rulesClock),
    deadLetters: deadLetterSink(codec, { processor: processor.name, includePayload: options.dlqPayload }),
    clock,
    rulesClock,
    guarantee: options.guarantee,
    commitIntervalMs: options.commitIntervalMs,
    tickIntervalMs: options.tickIntervalMs,
    streamTime: options.clock === 'stream',
    maxPendingPerTask: options.maxPendingPerTask,
    maxTaskIdleMs: options.maxTaskIdleMs,
    maxBufferedPerPartition: options.maxBufferedPerPartition,
    maxBytesPerPartition: options.maxFetchBytesPerPartition,
    compression: options.compression,
    internalReplicationFactor: options.internalReplicationFactor,
    internalMinInsyncReplicas: options.internalMinInsyncReplicas,
    sessionTimeoutMs: options.sessionTimeoutMs,
    standbyReplicas: options.standbyReplicas,
    metrics,
    log,
    ...extra,
  };
  // node-rdkafka is a native module: loaded only when chosen, so kafkajs runs without it.
  const runtime =
    options.transport === 'rdkafka'
      ? new (await import('../../runtime/rdkafka-runtime')).RdKafkaRuntime(runtimeOptions)
      : new KafkaRuntime(runtimeOptions);
  const targets = scrapeTargetsDir();
  const server = await startMetricsServer({
    registry: metrics.registry,
    host: connections.metrics.host,
    port: options.metricsPort ?? connections.metrics.port,
    token: connections.metrics.token,
    service: applicationId,
    scrapeTargetsDir: existsSync(targets) ? targets : undefined,
    health: () => runtime.health(),
    ready: () => runtime.ready(),
    live: () => runtime.live(),
    commands: {
      '/admin/skip': async (body) => {
        const req = parseSkipRequest(body);
        if (!req.ok) return { status: 400, body: { error: req.error } };
        const r = await runtime.skipStoppedRecord(req.value);
        return { status: r.status, body: r.status === 200 ? { done: r.message } : { error: r.message } };
      },
    },
  });
  log.info('starting', {
    ...options,
    applicationId,
    metrics: server.url,
    ...describeConnections(connections),
    // node-rdkafka's blocking calls share this pool (bin/holdback sets it).
    uvThreadPoolSize: Number(process.env['UV_THREADPOOL_SIZE'] ?? 4),
  });
  return { runtime, server, log, brokerClock };
}
