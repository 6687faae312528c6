/**
 * The secured local stack's keys, certificates and passwords (`holdback stack up --secure`),
 * made on this machine the first time and kept in $HOLDBACK_HOME/secure (never committed):
 *
 * - a private CA, and one server certificate for 127.0.0.1/localhost that the broker, the
 *   registry and ClickHouse all present; a client certificate for Kafka's mTLS listener;
 * - random passwords: Kafka's inter-broker `admin` and the `holdback` SCRAM user, the registry's
 *   and ClickHouse's `holdback` user, and the bearer token of the processes' /metrics;
 * - a signed JWT that the registry accepts as a bearer token, and an unsigned one for Kafka's
 *   OAUTHBEARER (the broker's development validator; docs/deploy.md says what production uses);
 * - client.env: the HOLDBACK_* settings that reach this stack, with every secret as a *_FILE path.
 *   `set -a; . .holdback/secure/client.env; set +a` and every command connects securely.
 *
 * openssl makes the keys and certificates; node:crypto the passwords and JWTs. Files holding a
 * secret are mode 0600.
 */
import { createSign, generateKeyPairSync, randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Endpoints } from '../connectors/endpoints';
import { HOME } from './paths';

type Log = (line: string) => void;

export const secureDir = (): string => join(HOME, 'secure');

/** Every file of the secure material, by role. */
export function securePaths(dir = secureDir()) {
  return {
    dir,
    caKey: join(dir, 'ca.key'),
    ca: join(dir, 'ca.pem'),
    serverKey: join(dir, 'server.key'),
    serverCert: join(dir, 'server.pem'),
    /** The broker's PEM keystore: key then certificate. */
    serverKeystore: join(dir, 'server-keystore.pem'),
    clientKey: join(dir, 'client.key'),
    clientCert: join(dir, 'client.pem'),
    kafkaAdminPassword: join(dir, 'kafka-admin.password'),
    kafkaPassword: join(dir, 'kafka-holdback.password'),
    kafkaOauthToken: join(dir, 'kafka-oauth.token'),
    registryUserInfo: join(dir, 'registry.userinfo'),
    registryJwtKey: join(dir, 'registry-jwt.key'),
    registryJwtPublicKey: join(dir, 'registry-jwt.pub'),
    registryToken: join(dir, 'registry.token'),
    clickhousePassword: join(dir, 'clickhouse.password'),
    metricsToken: join(dir, 'metrics.token'),
    clientEnv: join(dir, 'client.env'),
  };
}
export type SecurePaths = ReturnType<typeof securePaths>;

/** The users the secure stack creates. */
export const SECURE_USERS = { kafkaAdmin: 'admin', client: 'holdback' } as const;

export class SecureStackError extends Error {
  override readonly name = 'SecureStackError';
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.error) throw new SecureStackError(`openssl is needed for the secure stack: ${r.error.message}`);
  if (r.status !== 0) throw new SecureStackError(`openssl ${args[0]} failed: ${r.stderr.trim()}`);
}

function writeSecret(path: string, text: string): void {
  writeFileSync(path, text, { mode: 0o600 });
  chmodSync(path, 0o600);
}

const password = (): string => randomBytes(24).toString('base64url');
const b64url = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
const YEAR_S = 365 * 24 * 3600;

/** A JWT signed RS256 with `key` (the registry checks it with the public key). */
function signedJwt(claims: Record<string, unknown>, key: string): string {
  const unsigned = `${b64url({ alg: 'RS256', typ: 'JWT' })}.${b64url(claims)}`;
  const signature = createSign('RSA-SHA256').update(unsigned).sign(key).toString('base64url');
  return `${unsigned}.${signature}`;
}

/** An unsigned JWT ("alg": "none"): what Kafka's development OAUTHBEARER validator accepts. */
function unsecuredJwt(claims: Record<string, unknown>): string {
  return `${b64url({ alg: 'none' })}.${b64url(claims)}.`;
}

/** Makes what is missing (idempotent): a second run keeps every key, password and token. */
export function ensureSecureMaterial(e: Endpoints, log: Log): SecurePaths {
  const p = securePaths();
  mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  if (!existsSync(p.ca)) {
    log(`secure: making a private CA and the stack's certificates (openssl) in ${p.dir}`);
    openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-keyout',
        p.caKey,
        '-out',
        p.ca,
        '-days',
        '825',
      ].concat(['-subj', '/CN=Holdback local stack CA']),
      p.dir,
    );
    chmodSync(p.caKey, 0o600);
  }
  const leaf = (key: string, cert: string, subject: string, ext: string): void => {
    if (existsSync(cert)) return;
    const extFile = `${cert}.ext`;
    writeFileSync(extFile, ext);
    openssl(
      ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', `${cert}.csr`, '-subj', subject],
      p.dir,
    );
    chmodSync(key, 0o600);
    openssl(
      ['x509', '-req', '-in', `${cert}.csr`, '-CA', p.ca, '-CAkey', p.caKey, '-CAcreateserial'].concat([
        '-out',
        cert,
        '-days',
        '825',
        '-extfile',
        extFile,
      ]),
      p.dir,
    );
  };
  const names = [...new Set([`IP:${e.host}`, 'IP:127.0.0.1', 'DNS:localhost'])].join(',');
  leaf(
    p.serverKey,
    p.serverCert,
    '/CN=localhost',
    `subjectAltName=${names}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n`,
  );
  leaf(
    p.clientKey,
    p.clientCert,
    `/CN=${SECURE_USERS.client}`,
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n',
  );
  if (!existsSync(p.serverKeystore))
    writeSecret(p.serverKeystore, readFileSync(p.serverKey, 'utf8') + readFileSync(p.serverCert, 'utf8'));

  const secret = (path: string, make: () => string): void => {
    if (!existsSync(path)) writeSecret(path, `${make()}\n`);
  };
  secret(p.kafkaAdminPassword, password);
  secret(p.kafkaPassword, password);
  secret(p.registryUserInfo, () => `${SECURE_USERS.client}:${password()}`);
  secret(p.clickhousePassword, password);
  secret(p.metricsToken, password);
  const now = Math.floor(Date.now() / 1000);
  secret(p.kafkaOauthToken, () => unsecuredJwt({ sub: SECURE_USERS.client, iat: now, exp: now + YEAR_S }));
  if (!existsSync(p.registryJwtKey)) {
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    writeSecret(p.registryJwtKey, pair.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    writeFileSync(p.registryJwtPublicKey, pair.publicKey.export({ type: 'spki', format: 'pem' }).toString());
  }
  secret(p.registryToken, () =>
    signedJwt(
      {
        iss: REGISTRY_JWT.issuer,
        aud: REGISTRY_JWT.audience,
        sub: SECURE_USERS.client,
        iat: now,
        exp: now + YEAR_S,
      },
      readFileSync(p.registryJwtKey, 'utf8'),
    ),
  );
  writeFileSync(p.clientEnv, clientEnv(e, p));
  return p;
}

/** The issuer and audience the registry requires of a bearer token. */
export const REGISTRY_JWT = { issuer: 'holdback-local-stack', audience: 'holdback-registry' } as const;

/** A secret file's value (without its newline). */
export function readSecretFile(path: string): string {
  return readFileSync(path, 'utf8').replace(/\r?\n$/, '');
}

/** The HOLDBACK_* settings of a client of this secure stack: addresses, CA, users, *_FILE secrets. */
export function clientEnv(e: Endpoints, p: SecurePaths): string {
  return [
    '# Written by `holdback stack up --secure`: the settings that reach the secured local stack.',
    '#   set -a; . <this file>; set +a',
    '# Secrets are files (*_FILE); docs/deploy.md explains every setting.',
    `HOLDBACK_KAFKA_BOOTSTRAP_SERVERS=${e.kafkaBrokers.join(',')}`,
    'HOLDBACK_KAFKA_SECURITY_PROTOCOL=SASL_SSL',
    `HOLDBACK_KAFKA_SSL_CA_LOCATION=${p.ca}`,
    'HOLDBACK_KAFKA_SASL_MECHANISM=SCRAM-SHA-512',
    `HOLDBACK_KAFKA_SASL_USERNAME=${SECURE_USERS.client}`,
    `HOLDBACK_KAFKA_SASL_PASSWORD_FILE=${p.kafkaPassword}`,
    `HOLDBACK_REGISTRY_URL=${e.registryUrl}`,
    `HOLDBACK_REGISTRY_SSL_CA_LOCATION=${p.ca}`,
    `HOLDBACK_REGISTRY_BASIC_AUTH_USER_INFO_FILE=${p.registryUserInfo}`,
    `HOLDBACK_CLICKHOUSE_URL=${e.clickhouseUrl}`,
    `HOLDBACK_CLICKHOUSE_USER=${SECURE_USERS.client}`,
    `HOLDBACK_CLICKHOUSE_PASSWORD_FILE=${p.clickhousePassword}`,
    `HOLDBACK_CLICKHOUSE_SSL_CA_LOCATION=${p.ca}`,
    `HOLDBACK_METRICS_TOKEN_FILE=${p.metricsToken}`,
    '',
  ].join('\n');
}
