/**
 * docs/asyncapi.yaml, the AsyncAPI 3 document of every topic (scripts/gen-asyncapi.ts): the
 * committed file is what the generator writes now; the AsyncAPI parser (@asyncapi/parser) parses
 * and validates it with no error, with the Avro schema parser (@asyncapi/avro-schema-parser)
 * registered for the payloads; every topic of TOPIC_SPECS is a channel and every channel a topic,
 * and each message's payload is its .avsc file.
 *
 * Under jest: @asyncapi/parser and @asyncapi/avro-schema-parser publish CommonJS builds (their
 * "main" is cjs/index.js) and so do the dependencies they require, so they load in this
 * project's CommonJS jest setup as they are: no transformIgnorePatterns, no child process.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { DiagnosticSeverity, Parser, type Diagnostic, type ParseOutput } from '@asyncapi/parser';
import { AvroSchemaParser } from '@asyncapi/avro-schema-parser';
import {
  ASYNCAPI_FILE,
  AVRO_SCHEMA_FORMAT,
  asyncApiDocument,
  generate,
  readAvsc,
} from '../../scripts/gen-asyncapi';
import { TOPIC_SPECS } from '../../schemas/topics';

interface Message {
  name: string;
  contentType: string;
  payload: { schemaFormat: string; schema: unknown };
  bindings: { kafka: { key: { type: string; description: string } } };
}
interface Channel {
  address: string;
  messages: Record<string, { $ref: string }>;
  bindings: { kafka: { topic: string; topicConfiguration: { 'cleanup.policy': string[] } } };
}
interface Operation {
  action: 'send' | 'receive';
  channel: { $ref: string };
  description: string;
}
interface Doc {
  asyncapi: string;
  channels: Record<string, Channel>;
  operations: Record<string, Operation>;
  components: { messages: Record<string, Message> };
}

const committed = readFileSync(ASYNCAPI_FILE, 'utf8');
const doc = parseYaml(committed) as Doc;

function errors(diagnostics: Diagnostic[]): string[] {
  return diagnostics
    .filter((d) => d.severity === DiagnosticSeverity.Error)
    .map((d) => `${d.code} at ${d.path.join('.')}: ${d.message}`);
}

/** The component a local `$ref` points at. */
function deref<T>(ref: string): T {
  const path = ref
    .replace(/^#\//, '')
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  return path.reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], doc) as T;
}

describe('docs/asyncapi.yaml', () => {
  const avro = AvroSchemaParser();
  // Without the Avro schema parser, @asyncapi/parser leaves Avro payloads unparsed and unchecked.
  const parser = new Parser({ schemaParsers: [avro] });
  let parsed: ParseOutput;
  beforeAll(async () => {
    parsed = await parser.parse(committed, { source: ASYNCAPI_FILE });
  });

  /** The Avro schema parser's verdict on one payload schema. */
  async function validateAvro(data: unknown, path: string[]): Promise<unknown[]> {
    const result = await avro.validate({
      asyncapi: parsed.document!.meta().asyncapi,
      data,
      meta: {},
      path,
      schemaFormat: AVRO_SCHEMA_FORMAT,
      defaultSchemaFormat: 'application/vnd.aai.asyncapi;version=3.0.0',
    });
    return result ?? [];
  }

  it('is what scripts/gen-asyncapi.ts generates now (if not: run `npm run gen:asyncapi`)', () => {
    // The hint rides along so that the diff of a stale file says how to fix it.
    const fix = 'stale: run `npm run gen:asyncapi` and commit docs/asyncapi.yaml';
    expect([fix, committed]).toEqual([fix, generate()]);
  });

  it('parses and validates with the AsyncAPI parser and the Avro schema parser', async () => {
    expect(avro.getMimeTypes()).toContain(AVRO_SCHEMA_FORMAT);
    const { document, diagnostics } = parsed;
    expect(errors(diagnostics)).toEqual([]);
    expect(document).toBeDefined();
    expect(document!.version()).toBe('3.0.0');
    expect(document!.allChannels().length).toBe(TOPIC_SPECS.length);
    for (const m of document!.allMessages()) {
      expect([m.id(), m.schemaFormat()]).toEqual([m.id(), AVRO_SCHEMA_FORMAT]);
      // The Avro schema parser turned the record into a JSON schema of its fields.
      expect(m.payload()?.type()).toBe('object');
    }
    // @asyncapi/parser 3.6's AsyncAPI 3 ruleset runs the schema parsers' parse() (above) but not
    // their validate() (only its AsyncAPI 2 ruleset does): call it for each payload, so every .avsc
    // is checked by the Avro rules (names, types, defaults) as well.
    for (const [id, message] of Object.entries(doc.components.messages)) {
      const path = ['components', 'messages', id, 'payload', 'schema'];
      expect([id, await validateAvro(message.payload.schema, path)]).toEqual([id, []]);
    }
  });

  it('fails validation when the document or a payload is broken (the checks above can fail)', async () => {
    const broken = asyncApiDocument() as { asyncapi: string; operations: Record<string, { action: string }> };
    Object.values(broken.operations)[0]!.action = 'publish';
    const { diagnostics } = await parser.parse(broken);
    expect(errors(diagnostics).length).toBeGreaterThan(0);

    const record = readAvsc(TOPIC_SPECS[0]!.record) as { fields: Array<{ type: unknown }> };
    record.fields[0]!.type = 'no-such-type';
    expect(await validateAvro(record, [])).not.toEqual([]);
  });

  it('has a channel for every topic of TOPIC_SPECS and no other, each carrying its .avsc', () => {
    const addresses = Object.values(doc.channels).map((c) => c.address);
    expect([...addresses].sort()).toEqual(TOPIC_SPECS.map((s) => s.name).sort());
    for (const spec of TOPIC_SPECS) {
      const channel = Object.values(doc.channels).find((c) => c.address === spec.name)!;
      expect(channel.bindings.kafka.topic).toBe(spec.name);
      expect(channel.bindings.kafka.topicConfiguration['cleanup.policy']).toEqual([
        spec.compacted ? 'compact' : 'delete',
      ]);
      const refs = Object.values(channel.messages);
      expect(refs).toHaveLength(1);
      const message = deref<Message>(refs[0]!.$ref);
      expect(message.name).toBe(spec.record);
      expect(message.payload.schemaFormat).toBe(AVRO_SCHEMA_FORMAT);
      const avsc = JSON.parse(readFileSync(join(__dirname, '../../schemas', `${spec.record}.avsc`), 'utf8'));
      expect(message.payload.schema).toEqual(avsc);
      expect(message.bindings.kafka.key.type).toBe('string');
      expect(message.bindings.kafka.key.description).toContain(
        spec.keyField === '' ? "source record's key" : `UTF-8 bytes of ${spec.keyField}`,
      );
      // The integrator's side: it sends the inputs and receives the outputs, read_committed.
      const ops = Object.values(doc.operations).filter((o) => deref<Channel>(o.channel.$ref) === channel);
      expect(ops.map((o) => o.action)).toEqual([spec.role === 'input' ? 'send' : 'receive']);
      if (spec.role === 'output') expect(ops[0]!.description).toContain('isolation.level=read_committed');
    }
  });

  it('describes every .avsc file of schemas/ as a message', () => {
    const files = readdirSync(join(__dirname, '../../schemas'))
      .filter((f) => f.endsWith('.avsc'))
      .map((f) => f.replace(/\.avsc$/, ''))
      .sort();
    expect(Object.keys(doc.components.messages).sort()).toEqual(files);
  });
});
