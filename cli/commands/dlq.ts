/**
 * `holdback dlq inspect | replay | skip`: a dead letter is never a dead end. inspect lists what was
 * rejected and why; replay re-publishes chosen dead letters' original bytes to their source topic
 * after a fix (a schema registered, a currency added, a processor corrected). Each letter names the
 * processor that wrote it (both read the payouts and loan events), which inspect shows and filters
 * by. Replay needs the payload: processors keep it with `--dlq-payload`; otherwise only its SHA-256
 * is there and the producer must re-send. Replayed records are ordinary input again: if they are still bad they
 * come back to the DLQ, and an event replayed twice is one event (event_id).
 */
import { Kafka, logLevel, type Message } from 'kafkajs';
import { Codec } from '../../connectors/codec';
import { loadConnections, loadMetricsBinding, registryOptions } from '../../connectors/connections';
import { checkKafka, kafkajsConfig } from '../../connectors/kafka-client';
import { readToEnd } from '../../connectors/kafka-read';
import { sendEveryPartition } from '../../connectors/kafka-send';
import { SchemaRegistryClient } from '../../connectors/registry';
import type { DeadLetter } from '../../schemas/generated/types';
import { TOPICS } from '../../schemas/topics';
import { z } from 'zod';
import { OptionError } from '../../connectors/flags';
import { SKIP_REQUEST } from '../../runtime/skip-command';
import { fitId } from '../../processors/ids';
import { isProcessorReasonCode } from '../../schemas/reason-codes';
import { commandModule, HoldbackCommand } from '../program';

export interface DeadLetterEntry {
  partition: number;
  offset: number;
  key: Buffer | null;
  letter: DeadLetter;
}

interface Filters {
  reason?: string;
  processor?: string;
  sourceTopic?: string;
  offsets?: Set<string>;
}

function matches(e: DeadLetterEntry, f: Filters): boolean {
  return (
    (f.reason === undefined || e.letter.reason_code === f.reason) &&
    (f.processor === undefined || e.letter.processor === f.processor) &&
    (f.sourceTopic === undefined || e.letter.source_topic === f.sourceTopic) &&
    (f.offsets === undefined || f.offsets.has(`${e.partition}:${e.offset}`))
  );
}

/** Every dead letter on the DLQ topic (read_committed), in partition and offset order. */
export async function readDeadLetters(
  kafka: Kafka,
  codec: Codec,
  topicPrefix: string,
): Promise<DeadLetterEntry[]> {
  const entries: DeadLetterEntry[] = [];
  await readToEnd(kafka, {
    topic: topicPrefix + TOPICS.dlq,
    groupId: `holdback-dlq-reader-${process.pid}-${Date.now()}`,
    onMessage: (partition, m) => {
      const r = codec.tryDecodeCached(TOPICS.dlq, null, m.value, Date.now());
      if (r?.ok) entries.push({ partition, offset: Number(m.offset), key: m.key, letter: r.value });
      else
        console.error(
          `dlq ${partition}:${m.offset}: cannot read it (${r ? r.reasonCode : 'unknown schema'})`,
        );
    },
  });
  return entries.sort((a, b) => a.partition - b.partition || a.offset - b.offset);
}

const FILTERS = {
  reason: z.string().min(1).optional(),
  sourceTopic: z.string().min(1).optional(),
  offset: z
    .string()
    .regex(/^\s*\d+:\d+\s*(,\s*\d+:\d+\s*)*$/, 'expected partition:offset[,partition:offset...]')
    .optional(),
  topicPrefix: z
    .string()
    .regex(/^[A-Za-z0-9._-]{0,100}$/)
    .default(''),
};
const FILTER_HELP = {
  reason: 'only this reason code (docs/reason-codes.md)',
  sourceTopic: 'only dead letters from this topic',
  offset: 'only these DLQ positions: partition:offset[,partition:offset...]',
  topicPrefix: 'the prefix the processors run with (default none)',
};
const FILTER_PLACEHOLDERS = {
  reason: 'code',
  sourceTopic: 'topic',
  offset: 'p:o[,p:o...]',
  topicPrefix: 'prefix',
};
const INSPECT_OPTIONS = z
  .object({
    ...FILTERS,
    processor: z.string().min(1).optional(),
    limit: z.coerce.number().int().min(0).default(50),
    json: z.stringbool().default(false),
  })
  .strict();
const REPLAY_OPTIONS = z.object({ ...FILTERS, dryRun: z.stringbool().default(false) }).strict();
const SKIP_OPTIONS = SKIP_REQUEST.extend({ processorUrl: z.url() });

type Chosen = z.infer<typeof INSPECT_OPTIONS> | z.infer<typeof REPLAY_OPTIONS>;

function filtersOf(o: Chosen): Filters {
  return {
    reason: o.reason,
    processor: 'processor' in o ? o.processor : undefined,
    sourceTopic: o.sourceTopic,
    offsets: o.offset ? new Set(o.offset.split(',').map((s) => s.trim())) : undefined,
  };
}

const CONNECTIONS = `
Kafka and the schema registry: HOLDBACK_KAFKA_BOOTSTRAP_SERVERS, HOLDBACK_REGISTRY_URL and their
security settings (docs/deploy.md); by default the local stack's.`;

function create(): HoldbackCommand {
  const dlq = new HoldbackCommand('dlq').description(
    'Dead letters are never a dead end: inspect lists what was rejected and why; replay re-publishes ' +
      "chosen dead letters' original bytes to their source topic after a fix; skip lets a partition " +
      'stopped on a broken invariant go on.',
  );
  dlq.operandNoun = 'subcommand';

  const inspect = dlq
    .command('inspect')
    .summary('list dead letters, with their reasons (filters combine with AND)')
    .description(
      'Lists the dead letters on the DLQ topic and why they were rejected; filters combine with AND.',
    );
  const inspectOptions = inspect.schemaOptions(INSPECT_OPTIONS, {
    help: {
      ...FILTER_HELP,
      processor:
        'only dead letters this processor wrote (repayment, eligibility; letters written before contract v1.2 name none)',
      limit: 'show at most this many',
      json: 'one JSON object per line',
    },
    booleans: new Set(['json'] as const),
    placeholder: { ...FILTER_PLACEHOLDERS, processor: 'name' },
  });
  inspect.addHelpText('after', CONNECTIONS).runs(async (cmd) => {
    const o = inspectOptions(cmd);
    const { chosen } = await choose(o);
    if (o.json) {
      for (const x of chosen.slice(0, o.limit)) {
        const { payload, ...rest } = x.letter;
        console.log(
          JSON.stringify({ dlq: `${x.partition}:${x.offset}`, ...rest, payload_kept: payload !== null }),
        );
      }
      return 0;
    }
    const byReason = new Map<string, number>();
    for (const x of chosen) byReason.set(x.letter.reason_code, (byReason.get(x.letter.reason_code) ?? 0) + 1);
    console.log(`${chosen.length} dead letters${[...byReason].map(([r, n]) => `, ${r}: ${n}`).join('')}`);
    for (const x of chosen.slice(0, o.limit)) {
      const l = x.letter;
      console.log(
        `${`${x.partition}:${x.offset}`.padEnd(10)} ${new Date(l.failed_at).toISOString()} ${(l.processor ?? '-').padEnd(11)} ${l.reason_code.padEnd(24)} ` +
          `${l.source_topic}/${l.partition}@${l.offset} ${l.payload ? 'payload' : 'hash-only'}  ${l.detail}`,
      );
    }
    if (chosen.length > o.limit) console.log(`... ${chosen.length - o.limit} more (--limit)`);
    return 0;
  });

  const replay = dlq
    .command('replay')
    .summary("re-publish chosen dead letters' original bytes to their source topic")
    .description(
      "Re-publishes the chosen dead letters' original bytes to their source topic, after a fix (a " +
        'schema registered, a currency added, a processor corrected). It needs the payload: processors ' +
        'keep it with --dlq-payload. Choose with --reason, --source-topic or --offset (at least one). ' +
        'Exits 1 when some chosen dead letters kept no payload.',
    );
  const replayOptions = replay.schemaOptions(REPLAY_OPTIONS, {
    help: { ...FILTER_HELP, dryRun: 'say what would be sent, send nothing' },
    booleans: new Set(['dryRun'] as const),
    placeholder: FILTER_PLACEHOLDERS,
  });
  replay.addHelpText('after', CONNECTIONS).runs(async (cmd) => replayLetters(replayOptions(cmd)));

  const skipCmd = dlq
    .command('skip')
    .summary('move the record a stopped partition is stuck on to the DLQ (OPERATOR_SKIPPED)')
    .description(
      'A partition stopped on a broken invariant (HoldbackPartitionStopped): after judging the record ' +
        'it names (/health: stoppedAt), move that one record to the DLQ as OPERATOR_SKIPPED and let the ' +
        'partition go on. Asks the processor instance that owns the partition.',
    );
  const skipOptions = skipCmd.schemaOptions(SKIP_OPTIONS, {
    help: {
      processorUrl: 'the instance\'s metrics URL (its "starting" log line)',
      partition: 'the stopped input partition',
      topic: 'the contract topic of the record that stopped it (without any --topic-prefix)',
      offset: 'its offset: the record the partition stopped at',
      note: 'why it may go (3 to 500 characters; kept in the dead letter and the log)',
    },
    placeholder: { processorUrl: 'url', topic: 'topic', note: 'text' },
  });
  skipCmd
    .addHelpText(
      'after',
      "\nHOLDBACK_METRICS_TOKEN: the bearer token of the processors' endpoints, when they have one.",
    )
    .runs(async (cmd) => skip(skipOptions(cmd)));
  return dlq;
}

export const command = commandModule(create);

/** The dead letters the options choose, with the Kafka client and codec that read them. */
async function choose(o: Chosen): Promise<{ chosen: DeadLetterEntry[]; kafka: Kafka; codec: Codec }> {
  const c = loadConnections();
  await checkKafka(c.kafka, 'holdback-dlq');
  const kafka = new Kafka(kafkajsConfig(c.kafka, 'holdback-dlq', { logLevel: logLevel.NOTHING }));
  const registry = new SchemaRegistryClient(registryOptions(c.registry));
  const codec = new Codec({ source: registry, schemaIds: await registry.lookupAll() });
  const filters = filtersOf(o);
  const chosen = (await readDeadLetters(kafka, codec, o.topicPrefix)).filter((x) => matches(x, filters));
  return { chosen, kafka, codec };
}

async function replayLetters(o: z.infer<typeof REPLAY_OPTIONS>): Promise<number> {
  if (!o.reason && !o.sourceTopic && !o.offset)
    throw new OptionError('choose what to replay with --reason, --source-topic or --offset');
  const prefix = o.topicPrefix;
  const { chosen, kafka, codec } = await choose(o);
  const replayable = chosen.filter((x) => x.letter.payload !== null);
  const missing = chosen.length - replayable.length;
  if (missing > 0) {
    console.error(
      `${missing} of ${chosen.length} chosen dead letters kept no payload (processors run without --dlq-payload): ` +
        'ask the producer to re-send them; their SHA-256 identifies them.',
    );
  }
  if (o.dryRun) {
    for (const x of replayable)
      console.log(`would replay ${x.partition}:${x.offset} -> ${prefix}${x.letter.source_topic}`);
    return 0;
  }
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const byTopic = new Map<string, Message[]>();
    for (const x of replayable) {
      const topic = prefix + x.letter.source_topic;
      const list = byTopic.get(topic) ?? [];
      // Back to the partition it was read from: beside the same merchant's other events.
      list.push({ key: x.key, value: await replayValue(codec, x), partition: x.letter.partition });
      byTopic.set(topic, list);
    }
    // A kafkajs send may drop a partition's records under a leader move: those are sent again
    // (connectors/kafka-send.ts); a record written twice is one event by its event_id.
    await sendEveryPartition(
      (b) => producer.sendBatch(b),
      [...byTopic].map(([topic, messages]) => ({ topic, messages })),
    );
  } finally {
    await producer.disconnect();
  }
  console.log(`replayed ${replayable.length} dead letters to their source topics`);
  return missing > 0 ? 1 : 0;
}

/** `holdback dlq skip`: asks the processor instance that owns the stopped partition to skip its record. */
async function skip(o: z.infer<typeof SKIP_OPTIONS>): Promise<number> {
  const { processorUrl, ...request } = o;
  // The processors' endpoints take HOLDBACK_METRICS_TOKEN when they are configured with one.
  const token = loadMetricsBinding(process.env).token;
  let res: Response;
  try {
    res = await fetch(new URL('/admin/skip', processorUrl), {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        ...(token !== undefined && { Authorization: `Bearer ${token}` }),
      },
      body: JSON.stringify(request),
    });
  } catch (e) {
    console.error(
      `holdback dlq skip: cannot reach ${processorUrl}: ${e instanceof Error ? e.message : String(e)}`,
    );
    return 1;
  }
  const body = (await res.json().catch(() => ({}))) as { done?: string; error?: string };
  if (res.ok) {
    console.log(body.done);
    return 0;
  }
  console.error(`holdback dlq skip: ${res.status}: ${body.error ?? res.statusText}`);
  return 1;
}

/**
 * What a replay publishes: the original bytes, except for a loan event the repayment processor
 * rejected. That rejection is remembered under its event_id (a redelivery is rejected alike,
 * docs/contract.md "One decision per event"), so an operator's replay, which asks for a new
 * judgement after a fix, gets its own event_id: `<event_id>~replay-<dlq partition>:<offset>`
 * (shortened with its hash past 256 characters). Replaying the same dead letter twice still gives
 * one event.
 */
async function replayValue(codec: Codec, x: DeadLetterEntry): Promise<Buffer> {
  const payload = x.letter.payload!;
  if (x.letter.source_topic !== TOPICS.loanEvents || !isProcessorReasonCode(x.letter.reason_code))
    return payload;
  const decoded = await codec.decode(TOPICS.loanEvents, x.key, payload, Date.now());
  if (!decoded.ok) return payload;
  const event_id = fitId(`${decoded.value.event_id}~replay-${x.partition}:${x.offset}`);
  return codec.encode(TOPICS.loanEvents, { ...decoded.value, event_id });
}
