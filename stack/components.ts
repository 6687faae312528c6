/**
 * The five real servers of the local stack: how each is installed, configured, started and
 * checked for health with its own protocol. All listen on the configured host (127.0.0.1).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { httpRequestText } from '../connectors/http-request';
import { clusterReplication, createTopicsReady } from '../connectors/kafka-admin';
import { Kafka, logLevel } from 'kafkajs';
import {
  KAFKA_MAX_NODES,
  KAFKA_NODE_PORT_STEP,
  type Endpoints,
  type KafkaNode,
  type KafkaVersion,
} from '../connectors/endpoints';
import { TOPIC_SPECS } from '../schemas/topics';
import {
  ensureApicurio,
  ensureDebianPackages,
  ensureKafka,
  findJava,
  InstallError,
  kafkaMajor,
} from './install';
import { sleep, type Launch } from './proc';
import { readSecretFile, REGISTRY_JWT, SECURE_USERS, securePaths } from './secure';
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

/** One HTTP(S) request of the stack's own (health checks, set-up), with the secure stack's CA when it has one. */
function stackRequest(
  url: string,
  o: { method?: string; body?: string; headers?: Record<string, string>; ca?: string } = {},
): Promise<{ status: number; text: string }> {
  return httpRequestText(url, { ...o, timeoutMs: 2000 });
}

async function httpOk(url: string, o: Parameters<typeof stackRequest>[1] = {}): Promise<boolean> {
  try {
    const res = await stackRequest(url, o);
    return res.status >= 200 && res.status < 300;
  } catch {
    return false;
  }
}

/** The secure stack's CA (PEM) and the Authorization header of its `holdback` user at a service. */
function secureAccess(
  e: Endpoints,
  service: 'registry' | 'clickhouse',
): { ca?: string; headers: Record<string, string> } {
  if (!e.secure) return { headers: {} };
  const p = securePaths();
  const userInfo =
    service === 'registry'
      ? readSecretFile(p.registryUserInfo)
      : `${SECURE_USERS.client}:${readSecretFile(p.clickhousePassword)}`;
  return {
    ca: readFileSync(p.ca, 'utf8'),
    headers: { Authorization: `Basic ${Buffer.from(userInfo).toString('base64')}` },
  };
}

function kafkaClient(e: Endpoints, brokers: string[] = e.kafkaBrokers): Kafka {
  const p = e.secure ? securePaths() : undefined;
  return new Kafka({
    clientId: 'holdback-stack',
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2000,
    retry: { retries: 2 },
    // The secure stack's own set-up and health checks log in as the inter-broker admin.
    ...(p && {
      ssl: { ca: [readFileSync(p.ca, 'utf8')] },
      sasl: {
        mechanism: 'scram-sha-512' as const,
        username: SECURE_USERS.kafkaAdmin,
        password: readSecretFile(p.kafkaAdminPassword),
      },
    }),
  });
}

/** The local stack's Kafka cluster: its id, release and size, fixed when node 1 was formatted. */
interface ClusterRecord {
  clusterId: string;
  version: KafkaVersion;
  nodes: number;
  /** Formatted for the secure stack (SCRAM users, TLS listeners); absent: plain. */
  secure?: boolean;
}

const clusterFile = (): string => join(runDir('kafka'), 'cluster.json');

/** The cluster on this machine, if node 1 was ever formatted. */
export function recordedCluster(): ClusterRecord | undefined {
  const f = clusterFile();
  if (existsSync(f)) return JSON.parse(readFileSync(f, 'utf8')) as ClusterRecord;
  // Data from before cluster.json was written: a single Kafka 3.9.1 node.
  const meta = join(runDir('kafka'), 'data', 'meta.properties');
  const id = existsSync(meta) ? /^cluster\.id=(.+)$/m.exec(readFileSync(meta, 'utf8'))?.[1] : undefined;
  return id ? { clusterId: id.trim(), version: '3.9.1', nodes: 1 } : undefined;
}

/**
 * The cluster this machine's Kafka data belongs to, if it can serve `e`. Data formatted for
 * another size, or for a newer release, is not reused: KRaft's voters and the internal topics'
 * replication are fixed at format time, and a broker cannot read a newer release's metadata.
 */
export function checkCluster(e: Endpoints): ClusterRecord | undefined {
  const have = recordedCluster();
  if (!have) return undefined;
  if ((have.secure ?? false) !== e.secure) {
    throw new InstallError(
      `the Kafka data in ${runDir('kafka')} is a ${have.secure ? 'secure' : 'plain'} cluster, but a ` +
        `${e.secure ? 'secure' : 'plain'} one was asked for (--secure, HOLDBACK_STACK_SECURE). Ask for the ` +
        'same again, or delete its topics and data with `holdback stack down --purge` first.',
    );
  }
  const want = { version: e.kafkaVersion, nodes: e.kafkaNodes.length };
  if (have.version === want.version && have.nodes === want.nodes) return have;
  // Kafka upgrades KRaft data from 3.x in place (its metadata.version stays until raised).
  if (have.nodes === want.nodes && kafkaMajor(have.version) < kafkaMajor(want.version)) {
    const upgraded = { ...have, version: want.version };
    writeFileSync(clusterFile(), `${JSON.stringify(upgraded, null, 2)}\n`);
    return upgraded;
  }
  throw new InstallError(
    `the Kafka data in ${runDir('kafka')} is a ${have.nodes}-node Kafka ${have.version} cluster, ` +
      `but ${want.nodes}-node Kafka ${want.version} was asked for (HOLDBACK_KAFKA_BROKERS, ` +
      `HOLDBACK_KAFKA_VERSION, --brokers). Ask for the same again, or delete its topics and data ` +
      `with \`holdback stack down --purge kafka\` first.`,
  );
}

/** The cluster for `e`, given a new cluster id on first use. */
function clusterFor(e: Endpoints, java: string, cp: string): ClusterRecord {
  const have = checkCluster(e);
  if (have) return have;
  const want = { version: e.kafkaVersion, nodes: e.kafkaNodes.length };
  const id = spawnSync(java, ['-cp', cp, 'kafka.tools.StorageTool', 'random-uuid'], { encoding: 'utf8' });
  const clusterId = id.stdout.trim().split('\n').pop() ?? '';
  if (id.status !== 0 || !/^[A-Za-z0-9_-]{22}$/.test(clusterId)) {
    throw new InstallError(`kafka-storage random-uuid failed: ${id.stderr}`);
  }
  const record = { clusterId, ...want, ...(e.secure && { secure: true }) };
  mkdirSync(runDir('kafka'), { recursive: true });
  writeFileSync(clusterFile(), `${JSON.stringify(record, null, 2)}\n`);
  return record;
}

/** Node n of the cluster: `kafka` for node 1 (the single-node stack's name), `kafka-<n>` after. */
export function kafkaNodeName(n: number): string {
  return n === 1 ? 'kafka' : `kafka-${n}`;
}

/** Log settings for the broker: log4j2 for Kafka 4, log4j 1 (reload4j) for Kafka 3. */
function writeLogConfig(dir: string, version: KafkaVersion): string {
  const quiet = ['kafka.request.logger', 'org.apache.kafka.clients', 'state.change.logger'];
  if (kafkaMajor(version) >= 4) {
    const file = join(dir, 'log4j2.properties');
    writeFileSync(
      file,
      [
        'status = warn',
        'appender.stdout.type = Console',
        'appender.stdout.name = STDOUT',
        'appender.stdout.layout.type = PatternLayout',
        'appender.stdout.layout.pattern = [%d] %p %m (%c)%n',
        'rootLogger.level = INFO',
        'rootLogger.appenderRef.stdout.ref = STDOUT',
        ...quiet.flatMap((name, i) => [`logger.q${i}.name = ${name}`, `logger.q${i}.level = WARN`]),
        '',
      ].join('\n'),
    );
    return `-Dlog4j2.configurationFile=${file}`;
  }
  const file = join(dir, 'log4j.properties');
  writeFileSync(
    file,
    [
      'log4j.rootLogger=INFO, stdout',
      'log4j.appender.stdout=org.apache.log4j.ConsoleAppender',
      'log4j.appender.stdout.layout=org.apache.log4j.PatternLayout',
      'log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n',
      ...quiet.map((name) => `log4j.logger.${name}=WARN`),
      '',
    ].join('\n'),
  );
  return `-Dlog4j.configuration=file:${file}`;
}

/** The broker's settings: every node is broker and controller; replication follows the size. */
export function serverProperties(e: Endpoints, node: KafkaNode, data: string): string {
  const nodes = e.kafkaNodes.length;
  const rf = Math.min(3, nodes);
  const minIsr = Math.min(2, rf);
  const voters = e.kafkaNodes.map((n) => `${n.id}@${e.host}:${n.controllerPort}`).join(',');
  // HOLDBACK_KAFKA_PROXIED_PORT: a listener reached through a fault proxy (network-fault tests).
  const proxied = node.proxied;
  if (e.secure) return secureServerProperties(e, node, data, voters, rf, minIsr);
  return [
    `# Written by \`holdback stack up\`: node ${node.id} of a ${nodes}-node Kafka ${e.kafkaVersion} in KRaft mode (broker + controller).`,
    'process.roles=broker,controller',
    `node.id=${node.id}`,
    `controller.quorum.voters=${voters}`,
    `listeners=PLAINTEXT://${e.host}:${node.port},CONTROLLER://${e.host}:${node.controllerPort}` +
      (proxied ? `,PROXIED://${e.host}:${proxied.listen}` : ''),
    `advertised.listeners=PLAINTEXT://${e.host}:${node.port}` +
      (proxied ? `,PROXIED://${e.host}:${proxied.advertised}` : ''),
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT' +
      (proxied ? ',PROXIED:PLAINTEXT' : ''),
    'inter.broker.listener.name=PLAINTEXT',
    ...commonServerProperties(e, data, rf, minIsr),
    '',
  ].join('\n');
}

/** The settings every node shares whatever its listeners: storage, replication, topics. */
function commonServerProperties(e: Endpoints, data: string, rf: number, minIsr: number): string[] {
  return [
    `log.dirs=${data}`,
    `num.partitions=${e.partitions}`,
    `# Replication factor ${rf} and min ISR ${minIsr} (one node: 1 everywhere, or transactions never start).`,
    `offsets.topic.replication.factor=${rf}`,
    `transaction.state.log.replication.factor=${rf}`,
    `transaction.state.log.min.isr=${minIsr}`,
    `default.replication.factor=${rf}`,
    `min.insync.replicas=${minIsr}`,
    // A replica that fell out of sync must not become leader: it would lose committed records.
    'unclean.leader.election.enable=false',
    'group.initial.rebalance.delay.ms=0',
    'auto.create.topics.enable=false',
    '# Small segments keep compaction of changelogs and compacted outputs visible on a dev box.',
    'log.segment.bytes=67108864',
    // Records are kept whatever their timestamp. The simulator, the demo and replays write
    // event-time timestamps months old; with time retention (168 h by default) a segment is
    // deleted as soon as it rolls, under consumers that have not read it yet: the first retention
    // check, 30 s after a broker starts, took 7 FUNDED loans from under a secure-stack demo.
    'log.retention.ms=-1',
  ];
}

/**
 * The secure stack's broker: clients on SASL_SSL (SCRAM-SHA-256/512, and OAUTHBEARER with Kafka's
 * development validator, which accepts unsigned tokens: production configures the identity
 * provider's JWKS instead) and on SSL with a required client certificate (mTLS); brokers among
 * themselves on SASL_SSL as `admin`. The KRaft controller listener stays plaintext on loopback.
 * The file holds the admin password: it is written mode 0600.
 */
export function secureServerProperties(
  e: Endpoints,
  node: KafkaNode,
  data: string,
  voters: string,
  rf: number,
  minIsr: number,
): string {
  const p = securePaths();
  const admin = readSecretFile(p.kafkaAdminPassword);
  const scram = 'org.apache.kafka.common.security.scram.ScramLoginModule required';
  return [
    `# Written by \`holdback stack up --secure\`: node ${node.id} of a ${e.kafkaNodes.length}-node Kafka ${e.kafkaVersion}, secured.`,
    'process.roles=broker,controller',
    `node.id=${node.id}`,
    `controller.quorum.voters=${voters}`,
    `listeners=SASL_SSL://${e.host}:${node.port},SSL://${e.host}:${node.mtlsPort},CONTROLLER://${e.host}:${node.controllerPort}`,
    `advertised.listeners=SASL_SSL://${e.host}:${node.port},SSL://${e.host}:${node.mtlsPort}`,
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name=SASL_SSL',
    'sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER',
    'sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512',
    `listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=${scram} username="${SECURE_USERS.kafkaAdmin}" password="${admin}";`,
    `listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=${scram};`,
    'listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;',
    'ssl.keystore.type=PEM',
    `ssl.keystore.location=${p.serverKeystore}`,
    'ssl.truststore.type=PEM',
    `ssl.truststore.location=${p.ca}`,
    'listener.name.ssl.ssl.client.auth=required',
    ...commonServerProperties(e, data, rf, minIsr),
    '',
  ].join('\n');
}

/**
 * The SCRAM users a secure node is formatted with (KRaft stores them in its metadata). They are
 * arguments of `kafka-storage format`, so visible in `ps` for the second it runs: acceptable for
 * a local stack on one's own machine; a shared host would add them with kafka-configs
 * --command-config instead.
 */
function scramUsers(e: Endpoints): string[] {
  if (!e.secure) return [];
  const p = securePaths();
  const admin = readSecretFile(p.kafkaAdminPassword);
  const client = readSecretFile(p.kafkaPassword);
  return [
    `SCRAM-SHA-512=[name=${SECURE_USERS.kafkaAdmin},password=${admin}]`,
    `SCRAM-SHA-256=[name=${SECURE_USERS.client},password=${client}]`,
    `SCRAM-SHA-512=[name=${SECURE_USERS.client},password=${client}]`,
  ].flatMap((u) => ['--add-scram', u]);
}

function kafkaNode(node: KafkaNode): Component {
  const name = kafkaNodeName(node.id);
  return {
    name,
    address: (e) =>
      `${e.host}:${node.port} (Kafka ${e.kafkaVersion} KRaft node ${node.id}/${e.kafkaNodes.length}, controller :${node.controllerPort})`,
    ports: () => [
      [
        node.id === 1
          ? 'HOLDBACK_KAFKA_PORT'
          : `HOLDBACK_KAFKA_PORT (+${KAFKA_NODE_PORT_STEP * (node.id - 1)})`,
        node.port,
      ],
      [
        node.id === 1
          ? 'HOLDBACK_KAFKA_CONTROLLER_PORT'
          : `HOLDBACK_KAFKA_CONTROLLER_PORT (+${KAFKA_NODE_PORT_STEP * (node.id - 1)})`,
        node.controllerPort,
      ],
      ...(node.proxied
        ? ([['HOLDBACK_KAFKA_PROXIED_PORT (+1, the proxied listener)', node.proxied.listen]] as Array<
            [string, number]
          >)
        : []),
      ...(node.mtlsPort !== undefined
        ? ([["HOLDBACK_KAFKA_PORT (+2, the secure stack's mTLS listener)", node.mtlsPort]] as Array<
            [string, number]
          >)
        : []),
    ],
    startTimeoutSec: 90,
    async prepare(e, log) {
      const lib = await ensureKafka(e.kafkaVersion, log);
      const java = findJava(17);
      const cp = `${lib}/*`;
      const cluster = clusterFor(e, java, cp);
      const dir = runDir(name);
      const data = join(dir, 'data');
      mkdirSync(data, { recursive: true });
      const props = join(dir, 'server.properties');
      writeFileSync(props, serverProperties(e, node, data), { mode: 0o600 });
      chmodSync(props, 0o600); // also when the file was there before (mode applies to new files only)
      const logConfig = writeLogConfig(dir, e.kafkaVersion);
      if (!existsSync(join(data, 'meta.properties'))) {
        log(`${name}: formatting Kafka ${e.kafkaVersion} storage in ${data}`);
        const fmt = spawnSync(
          java,
          [
            logConfig,
            '-cp',
            cp,
            'kafka.tools.StorageTool',
            'format',
            '-t',
            cluster.clusterId,
            '-c',
            props,
            '-g',
            ...scramUsers(e),
          ],
          { encoding: 'utf8' },
        );
        // Its output is not printed on success: with SCRAM users it lists their salted keys.
        if (fmt.status !== 0) throw new InstallError(`kafka-storage format failed: ${fmt.stderr}`);
      }
      return {
        component: name,
        command: java,
        args: [
          '-Xms256m',
          `-Xmx${e.kafkaNodes.length > 1 ? 512 : 768}m`,
          '-XX:+UseG1GC',
          '-XX:MaxGCPauseMillis=20',
          '-Djava.awt.headless=true',
          logConfig,
          `-Dkafka.logs.dir=${dir}`,
          '-cp',
          cp,
          'kafka.Kafka',
          props,
        ],
      };
    },
    async healthy(e) {
      // Asked of this node alone: it answers, knows a controller, and counts itself a broker.
      const admin = kafkaClient(e, [`${e.host}:${node.port}`]).admin();
      try {
        await admin.connect();
        const cluster = await admin.describeCluster();
        return cluster.controller !== null && cluster.brokers.some((b) => b.nodeId === node.id);
      } catch {
        return false;
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    },
    // Once, after every node is healthy: the topics need all their replicas' brokers.
    ...(node.id === 1 ? { afterStart: warmUpKafka } : {}),
  };
}

/** Retries `call` until it succeeds or 60 s pass (a fresh cluster's coordinators load for a while). */
async function untilReady(what: string, call: () => Promise<void>): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      return await call();
    } catch (err) {
      if (Date.now() > deadline)
        throw new InstallError(`${what} did not answer within 60s: ${(err as Error).message}`);
      await sleep(500);
    }
  }
}

async function warmUpKafka(e: Endpoints, log: Log): Promise<void> {
  await ensureTopics(e, log);
  // Creates __transaction_state and __consumer_offsets now and waits until their coordinators
  // answer, so the first transactional producer or group does not meet a loading coordinator.
  await untilReady('the transaction coordinator', async () => {
    const producer = kafkaClient(e).producer({
      transactionalId: 'holdback-stack-warmup',
      idempotent: true,
      maxInFlightRequests: 1,
    });
    await producer.connect();
    await producer.disconnect();
  });
  await untilReady('the group coordinator', async () => {
    const admin = kafkaClient(e).admin();
    await admin.connect();
    try {
      await admin.fetchOffsets({ groupId: 'holdback-stack-warmup', topics: [TOPIC_SPECS[0]!.name] });
    } finally {
      await admin.disconnect();
    }
  });
}

/** Creates the contract's topics (idempotent); refuses topics whose partition count differs. */
export async function ensureTopics(e: Endpoints, log: Log): Promise<void> {
  const admin = kafkaClient(e).admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = TOPIC_SPECS.filter((t) => !existing.has(t.name));
    // The contract's topics are replicated like the internal ones: min(3, nodes), min ISR 2.
    const { replicationFactor: rf, minInsyncReplicas } = await clusterReplication(admin);
    if (missing.length > 0) {
      await createTopicsReady(
        admin,
        missing.map((t) => ({
          topic: t.name,
          numPartitions: e.partitions,
          replicationFactor: rf,
          configEntries: [
            ...(t.compacted ? [{ name: 'cleanup.policy', value: 'compact' }] : []),
            { name: 'min.insync.replicas', value: String(minInsyncReplicas) },
          ],
        })),
      );
      log(
        `created topics ${missing.map((t) => t.name).join(', ')} with ${e.partitions} partitions ` +
          `and replication factor ${rf} each`,
      );
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
    // Quarkus reads <cwd>/config/application.properties: the secure settings go there, not on
    // the command line where `ps` would show them.
    mkdirSync(join(dir, 'config'), { recursive: true });
    const quarkusConfig = join(dir, 'config', 'application.properties');
    writeFileSync(quarkusConfig, registrySecurity(e), { mode: 0o600 });
    chmodSync(quarkusConfig, 0o600);
    return {
      component: 'registry',
      command: java,
      cwd: dir,
      args: [
        '-Xms128m',
        '-Xmx512m',
        `-Dquarkus.http.host=${e.host}`,
        `-Dquarkus.http.${e.secure ? 'ssl-port' : 'port'}=${e.registryPort}`,
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
  healthy: (e) => httpOk(`${e.registryUrl}/subjects`, secureAccess(e, 'registry')),
  async afterStart(e) {
    // Confluent's registry defaults to BACKWARD; Apicurio's ccompat API defaults to NONE.
    const access = secureAccess(e, 'registry');
    const res = await stackRequest(`${e.registryUrl}/config`, {
      method: 'PUT',
      ca: access.ca,
      headers: { ...access.headers, 'Content-Type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify({ compatibility: 'BACKWARD' }),
    });
    if (res.status !== 200)
      throw new Error(`registry refused the default compatibility: ${res.status} ${res.text}`);
  },
};

/**
 * The registry's security (Apicurio 3 on Quarkus): none on the plain stack. Secured: HTTPS only,
 * with the stack's certificate; HTTP basic auth against one embedded user (`holdback`, its
 * password stored as Quarkus's digest, never in clear); and bearer JWTs signed by the stack's
 * key (checked with its public key, issuer and audience, no identity server needed).
 */
export function registrySecurity(e: Endpoints): string {
  if (!e.secure) return '# Written by `holdback stack up`: the plain stack has no registry security.\n';
  const p = securePaths();
  const [user, password] = ((s) => [s.slice(0, s.indexOf(':')), s.slice(s.indexOf(':') + 1)])(
    readSecretFile(p.registryUserInfo),
  );
  const digest = createHash('sha256').update(`${user}:Quarkus:${password}`).digest('hex');
  const publicKey = readFileSync(p.registryJwtPublicKey, 'utf8').replace(/-----[^-]+-----|\s/g, '');
  return [
    '# Written by `holdback stack up --secure`.',
    'quarkus.http.insecure-requests=disabled',
    `quarkus.http.ssl.certificate.files=${p.serverCert}`,
    `quarkus.http.ssl.certificate.key-files=${p.serverKey}`,
    'quarkus.http.auth.basic=true',
    'quarkus.security.users.embedded.algorithm=digest-sha-256',
    `quarkus.security.users.embedded.users.${user}=${digest}`,
    `quarkus.security.users.embedded.roles.${user}=sr-admin`,
    'quarkus.oidc.tenant-enabled=true',
    `quarkus.oidc.public-key=${publicKey}`,
    `quarkus.oidc.token.issuer=${REGISTRY_JWT.issuer}`,
    `quarkus.oidc.token.audience=${REGISTRY_JWT.audience}`,
    '',
  ].join('\n');
}

const clickhouse: Component = {
  name: 'clickhouse',
  address: (e) =>
    `${e.clickhouseUrl} (${e.secure ? 'HTTPS' : 'HTTP'}), ${e.host}:${e.clickhouseTcpPort} (native${e.secure ? ', TLS' : ''})`,
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
    // Secured: one user, holdback, with a password (stored as its SHA-256), and no `default` user
    // at all, so a request without credentials fails ("Unknown user default").
    const user = e.secure
      ? `<${SECURE_USERS.client}>
      <password_sha256_hex>${createHash('sha256').update(readSecretFile(securePaths().clickhousePassword)).digest('hex')}</password_sha256_hex>`
      : `<default>
      <password></password>`;
    writeFileSync(
      join(dir, 'users.xml'),
      `<?xml version="1.0"?>
<!-- Written by holdback stack up: ${e.secure ? 'one user with a password' : 'one passwordless user'}, reachable only from loopback. -->
<yandex>
  <profiles><default><max_memory_usage>4000000000</max_memory_usage></default></profiles>
  <users>
    ${user}
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </${e.secure ? SECURE_USERS.client : 'default'}>
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
${e.secure ? clickhouseTls(e) : `  <http_port>${e.clickhouseHttpPort}</http_port>\n  <tcp_port>${e.clickhouseTcpPort}</tcp_port>`}
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
  // Secured, /ping would answer without credentials: ask a query, which needs them.
  healthy: (e) =>
    e.secure
      ? httpOk(`${e.clickhouseUrl}/?query=SELECT%201`, secureAccess(e, 'clickhouse'))
      : httpOk(`${e.clickhouseUrl}/ping`),
};

/** ClickHouse 18.16 over TLS only: HTTPS and the secure native port, TLS 1.2 and later. */
function clickhouseTls(e: Endpoints): string {
  const p = securePaths();
  return `  <https_port>${e.clickhouseHttpPort}</https_port>
  <tcp_port_secure>${e.clickhouseTcpPort}</tcp_port_secure>
  <openSSL>
    <server>
      <certificateFile>${p.serverCert}</certificateFile>
      <privateKeyFile>${p.serverKey}</privateKeyFile>
      <verificationMode>none</verificationMode>
      <loadDefaultCAFile>false</loadDefaultCAFile>
      <cacheSessions>true</cacheSessions>
      <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols>
      <preferServerCiphers>true</preferServerCiphers>
    </server>
  </openSSL>`;
}

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
    // Secured, the processes' /metrics need the bearer token (HOLDBACK_METRICS_TOKEN_FILE).
    ...(e.secure ? ['    authorization:', `      credentials_file: ${securePaths().metricsToken}`] : []),
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
export function components(e: Endpoints): Component[] {
  return [...e.kafkaNodes.map(kafkaNode), registry, clickhouse, prometheus, alertmanager];
}

/** Every component name, whatever the cluster's size (`down` and `logs` reach them all). */
export function componentNames(): string[] {
  const nodes = Array.from({ length: KAFKA_MAX_NODES }, (_, i) => kafkaNodeName(i + 1));
  return [...nodes, registry.name, clickhouse.name, prometheus.name, alertmanager.name];
}
