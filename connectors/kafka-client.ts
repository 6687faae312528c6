/**
 * One Kafka connection setting (connectors/connections.ts), two transports. kafkajs takes it as
 * its KafkaConfig (TLS options of node's tls module, SASL by mechanism); librdkafka as its
 * properties (runtime/rdkafka-runtime.ts maps that same KafkaConfig, refusing anything it cannot
 * honour). Every command builds its clients through `kafkajsConfig`, so they connect alike.
 */
import { Kafka, logLevel, type KafkaConfig, type SASLOptions } from 'kafkajs';
import type { KafkaConnection } from './connections';

export function kafkajsConfig(
  c: KafkaConnection,
  clientId: string,
  extra: Omit<KafkaConfig, 'brokers' | 'clientId' | 'ssl' | 'sasl'> = {},
): KafkaConfig {
  return { ...extra, clientId, brokers: c.brokers, ...kafkajsSecurity(c) };
}

/** The ssl and sasl parts of a kafkajs KafkaConfig. */
export function kafkajsSecurity(c: KafkaConnection): Pick<KafkaConfig, 'ssl' | 'sasl'> {
  const out: Pick<KafkaConfig, 'ssl' | 'sasl'> = {};
  if (c.tls) {
    const { ca, cert, key, keyPassword } = c.tls;
    out.ssl =
      ca === undefined && cert === undefined
        ? true
        : {
            ...(ca !== undefined && { ca: [ca] }),
            ...(cert !== undefined && { cert, key }),
            ...(keyPassword !== undefined && { passphrase: keyPassword }),
          };
  }
  if (c.sasl) out.sasl = kafkajsSasl(c.sasl);
  return out;
}

function kafkajsSasl(s: NonNullable<KafkaConnection['sasl']>): SASLOptions {
  switch (s.mechanism) {
    case 'PLAIN':
      return { mechanism: 'plain', username: s.username, password: s.password };
    case 'SCRAM-SHA-256':
      return { mechanism: 'scram-sha-256', username: s.username, password: s.password };
    case 'SCRAM-SHA-512':
      return { mechanism: 'scram-sha-512', username: s.username, password: s.password };
    case 'OAUTHBEARER':
      // kafkajs asks on every (re)authentication: a token file or command is read afresh.
      return { mechanism: 'oauthbearer', oauthBearerProvider: () => Promise.resolve({ value: s.token() }) };
  }
}

/**
 * A Kafka failure in words that name the setting to fix: refused credentials, a mechanism the
 * brokers do not enable, an untrusted certificate, a missing client certificate, a protocol
 * mismatch. Other errors are returned as they are. Never quotes a secret (none is in them).
 */
export function explainKafkaError(e: unknown, c: KafkaConnection): string {
  const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  const where = `the brokers at HOLDBACK_KAFKA_BOOTSTRAP_SERVERS=${c.brokers.join(',')}`;
  const sasl = c.sasl;
  if (
    /authentication failed|invalid credentials|SaslAuthenticationException|Authentication failed/i.test(text)
  ) {
    const who =
      sasl?.mechanism === 'OAUTHBEARER'
        ? `the OAUTHBEARER token from ${sasl.source}`
        : `HOLDBACK_KAFKA_SASL_USERNAME=${sasl && 'username' in sasl ? sasl.username : '?'} with its HOLDBACK_KAFKA_SASL_PASSWORD(_FILE)`;
    return `${where} refused ${who} (HOLDBACK_KAFKA_SASL_MECHANISM=${sasl?.mechanism ?? 'none'}): ${text}`;
  }
  if (
    /does not support the requested SASL mechanism|Unsupported SASL mechanism|UNSUPPORTED_SASL_MECHANISM/i.test(
      text,
    )
  )
    return `${where} do not enable HOLDBACK_KAFKA_SASL_MECHANISM=${sasl?.mechanism ?? 'none'}: ask their operator which mechanisms they take (${text})`;
  if (/certificate required|alert certificate required|peer did not return a certificate/i.test(text))
    return `${where} require a client certificate (mTLS): set HOLDBACK_KAFKA_SSL_CERTIFICATE_LOCATION and HOLDBACK_KAFKA_SSL_KEY_LOCATION (${text})`;
  if (
    /self[- ]signed certificate|unable to (?:verify|get local issuer)|certificate verify failed|certificate has expired|Hostname\/IP does not match/i.test(
      text,
    )
  ) {
    const ca =
      c.tls?.ca !== undefined
        ? 'the CA in HOLDBACK_KAFKA_SSL_CA_LOCATION'
        : "the system's CAs (HOLDBACK_KAFKA_SSL_CA_LOCATION is not set)";
    return `the TLS certificate of ${where} is not trusted by ${ca}: ${text}`;
  }
  if (/wrong version number|packet length too long|unknown protocol/i.test(text))
    return `${where} do not speak TLS there: check HOLDBACK_KAFKA_SECURITY_PROTOCOL=${c.securityProtocol} against the listener (${text})`;
  return text;
}

/**
 * Start-up's first contact with Kafka (every command that uses it): one admin connection and a
 * metadata request, so that bad security settings stop the command within seconds with
 * `explainKafkaError`'s words, before any work starts. Connection failures are retried briefly
 * (a broker restarting); refusals are not.
 */
export async function checkKafka(c: KafkaConnection, clientId: string): Promise<void> {
  const admin = new Kafka(
    kafkajsConfig(c, `${clientId}-check`, {
      logLevel: logLevel.NOTHING,
      connectionTimeout: 5_000,
      retry: { retries: 3, initialRetryTime: 300, maxRetryTime: 2_000 },
    }),
  ).admin();
  try {
    await admin.connect();
    await admin.describeCluster();
  } catch (e) {
    throw new KafkaConnectionError(explainKafkaError(e, c), { cause: e });
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

export class KafkaConnectionError extends Error {
  override readonly name = 'KafkaConnectionError';
}
