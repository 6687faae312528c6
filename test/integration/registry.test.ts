/**
 * The schema registry client and the codec against the real registry of the local stack
 * (Apicurio Registry, Confluent-compatible API at loadEndpoints().registryUrl): registration
 * with BACKWARD set per subject, a backward-compatible v2 decoded next to v1, a breaking change
 * refused with its reasons, and outages (refused, black-holed, 5xx) that throw rather than
 * dead-letter. Subjects carry a run id, so reruns never collide.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server, type Socket } from 'node:net';
import * as avro from 'avsc';
import { Codec, RegistryUnavailableError } from '../../connectors/codec';
import { loadEndpoints } from '../../connectors/endpoints';
import { IncompatibleSchemaError, SchemaRegistryClient } from '../../connectors/registry';
import { RECORD_SCHEMAS, schemaText } from '../../schemas/contract';
import type { PayoutEvent } from '../../schemas/generated/types';
import { TOPICS, TOPIC_SPECS, subjectOf, type TopicName } from '../../schemas/topics';

jest.setTimeout(30_000);

const RUN = `it-${Date.now().toString(36)}-${process.pid}`;
const subjectFor = (topic: TopicName): string => `${RUN}.${subjectOf(topic)}`;
const url = loadEndpoints().registryUrl;
const client = new SchemaRegistryClient({ url, subjectFor });

const NOW = Date.UTC(2026, 10, 22, 12);
const payout: PayoutEvent = {
  event_id: 'evt-pay-1',
  merchant_id: 'mer-42',
  payout_id: 'po-1',
  type: 'SETTLED',
  gross_amount_minor: 250_000,
  withheld_minor: 25_000,
  currency: 'EUR',
  occurred_at: NOW - 60_000,
};

const v1 = RECORD_SCHEMAS.PayoutEvent;
const withField = (field: object) => JSON.stringify({ ...v1, fields: [...v1.fields, field] });
const V2_OPTIONAL = withField({ name: 'channel', type: ['null', 'string'], default: null });
const V2_REQUIRED = withField({ name: 'channel', type: 'string' });
const V2_TYPE_CHANGE = JSON.stringify({
  ...v1,
  fields: v1.fields.map((f) => (f.name === 'currency' ? { ...f, type: 'int' } : f)),
});

function frame(id: number, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeInt32BE(id, 1);
  return Buffer.concat([header, body]);
}

async function getJson(path: string): Promise<unknown> {
  const res = await fetch(`${url}${path}`);
  return res.json();
}

// Leave the shared registry as it was: delete this run's subjects (soft, then permanently).
afterAll(async () => {
  const subjects = (await getJson('/subjects')) as string[];
  for (const subject of subjects.filter((s) => s.startsWith(`${RUN}.`))) {
    for (const query of ['', '?permanent=true']) {
      await fetch(`${url}/subjects/${encodeURIComponent(subject)}${query}`, { method: 'DELETE' });
    }
  }
});

describe('registration', () => {
  test('registers every subject with BACKWARD set on the subject itself, idempotently', async () => {
    const globalBefore = await getJson('/config');
    const ids = await client.registerAll();
    expect(Object.keys(ids).sort()).toEqual(TOPIC_SPECS.map((s) => s.name).sort());
    for (const spec of TOPIC_SPECS) {
      const subject = encodeURIComponent(subjectFor(spec.name));
      expect(await getJson(`/config/${subject}`)).toMatchObject({ compatibilityLevel: 'BACKWARD' });
      expect(await getJson(`/subjects/${subject}/versions/latest`)).toMatchObject({ id: ids[spec.name] });
    }
    expect(await getJson('/config')).toEqual(globalBefore);
    expect(await client.registerAll()).toEqual(ids);
    expect(await client.lookupAll()).toEqual(ids);
  });

  test('check finds every local schema registered, compatible and BACKWARD', async () => {
    const ids = await client.registerAll();
    const checks = await client.checkAll();
    expect(
      checks.map((c) => [c.topic, c.compatibilityLevel, c.compatible, c.registeredId, c.problems]),
    ).toEqual(TOPIC_SPECS.map((s) => [s.name, 'BACKWARD', true, ids[s.name], []]));
  });

  test('the registry serves a registered schema by id, as the codec needs it', async () => {
    const ids = await client.registerAll();
    const fetched = JSON.parse(await client.getSchemaById(ids[TOPICS.payouts])) as {
      name: string;
      fields: unknown[];
    };
    expect(fetched.name).toBe('holdback.v1.PayoutEvent');
    expect(
      avro.Type.forSchema(fetched as avro.Schema).equals(avro.Type.forSchema(v1 as unknown as avro.Schema)),
    ).toBe(true);
  });
});

describe('evolution', () => {
  test('a backward-compatible v2 is accepted, and v1 and v2 records decode side by side', async () => {
    const subject = `${RUN}.evolution-value`;
    const v1Id = await client.register(subject, schemaText('PayoutEvent'));
    expect(await client.checkCompatibility(subject, V2_OPTIONAL)).toEqual({
      subject,
      exists: true,
      compatibilityLevel: 'BACKWARD',
      compatible: true,
      explanation: [],
    });
    const v2Id = await client.register(subject, V2_OPTIONAL);
    expect(v2Id).not.toBe(v1Id);

    // The codec knows v1 (the local schema); v2 is fetched from the registry on first sight.
    const codec = new Codec({ source: client, schemaIds: { [TOPICS.payouts]: v1Id } });
    const v1Bytes = codec.encode(TOPICS.payouts, payout);
    const v2Bytes = frame(
      v2Id,
      avro.Type.forSchema(JSON.parse(V2_OPTIONAL) as avro.Schema).toBuffer({ ...payout, channel: 'app' }),
    );
    expect(codec.tryDecodeCached(TOPICS.payouts, 'mer-42', v2Bytes, NOW)).toBeUndefined();
    const [r1, r2] = await Promise.all([
      codec.decode(TOPICS.payouts, 'mer-42', v1Bytes, NOW),
      codec.decode(TOPICS.payouts, 'mer-42', v2Bytes, NOW),
    ]);
    expect(r1).toEqual({ ok: true, value: payout, schemaId: v1Id });
    expect(r2).toEqual({ ok: true, value: payout, schemaId: v2Id });
    expect(codec.tryDecodeCached(TOPICS.payouts, 'mer-42', v2Bytes, NOW)).toEqual(r2);
  });

  test.each([
    ['a new required field without a default', V2_REQUIRED, /field channel is new and has no default/],
    ['a type change', V2_TYPE_CHANGE, /field currency changed from "string" to "int"/],
  ])('%s is refused, with the reason', async (_name, breaking, reason) => {
    const subject = `${RUN}.breaking-${breaking.length}-value`;
    const v1Id = await client.register(subject, schemaText('PayoutEvent'));

    const report = await client.checkCompatibility(subject, breaking);
    expect(report).toMatchObject({ exists: true, compatibilityLevel: 'BACKWARD', compatible: false });
    expect(report.explanation.join('\n')).toMatch(reason);

    const refused = await client.register(subject, breaking).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(IncompatibleSchemaError);
    const explanation = (refused as IncompatibleSchemaError).explanation.join('\n');
    expect(explanation).toMatch(/^registry: .*Incompatible/);
    expect(explanation).toMatch(reason);
    expect(await getJson(`/subjects/${encodeURIComponent(subject)}/versions/latest`)).toMatchObject({
      id: v1Id,
    });
  });
});

describe('what the registry answers about ids is data; no answer is an outage', () => {
  test('an id the registry does not have is UNKNOWN_SCHEMA_ID', async () => {
    await expect(client.getSchemaById(2_000_000_000)).rejects.toMatchObject({
      reasonCode: 'UNKNOWN_SCHEMA_ID',
    });
    const codec = new Codec({ source: client });
    const body = avro.Type.forSchema(v1 as unknown as avro.Schema).toBuffer(payout);
    expect(await codec.decode(TOPICS.payouts, 'mer-42', frame(2_000_000_000, body), NOW)).toMatchObject({
      ok: false,
      reasonCode: 'UNKNOWN_SCHEMA_ID',
    });
  });

  const servers: Array<Server | HttpServer> = [];
  const sockets: Socket[] = [];
  afterAll(async () => {
    sockets.forEach((s) => s.destroy());
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  });

  async function listen(server: Server | HttpServer): Promise<string> {
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    return `http://127.0.0.1:${port}/apis/ccompat/v7`;
  }

  async function refusedUrl(): Promise<string> {
    const server = createServer();
    const address = await listen(server);
    await new Promise((resolve) => server.close(resolve));
    servers.pop();
    return address;
  }

  const unavailable = async (registryUrl: string): Promise<void> => {
    const down = new SchemaRegistryClient({
      url: registryUrl,
      requestTimeoutMs: 300,
      retry: { initialDelayMs: 20, maxTotalMs: 1_000 },
    });
    await expect(down.getSchemaById(1)).rejects.toBeInstanceOf(RegistryUnavailableError);
    const codec = new Codec({ source: down });
    const bytes = frame(1, avro.Type.forSchema(v1 as unknown as avro.Schema).toBuffer(payout));
    await expect(codec.decode(TOPICS.payouts, 'mer-42', bytes, NOW)).rejects.toBeInstanceOf(
      RegistryUnavailableError,
    );
    const started = Date.now();
    await expect(down.registerAll()).rejects.toBeInstanceOf(RegistryUnavailableError);
    expect(Date.now() - started).toBeLessThan(3_000);
  };

  test('connection refused', async () => {
    await unavailable(await refusedUrl());
  });

  test('a registry that accepts connections and never answers', async () => {
    await unavailable(await listen(createServer((socket) => sockets.push(socket))));
  });

  test('a registry that answers 503', async () => {
    const server = createHttpServer((_req, res) => {
      res.writeHead(503, { 'Content-Type': 'application/json' });
      res.end('{"error_code":50003,"message":"unavailable"}');
    });
    await unavailable(await listen(server));
  });
});
