/**
 * Where the stack's services listen. One schema for the whole project: `holdback stack up`
 * starts the services on these ports and every client connects to them. Each can be set by an
 * environment variable; an unknown HOLDBACK_* variable or a bad value stops start-up with the
 * variable's name and the reason.
 */
import { z } from 'zod';

const port = z.coerce.number().int().min(1024).max(65535);

/** Every HOLDBACK_* variable the stack and clients read, with its default. */
export const ENDPOINT_ENV = {
  HOLDBACK_HOST: z.string().default('127.0.0.1'),
  HOLDBACK_KAFKA_PORT: port.default(19092),
  HOLDBACK_KAFKA_CONTROLLER_PORT: port.default(19093),
  HOLDBACK_REGISTRY_PORT: port.default(18081),
  HOLDBACK_REGISTRY_MANAGEMENT_PORT: port.default(18082),
  HOLDBACK_CLICKHOUSE_HTTP_PORT: port.default(18123),
  HOLDBACK_CLICKHOUSE_TCP_PORT: port.default(19000),
  HOLDBACK_PROMETHEUS_PORT: port.default(19090),
  HOLDBACK_ALERTMANAGER_PORT: port.default(19095),
  HOLDBACK_PARTITIONS: z.coerce.number().int().min(1).max(256).default(4),
  /** The registry's Confluent-compatible API; Confluent's own registry (docker-compose) serves it at the root. */
  HOLDBACK_REGISTRY_URL: z.url().optional(),
} as const;

export interface Endpoints {
  host: string;
  kafkaBrokers: string[];
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

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Other HOLDBACK_* variables that other modules own (they validate them themselves). */
const OTHER_KNOWN = new Set(['HOLDBACK_DEBUG', 'HOLDBACK_HOME']);

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
      `bad setting ${String(issue.path[0])}=${String(env[String(issue.path[0])])}: ${issue.message}`,
    );
  }
  const c = parsed.data;
  const ports = [
    c.HOLDBACK_KAFKA_PORT,
    c.HOLDBACK_KAFKA_CONTROLLER_PORT,
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
  return {
    host: h,
    kafkaBrokers: [`${h}:${c.HOLDBACK_KAFKA_PORT}`],
    kafkaPort: c.HOLDBACK_KAFKA_PORT,
    kafkaControllerPort: c.HOLDBACK_KAFKA_CONTROLLER_PORT,
    registryUrl: (
      c.HOLDBACK_REGISTRY_URL ?? `http://${h}:${c.HOLDBACK_REGISTRY_PORT}/apis/ccompat/v7`
    ).replace(/\/$/, ''),
    registryPort: c.HOLDBACK_REGISTRY_PORT,
    registryManagementPort: c.HOLDBACK_REGISTRY_MANAGEMENT_PORT,
    clickhouseUrl: `http://${h}:${c.HOLDBACK_CLICKHOUSE_HTTP_PORT}`,
    clickhouseHttpPort: c.HOLDBACK_CLICKHOUSE_HTTP_PORT,
    clickhouseTcpPort: c.HOLDBACK_CLICKHOUSE_TCP_PORT,
    prometheusUrl: `http://${h}:${c.HOLDBACK_PROMETHEUS_PORT}`,
    prometheusPort: c.HOLDBACK_PROMETHEUS_PORT,
    alertmanagerUrl: `http://${h}:${c.HOLDBACK_ALERTMANAGER_PORT}`,
    alertmanagerPort: c.HOLDBACK_ALERTMANAGER_PORT,
    partitions: c.HOLDBACK_PARTITIONS,
  };
}
