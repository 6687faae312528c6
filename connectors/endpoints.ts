/**
 * Where the stack's services listen. One schema for the whole project: `holdback stack up`
 * starts the services on these ports and every client connects to them. Each can be set by an
 * environment variable; an unknown HOLDBACK_* variable or a bad value stops start-up with the
 * variable's name and the reason.
 */
import { z } from 'zod';
import { maskUrl } from './secrets';
import { CONNECTION_VARIABLES } from './connection-settings';

const port = z.coerce.number().int().min(1024).max(65535);

/** The Kafka releases the local stack can run, the default first (docs/stack.md). */
export const KAFKA_VERSIONS = ['4.4.0', '3.9.1'] as const;
export type KafkaVersion = (typeof KAFKA_VERSIONS)[number];
export const KAFKA_MAX_NODES = 3;
/** Node n's ports are the first node's plus this times (n - 1). */
export const KAFKA_NODE_PORT_STEP = 100;

/** Every HOLDBACK_* variable the stack and clients read, with its default. */
export const ENDPOINT_ENV = {
  HOLDBACK_HOST: z.string().default('127.0.0.1'),
  HOLDBACK_KAFKA_PORT: port.default(19092),
  HOLDBACK_KAFKA_CONTROLLER_PORT: port.default(19093),
  /**
   * For network-fault tests: each node also listens on HOLDBACK_KAFKA_PROXIED_PORT + 1 and
   * advertises that listener as HOLDBACK_KAFKA_PROXIED_PORT (+100 per node), where a fault proxy
   * (Toxiproxy) forwards to it. A client bootstrapping from the advertised ports reaches every
   * broker only through the proxy, so the proxy can cut it off; other clients are untouched.
   */
  HOLDBACK_KAFKA_PROXIED_PORT: port.optional(),
  HOLDBACK_REGISTRY_PORT: port.default(18081),
  HOLDBACK_REGISTRY_MANAGEMENT_PORT: port.default(18082),
  HOLDBACK_CLICKHOUSE_HTTP_PORT: port.default(18123),
  HOLDBACK_CLICKHOUSE_TCP_PORT: port.default(19000),
  HOLDBACK_PROMETHEUS_PORT: port.default(19090),
  HOLDBACK_ALERTMANAGER_PORT: port.default(19095),
  HOLDBACK_PARTITIONS: z.coerce.number().int().min(1).max(256).default(4),
  /**
   * Kafka nodes of the local stack (each broker and controller): 1 for speed, 3 for a replicated
   * cluster. Node n listens on HOLDBACK_KAFKA_PORT + 100*(n-1) (and its controller likewise).
   */
  HOLDBACK_KAFKA_BROKERS: z.coerce.number().int().min(1).max(KAFKA_MAX_NODES).default(1),
  /** The Kafka release the local stack runs. */
  HOLDBACK_KAFKA_VERSION: z.enum(KAFKA_VERSIONS).default(KAFKA_VERSIONS[0]),
  /** The registry's Confluent-compatible API; Confluent's own registry (docker-compose) serves it at the root. */
  HOLDBACK_REGISTRY_URL: z.url().optional(),
  /**
   * The local stack secured (`holdback stack up --secure`): Kafka over SASL_SSL (SCRAM,
   * OAUTHBEARER) and mTLS, the registry and ClickHouse over HTTPS with passwords (stack/secure.ts).
   */
  HOLDBACK_STACK_SECURE: z.stringbool().default(false),
} as const;

export interface Endpoints {
  host: string;
  /** HOLDBACK_STACK_SECURE: the local stack runs secured (TLS, SASL, passwords). */
  secure: boolean;
  /** Every node's broker address (a client may bootstrap from any). */
  kafkaBrokers: string[];
  /** The local stack's Kafka nodes, node 1 first. */
  kafkaNodes: KafkaNode[];
  kafkaVersion: KafkaVersion;
  kafkaPort: number;
  kafkaControllerPort: number;
  registryUrl: string;
  registryPort: number;
  registryManagementPort: number;
  clickhouseUrl: string;
  clickhouseHttpPort: number;
  clickhouseTcpPort: number;
  prometheusUrl: string;
  prometheusPort: number;
  alertmanagerUrl: string;
  alertmanagerPort: number;
  partitions: number;
}

export interface KafkaNode {
  id: number;
  port: number;
  controllerPort: number;
  /** HOLDBACK_KAFKA_PROXIED_PORT: the proxied listener, as advertised (a proxy's port) and as bound. */
  proxied?: { advertised: number; listen: number };
  /** Secure stack only: the SSL listener that requires a client certificate (mTLS), port + 2. */
  mtlsPort?: number;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Other HOLDBACK_* variables that other modules own (they validate them themselves). */
const OTHER_KNOWN = new Set(['HOLDBACK_DEBUG', 'HOLDBACK_HOME', ...CONNECTION_VARIABLES]);

export function loadEndpoints(
  env: NodeJS.ProcessEnv = process.env,
  extraKnown: Iterable<string> = [],
): Endpoints {
  const known = new Set([...Object.keys(ENDPOINT_ENV), ...OTHER_KNOWN, ...extraKnown]);
  const unknown = Object.keys(env).filter((k) => k.startsWith('HOLDBACK_') && !known.has(k));
  if (unknown.length > 0) {
    throw new ConfigError(`unknown setting ${unknown.join(', ')}: known are ${[...known].sort().join(', ')}`);
  }
  const parsed = z.object(ENDPOINT_ENV).safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(
      `bad setting ${String(issue.path[0])}=${maskUrl(String(env[String(issue.path[0])]))}: ${issue.message}`,
    );
  }
  const c = parsed.data;
  const kafkaNodes = Array.from({ length: c.HOLDBACK_KAFKA_BROKERS }, (_, i) => ({
    id: i + 1,
    port: c.HOLDBACK_KAFKA_PORT + KAFKA_NODE_PORT_STEP * i,
    controllerPort: c.HOLDBACK_KAFKA_CONTROLLER_PORT + KAFKA_NODE_PORT_STEP * i,
    ...(c.HOLDBACK_STACK_SECURE && { mtlsPort: c.HOLDBACK_KAFKA_PORT + 2 + KAFKA_NODE_PORT_STEP * i }),
    ...(c.HOLDBACK_KAFKA_PROXIED_PORT !== undefined && {
      proxied: {
        advertised: c.HOLDBACK_KAFKA_PROXIED_PORT + KAFKA_NODE_PORT_STEP * i,
        listen: c.HOLDBACK_KAFKA_PROXIED_PORT + 1 + KAFKA_NODE_PORT_STEP * i,
      },
    }),
  }));
  const kafkaPorts = kafkaNodes.flatMap((n) => [
    n.port,
    n.controllerPort,
    ...(n.proxied ? [n.proxied.advertised, n.proxied.listen] : []),
    ...(n.mtlsPort !== undefined ? [n.mtlsPort] : []),
  ]);
  if (c.HOLDBACK_STACK_SECURE && c.HOLDBACK_KAFKA_PROXIED_PORT !== undefined)
    throw new ConfigError('HOLDBACK_KAFKA_PROXIED_PORT is for the plain stack, not HOLDBACK_STACK_SECURE');
  if (kafkaPorts.some((p) => p > 65535))
    throw new ConfigError(`Kafka node ports run past 65535: ${kafkaPorts.join(', ')}`);
  const ports = [
    ...kafkaPorts,
    c.HOLDBACK_REGISTRY_PORT,
    c.HOLDBACK_REGISTRY_MANAGEMENT_PORT,
    c.HOLDBACK_CLICKHOUSE_HTTP_PORT,
    c.HOLDBACK_CLICKHOUSE_TCP_PORT,
    c.HOLDBACK_PROMETHEUS_PORT,
    c.HOLDBACK_ALERTMANAGER_PORT,
  ];
  if (new Set(ports).size !== ports.length)
    throw new ConfigError(`two services share a port: ${ports.join(', ')}`);
  const h = c.HOLDBACK_HOST;
  const scheme = c.HOLDBACK_STACK_SECURE ? 'https' : 'http';
  return {
    host: h,
    secure: c.HOLDBACK_STACK_SECURE,
    kafkaBrokers: kafkaNodes.map((n) => `${h}:${n.port}`),
    kafkaNodes,
    kafkaVersion: c.HOLDBACK_KAFKA_VERSION,
    kafkaPort: c.HOLDBACK_KAFKA_PORT,
    kafkaControllerPort: c.HOLDBACK_KAFKA_CONTROLLER_PORT,
    registryUrl: (
      c.HOLDBACK_REGISTRY_URL ?? `${scheme}://${h}:${c.HOLDBACK_REGISTRY_PORT}/apis/ccompat/v7`
    ).replace(/\/$/, ''),
    registryPort: c.HOLDBACK_REGISTRY_PORT,
    registryManagementPort: c.HOLDBACK_REGISTRY_MANAGEMENT_PORT,
    clickhouseUrl: `${scheme}://${h}:${c.HOLDBACK_CLICKHOUSE_HTTP_PORT}`,
    clickhouseHttpPort: c.HOLDBACK_CLICKHOUSE_HTTP_PORT,
    clickhouseTcpPort: c.HOLDBACK_CLICKHOUSE_TCP_PORT,
    prometheusUrl: `http://${h}:${c.HOLDBACK_PROMETHEUS_PORT}`,
    prometheusPort: c.HOLDBACK_PROMETHEUS_PORT,
    alertmanagerUrl: `http://${h}:${c.HOLDBACK_ALERTMANAGER_PORT}`,
    alertmanagerPort: c.HOLDBACK_ALERTMANAGER_PORT,
    partitions: c.HOLDBACK_PARTITIONS,
  };
}
