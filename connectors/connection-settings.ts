/**
 * The names of the connection settings (connectors/connections.ts reads them), in a module of
 * their own so that connectors/endpoints.ts can know them without importing their reader.
 */
export const SECURITY_PROTOCOLS = ['PLAINTEXT', 'SSL', 'SASL_PLAINTEXT', 'SASL_SSL'] as const;
export type SecurityProtocol = (typeof SECURITY_PROTOCOLS)[number];
export const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512', 'OAUTHBEARER'] as const;
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

/** The connection settings, by variable, with what each means (docs/deploy.md repeats them). */
export const CONNECTION_ENV = {
  HOLDBACK_KAFKA_BOOTSTRAP_SERVERS: 'host:port[,host:port...] (default: the local stack)',
  HOLDBACK_KAFKA_SECURITY_PROTOCOL: `${SECURITY_PROTOCOLS.join('|')} (default PLAINTEXT)`,
  HOLDBACK_KAFKA_SSL_CA_LOCATION: 'PEM file of the CA(s) that signed the brokers (default: the system CAs)',
  HOLDBACK_KAFKA_SSL_CERTIFICATE_LOCATION: 'PEM client certificate (mTLS)',
  HOLDBACK_KAFKA_SSL_KEY_LOCATION: 'PEM private key of the client certificate (mTLS)',
  HOLDBACK_KAFKA_SSL_KEY_PASSWORD: 'secret: the private key password, if it is encrypted',
  HOLDBACK_KAFKA_SASL_MECHANISM: `${SASL_MECHANISMS.join('|')}`,
  HOLDBACK_KAFKA_SASL_USERNAME: 'SASL user (PLAIN, SCRAM)',
  HOLDBACK_KAFKA_SASL_PASSWORD: 'secret: SASL password (PLAIN, SCRAM)',
  HOLDBACK_KAFKA_SASL_OAUTHBEARER_TOKEN: 'secret: OAUTHBEARER token (_FILE is read again at each refresh)',
  HOLDBACK_KAFKA_SASL_OAUTHBEARER_TOKEN_COMMAND: 'a command whose output is a fresh OAUTHBEARER token',
  HOLDBACK_REGISTRY_URL: 'the Confluent-compatible API base URL (default: the local stack)',
  HOLDBACK_REGISTRY_SSL_CA_LOCATION: 'PEM file of the CA(s) that signed the registry',
  HOLDBACK_REGISTRY_BASIC_AUTH_USER_INFO: "secret: 'user:password' (Confluent's USER_INFO)",
  HOLDBACK_REGISTRY_BEARER_TOKEN: 'secret: a bearer token for the registry',
  HOLDBACK_CLICKHOUSE_URL: 'http(s)://host:port (default: the local stack)',
  HOLDBACK_CLICKHOUSE_DATABASE: 'the analytics database (default holdback; --database overrides)',
  HOLDBACK_CLICKHOUSE_USER: 'ClickHouse user (default default)',
  HOLDBACK_CLICKHOUSE_PASSWORD: 'secret: ClickHouse password',
  HOLDBACK_CLICKHOUSE_SSL_CA_LOCATION: 'PEM file of the CA(s) that signed ClickHouse',
  HOLDBACK_METRICS_HOST:
    "the address this process's /metrics, /health, /live, /ready bind (default 127.0.0.1)",
  HOLDBACK_METRICS_PORT: 'their port; 0 picks a free one (default 0; --metrics-port overrides)',
  HOLDBACK_METRICS_TOKEN:
    'secret: bearer token required by /metrics, /health and /admin/* (/live, /ready stay open)',
} as const;

/** The connection settings as a help text (every command's --help that connects ends with it). */
export function describeConnectionSettings(): string {
  const width = Math.max(...Object.keys(CONNECTION_ENV).map((k) => k.length));
  return [
    'connections (environment; each secret also as <NAME>_FILE; docs/deploy.md):',
    ...Object.entries(CONNECTION_ENV).map(([k, v]) => `  ${k.padEnd(width)}  ${v}`),
  ].join('\n');
}

/** The settings that are secrets: each may instead be read from the file <NAME>_FILE names. */
export const SECRET_SETTINGS = [
  'HOLDBACK_KAFKA_SSL_KEY_PASSWORD',
  'HOLDBACK_KAFKA_SASL_PASSWORD',
  'HOLDBACK_KAFKA_SASL_OAUTHBEARER_TOKEN',
  'HOLDBACK_REGISTRY_BASIC_AUTH_USER_INFO',
  'HOLDBACK_REGISTRY_BEARER_TOKEN',
  'HOLDBACK_CLICKHOUSE_PASSWORD',
  'HOLDBACK_METRICS_TOKEN',
] as const;

/** Every variable this module reads (the endpoints' own check of unknown HOLDBACK_* needs them). */
export const CONNECTION_VARIABLES: readonly string[] = [
  ...Object.keys(CONNECTION_ENV),
  ...SECRET_SETTINGS.map((s) => `${s}_FILE`),
];
