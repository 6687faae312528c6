/**
 * `holdback policy simulate` on the real local stack: a small history (110 days of sales, refunds
 * and a delinquent loan for four merchants) is produced under a unique topic prefix, with each
 * record's Kafka timestamp at its event time; simulate replays it through the default and a
 * candidate policy and reports exactly what the candidate would change. Nothing is produced to
 * any topic; a bad policy stops it with exit code 2, naming the key and the reason.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Partitioners, type Message } from 'kafkajs';
import type { SimulationReport } from '../../cli/commands/policy';
import type { Codec } from '../../connectors/codec';
import type { LoanState, SaleEvent } from '../../schemas/generated/types';
import { TOPICS, TOPIC_SPECS, type TopicName, type TopicRecords } from '../../schemas/topics';
import { REPO_ROOT } from '../../stack/paths';
import {
  createTopics,
  deleteTopics,
  endOffsetSum,
  endpoints,
  kafkaClient,
  registeredCodec,
} from '../harness/kafka';

jest.setTimeout(180_000);

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- raw policy JSON, edited (wrong types included)
type PolicyJson = Record<string, any>;

const run = `polsim-${Date.now().toString(36)}`;
const prefix = `${run}.`;
const DAY = 86_400_000;
const dir = mkdtempSync(join(tmpdir(), 'holdback-policy-'));

function holdback(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'holdback'), ...args], {
    encoding: 'utf8',
    timeout: 150_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Timed<T extends TopicName = TopicName> {
  topic: T;
  key: string;
  value: TopicRecords[T];
  at: number;
  /** Set for a LoanState: the runtime writes it to its merchant's partition, whatever its key. */
  partition?: number;
}

/** The partition the default partitioner gives a key (where a merchant's input records go). */
function partitionOf(key: string): number {
  const partitionMetadata = Array.from({ length: endpoints.partitions }, (_, i) => ({
    partitionId: i,
    leader: 0,
  }));
  return Partitioners.DefaultPartitioner()({
    topic: 'any',
    partitionMetadata: partitionMetadata as never,
    message: { key, value: null },
  });
}

/** Produces with each record's timestamp set to its event time, as a platform's producer would. */
async function produceAt(codec: Codec, records: Timed[]): Promise<void> {
  const producer = kafkaClient().producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  try {
    const byTopic = new Map<string, Message[]>();
    for (const r of records) {
      const list = byTopic.get(prefix + r.topic) ?? [];
      list.push({
        key: r.key,
        value: codec.encode(r.topic, r.value as never),
        timestamp: String(r.at),
        ...(r.partition !== undefined && { partition: r.partition }),
      });
      byTopic.set(prefix + r.topic, list);
    }
    await producer.sendBatch({
      acks: -1,
      topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
    });
  } finally {
    await producer.disconnect();
  }
}

// Day d's records at 01:00 UTC and a few minutes later: no midnight (no daily tick) falls between
// a merchant's last records, so the last decision reflects the whole history.
const start = Math.floor(Date.now() / DAY) * DAY - 111 * DAY + 3_600_000;
const m = (name: string): string => `${run}-${name}`;

function sale(merchant: string, d: number, type: SaleEvent['type'], amount: number): Timed {
  const at = start + d * DAY;
  const value: SaleEvent = {
    event_id: `${merchant}-${type}-${d}`,
    merchant_id: merchant,
    sale_id: `${merchant}-sale-${d}`,
    order_id: null,
    type,
    amount_minor: amount,
    currency: 'EUR',
    occurred_at: at,
  };
  return { topic: TOPICS.sales, key: merchant, value, at };
}

function delinquent(merchant: string, d: number): Timed {
  const at = start + d * DAY;
  const value: LoanState = {
    loan_id: `${merchant}-loan`,
    merchant_id: merchant,
    status: 'DELINQUENT',
    principal_minor: 500_000,
    fee_minor: 50_000,
    collected_minor: 50_000,
    balance_minor: 500_000,
    period_index: 2,
    period_required_minor: 100_000,
    period_collected_minor: 0,
    missed_periods: 2,
    currency: 'EUR',
    updated_at: at,
    version: 5,
    holdback_rate_bps: 1000,
    minimum_payment_minor: 100_000,
    period_days: 30,
    funded_at: start,
    period_ends_at: at + 30 * DAY,
    pace: null,
    projected_period_collected_minor: null,
    closure: null,
  };
  return { topic: TOPICS.loanStates, key: value.loan_id, value, at, partition: partitionOf(merchant) };
}

function history(): Timed[] {
  const out: Timed[] = [];
  for (let d = 0; d < 110; d++) {
    out.push(sale(m('steady'), d, 'CAPTURED', 100_000));
    out.push(sale(m('refunds'), d, 'CAPTURED', 100_000));
    out.push(sale(m('refunds'), d + 0.01, 'REFUNDED', 10_000));
    out.push(sale(m('late'), d, 'CAPTURED', 100_000));
    if (d >= 90) out.push(sale(m('new'), d, 'CAPTURED', 100_000));
  }
  out.push(delinquent(m('late'), 105));
  return out.sort((a, b) => a.at - b.at);
}

const currentPath = join(dir, 'current.json');
const candidatePath = join(dir, 'candidate.json');
const badPath = join(dir, 'bad.json');

beforeAll(async () => {
  const codec = await registeredCodec();
  await createTopics(prefix);
  await produceAt(codec, history());
  const policy = JSON.parse(readFileSync(join(REPO_ROOT, 'policies', 'default.json'), 'utf8')) as PolicyJson;
  // Both emit every limit change, so each merchant's last decision is its final limit exactly.
  policy.version = 'current-1';
  policy.emission = { minLimitChangeBps: 0, minLimitChangeMinor: 0 };
  writeFileSync(currentPath, JSON.stringify(policy));
  policy.version = 'candidate-1';
  policy.eligibility.maxRefundRateBps = 500;
  policy.grades.D.limitMultipleBps = 8000;
  writeFileSync(candidatePath, JSON.stringify(policy));
  policy.grades.B.limitMultipleBps = 'lots';
  policy.limits.capMinor = 1;
  writeFileSync(badPath, JSON.stringify(policy));
});

afterAll(async () => {
  await deleteTopics(prefix);
});

test('simulate reports how approvals, grades and limits would change, and produces nothing', async () => {
  const r = holdback(
    'policy',
    'simulate',
    '--policy',
    candidatePath,
    `--current=${currentPath}`,
    `--topic-prefix=${prefix}`,
    '--json',
  );
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const report = JSON.parse(r.stdout) as SimulationReport;

  expect(report.policies.current).toEqual({ version: 'current-1', source: currentPath });
  expect(report.policies.candidate).toEqual({ version: 'candidate-1', source: candidatePath });
  expect(report.history).toMatchObject({
    records: 110 * 4 + 20 + 1,
    undecodable: 0,
    by_topic: { [TOPICS.sales]: 110 * 4 + 20, [TOPICS.loanStates]: 1 },
  });
  expect(report.rejected).toEqual({ current: 0, candidate: 0 });
  expect(report.merchants).toBe(4);
  expect(report.approved).toEqual({ current: 2, candidate: 1, newly_approved: 0, newly_declined: 1 });
  expect(report.grades).toMatchObject({ upgraded: 0, downgraded: 0 });
  // steady: 30,000.00 a month, grade D: x0.6 -> x0.8. refunds: 27,000.00 a month x0.6, then declined.
  expect(report.total_limit_minor).toEqual({
    EUR: { current: 1_800_000 + 1_620_000, candidate: 2_400_000, delta: 2_400_000 - 3_420_000 },
  });
  expect(report.changed).toEqual([
    {
      merchant_id: m('refunds'),
      current: { eligible: true, grade: 'D', limit_minor: 1_620_000, currency: 'EUR', reasons: ['APPROVED'] },
      candidate: {
        eligible: false,
        grade: 'D',
        limit_minor: 0,
        currency: 'EUR',
        reasons: ['HIGH_REFUND_RATE'],
      },
      changes: ['declined', 'limit_down', 'reasons'],
    },
    {
      merchant_id: m('steady'),
      current: { eligible: true, grade: 'D', limit_minor: 1_800_000, currency: 'EUR', reasons: ['APPROVED'] },
      candidate: {
        eligible: true,
        grade: 'D',
        limit_minor: 2_400_000,
        currency: 'EUR',
        reasons: ['APPROVED'],
      },
      changes: ['limit_up'],
    },
  ]);

  // Read-only: no output topic of the prefix has a record.
  for (const spec of TOPIC_SPECS.filter((t) => t.role === 'output' && t.name !== TOPICS.loanStates)) {
    expect(await endOffsetSum(prefix + spec.name)).toBe(0);
  }

  // The text report against the default policy: its 10% emission threshold keeps a limit that
  // moved less than that since it was emitted, so only the outcomes are exact here.
  const text = holdback('policy', 'simulate', `--policy=${candidatePath}`, `--topic-prefix=${prefix}`);
  expect(text.status).toBe(0);
  expect(text.stdout).toContain('policy simulate: 2026-11-default (');
  expect(text.stdout).toContain('merchants: 4; approved 2 -> 1 (+0 newly approved, -1 newly declined)');
  expect(text.stdout).toMatch(/total limit EUR \(minor units\): [\d,]+ -> 2,400,000 \(-[\d,]+\)/);
  expect(text.stdout).toContain('2 merchants change:');
  expect(text.stdout).toMatch(
    new RegExp(`${m('refunds')}: approved D [\\d,]+ \\[APPROVED\\] -> declined D 0 \\[HIGH_REFUND_RATE\\]`),
  );
});

test('a bad candidate policy stops simulate and run with exit code 2, naming the keys and reasons', () => {
  const sim = holdback('policy', 'simulate', '--policy', badPath, `--topic-prefix=${prefix}`);
  expect(sim.status).toBe(2);
  expect(sim.stderr).toContain(
    `${badPath}: invalid eligibility policy: grades.B.limitMultipleBps: Invalid input: expected number, received string (got "lots"); limits.capMinor: unknown key`,
  );
  const start = holdback('run', 'eligibility', `--policy=${badPath}`, `--topic-prefix=${prefix}`);
  expect(start.status).toBe(2);
  expect(start.stderr).toContain(`${badPath}: invalid eligibility policy: grades.B.limitMultipleBps`);
  const missing = holdback('policy', 'simulate', '--policy', join(dir, 'none.json'));
  expect(missing.status).toBe(2);
  expect(missing.stderr).toContain(`${join(dir, 'none.json')}: cannot read the policy`);
});
