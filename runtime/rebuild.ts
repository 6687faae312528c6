/**
 * Rebuilding a processor's state from its inputs, for `holdback rebuild`
 * (docs/runbooks/startup/ChangelogLost.md): when a changelog was lost, its application cannot
 * start (runtime/internal-topics.ts), and deleting the group's offsets would republish every
 * decision. A rebuild instead runs the processor under a fresh application id from the inputs'
 * earliest offsets up to exactly where the old group committed (RuntimeOptions.stopAt), with its
 * outputs to shadow topics beside the published ones, and compares the two. When they match, the
 * fresh application id holds the old one's state at the old one's offsets: started as the
 * processor's application id, it goes on where the old one stopped, publishing nothing twice.
 *
 * Exact only when the old group's outputs are exactly those of its committed inputs
 * (exactly_once) and every input still holds its whole history: both are checked.
 */
import type { Admin, KafkaConfig } from 'kafkajs';
import { changelogTopic } from './runtime-base';
import { committedPartitions } from './internal-topics';
import { openWatermarkClient } from './rdkafka-runtime';
import { sleep } from '../connectors/backoff';
import { whileRetriable } from '../connectors/kafka-read';
import { TOPICS } from '../schemas/topics';

/** A reason a rebuild cannot start, or cannot be exact; the message says what to do. */
export class RebuildError extends Error {
  override readonly name = 'RebuildError';
}

export interface RebuildTopics {
  /** The processor's input topics (contract names). */
  readonly inputs: readonly string[];
  /** Its output topics and the DLQ (contract names). */
  readonly outputs: readonly string[];
  /** Prefix of the published topics (inputs and outputs). */
  readonly topicPrefix: string;
  /** Prefix of the shadow outputs the rebuild writes. */
  readonly outputPrefix: string;
  /** The application id whose state is rebuilt (its group's committed offsets are the bounds). */
  readonly from: string;
  /** The fresh application id the state is rebuilt into. */
  readonly applicationId: string;
}

/** Stop bounds keyed `<contract topic>/<partition>`, as RuntimeOptions.stopAt takes them. */
export type StopBounds = Map<string, number>;

/**
 * The old group's committed input offsets, after the checks that make a rebuild exact: a group
 * to rebuild, a fresh target, inputs with their whole history, no shadow topic left over.
 */
export async function rebuildBounds(admin: Admin, t: RebuildTopics): Promise<StopBounds> {
  if (t.from === t.applicationId) {
    throw new RebuildError(`--application-id must be a new id, not the one rebuilt (${t.from})`);
  }
  const inputs = t.inputs.map((i) => t.topicPrefix + i);
  const committed = await committedPartitions(admin, t.from, inputs);
  if (committed.length === 0) {
    throw new RebuildError(
      `group ${t.from} has committed no offset on ${inputs.join(', ')}: there is no state to rebuild ` +
        '(start the processor as usual, or check --from and --topic-prefix)',
    );
  }
  if ((await committedPartitions(admin, t.applicationId, inputs)).length > 0) {
    throw new RebuildError(
      `group ${t.applicationId} has committed offsets already: choose an application id never used`,
    );
  }
  const existing = new Set(await whileRetriable(() => admin.listTopics()));
  const leftOver = [changelogTopic(t.applicationId), ...t.outputs.map((o) => t.outputPrefix + o)].filter(
    (n) => existing.has(n),
  );
  if (leftOver.length > 0) {
    throw new RebuildError(
      `${leftOver.join(', ')} exist already: an earlier rebuild into ${t.applicationId}? ` +
        'Choose another application id, or delete them (kafka-topics.sh --delete --topic ...)',
    );
  }
  for (const topic of inputs) {
    for (const p of await whileRetriable(() => admin.fetchTopicOffsets(topic))) {
      if (Number(p.low) > 0) {
        throw new RebuildError(
          `${topic} partition ${p.partition} starts at offset ${p.low}: the records before it are ` +
            'gone (retention or deleted records), so the state cannot be rebuilt from the inputs. ' +
            'Restore the changelog instead (docs/runbooks/startup/ChangelogLost.md)',
        );
      }
    }
  }
  const bounds: StopBounds = new Map();
  for (const c of committed) bounds.set(`${c.topic.slice(t.topicPrefix.length)}/${c.partition}`, c.offset);
  return bounds;
}

/** Input partitions whose committed offset in `from` is no longer the bound (the old group ran on). */
export async function boundsMoved(admin: Admin, t: RebuildTopics, bounds: StopBounds): Promise<string[]> {
  const now = await committedPartitions(
    admin,
    t.from,
    t.inputs.map((i) => t.topicPrefix + i),
  );
  const moved: string[] = [];
  for (const c of now) {
    const key = `${c.topic.slice(t.topicPrefix.length)}/${c.partition}`;
    if (bounds.get(key) !== c.offset) moved.push(`${key}: ${bounds.get(key) ?? 'none'} -> ${c.offset}`);
  }
  return moved;
}

/**
 * How long `awaitSettled` waits for open transactions to end: well above the engines'
 * transaction timeout (the session timeout, at least 10 s) and the broker's 10 s sweep of expired ones.
 */
export const SETTLE_TIMEOUT_MS = 90_000;

/**
 * Until no transaction is open on `topics`: each partition's last stable offset (what a
 * read_committed reader reads to) has reached its high watermark. A transaction's commit returns
 * once the coordinator logged it; its markers reach the partitions after that. A reader started
 * at once stops at the old stable offset and misses the last transaction: a rebuild read that way
 * reported 117 of 548 rebuilt deductions missing (CI, 2026-12-04). Open transactions of stopped
 * writers end within the transaction timeout, so a timeout here means a writer still runs.
 */
export async function awaitSettled(
  admin: Admin,
  kafka: KafkaConfig,
  topics: readonly string[],
  timeoutMs = SETTLE_TIMEOUT_MS,
): Promise<void> {
  const giveUpAt = Date.now() + timeoutMs;
  const client = await openWatermarkClient(kafka);
  try {
    for (const topic of topics) {
      for (;;) {
        const stable = await whileRetriable(() => admin.fetchTopicOffsets(topic));
        const high = await client.highWatermarks(
          topic,
          stable.map((p) => p.partition),
        );
        const open = stable.filter((p) => Number(p.offset) < (high.get(p.partition) ?? 0));
        if (open.length === 0) break;
        if (Date.now() >= giveUpAt) {
          const p = open[0]!;
          throw new RebuildError(
            `${topic}/${p.partition} still has an open transaction after ${timeoutMs / 1000} s ` +
              `(stable offset ${p.offset}, high watermark ${high.get(p.partition)}): ` +
              'a writer of it still runs; stop it and rebuild again',
          );
        }
        await sleep(100);
      }
    }
  } finally {
    await client.close();
  }
}

/**
 * Fields stamped with the wall clock of the step that made them (ctx.now under --clock=wall,
 * and a dead letter's failed_at always): they differ between any two runs, so are not compared.
 */
export const AS_OF_WALL: Readonly<Record<string, readonly string[]>> = {
  [TOPICS.deductions]: ['decided_at'],
  [TOPICS.loanStates]: ['updated_at', 'projected_period_collected_minor'],
  [TOPICS.settlements]: ['decided_at', 'first_withheld_decided_at'],
  [TOPICS.payoutDecisions]: ['decided_at'],
  [TOPICS.eligibility]: ['computed_at'],
};
const ALWAYS_WALL: Readonly<Record<string, readonly string[]>> = { [TOPICS.dlq]: ['failed_at'] };

/**
 * The published records of `topic` as compared with a rebuild of `processor`: a dead letter
 * written before contract v1.2 names no processor (null) and is compared as if `processor` had
 * written it, so that an upgrade alone does not make a rebuild differ. Other records as they are.
 */
export function asPublishedBy(topic: string, records: readonly unknown[], processor: string): unknown[] {
  if (topic !== TOPICS.dlq) return [...records];
  return records.map((r) =>
    r !== null && typeof r === 'object' && (r as { processor?: unknown }).processor == null
      ? { ...r, processor }
      : r,
  );
}

/** What is compared on `topic` under the given clock. */
export function ignoredFields(topic: string, clock: 'wall' | 'stream'): readonly string[] {
  return [...(clock === 'wall' ? (AS_OF_WALL[topic] ?? []) : []), ...(ALWAYS_WALL[topic] ?? [])];
}

export interface TopicComparison {
  readonly topic: string;
  readonly published: number;
  readonly rebuilt: number;
  /**
   * equal: both hold the same records. contained: every rebuilt record was published, and the
   * published topic may hold others' too (the DLQ, which every processor writes to).
   */
  readonly mode: 'equal' | 'contained';
  /** Published records the rebuild did not make (equal mode), a few of them. */
  readonly onlyPublished: readonly string[];
  readonly onlyPublishedCount: number;
  /** Rebuilt records never published, a few of them. */
  readonly onlyRebuilt: readonly string[];
  readonly onlyRebuiltCount: number;
  readonly matches: boolean;
}

const EXAMPLES = 5;

/** A record as compared: its fields but the ignored ones, as JSON. */
function comparable(r: unknown, ignore: readonly string[]): string {
  if (r === null || typeof r !== 'object') return JSON.stringify(r);
  const copy: Record<string, unknown> = { ...(r as Record<string, unknown>) };
  for (const f of ignore) delete copy[f];
  return JSON.stringify(copy);
}

/** Compares the records of one output topic as multisets, ignoring `ignore` fields. */
export function compareRecords(
  topic: string,
  published: readonly unknown[],
  rebuilt: readonly unknown[],
  ignore: readonly string[],
  mode: 'equal' | 'contained',
): TopicComparison {
  const counts = new Map<string, number>();
  for (const r of published) {
    const k = comparable(r, ignore);
    counts.set(k, (counts.get(k) ?? 0) + 1);
  }
  const onlyRebuilt: string[] = [];
  let onlyRebuiltCount = 0;
  for (const r of rebuilt) {
    const k = comparable(r, ignore);
    const n = counts.get(k) ?? 0;
    if (n > 0) counts.set(k, n - 1);
    else {
      onlyRebuiltCount++;
      if (onlyRebuilt.length < EXAMPLES) onlyRebuilt.push(k);
    }
  }
  const onlyPublished: string[] = [];
  let onlyPublishedCount = 0;
  if (mode === 'equal') {
    for (const [k, n] of counts) {
      onlyPublishedCount += n;
      if (n > 0 && onlyPublished.length < EXAMPLES) onlyPublished.push(k);
    }
  }
  return {
    topic,
    published: published.length,
    rebuilt: rebuilt.length,
    mode,
    onlyPublished,
    onlyPublishedCount,
    onlyRebuilt,
    onlyRebuiltCount,
    matches: onlyPublishedCount === 0 && onlyRebuiltCount === 0,
  };
}
