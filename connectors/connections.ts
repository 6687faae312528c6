/**
 * How every command reaches the services it uses (12-factor): Kafka's bootstrap servers and
 * security, the schema registry, ClickHouse, and where the process's own HTTP endpoint binds.
 * All come from the environment, and default to the local stack (connectors/endpoints.ts). Each
 * secret may come from a file instead: <NAME>_FILE holds the path, as the official images do.
 * A bad, unreadable or contradictory setting stops start-up with ConfigError naming the variable
 * and the reason, never the secret. Every secret loaded is registered for redaction
 * (connectors/secrets.ts). docs/deploy.md lists every setting with an example.
 */
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { z } from 'zod';
import { ConfigError, loadEndpoints, type Endpoints } from './endpoints';
import { SASL_MECHANISMS, SECURITY_PROTOCOLS, type SecurityProtocol } from './connection-settings';
import { maskUrl, registerSecret } from './secrets';

export {
  CONNECTION_ENV,
  CONNECTION_VARIABLES,
  SASL_MECHANISMS,
  SECRET_SETTINGS,
  SECURITY_PROTOCOLS,
  type SaslMechanism,
  type SecurityProtocol,
} from './connection-settings';

export interface TlsSettings {
  /** PEM text of the CA bundle; undefined: the system's CAs. */
  ca?: string;
  /** mTLS: the client certificate and key (PEM text). */
  cert?: string;
  key?: string;
  keyPassword?: string;
}

export type SaslSettings =
  | { mechanism: 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512'; username: string; password: string }
  | {
      mechanism: 'OAUTHBEARER';
      /** A fresh token: re-reads the token file or runs the command each time. */
      token: () => string;
      /** Where it comes from, for messages. */
      source: string;
    };

export interface KafkaConnection {
  brokers: string[];
  securityProtocol: SecurityProtocol;
  /** Set for SSL and SASL_SSL. */
  tls?: TlsSettings;
  /** Set for SASL_PLAINTEXT and SASL_SSL. */
  sasl?: SaslSettings;
}

export type HttpAuth =
  { kind: 'basic'; username: string; password: string } | { kind: 'bearer'; token: string };

export interface RegistryConnection {
  /** Without credentials: safe to print. */
  url: string;
  auth?: HttpAuth;
  /** Which setting the credentials came from, for messages. */
  authSetting?: string;
  ca?: string;
}

export interface ClickHouseConnection {
  url: string;
  database: string;
  username: string;
  password: string;
  ca?: string;
}

export interface MetricsBinding {
  host: string;
  port: number;
  token?: string;
}

export interface Connections {
  kafka: KafkaConnection;
  registry: RegistryConnection;
  clickhouse: ClickHouseConnection;
  metrics: MetricsBinding;
  /** The local stack's endpoints the defaults came from. */
  endpoints: Endpoints;
}

type Env = NodeJS.ProcessEnv;

function nonEmpty(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

/** A secret from NAME or the file NAME_FILE (one, not both); registered for redaction. */
export function readSecret(env: Env, name: string): string | undefined {
  const direct = env[name];
  const file = nonEmpty(env, `${name}_FILE`);
  if (direct !== undefined && file !== undefined)
    throw new ConfigError(`${name} and ${name}_FILE are both set: keep one`);
  let value = direct;
  if (file !== undefined) value = readSettingFile(`${name}_FILE`, file).replace(/\r?\n$/, '');
  if (value === undefined) return undefined;
  if (value === '') throw new ConfigError(`${name}${file !== undefined ? '_FILE' : ''} is empty`);
  registerSecret(value);
  return value;
}

/** A file a setting names, or a ConfigError naming the setting and the path (never the content). */
function readSettingFile(setting: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(`${setting}=${path} cannot be read (${code})`);
  }
}

/** The file each PEM text was read from (see `pemFile`). */
const pemFiles = new Map<string, string>();

/**
 * The file a PEM text came from, if it was read from one. librdkafka then reads the file itself
 * (ssl.ca.location): its ssl.ca.pem parser reads certificates until one fails and can leave that
 * failure on the calling thread's OpenSSL error queue, which node's TLS (the same OpenSSL) then
 * reported as a kafkajs connection error ("PEM routines: no start line") once in a test run.
 */
export function pemFile(text: string): string | undefined {
  return pemFiles.get(text);
}

/** A PEM file a setting names, checked to hold what it should. */
function readPem(env: Env, name: string, what: RegExp, expected: string): string | undefined {
  const path = nonEmpty(env, name);
  if (path === undefined) return undefined;
  const text = readSettingFile(name, path);
  if (!what.test(text)) throw new ConfigError(`${name}=${path} does not hold ${expected}`);
  pemFiles.set(text, path);
  return text;
}

const CERT = /-----BEGIN CERTIFICATE-----/;
const KEY = /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/;

function oneOf<T extends string>(env: Env, name: string, values: readonly T[], fallback: T): T {
  const raw = nonEmpty(env, name);
  if (raw === undefined) return fallback;
  const found = values.find((v) => v === raw.toUpperCase());
  if (!found) throw new ConfigError(`bad setting ${name}=${raw}: one of ${values.join(', ')}`);
  return found;
}

export function loadKafkaConnection(env: Env, endpoints: Endpoints): KafkaConnection {
  const servers = nonEmpty(env, 'HOLDBACK_KAFKA_BOOTSTRAP_SERVERS');
  const brokers = servers ? servers.split(',').map((s) => s.trim()) : endpoints.kafkaBrokers;
  for (const b of brokers) {
    if (!/^[A-Za-z0-9.-]+:\d{1,5}$/.test(b) && !/^\[[0-9a-fA-F:]+\]:\d{1,5}$/.test(b))
      throw new ConfigError(`bad setting HOLDBACK_KAFKA_BOOTSTRAP_SERVERS: '${b}' is not host:port`);
  }
  const protocol = oneOf(env, 'HOLDBACK_KAFKA_SECURITY_PROTOCOL', SECURITY_PROTOCOLS, 'PLAINTEXT');
  const usesTls = protocol === 'SSL' || protocol === 'SASL_SSL';
  const usesSasl = protocol.startsWith('SASL_');

  const tlsVars = [
    'HOLDBACK_KAFKA_SSL_CA_LOCATION',
    'HOLDBACK_KAFKA_SSL_CERTIFICATE_LOCATION',
    'HOLDBACK_KAFKA_SSL_KEY_LOCATION',
    'HOLDBACK_KAFKA_SSL_KEY_PASSWORD',
    'HOLDBACK_KAFKA_SSL_KEY_PASSWORD_FILE',
  ];
  const saslVars = [
    'HOLDBACK_KAFKA_SASL_MECHANISM',
    'HOLDBACK_KAFKA_SASL_USERNAME',
    'HOLDBACK_KAFKA_SASL_PASSWORD',
    'HOLDBACK_KAFKA_SASL_PASSWORD_FILE',
    'HOLDBACK_KAFKA_SASL_OAUTHBEARER_TOKEN',
    'HOLDBACK_KAFKA_SASL_OAUTHBEARER_TOKEN_FILE',
    'HOLDBACK_KAFKA_SASL_OAUTHBEARER_TOKEN_COMMAND',
  ];
  // A setting the protocol would ignore is a mistake: say so rather than connect without it.
  const stray = (vars: string[]): string | undefined => vars.find((v) => env[v] !== undefined);
  if (!usesTls && stray(tlsVars))
    throw new ConfigError(
      `${stray(tlsVars)} is set but HOLDBACK_KAFKA_SECURITY_PROTOCOL=${protocol} does not use TLS: use SSL or SASL_SSL`,
    );
  if (!usesSasl && stray(saslVars))
    throw new ConfigError(
      `${stray(saslVars)} is set but HOLDBACK_KAFKA_SECURITY_PROTOCOL=${protocol} does not use SASL: use SASL_SSL or SASL_PLAINTEXT`,
    );

  const connection: KafkaConnection = { brokers, securityProtocol: protocol };
  if (usesTls) {
    const cert = readPem(env, 'HOLDBACK_KAFKA_SSL_CERTIFICATE_LOCATION', CERT, 'a PEM certificate');
    const key = readPem(env, 'HOLDBACK_KAFKA_SSL_KEY_LOCATION', KEY, 'a PEM private key');
    if ((cert === undefined) !== (key === undefined))
      throw new ConfigError(
        'mTLS needs both HOLDBACK_KAFKA_SSL_CERTIFICATE_LOCATION and HOLDBACK_KAFKA_SSL_KEY_LOCATION',
      );
    const keyPassword = readSecret(env, 'HOLDBACK_KAFKA_SSL_KEY_PASSWORD');
    if (keyPassword !== undefined && key === undefined)
      throw new ConfigError('HOLDBACK_KAFKA_SSL_KEY_PASSWORD is set without HOLDBACK_KAFKA_SSL_KEY_LOCATION');
    connection.tls = {
      ca: readPem(env, 'HOLDBACK_KAFKA_SSL_CA_LOCATION', CERT, 'a PEM certificate'),
      ...(cert !== undefined && { cert, key }),
      ...(keyPassword !== undefined && { keyPassword }),
    };
  }
  if (usesSasl) connection.sasl = loadSasl(env);
  return connection;
}

function loadSasl(env: Env): SaslSettings {
  const raw = nonEmpty(env, 'HOLDBACK_KAFKA_SASL_MECHANISM');
  if (raw === undefined)
    throw new ConfigError(
      `HOLDBACK_KAFKA_SECURITY_PROTOCOL=${env['HOLDBACK_KAFKA_SECURITY_PROTOCOL']} needs HOLDBACK_KAFKA_SASL_MECHANISM (${SASL_MECHANISMS.join(', ')})`,
    );
  const mechanism = oneOf(env, 'HOLDBACK_KAFKA_SASL_MECHANISM', SASL_MECHANISMS, 'PLAIN');
  if (mechanism === 'OAUTHBEARER') {
    const command = nonEmpty(env, 'HOLDBACK_KAFKA_SASL_OAUTHBEARER_TOKEN_COMMAND');
    const file = nonEmpty(env, 'HOLDBACK_KAFKA_SASL_OAUTHBEARER_TOKEN_FILE');
    const direct = env['HOLDBACK_KAFKA_SASL_OAUTHBEARER_TOKEN'];
    const given = [command, file, direct].filter((v) => v !== undefined).length;
    if (given !== 1)
      throw new ConfigError(
        'SASL OAUTHBEARER needs exactly one of HOLDBACK_KAFKA_SASL_OAUTHBEARER_TOKEN, _TOKEN_FILE, _TOKEN_COMMAND',
      );
    if (env['HOLDBACK_KAFKA_SASL_USERNAME'] !== undefined)
      throw new ConfigError('HOLDBACK_KAFKA_SASL_USERNAME is for PLAIN and SCRAM, not OAUTHBEARER');
    const token = (): string => {
      const value = command
        ? runTokenCommand(command)
        : (readSecret(env, 'HOLDBACK_KAFKA_SASL_OAUTHBEARER_TOKEN') ?? '');
      registerSecret(value);
      return value;
    };
    // Read once now: a missing file or failing command stops start-up, not the first connection.
    token();
    return {
      mechanism,
      token,
      source: command
        ? 'HOLDBACK_KAFKA_SASL_OAUTHBEARER_TOKEN_COMMAND'
        : file
          ? 'HOLDBACK_KAFKA_SASL_OAUTHBEARER_TOKEN_FILE'
          : 'HOLDBACK_KAFKA_SASL_OAUTHBEARER_TOKEN',
    };
  }
  const username = nonEmpty(env, 'HOLDBACK_KAFKA_SASL_USERNAME');
  const password = readSecret(env, 'HOLDBACK_KAFKA_SASL_PASSWORD');
  if (username === undefined || password === undefined)
    throw new ConfigError(
      `SASL ${mechanism} needs HOLDBACK_KAFKA_SASL_USERNAME and HOLDBACK_KAFKA_SASL_PASSWORD (or _FILE)`,
    );
  return { mechanism, username, password };
}

function runTokenCommand(command: string): string {
  try {
    const out = execFileSync('/bin/sh', ['-c', command], {
      encoding: 'utf8',
      timeout: 10_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim();
    if (out === '') throw new Error('it printed nothing');
    return out;
  } catch (e) {
    // Its stderr may say why; its stdout (a token) is never quoted.
    const stderr = (e as { stderr?: string }).stderr?.trim();
    throw new ConfigError(
      `HOLDBACK_KAFKA_SASL_OAUTHBEARER_TOKEN_COMMAND failed: ${stderr || (e as Error).message}`,
    );
  }
}

/** An http(s) URL a setting holds; a bad one is refused with its password masked. */
function httpUrl(setting: string, raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`bad setting ${setting}=${maskUrl(raw)}: not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new ConfigError(`bad setting ${setting}: ${url.protocol} is not http or https`);
  return url;
}

export function loadRegistryConnection(env: Env, endpoints: Endpoints): RegistryConnection {
  const url = httpUrl('HOLDBACK_REGISTRY_URL', endpoints.registryUrl);
  let fromUrl: HttpAuth | undefined;
  // Confluent's basic.auth.credentials.source=URL: credentials in the URL become basic auth.
  if (url.username !== '' || url.password !== '') {
    fromUrl = {
      kind: 'basic',
      username: decodeURIComponent(url.username),
      password: decodeURIComponent(url.password),
    };
    registerSecret(fromUrl.password);
    url.username = '';
    url.password = '';
  }
  const userInfo = readSecret(env, 'HOLDBACK_REGISTRY_BASIC_AUTH_USER_INFO');
  const bearer = readSecret(env, 'HOLDBACK_REGISTRY_BEARER_TOKEN');
  const sources = [
    fromUrl && 'credentials in HOLDBACK_REGISTRY_URL',
    userInfo !== undefined && 'HOLDBACK_REGISTRY_BASIC_AUTH_USER_INFO',
    bearer !== undefined && 'HOLDBACK_REGISTRY_BEARER_TOKEN',
  ].filter((s): s is string => typeof s === 'string');
  if (sources.length > 1)
    throw new ConfigError(`the registry's credentials are given twice (${sources.join(', ')}): keep one`);
  let auth = fromUrl;
  if (userInfo !== undefined) {
    const colon = userInfo.indexOf(':');
    if (colon <= 0) throw new ConfigError("HOLDBACK_REGISTRY_BASIC_AUTH_USER_INFO must be 'user:password'");
    auth = { kind: 'basic', username: userInfo.slice(0, colon), password: userInfo.slice(colon + 1) };
    registerSecret(auth.password);
  }
  if (bearer !== undefined) auth = { kind: 'bearer', token: bearer };
  const ca = readPem(env, 'HOLDBACK_REGISTRY_SSL_CA_LOCATION', CERT, 'a PEM certificate');
  if (ca !== undefined && url.protocol !== 'https:')
    throw new ConfigError('HOLDBACK_REGISTRY_SSL_CA_LOCATION is set but HOLDBACK_REGISTRY_URL is not https');
  return {
    url: url.toString().replace(/\/+$/, ''),
    ...(auth && { auth, authSetting: sources[0] }),
    ...(ca !== undefined && { ca }),
  };
}

export function loadClickHouseConnection(env: Env, endpoints: Endpoints): ClickHouseConnection {
  const url = httpUrl(
    'HOLDBACK_CLICKHOUSE_URL',
    nonEmpty(env, 'HOLDBACK_CLICKHOUSE_URL') ?? endpoints.clickhouseUrl,
  );
  if (url.username !== '' || url.password !== '')
    throw new ConfigError(
      'HOLDBACK_CLICKHOUSE_URL carries credentials: use HOLDBACK_CLICKHOUSE_USER and HOLDBACK_CLICKHOUSE_PASSWORD(_FILE)',
    );
  const database = nonEmpty(env, 'HOLDBACK_CLICKHOUSE_DATABASE') ?? 'holdback';
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,100}$/.test(database))
    throw new ConfigError(`bad setting HOLDBACK_CLICKHOUSE_DATABASE=${database}: not a database name`);
  const ca = readPem(env, 'HOLDBACK_CLICKHOUSE_SSL_CA_LOCATION', CERT, 'a PEM certificate');
  if (ca !== undefined && url.protocol !== 'https:')
    throw new ConfigError(
      'HOLDBACK_CLICKHOUSE_SSL_CA_LOCATION is set but HOLDBACK_CLICKHOUSE_URL is not https',
    );
  return {
    url: url.toString().replace(/\/+$/, ''),
    database,
    username: nonEmpty(env, 'HOLDBACK_CLICKHOUSE_USER') ?? 'default',
    password: readSecret(env, 'HOLDBACK_CLICKHOUSE_PASSWORD') ?? '',
    ...(ca !== undefined && { ca }),
  };
}

/** SchemaRegistryClient's options for a connection (url, credentials, CA). */
export function registryOptions(c: RegistryConnection): {
  url: string;
  auth?: HttpAuth;
  authSetting?: string;
  ca?: string;
} {
  return c;
}

/** @clickhouse/client's options for a connection (url, user, password, CA). */
export function clickhouseClientOptions(c: ClickHouseConnection): {
  url: string;
  username: string;
  password: string;
  tls?: { ca_cert: Buffer };
} {
  return {
    url: c.url,
    username: c.username,
    password: c.password,
    ...(c.ca !== undefined && { tls: { ca_cert: Buffer.from(c.ca) } }),
  };
}

export function loadMetricsBinding(env: Env): MetricsBinding {
  const host = nonEmpty(env, 'HOLDBACK_METRICS_HOST') ?? '127.0.0.1';
  const port = z.coerce
    .number()
    .int()
    .min(0)
    .max(65535)
    .safeParse(env['HOLDBACK_METRICS_PORT'] ?? 0);
  if (!port.success)
    throw new ConfigError(
      `bad setting HOLDBACK_METRICS_PORT=${env['HOLDBACK_METRICS_PORT']}: a port, 0-65535`,
    );
  const token = readSecret(env, 'HOLDBACK_METRICS_TOKEN');
  return { host, port: port.data, ...(token !== undefined && { token }) };
}

/** Every connection setting, checked; the first problem stops with ConfigError. */
export function loadConnections(env: Env = process.env, extraKnown: Iterable<string> = []): Connections {
  const endpoints = loadEndpoints(env, extraKnown);
  return {
    kafka: loadKafkaConnection(env, endpoints),
    registry: loadRegistryConnection(env, endpoints),
    clickhouse: loadClickHouseConnection(env, endpoints),
    metrics: loadMetricsBinding(env),
    endpoints,
  };
}

/** What the settings say, fit for a log line: no secret, URLs masked. */
export function describeConnections(c: Connections): Record<string, unknown> {
  return {
    kafka: {
      bootstrapServers: c.kafka.brokers.join(','),
      securityProtocol: c.kafka.securityProtocol,
      ...(c.kafka.tls && {
        tls: { customCa: c.kafka.tls.ca !== undefined, clientCertificate: !!c.kafka.tls.cert },
      }),
      ...(c.kafka.sasl && {
        sasl:
          c.kafka.sasl.mechanism === 'OAUTHBEARER'
            ? { mechanism: 'OAUTHBEARER', token: c.kafka.sasl.source }
            : { mechanism: c.kafka.sasl.mechanism, username: c.kafka.sasl.username },
      }),
    },
    registry: { url: c.registry.url, auth: c.registry.auth?.kind ?? 'none', customCa: !!c.registry.ca },
    clickhouse: {
      url: c.clickhouse.url,
      database: c.clickhouse.database,
      user: c.clickhouse.username,
      customCa: !!c.clickhouse.ca,
    },
  };
}
