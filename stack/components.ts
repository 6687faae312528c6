/**
 * The five real servers of the local stack: how each is installed, configured, started and
 * checked for health with its own protocol. All listen on the configured host (127.0.0.1).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createTopicsReady } from '../connectors/kafka-admin';
import { Kafka, logLevel } from 'kafkajs';
import type { Endpoints } from '../connectors/endpoints';
import { TOPIC_SPECS } from '../schemas/topics';
import {
  ensureApicurio,
  ensureDebianPackages,
  ensureKafka,
  findJava,
  InstallError,
  KAFKA_VERSION,
} from './install';
import type { Launch } from './proc';
import { REPO_ROOT, runDir } from './paths';

type Log = (line: string) => void;

export interface Component {
  readonly name: string;
  /** What a person reads in `stack status`. */
  readonly address: (e: Endpoints) => string;
  readonly ports: (e: Endpoints) => Array<[string, number]>;
  /** Installs what is missing and writes config files; returns how to launch. */
  prepare(e: Endpoints, log: Log): Promise<Launch>;
  /** One protocol-level health check; resolves true when healthy. */
  healthy(e: Endpoints): Promise<boolean>;
  /** Seconds to wait for health after start before giving up. */
  readonly startTimeoutSec: number;
  /** Work once healthy (topics, default compatibility). */
  afterStart?(e: Endpoints, log: Log): Promise<void>;
}

async function httpOk(url: string, init?: RequestInit): Promise<boolean> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(2000) });
    return res.ok;
  } catch {
    return false;
  }
}

function kafkaClient(e: Endpoints): Kafka {
  return new Kafka({
    clientId: 'holdback-stack',
    brokers: e.kafkaBrokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2000,
    retry: { retries: 2 },
  });
}

const kafka: Component = {
  name: 'kafka',
  address: (e) => `${e.kafkaBrokers.join(',')} (KRaft controller :${e.kafkaControllerPort})`,
  ports: (e) => [
    ['HOLDBACK_KAFKA_PORT', e.kafkaPort],
    ['HOLDBACK_KAFKA_CONTROLLER_PORT', e.kafkaControllerPort],
  ],
  startTimeoutSec: 90,
  async prepare(e, log) {
    const lib = await ensureKafka(log);
    const java = findJava(17);
    const dir = runDir('kafka');
    const data = join(dir, 'data');
    mkdirSync(data, { recursive: true });
    const props = join(dir, 'server.properties');
    writeFileSync(
      props,
      [
        '# Written by `holdback stack up`: a single-node Kafka in KRaft mode (broker + controller).',
        'process.roles=broker,controller',
        'node.id=1',
        `controller.quorum.voters=1@${e.host}:${e.kafkaControllerPort}`,
        `listeners=PLAINTEXT://${e.host}:${e.kafkaPort},CONTROLLER://${e.host}:${e.kafkaControllerPort}`,
        `advertised.listeners=PLAINTEXT://${e.host}:${e.kafkaPort}`,
        'controller.listener.names=CONTROLLER',
        'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
        'inter.broker.listener.name=PLAINTEXT',
        `log.dirs=${data}`,
        `num.partitions=${e.partitions}`,
        '# One node: replication factor 1 everywhere, or transactions never start.',
        'offsets.topic.replication.factor=1',
        'transaction.state.log.replication.factor=1',
        'transaction.state.log.min.isr=1',
        'min.insync.replicas=1',
        'group.initial.rebalance.delay.ms=0',
        'auto.create.topics.enable=false',
        '# Small segments keep compaction of changelogs and compacted outputs visible on a dev box.',
        'log.segment.bytes=67108864',
        'log.retention.hours=168',
        '',
      ].join('\n'),
    );
    const log4j = join(dir, 'log4j.properties');
    writeFileSync(
      log4j,
      [
        'log4j.rootLogger=INFO, stdout',
        'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
        'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
        'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
        'log4j.logger.kafka.request.logger=WARN',
        'log4j.logger.org.apache.kafka.clients=WARN',
        'log4j.logger.state.change.logger=WARN',
        '',
      ].join('\n'),
    );
    const cp = `${lib}/*`;
    if (!existsSync(join(data, 'meta.properties'))) {
      log(`formatting Kafka ${KAFKA_VERSION} storage in ${data}`);
      const id = spawnSync(java, ['-cp', cp, 'kafka.tools.StorageTool', 'random-uuid'], { encoding: 'utf8' });
      const clusterId = id.stdout.trim().split('\n').pop() ?? '';
      if (id.status !== 0 || !/^[A-Za-z0-9_-]{22}$/.test(clusterId)) {
        throw new InstallError(`kafka-storage random-uuid failed: ${id.stderr}`);
      }
      const fmt = spawnSync(
        java,
        [
          `-Dlog4j.configuration=file:${log4j}`,
          '-cp',
          cp,
          'kafka.tools.StorageTool',
          'format',
          '-t',
          clusterId,
          '-c',
          props,
          '-g',
        ],
        { encoding: 'utf8' },
      );
      if (fmt.status !== 0) throw new InstallError(`kafka-storage format failed: ${fmt.stderr}${fmt.stdout}`);
    }
    return {
      component: 'kafka',
      command: java,
      args: [
        '-Xms256m',
        '-Xmx768m',
        '-XX:+UseG1GC',
        '-XX:MaxGCPauseMillis=20',
        '-Djava.awt.headless=true',
        `-Dlog4j.configuration=file:${log4j}`,
        `-Dkafka.logs.dir=${dir}`,
        '-cp',
        cp,
        'kafka.Kafka',
        props,
      ],
    };
  },
  async healthy(e) {
    const admin = kafkaClient(e).admin();
    try {
      await admin.connect();
      const cluster = await admin.describeCluster();
      return cluster.brokers.length > 0 && cluster.controller !== null;
    } catch {
      return false;
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  },
  async afterStart(e, log) {
    await ensureTopics(e, log);
    // Creates __transaction_state now, so the first transactional producer does not wait for it.
    const producer = kafkaClient(e).producer({
      transactionalId: 'holdback-stack-warmup',
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    await producer.disconnect();
  },
};

/** Creates the contract's topics (idempotent); refuses topics whose partition count differs. */
export async function ensureTopics(e: Endpoints, log: Log): Promise<void> {
  const admin = kafkaClient(e).admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = TOPIC_SPECS.filter((t) => !existing.has(t.name));
    if (missing.length > 0) {
      await createTopicsReady(
        admin,
        missing.map((t) => ({
          topic: t.name,
          numPartitions: e.partitions,
          replicationFactor: 1,
          configEntries: t.compacted ? [{ name: 'cleanup.policy', value: 'compact' }] : [],
        })),
      );
      log(`created topics ${missing.map((t) => t.name).join(', ')} with ${e.partitions} partitions each`);
    }
    const meta = await admin.fetchTopicMetadata({ topics: TOPIC_SPECS.map((t) => t.name) });
    const wrong = meta.topics.filter((t) => t.partitions.length !== e.partitions);
    if (wrong.length > 0) {
      throw new Error(
        `topics must be co-partitioned with ${e.partitions} partitions, but ${wrong
          .map((t) => `${t.name} has ${t.partitions.length}`)
          .join(', ')}; set HOLDBACK_PARTITIONS to match or recreate them (holdback stack down --purge)`,
      );
    }
  } finally {
    await admin.disconnect();
  }
}

const registry: Component = {
  name: 'registry',
  address: (e) => `${e.registryUrl} (Apicurio Registry, Confluent API)`,
  ports: (e) => [
    ['HOLDBACK_REGISTRY_PORT', e.registryPort],
    ['HOLDBACK_REGISTRY_MANAGEMENT_PORT', e.registryManagementPort],
  ],
  startTimeoutSec: 120,
  async prepare(e, log) {
    const home = await ensureApicurio(log);
    const java = findJava(21);
    const dir = runDir('registry');
    mkdirSync(dir, { recursive: true });
    return {
      component: 'registry',
      command: java,
      cwd: dir,
      args: [
        '-Xms128m',
        '-Xmx512m',
        `-Dquarkus.http.host=${e.host}`,
        `-Dquarkus.http.port=${e.registryPort}`,
        `-Dquarkus.management.host=${e.host}`,
        `-Dquarkus.management.port=${e.registryManagementPort}`,
        // Schemas survive restarts (ids must keep meaning what Kafka's records were written with).
        '-Dapicurio.storage.kind=sql',
        '-Dapicurio.storage.sql.kind=h2',
        `-Dapicurio.datasource.url=jdbc:h2:file:${join(dir, 'data', 'registry')}`,
        '-Dapicurio.datasource.username=sa',
        '-Dapicurio.datasource.password=sa',
        `-Dholdback.run.dir=${dir}`,
        '-jar',
        join(home, 'quarkus-run.jar'),
      ],
    };
  },
  healthy: (e) => httpOk(`${e.registryUrl}/subjects`),
  async afterStart(e) {
    // Confluent's registry defaults to BACKWARD; Apicurio's ccompat API defaults to NONE.
    const res = await fetch(`${e.registryUrl}/config`, {
      method: 'PUT',
      headers: { 'Content-Type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify({ compatibility: 'BACKWARD' }),
    });
    if (!res.ok)
      throw new Error(`registry refused the default compatibility: ${res.status} ${await res.text()}`);
  },
};

const clickhouse: Component = {
  name: 'clickhouse',
  address: (e) => `${e.clickhouseUrl} (HTTP), ${e.host}:${e.clickhouseTcpPort} (native)`,
  ports: (e) => [
    ['HOLDBACK_CLICKHOUSE_HTTP_PORT', e.clickhouseHttpPort],
    ['HOLDBACK_CLICKHOUSE_TCP_PORT', e.clickhouseTcpPort],
  ],
  startTimeoutSec: 30,
  async prepare(e, log) {
    await ensureDebianPackages({ 'clickhouse-server': 'clickhouse-server' }, log);
    const dir = runDir('clickhouse');
    for (const sub of ['data', 'tmp', 'user_files', 'format_schemas'])
      mkdirSync(join(dir, sub), { recursive: true });
    writeFileSync(
      join(dir, 'users.xml'),
      `<?xml version="1.0"?>
<!-- Written by holdback stack up: one passwordless user reachable only from loopback. -->
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`,
    );
    const config = join(dir, 'config.xml');
    writeFileSync(
      config,
      `<?xml version="1.0"?>
<!-- Written by holdback stack up. -->
<yandex>
  <logger>
    <level>information</level>
    <log>${join(dir, 'clickhouse-server.log')}</log>
    <errorlog>${join(dir, 'clickhouse-server.err.log')}</errorlog>
    <size>100M</size>
    <count>2</count>
  </logger>
  <listen_host>${e.host}</listen_host>
  <http_port>${e.clickhouseHttpPort}</http_port>
  <tcp_port>${e.clickhouseTcpPort}</tcp_port>
  <path>${join(dir, 'data')}/</path>
  <tmp_path>${join(dir, 'tmp')}/</tmp_path>
  <user_files_path>${join(dir, 'user_files')}/</user_files_path>
  <format_schema_path>${join(dir, 'format_schemas')}/</format_schema_path>
  <users_config>${join(dir, 'users.xml')}</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <mlock_executable>false</mlock_executable>
</yandex>
`,
    );
    return { component: 'clickhouse', command: 'clickhouse-server', args: [`--config-file=${config}`] };
  },
  healthy: (e) => httpOk(`${e.clickhouseUrl}/ping`),
};

/** Where Holdback's processes announce their /metrics endpoints for Prometheus (file_sd). */
export function scrapeTargetsDir(): string {
  return join(runDir('prometheus'), 'targets');
}

const prometheus: Component = {
  name: 'prometheus',
  address: (e) => e.prometheusUrl,
  ports: (e) => [['HOLDBACK_PROMETHEUS_PORT', e.prometheusPort]],
  startTimeoutSec: 30,
  async prepare(e, log) {
    await ensureDebianPackages({ prometheus: 'prometheus', promtool: 'prometheus' }, log);
    const dir = runDir('prometheus');
    mkdirSync(scrapeTargetsDir(), { recursive: true });
    mkdirSync(localRulesDir(), { recursive: true });
    const config = join(dir, 'prometheus.yml');
    writeFileSync(config, localPrometheusConfig(e));
    return {
      component: 'prometheus',
      command: 'prometheus',
      args: [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=${e.host}:${e.prometheusPort}`,
        '--web.enable-lifecycle',
        '--storage.tsdb.retention.time=7d',
      ],
    };
  },
  healthy: (e) => httpOk(`${e.prometheusUrl}/-/ready`),
};

/** The rule files Prometheus loads: the same files docker-compose mounts. */
export const RULES_DIR = join(REPO_ROOT, 'dashboards', 'prometheus', 'rules');

/**
 * Extra rule files of this local stack only (empty unless a test or a demo puts a rule there, for
 * example an alert with a threshold of seconds instead of days; then POST /-/reload).
 */
export function localRulesDir(): string {
  return join(runDir('prometheus'), 'rules.d');
}

export function localPrometheusConfig(e: Endpoints): string {
  return [
    '# Written by `holdback stack up`. docker-compose uses dashboards/prometheus/prometheus.yml instead.',
    'global:',
    '  scrape_interval: 2s',
    '  evaluation_interval: 2s',
    'rule_files:',
    `  - ${RULES_DIR}/*.yml`,
    `  - ${localRulesDir()}/*.yml`,
    'alerting:',
    '  alertmanagers:',
    '    - static_configs:',
    `        - targets: ['${e.host}:${e.alertmanagerPort}']`,
    'scrape_configs:',
    '  - job_name: holdback',
    '    file_sd_configs:',
    `      - files: ['${scrapeTargetsDir()}/*.json']`,
    '        refresh_interval: 2s',
    '  - job_name: prometheus',
    '    static_configs:',
    `      - targets: ['${e.host}:${e.prometheusPort}']`,
    '',
  ].join('\n');
}

/** The Alertmanager config of the repo, with its webhook pointed at this machine. */
export const ALERTMANAGER_CONFIG = join(REPO_ROOT, 'dashboards', 'alertmanager', 'alertmanager.yml');
export const ALERT_WEBHOOK_PORT_DEFAULT = 19096;

const alertmanager: Component = {
  name: 'alertmanager',
  address: (e) => e.alertmanagerUrl,
  ports: (e) => [['HOLDBACK_ALERTMANAGER_PORT', e.alertmanagerPort]],
  startTimeoutSec: 30,
  async prepare(e, log) {
    await ensureDebianPackages(
      { 'prometheus-alertmanager': 'prometheus-alertmanager', amtool: 'prometheus-alertmanager' },
      log,
    );
    const dir = runDir('alertmanager');
    mkdirSync(join(dir, 'data'), { recursive: true });
    const config = join(dir, 'alertmanager.yml');
    // The webhook listens on this machine's loopback; HOLDBACK_HOST may move it.
    const text = readFileSync(ALERTMANAGER_CONFIG, 'utf8').replace(
      /http:\/\/127\.0\.0\.1:\d+/g,
      `http://${e.host}:${ALERT_WEBHOOK_PORT_DEFAULT}`,
    );
    writeFileSync(config, text);
    return {
      component: 'alertmanager',
      command: 'prometheus-alertmanager',
      args: [
        `--config.file=${config}`,
        `--storage.path=${join(dir, 'data')}`,
        `--web.listen-address=${e.host}:${e.alertmanagerPort}`,
        '--cluster.listen-address=',
      ],
    };
  },
  healthy: (e) => httpOk(`${e.alertmanagerUrl}/-/ready`),
};

/** In start order. Kafka first: it takes longest to format and elect itself. */
export const COMPONENTS: readonly Component[] = [kafka, registry, clickhouse, prometheus, alertmanager];

export function componentNames(): string[] {
  return COMPONENTS.map((c) => c.name);
}
