/**
 * `holdback policy simulate --policy candidate.json [--current policies/default.json]`: what a
 * candidate eligibility policy would change, on the real history, before it goes live. Reads the
 * eligibility processor's input topics (read_committed, from the beginning to their current end),
 * merges each partition's records in timestamp order, replays them through two eligibility
 * processors (current and candidate) in memory, through the runtime's own Task, with each
 * record's timestamp as the clock (daily timers fire at their own time on the way), and reports
 * per merchant and in total how approvals, grades and total limits would change. It never
 * produces to any topic.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kafka, logLevel, type KafkaMessage } from 'kafkajs';
import { z } from 'zod';
import { Codec } from '../../connectors/codec';
import { ConfigError } from '../../connectors/endpoints';
import { loadConnections, registryOptions } from '../../connectors/connections';
import { checkKafka, kafkajsConfig } from '../../connectors/kafka-client';
import { readToEnd } from '../../connectors/kafka-read';
import { SchemaRegistryClient } from '../../connectors/registry';
import type { InputRecord, TopicWithRecord } from '../../processors/api';
import {
  createEligibilityProcessor,
  parsePolicy,
  type EligibilityPolicy,
  type EligibilityState,
} from '../../processors/eligibility';
import { Task } from '../../runtime/task';
import type { EligibilityDecision, RiskGrade } from '../../schemas/generated/types';
import { RiskGradeValues } from '../../schemas/generated/types';
import { TOPICS } from '../../schemas/topics';
import { REPO_ROOT } from '../../stack/paths';
import { commandModule, HoldbackCommand } from '../program';

/** The eligibility processor's inputs, in the order ties between them are broken. */
export const SIMULATED_TOPICS = [
  TOPICS.loanEvents,
  TOPICS.loanStates,
  TOPICS.orders,
  TOPICS.sales,
  TOPICS.payouts,
] as const satisfies readonly TopicWithRecord[];

/** One decoded input record as it sits in Kafka. */
export interface HistoryRecord {
  readonly topic: TopicWithRecord;
  readonly partition: number;
  readonly offset: number;
  /** The state key: the value's merchant_id. */
  readonly key: string;
  readonly value: unknown;
  readonly timestamp: number;
}

/**
 * Merges topic-partitions' records (each list in offset order) into one list per partition, in
 * timestamp order: a k-way merge, so each topic-partition keeps its own order even where its
 * timestamps go back. Ties go to the topic listed first in SIMULATED_TOPICS.
 */
export function mergeByTimestamp(records: readonly HistoryRecord[]): Map<number, HistoryRecord[]> {
  const lists = new Map<string, HistoryRecord[]>();
  for (const r of records) {
    const id = `${r.partition}/${r.topic}`;
    let list = lists.get(id);
    if (!list) lists.set(id, (list = []));
    list.push(r);
  }
  const byPartition = new Map<number, HistoryRecord[][]>();
  for (const list of lists.values()) {
    list.sort((a, b) => a.offset - b.offset);
    const p = list[0]!.partition;
    byPartition.set(p, [...(byPartition.get(p) ?? []), list]);
  }
  const rank = (t: TopicWithRecord): number => (SIMULATED_TOPICS as readonly string[]).indexOf(t);
  const out = new Map<number, HistoryRecord[]>();
  for (const [p, heads] of [...byPartition].sort((a, b) => a[0] - b[0])) {
    const pos = heads.map(() => 0);
    const merged: HistoryRecord[] = [];
    for (;;) {
      let best = -1;
      for (let i = 0; i < heads.length; i++) {
        const r = heads[i]![pos[i]!];
        if (r === undefined) continue;
        const b = best < 0 ? undefined : heads[best]![pos[best]!]!;
        if (!b || r.timestamp < b.timestamp || (r.timestamp === b.timestamp && rank(r.topic) < rank(b.topic)))
          best = i;
      }
      if (best < 0) break;
      merged.push(heads[best]![pos[best]!]!);
      pos[best]!++;
    }
    out.set(p, merged);
  }
  return out;
}

export interface Replay {
  /** The latest decision per merchant: what the compacted topic would hold. */
  readonly latest: Map<string, EligibilityDecision>;
  readonly emitted: number;
  readonly rejected: number;
}

/** Replays each partition through the runtime's Task; each record's timestamp is the clock. */
export function replay(policy: EligibilityPolicy, partitions: Map<number, HistoryRecord[]>): Replay {
  const processor = createEligibilityProcessor(policy);
  const latest = new Map<string, EligibilityDecision>();
  let emitted = 0;
  let rejected = 0;
  for (const [p, records] of partitions) {
    const task = new Task<EligibilityState>(processor, p);
    const collect = (): void => {
      const flush = task.drain();
      rejected += flush.rejected.length;
      for (const o of flush.outputs) {
        if (o.topic !== TOPICS.eligibility) continue;
        emitted++;
        latest.set(o.value.merchant_id, o.value);
      }
    };
    for (const [i, r] of records.entries()) {
      // Timers due by this record's time fire first, each at its own time.
      for (let t = task.nextTimerAt(); t !== undefined && t <= r.timestamp; t = task.nextTimerAt())
        task.tickDue(t);
      const record = { topic: r.topic, key: r.key, value: r.value, timestamp: r.timestamp } as InputRecord;
      task.accept(
        { topic: r.topic, partition: p, offset: r.offset, key: null, value: null, timestamp: r.timestamp },
        { ok: true, record },
        r.timestamp,
      );
      if (i % 10_000 === 9_999) collect();
    }
    collect();
  }
  return { latest, emitted, rejected };
}

export interface Outcome {
  eligible: boolean;
  grade: RiskGrade;
  limit_minor: number;
  currency: string;
  reasons: string[];
}

export interface MerchantChange {
  merchant_id: string;
  current: Outcome | null;
  candidate: Outcome | null;
  /** approved, declined, grade_up, grade_down, limit_up, limit_down, reasons. */
  changes: string[];
}

export interface SimulationReport {
  policies: { current: { version: string; source: string }; candidate: { version: string; source: string } };
  history: {
    records: number;
    undecodable: number;
    by_topic: Record<string, number>;
    from: number | null;
    to: number | null;
  };
  decisions_emitted: { current: number; candidate: number };
  rejected: { current: number; candidate: number };
  merchants: number;
  approved: { current: number; candidate: number; newly_approved: number; newly_declined: number };
  grades: {
    current: Record<RiskGrade, number>;
    candidate: Record<RiskGrade, number>;
    upgraded: number;
    downgraded: number;
  };
  /** Sum of limit_minor of the merchants' latest decisions, per currency. */
  total_limit_minor: Record<string, { current: number; candidate: number; delta: number }>;
  /** Merchants whose outcome differs, by merchant_id. */
  changed: MerchantChange[];
}

const outcome = (d: EligibilityDecision | undefined): Outcome | null =>
  d
    ? {
        eligible: d.eligible,
        grade: d.grade,
        limit_minor: d.limit_minor,
        currency: d.currency,
        reasons: d.reasons,
      }
    : null;

const gradeCounts = (): Record<RiskGrade, number> =>
  Object.fromEntries(RiskGradeValues.map((g) => [g, 0])) as Record<RiskGrade, number>;

/** Runs both policies over the history and compares the merchants' latest decisions. */
export function simulate(
  records: readonly HistoryRecord[],
  current: { policy: EligibilityPolicy; source: string },
  candidate: { policy: EligibilityPolicy; source: string },
  undecodable = 0,
): SimulationReport {
  const partitions = mergeByTimestamp(records);
  const a = replay(current.policy, partitions);
  const b = replay(candidate.policy, partitions);
  const byTopic: Record<string, number> = {};
  let from: number | null = null;
  let to: number | null = null;
  for (const r of records) {
    byTopic[r.topic] = (byTopic[r.topic] ?? 0) + 1;
    from = from === null ? r.timestamp : Math.min(from, r.timestamp);
    to = to === null ? r.timestamp : Math.max(to, r.timestamp);
  }
  const report: SimulationReport = {
    policies: {
      current: { version: current.policy.version, source: current.source },
      candidate: { version: candidate.policy.version, source: candidate.source },
    },
    history: { records: records.length, undecodable, by_topic: byTopic, from, to },
    decisions_emitted: { current: a.emitted, candidate: b.emitted },
    rejected: { current: a.rejected, candidate: b.rejected },
    merchants: 0,
    approved: { current: 0, candidate: 0, newly_approved: 0, newly_declined: 0 },
    grades: { current: gradeCounts(), candidate: gradeCounts(), upgraded: 0, downgraded: 0 },
    total_limit_minor: {},
    changed: [],
  };
  const merchants = [...new Set([...a.latest.keys(), ...b.latest.keys()])].sort();
  report.merchants = merchants.length;
  const total = (currency: string) =>
    (report.total_limit_minor[currency] ??= { current: 0, candidate: 0, delta: 0 });
  for (const m of merchants) {
    const x = outcome(a.latest.get(m));
    const y = outcome(b.latest.get(m));
    const changes: string[] = [];
    if (x) {
      if (x.eligible) report.approved.current++;
      report.grades.current[x.grade]++;
      total(x.currency).current += x.limit_minor;
    }
    if (y) {
      if (y.eligible) report.approved.candidate++;
      report.grades.candidate[y.grade]++;
      total(y.currency).candidate += y.limit_minor;
    }
    const wasApproved = x?.eligible ?? false;
    const isApproved = y?.eligible ?? false;
    if (!wasApproved && isApproved) {
      report.approved.newly_approved++;
      changes.push('approved');
    } else if (wasApproved && !isApproved) {
      report.approved.newly_declined++;
      changes.push('declined');
    }
    if (x && y && x.grade !== y.grade) {
      const up = RiskGradeValues.indexOf(y.grade) < RiskGradeValues.indexOf(x.grade);
      if (up) report.grades.upgraded++;
      else report.grades.downgraded++;
      changes.push(up ? 'grade_up' : 'grade_down');
    }
    const limitX = x?.limit_minor ?? 0;
    const limitY = y?.limit_minor ?? 0;
    if (limitY > limitX) changes.push('limit_up');
    if (limitY < limitX) changes.push('limit_down');
    if (JSON.stringify(x?.reasons ?? []) !== JSON.stringify(y?.reasons ?? [])) changes.push('reasons');
    if (changes.length > 0) report.changed.push({ merchant_id: m, current: x, candidate: y, changes });
  }
  for (const t of Object.values(report.total_limit_minor)) t.delta = t.candidate - t.current;
  return report;
}

/** Reads and decodes every committed record of the eligibility inputs. */
export async function readHistory(
  kafka: Kafka,
  codec: Codec,
  topicPrefix: string,
): Promise<{ records: HistoryRecord[]; undecodable: number }> {
  const raw: Array<{ topic: TopicWithRecord; partition: number; m: KafkaMessage }> = [];
  const stamp = `${process.pid}-${Date.now()}`;
  await Promise.all(
    SIMULATED_TOPICS.map((topic) =>
      readToEnd(kafka, {
        topic: topicPrefix + topic,
        groupId: `holdback-policy-simulate-${topic}-${stamp}`,
        onMessage: (partition, m) => raw.push({ topic, partition, m }),
      }),
    ),
  );
  const records: HistoryRecord[] = [];
  let undecodable = 0;
  const now = Date.now();
  for (const { topic, partition, m } of raw) {
    const r =
      codec.tryDecodeCached(topic, m.key, m.value, now) ?? (await codec.decode(topic, m.key, m.value, now));
    if (!r.ok) {
      undecodable++; // the processor never sees it either: it goes to the DLQ
      continue;
    }
    records.push({
      topic,
      partition,
      offset: Number(m.offset),
      key: (r.value as { merchant_id: string }).merchant_id,
      value: r.value,
      timestamp: Number(m.timestamp),
    });
  }
  return { records, undecodable };
}

/** A policy file, or a ConfigError naming the file, the key and the reason (exit 2). */
function loadPolicy(path: string): EligibilityPolicy {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`${path}: cannot read the policy: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    return parsePolicy(text, path);
  } catch (e) {
    throw new ConfigError(e instanceof Error ? e.message : String(e));
  }
}

const money = (minor: number): string => minor.toLocaleString('en-US');

function printText(r: SimulationReport, limit: number): void {
  const p = r.policies;
  console.log(
    `policy simulate: ${p.current.version} (${p.current.source}) -> ${p.candidate.version} (${p.candidate.source})`,
  );
  const span =
    r.history.from === null
      ? 'empty'
      : `${new Date(r.history.from).toISOString()} .. ${new Date(r.history.to!).toISOString()}`;
  console.log(
    `history: ${r.history.records} records (${Object.entries(r.history.by_topic)
      .map(([t, n]) => `${t} ${n}`)
      .join(', ')}), ${r.history.undecodable} undecodable; ${span}`,
  );
  console.log(
    `merchants: ${r.merchants}; approved ${r.approved.current} -> ${r.approved.candidate} ` +
      `(+${r.approved.newly_approved} newly approved, -${r.approved.newly_declined} newly declined)`,
  );
  console.log(
    `grades: ${RiskGradeValues.map((g) => `${g} ${r.grades.current[g]}->${r.grades.candidate[g]}`).join(', ')}; ` +
      `${r.grades.upgraded} up, ${r.grades.downgraded} down`,
  );
  for (const [ccy, t] of Object.entries(r.total_limit_minor)) {
    console.log(
      `total limit ${ccy} (minor units): ${money(t.current)} -> ${money(t.candidate)} (${t.delta >= 0 ? '+' : ''}${money(t.delta)})`,
    );
  }
  console.log(
    `decisions emitted over the history: ${r.decisions_emitted.current} -> ${r.decisions_emitted.candidate}`,
  );
  console.log(`${r.changed.length} merchants change:`);
  const show = (o: Outcome | null): string =>
    o
      ? `${o.eligible ? 'approved' : 'declined'} ${o.grade} ${money(o.limit_minor)} [${o.reasons.join(',')}]`
      : '-';
  for (const c of r.changed.slice(0, limit)) {
    console.log(`  ${c.merchant_id}: ${show(c.current)} -> ${show(c.candidate)}  (${c.changes.join(', ')})`);
  }
  if (r.changed.length > limit) console.log(`  ... ${r.changed.length - limit} more (--limit, or --json)`);
}

const SIMULATE_OPTIONS = z
  .object({
    policy: z.string().min(1),
    current: z.string().min(1).optional(),
    topicPrefix: z
      .string()
      .regex(/^[A-Za-z0-9._-]{0,100}$/)
      .default(''),
    json: z.stringbool().default(false),
    limit: z.coerce.number().int().min(0).default(50),
  })
  .strict();

function create(): HoldbackCommand {
  const policy = new HoldbackCommand('policy').description(
    'Eligibility policies (policies/*.json) before they go live.',
  );
  policy.operandNoun = 'subcommand';
  const sim = policy
    .command('simulate')
    .summary('what a candidate eligibility policy would change, on the history in Kafka')
    .description(
      'Replays the history of the eligibility inputs (read from Kafka, never written) through the ' +
        'current and the candidate policy, and reports how approvals, grades and limits would change. ' +
        'A policy that cannot be read or is invalid exits 2, naming the file, the key and the reason.',
    );
  const options = sim.schemaOptions(SIMULATE_OPTIONS, {
    help: {
      policy: 'the candidate policy',
      current: 'the policy to compare with (default policies/default.json)',
      topicPrefix: 'the prefix the processors run with (default none)',
      json: 'one JSON report on stdout',
      limit: 'text report: list at most this many changed merchants',
    },
    booleans: new Set(['json'] as const),
    placeholder: { policy: 'file', current: 'file', topicPrefix: 'prefix' },
  });
  sim.runs(async (cmd) => simulateCommand(options(cmd)));
  return policy;
}

export const command = commandModule(create);

async function simulateCommand(o: z.infer<typeof SIMULATE_OPTIONS>): Promise<number> {
  const currentPath = o.current ?? join(REPO_ROOT, 'policies', 'default.json');
  const candidate = loadPolicy(o.policy);
  const current = loadPolicy(currentPath);
  const c = loadConnections();
  await checkKafka(c.kafka, 'holdback-policy-simulate');
  const kafka = new Kafka(kafkajsConfig(c.kafka, 'holdback-policy-simulate', { logLevel: logLevel.NOTHING }));
  const registry = new SchemaRegistryClient(registryOptions(c.registry));
  const codec = new Codec({ source: registry, schemaIds: await registry.lookupAll() });
  const { records, undecodable } = await readHistory(kafka, codec, o.topicPrefix);
  const report = simulate(
    records,
    { policy: current, source: currentPath },
    { policy: candidate, source: o.policy },
    undecodable,
  );
  if (o.json) console.log(JSON.stringify(report));
  else printText(report, o.limit);
  return 0;
}
