/**
 * `holdback dlq inspect | replay`: a dead letter is never a dead end. inspect lists what was
 * rejected and why; replay re-publishes chosen dead letters' original bytes to their source topic
 * after a fix (a schema registered, a currency added, a processor corrected). Replay needs the
 * payload: processors keep it with `--dlq-payload`; otherwise only its SHA-256 is there and the
 * producer must re-send. Replayed records are ordinary input again: if they are still bad they
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
import { parseFlags } from '../../connectors/flags';
import { SKIP_REQUEST } from '../../runtime/skip-command';
import { fitId } from '../../processors/ids';
import { isProcessorReasonCode } from '../../schemas/reason-codes';
import type { Command } from '../main';

const HELP = `usage: holdback dlq <inspect|replay> [filters] [options]
       holdback dlq skip --processor-url URL --partition P --topic T --offset O --note TEXT

filters (all optional, combined with AND):
  --reason CODE            only this reason code (docs/reason-codes.md)
  --source-topic TOPIC     only dead letters from this topic
  --offset P:O[,P:O...]    only these DLQ partition:offset positions
options:
  --topic-prefix P         the prefix the processors run with (default none)
  --limit N                inspect: show at most N (default 50)
  --json                   inspect: one JSON object per line
  --dry-run                replay: say what would be sent, send nothing

skip: a partition stopped on a broken invariant (HoldbackPartitionStopped): after judging the
record it names (/health: stoppedAt), move that one record to the DLQ as OPERATOR_SKIPPED and let
the partition go on. --processor-url is the instance's metrics URL (its "starting" log line).`;

export interface DeadLetterEntry {
  partition: number;
  offset: number;
  key: Buffer | null;
  letter: DeadLetter;
}

interface Filters {
  reason?: string;
  sourceTopic?: string;
  offsets?: Set<string>;
}

function parse(args: string[]): { filters: Filters; flags: Map<string, string> } {
  const flags = new Map<string, string>();
  const known = [
    '--reason',
    '--source-topic',
    '--offset',
    '--topic-prefix',
    '--limit',
    '--json',
    '--dry-run',
  ];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const [name, inline] = a.includes('=')
      ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]
      : [a, undefined];
    if (!known.includes(name)) throw new Error(`unknown option ${name}\n${HELP}`);
    if (name === '--json' || name === '--dry-run') flags.set(name, 'true');
    else {
      const value = inline ?? args[++i];
      if (value === undefined) throw new Error(`${name} needs a value`);
      flags.set(name, value);
    }
  }
  const offsets = flags.get('--offset');
  return {
    filters: {
      reason: flags.get('--reason'),
      sourceTopic: flags.get('--source-topic'),
      offsets: offsets ? new Set(offsets.split(',').map((s) => s.trim())) : undefined,
    },
    flags,
  };
}

function matches(e: DeadLetterEntry, f: Filters): boolean {
  return (
    (f.reason === undefined || e.letter.reason_code === f.reason) &&
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

export const command: Command = {
  summary: 'inspect and replay dead letters',
  async run(args) {
    const [verb, ...rest] = args;
    if (verb === 'skip') return skip(rest);
    if (verb !== 'inspect' && verb !== 'replay') {
      console.log(HELP);
      return verb === '--help' ? 0 : 2;
    }
    const { filters, flags } = parse(rest);
    if (verb === 'replay' && !filters.reason && !filters.sourceTopic && !filters.offsets) {
      console.error('holdback dlq replay: choose what to replay with --reason, --source-topic or --offset');
      return 2;
    }
    const c = loadConnections();
    const prefix = flags.get('--topic-prefix') ?? '';
    await checkKafka(c.kafka, 'holdback-dlq');
    const kafka = new Kafka(kafkajsConfig(c.kafka, 'holdback-dlq', { logLevel: logLevel.NOTHING }));
    const registry = new SchemaRegistryClient(registryOptions(c.registry));
    const codec = new Codec({ source: registry, schemaIds: await registry.lookupAll() });
    const chosen = (await readDeadLetters(kafka, codec, prefix)).filter((x) => matches(x, filters));

    if (verb === 'inspect') {
      const limit = Number(flags.get('--limit') ?? 50);
      if (flags.has('--json')) {
        for (const x of chosen.slice(0, limit)) {
          const { payload, ...rest } = x.letter;
          console.log(
            JSON.stringify({ dlq: `${x.partition}:${x.offset}`, ...rest, payload_kept: payload !== null }),
          );
        }
        return 0;
      }
      const byReason = new Map<string, number>();
      for (const x of chosen)
        byReason.set(x.letter.reason_code, (byReason.get(x.letter.reason_code) ?? 0) + 1);
      console.log(`${chosen.length} dead letters${[...byReason].map(([r, n]) => `, ${r}: ${n}`).join('')}`);
      for (const x of chosen.slice(0, limit)) {
        const l = x.letter;
        console.log(
          `${`${x.partition}:${x.offset}`.padEnd(10)} ${new Date(l.failed_at).toISOString()} ${l.reason_code.padEnd(24)} ` +
            `${l.source_topic}/${l.partition}@${l.offset} ${l.payload ? 'payload' : 'hash-only'}  ${l.detail}`,
        );
      }
      if (chosen.length > limit) console.log(`... ${chosen.length - limit} more (--limit)`);
      return 0;
    }

    const replayable = chosen.filter((x) => x.letter.payload !== null);
    const missing = chosen.length - replayable.length;
    if (missing > 0) {
      console.error(
        `${missing} of ${chosen.length} chosen dead letters kept no payload (processors run without --dlq-payload): ` +
          'ask the producer to re-send them; their SHA-256 identifies them.',
      );
    }
    if (flags.has('--dry-run')) {
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
  },
};

const SKIP_FLAGS = SKIP_REQUEST.extend({ processorUrl: z.url() });

/** `holdback dlq skip`: asks the processor instance that owns the stopped partition to skip its record. */
async function skip(args: readonly string[]): Promise<number> {
  if (args.includes('--help')) {
    console.log(HELP);
    return 0;
  }
  const { processorUrl, ...request } = parseFlags(SKIP_FLAGS, args);
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
