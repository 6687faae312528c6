import { ConfigError, loadEndpoints } from '../../connectors/endpoints';

test('defaults put every service on loopback on its own port', () => {
  const e = loadEndpoints({});
  expect(e.kafkaBrokers).toEqual(['127.0.0.1:19092']);
  expect(e.registryUrl).toBe('http://127.0.0.1:18081/apis/ccompat/v7');
  expect(e.partitions).toBe(4);
});

test.each([
  [{ HOLDBACK_KAFKA_PORT: 'abc' }, /HOLDBACK_KAFKA_PORT=abc/],
  [{ HOLDBACK_KAFKA_PORT: '80' }, /HOLDBACK_KAFKA_PORT=80/],
  [{ HOLDBACK_KAFKA_PORTT: '19092' }, /unknown setting HOLDBACK_KAFKA_PORTT/],
  [{ HOLDBACK_PROMETHEUS_PORT: '19092' }, /two services share a port/],
  [{ HOLDBACK_REGISTRY_URL: 'not a url' }, /HOLDBACK_REGISTRY_URL/],
])('a bad setting %j stops start-up naming the key', (env, message) => {
  expect(() => loadEndpoints(env)).toThrow(ConfigError);
  expect(() => loadEndpoints(env)).toThrow(message);
});

test('HOLDBACK_REGISTRY_URL points at a registry serving the API at its root (Confluent, docker-compose)', () => {
  expect(loadEndpoints({ HOLDBACK_REGISTRY_URL: 'http://127.0.0.1:18081/' }).registryUrl).toBe(
    'http://127.0.0.1:18081',
  );
});

test('HOLDBACK_KAFKA_BROKERS=3 lists three nodes, each 100 ports above the last', () => {
  const e = loadEndpoints({ HOLDBACK_KAFKA_BROKERS: '3' });
  expect(e.kafkaBrokers).toEqual(['127.0.0.1:19092', '127.0.0.1:19192', '127.0.0.1:19292']);
  expect(e.kafkaNodes.map((n) => [n.id, n.port, n.controllerPort])).toEqual([
    [1, 19092, 19093],
    [2, 19192, 19193],
    [3, 19292, 19293],
  ]);
  expect(e.kafkaVersion).toBe('4.4.0');
});

test.each([
  [{ HOLDBACK_KAFKA_BROKERS: '4' }, /HOLDBACK_KAFKA_BROKERS=4/],
  [{ HOLDBACK_KAFKA_VERSION: '3.8.0' }, /HOLDBACK_KAFKA_VERSION=3\.8\.0/],
  [{ HOLDBACK_KAFKA_BROKERS: '3', HOLDBACK_KAFKA_PORT: '65400' }, /run past 65535/],
  // Node 2's broker port would be Prometheus's.
  [{ HOLDBACK_KAFKA_BROKERS: '2', HOLDBACK_PROMETHEUS_PORT: '19192' }, /two services share a port/],
])('a bad Kafka cluster setting %j stops start-up naming the key', (env, message) => {
  expect(() => loadEndpoints(env)).toThrow(message);
});
