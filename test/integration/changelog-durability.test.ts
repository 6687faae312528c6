/**
 * The changelog on the real stack (issue 14): created with the internal replication settings and
 * checked at every start, and never silently empty. A changelog that was deleted, or whose
 * records were deleted, while the group has committed input offsets refuses the start instead of
 * processing payouts with no loans. On both transports.
 */
import { ConfigResourceTypes } from 'kafkajs';
import type { LoanEvent, PayoutEvent } from '../../schemas/generated/types';
import { TOPICS } from '../../schemas/topics';
import { changelogTopic } from '../../runtime/kafka-runtime';
import {
  createTopics,
  deleteAllRecords,
  deleteTopics,
  kafkaClient,
  produce,
  readAll,
  registeredCodec,
} from '../harness/kafka';
import { logTail, spawnProcessor, terminate, waitFor, type ProcessorProcess } from '../harness/processes';

jest.setTimeout(180_000);

const run = `durable-${Date.now().toString(36)}`;
const T = Date.now() - 86_400_000;

/** A start that must be refused: the process exits non-zero and its log says why. */
async function refused(p: ProcessorProcess, reason: RegExp): Promise<string> {
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 60_000);
  const code = await p.exited;
  clearTimeout(timer);
  const log = logTail(p, 60);
  expect(log).toMatch(reason);
  expect(code).not.toBe(0);
  return log;
}

describe.each(['kafkajs', 'rdkafka'])('on the %s transport', (transport) => {
  const app = `${run}-${transport}`;
  const prefix = `${app}.`;
  const changelog = changelogTopic(app);
  const args = [`--topic-prefix=${prefix}`, `--application-id=${app}`, `--transport=${transport}`];
  const admin = kafkaClient().admin();

  beforeAll(async () => {
    await admin.connect();
    await createTopics(prefix);
  });
  afterAll(async () => {
    await deleteTopics(prefix, [changelog]);
    await admin.deleteGroups([app]).catch(() => undefined);
    await admin.disconnect();
  });

  test('created with the internal settings; a lost or truncated changelog refuses the start', async () => {
    const codec = await registeredCodec();
    const M = `${app}-m`;
    const loan: LoanEvent = {
      event_id: `${app}-funded`,
      loan_id: `${app}-L`,
      merchant_id: M,
      type: 'FUNDED',
      occurred_at: T,
      principal_minor: 100_000,
      fee_minor: 10_000,
      holdback_rate_bps: 1000,
      minimum_payment_minor: 0,
      period_days: 30,
      currency: 'USD',
    };
    const payout: PayoutEvent = {
      event_id: `${app}-P1`,
      merchant_id: M,
      payout_id: `${app}-P1`,
      type: 'SCHEDULED',
      gross_amount_minor: 50_000,
      withheld_minor: null,
      currency: 'USD',
      occurred_at: T + 60_000,
    };
    await produce(prefix, codec, [
      { topic: TOPICS.loanEvents, key: M, value: loan },
      { topic: TOPICS.payouts, key: M, value: payout },
    ]);
    const first = spawnProcessor(`${app}-1`, 'repayment', args);
    try {
      await waitFor(
        'the withholding',
        async () => (await readAll(prefix, TOPICS.deductions, codec)).length === 1,
        60_000,
        500,
      );
    } finally {
      expect(await terminate(first)).toBe(0);
    }

    // One broker: replication factor min(3, 1) = 1, min.insync.replicas min(2, 1) = 1.
    const meta = await admin.fetchTopicMetadata({ topics: [changelog] });
    expect(meta.topics[0]!.partitions.every((p) => p.replicas.length === 1)).toBe(true);
    const minIsr = async (): Promise<string | undefined> =>
      (
        await admin.describeConfigs({
          resources: [
            { type: ConfigResourceTypes.TOPIC, name: changelog, configNames: ['min.insync.replicas'] },
          ],
          includeSynonyms: false,
        })
      ).resources[0]?.configEntries[0]?.configValue;
    expect(await minIsr()).toBe('1');
    const setMinIsr = (value: string): Promise<unknown> =>
      admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: ConfigResourceTypes.TOPIC,
            name: changelog,
            configEntries: [{ name: 'min.insync.replicas', value }],
          },
        ],
      });

    // More replicas than brokers: refused before anything is created or read.
    await refused(
      spawnProcessor(`${app}-rf`, 'repayment', [...args, '--internal-replication-factor=2']),
      /--internal-replication-factor is 2 but the cluster has 1 broker/,
    );
    // The topic's settings differ from the configured ones: refused, naming the setting and the fix.
    await setMinIsr('2');
    await refused(
      spawnProcessor(`${app}-isr`, 'repayment', args),
      new RegExp(`${changelog.replace(/\./g, '\\.')} has min\\.insync\\.replicas 2.*kafka-configs\\.sh`),
    );
    await setMinIsr('1');

    // The changelog's records deleted (log start moved past them) while the group has offsets.
    const ends = await admin.fetchTopicOffsets(changelog);
    const used = ends.filter((e) => Number(e.high) > 0);
    expect(used.length).toBeGreaterThan(0);
    await deleteAllRecords(admin, changelog);
    await refused(
      spawnProcessor(`${app}-trunc`, 'repayment', args),
      /starts at offset \d+: its earlier records were deleted/,
    );

    // The changelog deleted: not recreated empty.
    await admin.deleteTopics({ topics: [changelog] });
    await waitFor('the changelog gone', async () => !(await admin.listTopics()).includes(changelog), 30_000);
    const log = await refused(
      spawnProcessor(`${app}-lost`, 'repayment', args),
      /the changelog \S+ does not exist, but group \S+ has committed offsets/,
    );
    expect(log).toContain('docs/runbooks/startup/ChangelogLost.md');
    expect(await admin.listTopics()).not.toContain(changelog);
    // Nothing was processed without state: still the one withholding.
    expect(await readAll(prefix, TOPICS.deductions, codec)).toHaveLength(1);
  });
});
