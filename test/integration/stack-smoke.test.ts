/**
 * The real stack, end to end, one protocol each: the registry encodes and decodes through
 * @kafkajs/confluent-schema-registry, Kafka commits and aborts transactions (read_committed
 * never sees the aborted one), ClickHouse creates, inserts JSONEachRow and selects, and
 * Prometheus scrapes a prom-client endpoint of this process.
 */
import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { createClient } from '@clickhouse/client';
import { Kafka, logLevel } from 'kafkajs';
import { Counter, Registry } from 'prom-client';
import { loadEndpoints } from '../../connectors/endpoints';
import { startMetricsServer } from '../../connectors/metrics-server';
import { scrapeTargetsDir } from '../../stack/components';

const e = loadEndpoints();
const run = `${process.pid}_${Date.now()}`;

test('registry: register an Avro schema, encode and decode in the Confluent wire format', async () => {
  const registry = new SchemaRegistry({ host: e.registryUrl });
  const schema = {
    type: 'record',
    name: 'Smoke',
    namespace: 'holdback.test',
    fields: [
      { name: 'id', type: 'string' },
      { name: 'amount_minor', type: 'long' },
    ],
  };
  const { id } = await registry.register(
    { type: SchemaType.AVRO, schema: JSON.stringify(schema) },
    { subject: `smoke-${run}-value` },
  );
  const encoded = await registry.encode(id, { id: 'a', amount_minor: 1234 });
  expect(encoded[0]).toBe(0);
  expect(encoded.readUInt32BE(1)).toBe(id);
  // A fresh client must fetch the schema by id from the server.
  const decoded = await new SchemaRegistry({ host: e.registryUrl }).decode(encoded);
  expect(decoded).toEqual({ id: 'a', amount_minor: 1234 });
});

test('kafka: a read_committed consumer sees committed transactions and never an aborted one', async () => {
  const kafka = new Kafka({ clientId: 'smoke', brokers: e.kafkaBrokers, logLevel: logLevel.NOTHING });
  const topic = `smoke-txn-${run}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  const producer = kafka.producer({
    transactionalId: `smoke-${run}`,
    idempotent: true,
    maxInFlightRequests: 1,
  });
  await producer.connect();
  const committed = await producer.transaction();
  await committed.send({ topic, messages: [{ key: 'k', value: 'committed-1' }] });
  await committed.commit();
  const aborted = await producer.transaction();
  await aborted.send({ topic, messages: [{ key: 'k', value: 'aborted' }] });
  await aborted.abort();
  const last = await producer.transaction();
  await last.send({ topic, messages: [{ key: 'k', value: 'committed-2' }] });
  await last.commit();

  const consumer = kafka.consumer({ groupId: `smoke-${run}`, readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out; saw ${JSON.stringify(seen)}`)), 30_000);
    void consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(message.value!.toString());
        if (seen.includes('committed-2')) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  expect(seen).toEqual(['committed-1', 'committed-2']);
  await consumer.disconnect();
  await producer.disconnect();
  await admin.deleteTopics({ topics: [topic] });
  await admin.disconnect();
}, 60_000);

test('clickhouse: create a table, insert JSONEachRow, select it back', async () => {
  const client = createClient({ url: e.clickhouseUrl });
  const table = `smoke_${run}`;
  try {
    await client.command({
      query: `CREATE TABLE ${table} (id String, amount_minor Int64, at DateTime) ENGINE = MergeTree ORDER BY id`,
    });
    await client.insert({
      table,
      format: 'JSONEachRow',
      values: [
        { id: 'a', amount_minor: 1, at: '2026-11-22 10:00:00' },
        { id: 'b', amount_minor: 9007199254740, at: '2026-11-22 11:00:00' },
      ],
    });
    const rows = await (
      await client.query({
        query: `SELECT id, amount_minor FROM ${table} ORDER BY id`,
        format: 'JSONEachRow',
      })
    ).json<{ id: string; amount_minor: string }>();
    // Int64 comes back quoted (a string), so no precision is lost on the way.
    expect(rows).toEqual([
      { id: 'a', amount_minor: '1' },
      { id: 'b', amount_minor: '9007199254740' },
    ]);
  } finally {
    await client.command({ query: `DROP TABLE IF EXISTS ${table}` });
    await client.close();
  }
});

test('prometheus: scrapes a prom-client endpoint of this process; the series appears in its query API', async () => {
  const registry = new Registry();
  const metric = `holdback_smoke_${run}_total`;
  const counter = new Counter({ name: metric, help: 'smoke test', registers: [registry] });
  counter.inc(42);
  const server = await startMetricsServer({
    registry,
    host: e.host,
    port: 0,
    service: 'smoke-test',
    scrapeTargetsDir: scrapeTargetsDir(),
  });
  try {
    const deadline = Date.now() + 40_000;
    let value: string | undefined;
    while (Date.now() < deadline && value === undefined) {
      const res = await fetch(`${e.prometheusUrl}/api/v1/query?query=${encodeURIComponent(metric)}`);
      const body = (await res.json()) as { data: { result: Array<{ value: [number, string] }> } };
      value = body.data.result[0]?.value[1];
      if (value === undefined) await new Promise((r) => setTimeout(r, 500));
    }
    expect(value).toBe('42');
  } finally {
    await server.close();
  }
}, 60_000);
