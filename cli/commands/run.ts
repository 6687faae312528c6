/**
 * `holdback run <processor> [options]`: runs one processor on Kafka until SIGTERM/SIGINT.
 * Exits non-zero when it cannot start (bad option, unregistered schemas, Kafka down) and after a
 * graceful stop returns 0.
 */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { Codec } from '../../connectors/codec';
import { loadEndpoints } from '../../connectors/endpoints';
import { startMetricsServer } from '../../connectors/metrics-server';
import { SchemaRegistryClient } from '../../connectors/registry';
import { PROCESSORS } from '../../processors';
import { deadLetterSink, runtimeCodec } from '../../runtime/codec-adapter';
import { describeRunOptions, parseRunOptions } from '../../runtime/config';
import { KafkaRuntime } from '../../runtime/kafka-runtime';
import { jsonLogger } from '../../runtime/log';
import { RuntimeMetrics } from '../../runtime/metrics';
import { scrapeTargetsDir } from '../../stack/components';
import type { Command } from '../main';

const HELP = `usage: holdback run <${Object.keys(PROCESSORS).join('|')}> [options]

options:
${describeRunOptions()}`;

export const command: Command = {
  summary: 'run a processor on Kafka with exactly-once effects',
  async run(args) {
    const [name, ...rest] = args;
    if (!name || name === '--help') {
      console.log(HELP);
      return name ? 0 : 2;
    }
    const factory = PROCESSORS[name];
    if (!factory) {
      console.error(`holdback run: unknown processor '${name}'\n${HELP}`);
      return 2;
    }
    const options = parseRunOptions(rest);
    // Signals are handled from the first moment: a SIGTERM during start-up stops cleanly too.
    let signalled: (signal: string) => void = () => undefined;
    const stopRequested = new Promise<string>((resolve) => (signalled = resolve));
    process.once('SIGTERM', () => signalled('SIGTERM'));
    process.once('SIGINT', () => signalled('SIGINT'));

    const endpoints = loadEndpoints();
    const processor = factory();
    const clock = (): number => Date.now();
    const applicationId = options.applicationId ?? `holdback-${processor.name}`;
    const log = jsonLogger({ processor: processor.name, instance: `${hostname()}-${process.pid}` });

    const registry = new SchemaRegistryClient({ url: endpoints.registryUrl });
    const codec = new Codec({ source: registry, schemaIds: await registry.lookupAll() });
    const metrics = new RuntimeMetrics();
    const runtime = new KafkaRuntime({
      processor,
      kafka: { clientId: applicationId, brokers: endpoints.kafkaBrokers },
      applicationId,
      topicPrefix: options.topicPrefix,
      codec: runtimeCodec(codec, clock),
      deadLetters: deadLetterSink(codec, options.dlqPayload),
      clock,
      guarantee: options.guarantee,
      commitIntervalMs: options.commitIntervalMs,
      tickIntervalMs: options.tickIntervalMs,
      maxPendingPerTask: options.maxPendingPerTask,
      sessionTimeoutMs: options.sessionTimeoutMs,
      metrics,
      log,
    });
    const targets = scrapeTargetsDir();
    const server = await startMetricsServer({
      registry: metrics.registry,
      host: endpoints.host,
      port: options.metricsPort,
      service: applicationId,
      scrapeTargetsDir: existsSync(targets) ? targets : undefined,
      health: () => runtime.health(),
    });
    log.info('starting', { ...options, applicationId, metrics: server.url });
    try {
      await runtime.start();
      const signal = await stopRequested;
      log.info('stopping', { signal });
      await runtime.stop();
      return 0;
    } catch (e) {
      log.error('stopped on an error', { error: String(e) });
      await runtime.stop().catch(() => undefined);
      return 1;
    } finally {
      await server.close();
    }
  },
};
