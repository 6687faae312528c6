/**
 * The transport choice (issue 9) and the broker-free parts of the node-rdkafka runtime: the
 * `--transport` option, the co-partitioning check on every assignment, the mapping of the kafkajs
 * client settings to librdkafka's, and the records one commit writes on either transport (all to
 * the task's partition).
 */
import { ConfigError } from '../../../connectors/endpoints';
import { parseRunOptions } from '../../../runtime/config';
import { authorize, oauthToken, rdkafkaClientConfig, taskPartitions } from '../../../runtime/rdkafka-runtime';
import { recordsOf } from '../../../runtime/runtime-base';
import type { Flush, SourceRecord } from '../../../runtime/task';

describe('--transport', () => {
  test('defaults to rdkafka (issue 16: about twice the throughput of kafkajs)', () => {
    expect(parseRunOptions([]).transport).toBe('rdkafka');
  });

  test('takes either in both spellings', () => {
    expect(parseRunOptions(['--transport=kafkajs']).transport).toBe('kafkajs');
    expect(parseRunOptions(['--transport', 'kafkajs']).transport).toBe('kafkajs');
    expect(parseRunOptions(['--transport', 'rdkafka']).transport).toBe('rdkafka');
  });

  test('refuses anything else, naming the option', () => {
    expect(() => parseRunOptions(['--transport=librdkafka'])).toThrow(ConfigError);
    expect(() => parseRunOptions(['--transport=librdkafka'])).toThrow(/bad option --transport=librdkafka/);
  });
});

describe('taskPartitions', () => {
  const inputs = ['x.loans', 'x.payouts'];

  test('partition p of every input forms task p', () => {
    expect(
      taskPartitions(
        [
          { topic: 'x.payouts', partition: 3 },
          { topic: 'x.loans', partition: 1 },
          { topic: 'x.loans', partition: 3 },
          { topic: 'x.payouts', partition: 1 },
        ],
        inputs,
      ),
    ).toEqual([1, 3]);
    expect(taskPartitions([], inputs)).toEqual([]);
  });

  test('an assignment that splits a task is refused', () => {
    expect(() =>
      taskPartitions(
        [
          { topic: 'x.loans', partition: 0 },
          { topic: 'x.loans', partition: 1 },
          { topic: 'x.payouts', partition: 0 },
        ],
        inputs,
      ),
    ).toThrow(/not co-partitioned: x.payouts lacks partition\(s\) 1/);
  });

  test('a topic that is not an input is refused', () => {
    expect(() => taskPartitions([{ topic: 'other', partition: 0 }], inputs)).toThrow(/not an input topic/);
  });
});

describe('rdkafkaClientConfig', () => {
  test('brokers and client id', () => {
    expect(rdkafkaClientConfig({ clientId: 'app', brokers: ['a:1', 'b:2'] })).toEqual({
      'metadata.broker.list': 'a:1,b:2',
      'client.id': 'app',
      'security.protocol': 'plaintext',
    });
  });

  test('TLS and SASL/SCRAM', () => {
    expect(
      rdkafkaClientConfig({
        brokers: ['a:1'],
        ssl: true,
        sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'p' },
      }),
    ).toMatchObject({
      'security.protocol': 'sasl_ssl',
      'sasl.mechanisms': 'SCRAM-SHA-512',
      'sasl.username': 'u',
      'sasl.password': 'p',
    });
  });

  test('settings it cannot carry over are refused, not dropped', () => {
    expect(() => rdkafkaClientConfig({ brokers: [] })).toThrow(/needs a list of brokers/);
    expect(() => rdkafkaClientConfig({ brokers: async () => ['a:1'] })).toThrow(/needs a list of brokers/);
    expect(() => rdkafkaClientConfig({ brokers: ['a:1'], ssl: { rejectUnauthorized: false } })).toThrow(
      /cannot honour the TLS option\(s\) rejectUnauthorized/,
    );
    expect(() =>
      rdkafkaClientConfig({
        brokers: ['a:1'],
        sasl: { mechanism: 'aws', authorizationIdentity: 'x' } as never,
      }),
    ).toThrow(/does not support SASL mechanism aws/);
  });

  test('a CA bundle and a client certificate go over as PEM text', () => {
    expect(
      rdkafkaClientConfig({
        brokers: ['a:1'],
        ssl: { ca: ['CA1', Buffer.from('CA2')], cert: 'CERT', key: 'KEY', passphrase: 'pw' },
      }),
    ).toMatchObject({
      'security.protocol': 'ssl',
      'ssl.ca.pem': 'CA1\nCA2',
      'ssl.certificate.pem': 'CERT',
      'ssl.key.pem': 'KEY',
      'ssl.key.password': 'pw',
    });
  });

  test('OAUTHBEARER: the mechanism in the config, the token from the provider', async () => {
    const kafka = {
      brokers: ['a:1'],
      ssl: true,
      sasl: {
        mechanism: 'oauthbearer' as const,
        oauthBearerProvider: () => Promise.resolve({ value: 'tok' }),
      },
    };
    expect(rdkafkaClientConfig(kafka)).toMatchObject({
      'security.protocol': 'sasl_ssl',
      'sasl.mechanisms': 'OAUTHBEARER',
    });
    expect(await oauthToken(kafka)!()).toBe('tok');
    expect(oauthToken({ brokers: ['a:1'] })).toBeUndefined();
  });

  test('OAUTHBEARER: each client gets the token before it connects, and a fresh one every minute', async () => {
    jest.useFakeTimers();
    try {
      let n = 0;
      const token = (): Promise<string> => Promise.resolve(`token-${++n}`);
      const client = { setOauthBearerToken: jest.fn() };
      await authorize(client, token);
      expect(client.setOauthBearerToken).toHaveBeenLastCalledWith('token-1');
      await jest.advanceTimersByTimeAsync(60_000);
      expect(client.setOauthBearerToken).toHaveBeenLastCalledWith('token-2');
      await authorize({ setOauthBearerToken: jest.fn() }, undefined); // no OAUTHBEARER: nothing
      expect(client.setOauthBearerToken).toHaveBeenCalledTimes(2);
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('recordsOf', () => {
  const source: SourceRecord = {
    topic: 'marketplace.payouts.v1',
    partition: 2,
    offset: 7,
    key: Buffer.from('m1'),
    value: Buffer.from([0]),
    timestamp: 0,
  };
  const flush: Flush = {
    outputs: [{ topic: 'holdback.deductions.v1', key: 'd1', value: { n: 1 } as never }],
    outputTimestamps: [1_700_000_000_000],
    encoded: [],
    rejected: [{ source, reasonCode: 'BAD_MAGIC_BYTE', detail: 'x' }],
    changelog: [
      { key: 'm1', value: Buffer.from('state') },
      { key: 'm2', value: null },
    ],
    offsets: new Map([['marketplace.payouts.v1', 8]]),
    oldestTimestamp: 0,
  };

  test('outputs, dead letters and changelog entries all go to the task partition', () => {
    const records = recordsOf(flush, 2, 1234, {
      codec: {
        decode: () => {
          throw new Error('unused');
        },
        encode: (topic, value) => Buffer.from(`${topic}:${JSON.stringify(value)}`),
        isTransient: () => false,
      },
      deadLetters: { topic: 'holdback.dlq.v1', encode: (r, now) => Buffer.from(`${r.reasonCode}@${now}`) },
      physical: (t) => `p.${t}`,
      changelog: 'app-state-changelog',
    });
    expect(
      records.map((r) => [r.topic, r.partition, r.key?.toString() ?? null, r.value?.toString() ?? null]),
    ).toEqual([
      ['p.holdback.deductions.v1', 2, 'd1', 'holdback.deductions.v1:{"n":1}'],
      ['p.holdback.dlq.v1', 2, 'm1', 'BAD_MAGIC_BYTE@1234'],
      ['app-state-changelog', 2, 'm1', 'state'],
      ['app-state-changelog', 2, 'm2', null],
    ]);
    // An output carries the time of the step that produced it (stream time under --clock=stream).
    expect(records[0]?.timestamp).toBe(1_700_000_000_000);
  });
});
