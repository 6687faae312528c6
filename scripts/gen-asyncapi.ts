/**
 * Generates docs/asyncapi.yaml, an AsyncAPI 3.0.0 document of every topic of the contract, so
 * integrators can load it into their own tools. Driven entirely by TOPIC_SPECS (schemas/topics.ts)
 * and the .avsc files: a topic added there appears here after `npm run gen:asyncapi`, and a unit
 * test (test/unit/asyncapi.test.ts) fails while the committed file is stale. The prose follows
 * docs/contract.md, which binds; this file only describes it. Output is deterministic: topics in
 * TOPIC_SPECS order, keys in a fixed order, no timestamps.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { loadEndpoints } from '../connectors/endpoints';
import { TOPIC_SPECS, subjectOf, type TopicSpec } from '../schemas/topics';

const ROOT = join(__dirname, '..');
const SCHEMA_DIR = join(ROOT, 'schemas');
export const ASYNCAPI_FILE = join(ROOT, 'docs', 'asyncapi.yaml');

export const AVRO_SCHEMA_FORMAT = 'application/vnd.apache.avro;version=1.9.0';
const KAFKA_BINDING_VERSION = '0.5.0';
const SERVER = 'local';

/** The .avsc file of a record, parsed: the payload schema exactly as written in schemas/. */
export function readAvsc(record: string): Record<string, unknown> {
  return JSON.parse(readFileSync(join(SCHEMA_DIR, `${record}.avsc`), 'utf8')) as Record<string, unknown>;
}

/**
 * The contract's version: the highest of docs/contract.md's title ("contract, v1") and the
 * "## Contract vX.Y" headings of schemas/CHANGES.md, as semver.
 */
export function contractVersion(): string {
  const texts = [
    readFileSync(join(ROOT, 'docs', 'contract.md'), 'utf8').match(/^# .*contract, v(\d+)(?:\.(\d+))?/m),
    ...readFileSync(join(SCHEMA_DIR, 'CHANGES.md'), 'utf8').matchAll(/^## Contract v(\d+)(?:\.(\d+))?/gm),
  ];
  const versions = texts
    .filter((m): m is RegExpMatchArray => m !== null)
    .map((m) => [Number(m[1]), Number(m[2] ?? 0)] as const)
    .sort((a, b) => b[0] - a[0] || b[1] - a[1]);
  const top = versions[0];
  if (!top) throw new Error('no contract version in docs/contract.md or schemas/CHANGES.md');
  return `${top[0]}.${top[1]}.0`;
}

/** A JSON pointer fragment to a map entry: `~` and `/` escaped (RFC 6901). */
function ref(...path: string[]): { $ref: string } {
  return { $ref: `#/${path.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}` };
}

function keyDescription(spec: TopicSpec): string {
  if (spec.keyField === '') {
    return (
      "The source record's key, byte for byte (for the contract's inputs the UTF-8 bytes of " +
      'merchant_id); absent when the source record had none. No key schema: keys are not Avro and ' +
      'are not registered.'
    );
  }
  return `The UTF-8 bytes of ${spec.keyField}. No key schema: keys are not Avro and are not registered.`;
}

function partitioning(spec: TopicSpec): string {
  if (spec.role === 'input') {
    return (
      `Producers must choose the partition from the key with murmur2, like the Java client's default ` +
      `partitioner (toPositive(murmur2(key)) % partitions), and every input topic has the same ` +
      `partition count (co-partitioned by merchant_id), so one Holdback task sees all of a ` +
      `merchant's events. A record in another partition goes to the DLQ as WRONG_PARTITION.`
    );
  }
  if (spec.keyField === '') {
    return (
      `Holdback writes each record to the partition the rejected record came from (its partition ` +
      `field); the topic has the inputs' partition count. Do not compute the partition from the key.`
    );
  }
  const notFromKey =
    spec.keyField === 'merchant_id'
      ? ''
      : ` That partition is not derived from this topic's key: do not compute it from the key.`;
  return (
    `Holdback writes each record to the partition of the input record it was derived from, that is ` +
    `the merchant's partition; the topic has the inputs' partition count.${notFromKey}`
  );
}

function compaction(spec: TopicSpec): string {
  const key = spec.keyField === '' ? 'key' : spec.keyField;
  return spec.compacted
    ? `Compacted (cleanup.policy=compact): Kafka keeps at least the latest ${spec.record} per ${key}, so ` +
        `the topic reads as a table of the latest value per key.`
    : `Not compacted (cleanup.policy=delete): every record is an event, kept for the topic's retention.`;
}

function producedBy(spec: TopicSpec): string {
  return spec.role === 'input'
    ? 'Produced by the platform or the lender; consumed by Holdback.'
    : 'Produced by Holdback in Kafka transactions (exactly once). Read it with ' +
        'isolation.level=read_committed: read_uncommitted also returns records of aborted transactions.';
}

function channel(spec: TopicSpec, doc: string): Record<string, unknown> {
  const description = [
    doc,
    producedBy(spec),
    `Key: ${keyDescription(spec)}`,
    `Partitioning: ${partitioning(spec)}`,
    compaction(spec),
  ].join('\n\n');
  return {
    address: spec.name,
    title: `${spec.name} (${spec.role})`,
    description,
    messages: { [spec.record]: ref('components', 'messages', spec.record) },
    bindings: {
      kafka: {
        topic: spec.name,
        topicConfiguration: { 'cleanup.policy': [spec.compacted ? 'compact' : 'delete'] },
        bindingVersion: KAFKA_BINDING_VERSION,
      },
    },
  };
}

function message(spec: TopicSpec, schema: Record<string, unknown>, doc: string): Record<string, unknown> {
  const subject = subjectOf(spec.name);
  return {
    name: spec.record,
    title: spec.record,
    summary: doc,
    description: [
      `Value: Avro binary in the Confluent wire format: magic byte 0, the 4-byte big-endian schema id, ` +
        `then the Avro body. The schema is registered under the subject \`${subject}\` (TopicNameStrategy) ` +
        `with BACKWARD compatibility; the payload below is that schema, schemas/${spec.record}.avsc.`,
      `Amounts are long minor units with an ISO 4217 currency; times are long milliseconds since the ` +
        `epoch (timestamp-millis). The meaning of every field is bound by docs/contract.md.`,
    ].join('\n\n'),
    contentType: 'avro/binary',
    payload: { schemaFormat: AVRO_SCHEMA_FORMAT, schema },
    bindings: {
      kafka: {
        key: { type: 'string', description: keyDescription(spec) },
        schemaIdLocation: 'payload',
        schemaIdPayloadEncoding: 'confluent',
        schemaLookupStrategy: 'TopicNameStrategy',
        bindingVersion: KAFKA_BINDING_VERSION,
      },
    },
  };
}

function operation(
  spec: TopicSpec,
  schema: Record<string, unknown>,
  doc: string,
): [string, Record<string, unknown>] {
  const fields = Array.isArray(schema['fields']) ? (schema['fields'] as Array<{ name?: unknown }>) : [];
  const idempotency = fields.some((f) => f.name === 'event_id')
    ? ' The same event_id sent twice is one event.'
    : '';
  const subject = subjectOf(spec.name);
  const key = spec.keyField === '' ? "the source record's key" : `the UTF-8 ${spec.keyField}`;
  if (spec.role === 'input') {
    return [
      `send${spec.record}`,
      {
        action: 'send',
        channel: ref('channels', spec.name),
        title: `Produce ${spec.record} to ${spec.name}`,
        summary: doc,
        description:
          `The platform or the lender produces ${spec.record} records: value in the Confluent wire ` +
          `format under the subject \`${subject}\`, key ${key}, partition murmur2(key) like the Java ` +
          `client. Produce each partition in event-time order.${idempotency}`,
        messages: [ref('channels', spec.name, 'messages', spec.record)],
      },
    ];
  }
  return [
    `receive${spec.record}`,
    {
      action: 'receive',
      channel: ref('channels', spec.name),
      title: `Read ${spec.record} from ${spec.name}`,
      summary: doc,
      description:
        `Read with isolation.level=read_committed: Holdback writes ${spec.name} in Kafka transactions, ` +
        `and a read_uncommitted consumer also sees records of aborted transactions, which Holdback ` +
        `writes again after recovering. Values in the Confluent wire format under the subject ` +
        `\`${subject}\`; key ${key}.`,
      messages: [ref('channels', spec.name, 'messages', spec.record)],
    },
  ];
}

/** The AsyncAPI document, as an object. */
export function asyncApiDocument(): Record<string, unknown> {
  const endpoints = loadEndpoints({}); // the local stack's defaults, whatever this shell sets
  const otherKeys = TOPIC_SPECS.filter((s) => s.keyField !== '' && s.keyField !== 'merchant_id').map(
    (s) => `${s.keyField} on ${s.name}`,
  );
  const dlqs = TOPIC_SPECS.filter((s) => s.keyField === '').map((s) => s.name);
  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  const messages: Record<string, unknown> = {};
  for (const spec of TOPIC_SPECS) {
    if (spec.record in messages) throw new Error(`record ${spec.record} is carried by two topics`);
    const schema = readAvsc(spec.record);
    const doc = typeof schema['doc'] === 'string' ? schema['doc'] : spec.record;
    channels[spec.name] = channel(spec, doc);
    const [id, op] = operation(spec, schema, doc);
    operations[id] = op;
    messages[spec.record] = message(spec, schema, doc);
  }
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'Holdback public contract',
      version: contractVersion(),
      description: [
        'Every Kafka topic of the Holdback contract: the inputs a platform or lender produces and ' +
          'the outputs Holdback produces, their Avro records, keys, partitioning and compaction.',
        'The binding rules are in docs/contract.md (fields, repayment rules, time order) and how to ' +
          'integrate in docs/integration.md; every change is recorded in schemas/CHANGES.md. Values are ' +
          'Avro in the Confluent wire format, registered under `<topic>-value` (TopicNameStrategy) with ' +
          'BACKWARD compatibility. Keys are the UTF-8 bytes of merchant_id' +
          (otherKeys.length > 0 ? ` (${otherKeys.join(', ')})` : '') +
          ' with no key schema' +
          (dlqs.length > 0 ? `; ${dlqs.join(', ')} is keyed by the source record's key.` : '.'),
        'Generated by scripts/gen-asyncapi.ts from schemas/topics.ts and schemas/*.avsc: do not edit, ' +
          'run `npm run gen:asyncapi`.',
      ].join('\n\n'),
      license: { name: 'Apache-2.0', url: 'https://www.apache.org/licenses/LICENSE-2.0' },
    },
    servers: {
      [SERVER]: {
        host: endpoints.kafkaBrokers[0],
        protocol: 'kafka',
        protocolVersion: endpoints.kafkaVersion,
        title: 'The local stack',
        description:
          `The Kafka broker of the local stack (\`holdback stack up\`, docs/stack.md), plaintext on ` +
          `${endpoints.host}. Its schema registry is Apicurio, serving the Confluent-compatible API at ` +
          `${endpoints.registryUrl}. For real deployments see docs/deploy.md.`,
        bindings: {
          kafka: {
            schemaRegistryUrl: endpoints.registryUrl,
            schemaRegistryVendor: 'confluent',
            bindingVersion: KAFKA_BINDING_VERSION,
          },
        },
      },
    },
    channels,
    operations,
    components: { messages },
  };
}

/** The text of docs/asyncapi.yaml. */
export function generate(): string {
  const header =
    '# Generated by scripts/gen-asyncapi.ts from schemas/topics.ts and schemas/*.avsc.\n' +
    '# Do not edit: run `npm run gen:asyncapi`.\n';
  // No anchors or aliases (a shared object is written out each time), no folding of long lines,
  // single quotes like prettier's; the file is in .prettierignore all the same, as generated.
  return (
    header + stringify(asyncApiDocument(), { aliasDuplicateObjects: false, lineWidth: 0, singleQuote: true })
  );
}

if (require.main === module) {
  writeFileSync(ASYNCAPI_FILE, generate());
  console.log('wrote docs/asyncapi.yaml');
}
