/**
 * `holdback clickhouse migrate | sink | status`: the analytics half of Holdback.
 * - migrate: applies connectors/clickhouse/migrations/*.sql not yet recorded in the database.
 * - sink: consumes every input and output topic (read_committed) into ClickHouse, exactly once,
 *   until SIGTERM/SIGINT (connectors/clickhouse/README.md).
 * - status: migrations applied, rows per table and how far each table is behind Kafka.
 */
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { createClient } from '@clickhouse/client';
import { Kafka, logLevel } from 'kafkajs';
import type { z } from 'zod';
import { Codec } from '../../connectors/codec';
import {
  clickhouseClientOptions,
  describeConnections,
  loadConnections,
  registryOptions,
  type Connections,
} from '../../connectors/connections';
import { checkKafka, kafkajsConfig } from '../../connectors/kafka-client';
import { describeConnectionSettings } from '../../connectors/connection-settings';
import { checkClickHouse } from '../../connectors/clickhouse/check';
import { startMetricsServer } from '../../connectors/metrics-server';
import { SchemaRegistryClient } from '../../connectors/registry';
import { CLICKHOUSE_OPTIONS, type ClickHouseOptions } from '../../connectors/clickhouse/config';
import { SinkMetrics } from '../../connectors/clickhouse/metrics';
import { migrate } from '../../connectors/clickhouse/migrate';
import { ClickHouseSink } from '../../connectors/clickhouse/sink';
import { sinkStatus } from '../../connectors/clickhouse/status';
import { jsonLogger } from '../../runtime/log';
import { scrapeTargetsDir } from '../../stack/components';
import { commandModule, HoldbackCommand } from '../program';

/** One help line per option of CLICKHOUSE_OPTIONS. */
const OPTION_HELP = {
  database:
    'the ClickHouse database of the analytics tables (default HOLDBACK_CLICKHOUSE_DATABASE, else holdback)',
  topicPrefix: 'prepended to every contract topic (default none)',
  groupId:
    'the consumer group of the sink; its offsets are advisory (default holdback-clickhouse-<database>)',
  maxBatchRows: 'flush when this many rows are buffered (over all tables)',
  maxBatchMs: 'flush when the oldest buffered row is this old (ms)',
  insertTimeoutMs: 'an INSERT not answered within this is fenced and reconciled (ms)',
  sessionTimeoutMs: 'consumer group session timeout (ms)',
  metricsPort: '/metrics and /health port; 0 picks a free one (default HOLDBACK_METRICS_PORT, else 0)',
};
const PLACEHOLDERS = { database: 'name', topicPrefix: 'prefix', groupId: 'id' };
/** Each subcommand takes the options that mean something to it. */
const MIGRATE_OPTIONS = CLICKHOUSE_OPTIONS.pick({ database: true }).strict();
const STATUS_OPTIONS = CLICKHOUSE_OPTIONS.pick({ database: true, topicPrefix: true }).strict();

/** The options, and the connections with the database the options name (--database over HOLDBACK_CLICKHOUSE_DATABASE). */
function settings<O extends Partial<ClickHouseOptions>>(o: O): { o: O; c: Connections; database: string } {
  const c = loadConnections();
  const database = o.database ?? c.clickhouse.database;
  return { o, c: { ...c, clickhouse: { ...c.clickhouse, database } }, database };
}

async function runMigrate(options: z.infer<typeof MIGRATE_OPTIONS>): Promise<number> {
  const { c, database } = settings(options);
  await checkClickHouse(c.clickhouse);
  const client = createClient(clickhouseClientOptions(c.clickhouse));
  try {
    const r = await migrate(client, database, undefined, (line) => console.log(line));
    console.log(
      r.applied.length === 0
        ? `${database}: up to date (${r.alreadyApplied} migrations applied earlier)`
        : `${database}: applied ${r.applied.length} migration(s); ${r.alreadyApplied} were applied earlier`,
    );
    return 0;
  } finally {
    await client.close();
  }
}

async function runStatus(options: z.infer<typeof STATUS_OPTIONS>): Promise<number> {
  const { o, c, database } = settings(options);
  await checkClickHouse(c.clickhouse);
  await checkKafka(c.kafka, 'holdback-clickhouse-status');
  const client = createClient(clickhouseClientOptions(c.clickhouse));
  const kafka = new Kafka(
    kafkajsConfig(c.kafka, 'holdback-clickhouse-status', { logLevel: logLevel.NOTHING }),
  );
  try {
    const s = await sinkStatus(client, kafka, database, o.topicPrefix);
    console.log(`database ${s.database}: ${s.migrations.length} migrations applied, ${s.pending} pending`);
    for (const m of s.migrations)
      console.log(`  ${String(m.version).padStart(4, '0')}_${m.name}  ${m.appliedAt}`);
    if (s.tables.length > 0) {
      console.log(`${'table'.padEnd(24)}${'rows'.padStart(12)}${'lag'.padStart(10)}  topic`);
      for (const t of s.tables)
        console.log(
          `${t.table.padEnd(24)}${String(t.rows).padStart(12)}${String(t.lag).padStart(10)}  ${t.topic}`,
        );
    }
    return s.pending > 0 ? 1 : 0;
  } finally {
    await client.close();
  }
}

async function runSink(options: ClickHouseOptions): Promise<number> {
  const { o, c, database } = settings(options);
  let signalled: (signal: string) => void = () => undefined;
  const stopRequested = new Promise<string>((resolve) => (signalled = resolve));
  process.once('SIGTERM', () => signalled('SIGTERM'));
  process.once('SIGINT', () => signalled('SIGINT'));

  const groupId = o.groupId ?? `holdback-clickhouse-${database}`;
  await checkClickHouse(c.clickhouse);
  await checkKafka(c.kafka, groupId);
  const log = jsonLogger({ component: 'clickhouse-sink', instance: `${hostname()}-${process.pid}` });
  const registry = new SchemaRegistryClient(registryOptions(c.registry));
  const codec = new Codec({ source: registry, schemaIds: await registry.lookupAll() });
  const metrics = new SinkMetrics();
  const sink = new ClickHouseSink({
    kafka: kafkajsConfig(c.kafka, groupId),
    groupId,
    topicPrefix: o.topicPrefix,
    clickhouse: c.clickhouse,
    database,
    codec,
    limits: { maxRows: o.maxBatchRows, maxAgeMs: o.maxBatchMs },
    insertTimeoutMs: o.insertTimeoutMs,
    sessionTimeoutMs: o.sessionTimeoutMs,
    metrics,
    log,
  });
  const targets = scrapeTargetsDir();
  const server = await startMetricsServer({
    registry: metrics.registry,
    host: c.metrics.host,
    port: o.metricsPort ?? c.metrics.port,
    token: c.metrics.token,
    service: groupId,
    scrapeTargetsDir: existsSync(targets) ? targets : undefined,
    health: () => sink.health(),
  });
  log.info('starting', { ...o, database, groupId, metrics: server.url, ...describeConnections(c) });
  try {
    await sink.start();
    const signal = await stopRequested;
    log.info('stopping', { signal });
    await sink.stop();
    return 0;
  } catch (err) {
    log.error('stopped on an error', { error: String(err) });
    await sink.stop(1000).catch(() => undefined);
    return 1;
  } finally {
    await server.close();
  }
}

function create(): HoldbackCommand {
  const clickhouse = new HoldbackCommand('clickhouse').description(
    'The analytics half of Holdback: every topic in ClickHouse, exactly once (connectors/clickhouse/README.md).',
  );
  clickhouse.operandNoun = 'subcommand';
  const connections = `\n${describeConnectionSettings()}`;

  const migrate = clickhouse
    .command('migrate')
    .summary('create the database and apply the numbered migrations not applied yet')
    .description(
      'Creates the database and applies the numbered migrations (connectors/clickhouse/migrations/) ' +
        'not yet recorded in it.',
    );
  const migrateOptions = migrate.schemaOptions(MIGRATE_OPTIONS, {
    help: OPTION_HELP,
    placeholder: PLACEHOLDERS,
  });
  migrate.addHelpText('after', connections).runs(async (cmd) => runMigrate(migrateOptions(cmd)));

  const sink = clickhouse
    .command('sink')
    .summary('copy every Holdback topic into ClickHouse, exactly once, until SIGTERM')
    .description(
      'Consumes every input and output topic (read_committed) into ClickHouse, exactly once, until ' +
        'SIGTERM/SIGINT.',
    );
  const sinkOptions = sink.schemaOptions(CLICKHOUSE_OPTIONS, {
    help: OPTION_HELP,
    placeholder: PLACEHOLDERS,
  });
  sink.addHelpText('after', connections).runs(async (cmd) => runSink(sinkOptions(cmd)));

  const status = clickhouse
    .command('status')
    .summary('migrations applied, rows per table, lag behind Kafka; exits 1 with migrations pending')
    .description(
      'Migrations applied, rows per table and how far each table is behind Kafka; exits 1 while migrations are pending.',
    );
  const statusOptions = status.schemaOptions(STATUS_OPTIONS, {
    help: OPTION_HELP,
    placeholder: PLACEHOLDERS,
  });
  status.addHelpText('after', connections).runs(async (cmd) => runStatus(statusOptions(cmd)));
  return clickhouse;
}

export const command = commandModule(create);
