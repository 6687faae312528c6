/**
 * The connection settings (connectors/connections.ts): defaults to the local stack, each
 * security setting read and checked, secrets from *_FILE, and every mistake a ConfigError that
 * names the setting and never the secret.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { ConfigError } from '../../connectors/endpoints';
import { loadConnections } from '../../connectors/connections';
import { kafkajsConfig } from '../../connectors/kafka-client';
import { startMetricsServer } from '../../connectors/metrics-server';
import { forgetSecrets, maskUrl, redact, registerSecret } from '../../connectors/secrets';

const dir = mkdtempSync(join(tmpdir(), 'connections-'));
const file = (name: string, text: string): string => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const CERT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n';
const ca = file('ca.pem', CERT);
const cert = file('client.pem', CERT);
const key = file('client.key', KEY);
const password = file('password', 'p4ssw0rd-from-file\n');

afterEach(() => forgetSecrets());

/** The ConfigError a setting gives, checked never to quote `secret`. */
function refusal(env: NodeJS.ProcessEnv, secret?: string): string {
  try {
    loadConnections(env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    const message = (e as Error).message;
    if (secret !== undefined) expect(message).not.toContain(secret);
    return message;
  }
  throw new Error('the settings were accepted');
}

describe('defaults', () => {
  test('the plain local stack, and the metrics endpoint on loopback', () => {
    const c = loadConnections({});
    expect(c.kafka).toEqual({ brokers: ['127.0.0.1:19092'], securityProtocol: 'PLAINTEXT' });
    expect(c.registry).toEqual({ url: 'http://127.0.0.1:18081/apis/ccompat/v7' });
    expect(c.clickhouse).toEqual({
      url: 'http://127.0.0.1:18123',
      database: 'holdback',
      username: 'default',
      password: '',
    });
    expect(c.metrics).toEqual({ host: '127.0.0.1', port: 0 });
  });

  test('HOLDBACK_HOST moves the services, not the metrics endpoint', () => {
    const c = loadConnections({ HOLDBACK_HOST: '10.0.0.5' });
    expect(c.kafka.brokers).toEqual(['10.0.0.5:19092']);
    expect(c.metrics.host).toBe('127.0.0.1');
  });
});

describe('Kafka', () => {
  test('SASL_SSL with SCRAM, a CA bundle and the password from a file', () => {
    const c = loadConnections({
      HOLDBACK_KAFKA_BOOTSTRAP_SERVERS: 'b1.example.com:9093, b2.example.com:9093',
      HOLDBACK_KAFKA_SECURITY_PROTOCOL: 'sasl_ssl',
      HOLDBACK_KAFKA_SSL_CA_LOCATION: ca,
      HOLDBACK_KAFKA_SASL_MECHANISM: 'scram-sha-512',
      HOLDBACK_KAFKA_SASL_USERNAME: 'app',
      HOLDBACK_KAFKA_SASL_PASSWORD_FILE: password,
    });
    expect(c.kafka).toEqual({
      brokers: ['b1.example.com:9093', 'b2.example.com:9093'],
      securityProtocol: 'SASL_SSL',
      tls: { ca: CERT },
      sasl: { mechanism: 'SCRAM-SHA-512', username: 'app', password: 'p4ssw0rd-from-file' },
    });
    expect(kafkajsConfig(c.kafka, 'id')).toEqual({
      clientId: 'id',
      brokers: ['b1.example.com:9093', 'b2.example.com:9093'],
      ssl: { ca: [CERT] },
      sasl: { mechanism: 'scram-sha-512', username: 'app', password: 'p4ssw0rd-from-file' },
    });
    // Loaded secrets are masked wherever text leaves the process.
    expect(redact('auth failed for p4ssw0rd-from-file')).toBe('auth failed for ***');
  });

  test('mTLS: a client certificate and its key', () => {
    const c = loadConnections({
      HOLDBACK_KAFKA_SECURITY_PROTOCOL: 'SSL',
      HOLDBACK_KAFKA_SSL_CERTIFICATE_LOCATION: cert,
      HOLDBACK_KAFKA_SSL_KEY_LOCATION: key,
    });
    expect(kafkajsConfig(c.kafka, 'id').ssl).toEqual({ cert: CERT, key: KEY });
    expect(
      refusal({ HOLDBACK_KAFKA_SECURITY_PROTOCOL: 'SSL', HOLDBACK_KAFKA_SSL_CERTIFICATE_LOCATION: cert }),
    ).toMatch(/mTLS needs both HOLDBACK_KAFKA_SSL_CERTIFICATE_LOCATION and HOLDBACK_KAFKA_SSL_KEY_LOCATION/);
    expect(
      refusal({
        HOLDBACK_KAFKA_SECURITY_PROTOCOL: 'SSL',
        HOLDBACK_KAFKA_SSL_KEY_LOCATION: cert,
        HOLDBACK_KAFKA_SSL_CERTIFICATE_LOCATION: cert,
      }),
    ).toMatch(/HOLDBACK_KAFKA_SSL_KEY_LOCATION=.* does not hold a PEM private key/);
  });

  test('OAUTHBEARER: a token file read afresh, or a command', async () => {
    const tokenFile = file('token', 'token-one\n');
    const c = loadConnections({
      HOLDBACK_KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      HOLDBACK_KAFKA_SASL_MECHANISM: 'OAUTHBEARER',
      HOLDBACK_KAFKA_SASL_OAUTHBEARER_TOKEN_FILE: tokenFile,
    });
    const sasl = kafkajsConfig(c.kafka, 'id').sasl as {
      oauthBearerProvider: () => Promise<{ value: string }>;
    };
    expect((await sasl.oauthBearerProvider()).value).toBe('token-one');
    writeFileSync(tokenFile, 'token-two\n');
    expect((await sasl.oauthBearerProvider()).value).toBe('token-two');
    expect(redact('token-two')).toBe('***');

    const byCommand = loadConnections({
      HOLDBACK_KAFKA_SECURITY_PROTOCOL: 'SASL_PLAINTEXT',
      HOLDBACK_KAFKA_SASL_MECHANISM: 'OAUTHBEARER',
      HOLDBACK_KAFKA_SASL_OAUTHBEARER_TOKEN_COMMAND: 'echo from-a-command',
    });
    expect(byCommand.kafka.sasl?.mechanism === 'OAUTHBEARER' && byCommand.kafka.sasl.token()).toBe(
      'from-a-command',
    );
    expect(
      refusal({
        HOLDBACK_KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
        HOLDBACK_KAFKA_SASL_MECHANISM: 'OAUTHBEARER',
        HOLDBACK_KAFKA_SASL_OAUTHBEARER_TOKEN_COMMAND: 'echo oops >&2; exit 3',
      }),
    ).toMatch(/HOLDBACK_KAFKA_SASL_OAUTHBEARER_TOKEN_COMMAND failed: oops/);
  });

  test.each<[string, NodeJS.ProcessEnv, RegExp]>([
    [
      'a bad address',
      { HOLDBACK_KAFKA_BOOTSTRAP_SERVERS: 'kafka' },
      /HOLDBACK_KAFKA_BOOTSTRAP_SERVERS: 'kafka' is not host:port/,
    ],
    [
      'an unknown protocol',
      { HOLDBACK_KAFKA_SECURITY_PROTOCOL: 'TLS' },
      /HOLDBACK_KAFKA_SECURITY_PROTOCOL=TLS: one of PLAINTEXT, SSL/,
    ],
    [
      'SASL without a mechanism',
      { HOLDBACK_KAFKA_SECURITY_PROTOCOL: 'SASL_SSL' },
      /needs HOLDBACK_KAFKA_SASL_MECHANISM/,
    ],
    [
      'SCRAM without a password',
      {
        HOLDBACK_KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
        HOLDBACK_KAFKA_SASL_MECHANISM: 'SCRAM-SHA-256',
        HOLDBACK_KAFKA_SASL_USERNAME: 'u',
      },
      /SASL SCRAM-SHA-256 needs HOLDBACK_KAFKA_SASL_USERNAME and HOLDBACK_KAFKA_SASL_PASSWORD/,
    ],
    [
      'a CA on a plaintext connection',
      { HOLDBACK_KAFKA_SSL_CA_LOCATION: ca },
      /HOLDBACK_KAFKA_SSL_CA_LOCATION is set but HOLDBACK_KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use TLS/,
    ],
    [
      'a SASL user on an SSL connection',
      { HOLDBACK_KAFKA_SECURITY_PROTOCOL: 'SSL', HOLDBACK_KAFKA_SASL_USERNAME: 'u' },
      /does not use SASL/,
    ],
    [
      'a missing file',
      { HOLDBACK_KAFKA_SECURITY_PROTOCOL: 'SSL', HOLDBACK_KAFKA_SSL_CA_LOCATION: '/nope/ca.pem' },
      /HOLDBACK_KAFKA_SSL_CA_LOCATION=\/nope\/ca.pem cannot be read \(ENOENT\)/,
    ],
    [
      'an unknown HOLDBACK_ setting',
      { HOLDBACK_KAFKA_SASL_PASWORD: 'x' },
      /unknown setting HOLDBACK_KAFKA_SASL_PASWORD/,
    ],
  ])('%s is refused, naming the setting', (_, env, message) => {
    expect(refusal(env)).toMatch(message);
  });

  test('a secret given both ways, or an empty one, is refused without quoting it', () => {
    const env = {
      HOLDBACK_KAFKA_SECURITY_PROTOCOL: 'SASL_SSL',
      HOLDBACK_KAFKA_SASL_MECHANISM: 'PLAIN',
      HOLDBACK_KAFKA_SASL_USERNAME: 'u',
      HOLDBACK_KAFKA_SASL_PASSWORD: 'direct-secret',
      HOLDBACK_KAFKA_SASL_PASSWORD_FILE: password,
    };
    expect(refusal(env, 'direct-secret')).toMatch(
      /HOLDBACK_KAFKA_SASL_PASSWORD and HOLDBACK_KAFKA_SASL_PASSWORD_FILE are both set/,
    );
    const empty = file('empty', '\n');
    expect(
      refusal({ ...env, HOLDBACK_KAFKA_SASL_PASSWORD: undefined, HOLDBACK_KAFKA_SASL_PASSWORD_FILE: empty }),
    ).toMatch(/HOLDBACK_KAFKA_SASL_PASSWORD_FILE is empty/);
  });
});

describe('the registry', () => {
  test("credentials in the URL become basic auth, and the URL prints without them (Confluent's URL source)", () => {
    const c = loadConnections({
      HOLDBACK_REGISTRY_URL: 'https://app:url-secret@registry.example.com/apis/ccompat/v7',
    });
    expect(c.registry).toEqual({
      url: 'https://registry.example.com/apis/ccompat/v7',
      auth: { kind: 'basic', username: 'app', password: 'url-secret' },
      authSetting: 'credentials in HOLDBACK_REGISTRY_URL',
    });
    expect(redact('GET https://app:url-secret@registry.example.com failed')).toBe(
      'GET https://app:***@registry.example.com failed',
    );
  });

  test('USER_INFO or a bearer token, from files; not both', () => {
    const userInfo = file('userinfo', 'app:info-secret\n');
    expect(loadConnections({ HOLDBACK_REGISTRY_BASIC_AUTH_USER_INFO_FILE: userInfo }).registry.auth).toEqual({
      kind: 'basic',
      username: 'app',
      password: 'info-secret',
    });
    expect(loadConnections({ HOLDBACK_REGISTRY_BEARER_TOKEN: 'bearer-secret' }).registry.auth).toEqual({
      kind: 'bearer',
      token: 'bearer-secret',
    });
    expect(
      refusal(
        {
          HOLDBACK_REGISTRY_BASIC_AUTH_USER_INFO_FILE: userInfo,
          HOLDBACK_REGISTRY_BEARER_TOKEN: 'bearer-secret',
        },
        'bearer-secret',
      ),
    ).toMatch(/the registry's credentials are given twice/);
    expect(refusal({ HOLDBACK_REGISTRY_BASIC_AUTH_USER_INFO: 'no-colon-here' }, 'no-colon-here')).toMatch(
      /must be 'user:password'/,
    );
    expect(refusal({ HOLDBACK_REGISTRY_SSL_CA_LOCATION: ca })).toMatch(/HOLDBACK_REGISTRY_URL is not https/);
  });

  test('a bad URL is refused with its password masked', () => {
    expect(refusal({ HOLDBACK_REGISTRY_URL: 'ftp://u:pw-in-url@host/x' }, 'pw-in-url')).toMatch(
      /HOLDBACK_REGISTRY_URL/,
    );
  });
});

describe('ClickHouse and the metrics endpoint', () => {
  test('user, password from a file, CA, database', () => {
    const c = loadConnections({
      HOLDBACK_CLICKHOUSE_URL: 'https://ch.example.com:8443',
      HOLDBACK_CLICKHOUSE_USER: 'app',
      HOLDBACK_CLICKHOUSE_PASSWORD_FILE: password,
      HOLDBACK_CLICKHOUSE_SSL_CA_LOCATION: ca,
      HOLDBACK_CLICKHOUSE_DATABASE: 'analytics',
    });
    expect(c.clickhouse).toEqual({
      url: 'https://ch.example.com:8443',
      database: 'analytics',
      username: 'app',
      password: 'p4ssw0rd-from-file',
      ca: CERT,
    });
    expect(refusal({ HOLDBACK_CLICKHOUSE_URL: 'https://app:pw@ch.example.com' }, 'pw@')).toMatch(
      /carries credentials: use HOLDBACK_CLICKHOUSE_USER and HOLDBACK_CLICKHOUSE_PASSWORD/,
    );
    expect(refusal({ HOLDBACK_CLICKHOUSE_DATABASE: 'drop table' })).toMatch(/HOLDBACK_CLICKHOUSE_DATABASE/);
    expect(refusal({ HOLDBACK_METRICS_PORT: '99999' })).toMatch(/HOLDBACK_METRICS_PORT=99999/);
  });

  test('with a token, /metrics, /health and commands need it; /live and /ready stay open', async () => {
    const registry = new Registry();
    registerSecret('leaky-secret');
    const server = await startMetricsServer({
      registry,
      host: '127.0.0.1',
      port: 0,
      service: 'test',
      token: 'metrics-token',
      health: () => ({ ok: true, detail: { lastError: 'connect failed with leaky-secret' } }),
      ready: () => false,
      live: () => ({ ok: true, detail: {} }),
      commands: { '/admin/x': () => Promise.resolve({ status: 200, body: {} }) },
    });
    try {
      const get = (path: string, token?: string) =>
        fetch(`${server.url}${path}`, {
          method: path.startsWith('/admin') ? 'POST' : 'GET',
          headers: token ? { Authorization: `Bearer ${token}` } : {},
        });
      expect((await get('/metrics')).status).toBe(401);
      expect((await get('/health', 'wrong-token')).status).toBe(401);
      expect((await get('/admin/x')).status).toBe(401);
      expect((await get('/live')).status).toBe(200);
      expect((await get('/ready')).status).toBe(503);
      expect((await get('/metrics', 'metrics-token')).status).toBe(200);
      const health = await get('/health', 'metrics-token');
      expect(health.status).toBe(200);
      // A secret that reached a detail by mistake is masked on the way out.
      expect(await health.text()).toContain('connect failed with ***');
    } finally {
      await server.close();
    }
  });

  test('maskUrl keeps the user and hides the password', () => {
    expect(maskUrl('http://u:p@h:1/x')).toBe('http://u:***@h:1/x');
    expect(maskUrl('http://h:1/x')).toBe('http://h:1/x');
  });
});
