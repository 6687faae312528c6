/**
 * One Kafka connection setting (connectors/connections.ts), two transports. kafkajs takes it as
 * its KafkaConfig (TLS options of node's tls module, SASL by mechanism); librdkafka as its
 * properties (runtime/rdkafka-runtime.ts maps that same KafkaConfig, refusing anything it cannot
 * honour). Every command builds its clients through `kafkajsConfig`, so they connect alike.
 */
import type { KafkaConfig, SASLOptions } from 'kafkajs';
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
