/**
 * `holdback rebuild` on the real stack, on both transports (issue 14): the repayment processor
 * decides half of the payouts and stops; the rest is produced while none runs. A rebuild into a
 * fresh application id must stop exactly where the old group committed (its shadow outputs hold
 * what was published, no more), report a match, and the processor started under the new id must
 * go on from there: the published outputs are then exactly those of a clean run of all inputs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRepaymentProcessor } from '../../processors/repayment';
import { changelogTopic } from '../../runtime/kafka-runtime';
import { awaitSettled } from '../../runtime/rebuild';
import { TestDriver } from '../../runtime/test-driver';
import type { Deduction, LoanState } from '../../schemas/generated/types';
import { TOPICS } from '../../schemas/topics';
import { REPO_ROOT } from '../../stack/paths';
import {
  createTopics,
  deleteTopics,
  endOffsetSum,
  endpoints,
  kafkaClient,
  produce,
  readAll,
  registeredCodec,
} from '../harness/kafka';
import { logTail, spawnHoldback, spawnProcessor, terminate, waitFor } from '../harness/processes';
import { repaymentWorkload } from '../harness/repayment-workload';
import { verifyRepayment } from '../harness/verify';

jest.setTimeout(300_000);

const run = `rebuild-${Date.now().toString(36)}`;

/** Until group `app` has committed the end of every partition of `topics` (it decided all there is). */
async function caughtUp(app: string, prefix: string): Promise<void> {
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    await waitFor(
      `${app} to decide every input`,
      async () => {
        for (const topic of [TOPICS.loanEvents, TOPICS.payouts]) {
          const ends = await admin.fetchTopicOffsets(prefix + topic);
          const [c] = await admin.fetchOffsets({ groupId: app, topics: [prefix + topic] });
          for (const e of ends) {
            const at = Number(c?.partitions.find((p) => p.partition === e.partition)?.offset ?? -1);
            if (Number(e.high) > 0 && at < Number(e.high)) return false;
          }
        }
        return true;
      },
      120_000,
      500,
    );
  } finally {
    await admin.disconnect();
  }
}

describe.each(['kafkajs', 'rdkafka'])('on the %s transport', (transport) => {
  const app = `${run}-${transport}`;
  const rebuilt = `${app}-r1`;
  const prefix = `${app}.`;

  afterAll(async () => {
    await deleteTopics(prefix, [changelogTopic(app), changelogTopic(rebuilt)]);
  });

  test('rebuilt up to the old group, matching what it published; the new id goes on exactly', async () => {
    const codec = await registeredCodec();
    await createTopics(prefix);
    const events = repaymentWorkload({
      seed: transport.length,
      merchants: 120,
      payoutsPerMerchant: 8,
      duplicateRate: 0.1,
      startAt: Date.now() - 2 * 86_400_000,
      idPrefix: `${app}-`,
    });
    // Loans first, decided before any payout arrives, as in the EOS scenarios: the outputs then
    // have one right answer whatever the arrival order (docs/contract.md, "Time order").
    const loans = events.filter((e) => e.topic === TOPICS.loanEvents);
    const payouts = events.filter((e) => e.topic === TOPICS.payouts);
    const half = Math.floor(payouts.length / 2);
    const args = [`--topic-prefix=${prefix}`, `--transport=${transport}`];

    // The old id decides the first half of the history and stops.
    const a = spawnProcessor(`${app}-a`, 'repayment', [...args, `--application-id=${app}`]);
    await produce(prefix, codec, loans);
    await caughtUp(app, prefix);
    await produce(prefix, codec, payouts.slice(0, half));
    await caughtUp(app, prefix);
    expect(await terminate(a)).toBe(0);
    const published = (await readAll(prefix, TOPICS.deductions, codec)).length;
    expect(published).toBeGreaterThan(50);
    // The rest arrives while nothing runs: the rebuild must not process it.
    await produce(prefix, codec, payouts.slice(half));

    const report = join(REPO_ROOT, '.holdback', 'test-logs', `${rebuilt}.json`);
    const r = spawnHoldback(`${rebuilt}-rebuild`, [
      'rebuild',
      'repayment',
      ...args,
      `--from=${app}`,
      `--application-id=${rebuilt}`,
      `--report=${report}`,
    ]);
    const code = await r.exited;
    expect({ code, log: code === 0 ? '' : logTail(r, 40) }).toEqual({ code: 0, log: '' });
    const result = JSON.parse(readFileSync(report, 'utf8')) as {
      matches: boolean;
      topics: Array<{ topic: string; published: number; rebuilt: number }>;
    };
    expect(result.matches).toBe(true);
    expect(result.topics.find((t) => t.topic === TOPICS.deductions)).toMatchObject({
      published,
      rebuilt: published,
    });
    // Nothing of the rebuild reached the published topics.
    expect(await readAll(prefix, TOPICS.deductions, codec)).toHaveLength(published);
    expect(await endOffsetSum(`${prefix}${rebuilt}.${TOPICS.deductions}`)).toBeGreaterThan(0);

    // A second rebuild into the same id is refused: it was used.
    const again = spawnHoldback(`${rebuilt}-again`, [
      'rebuild',
      'repayment',
      ...args,
      `--from=${app}`,
      `--application-id=${rebuilt}`,
    ]);
    expect(await again.exited).toBe(1);
    expect(logTail(again, 5)).toMatch(/has committed offsets already|exist already/);

    // Adopted: the new id goes on from the old one's offsets, deciding each payout once.
    const b = spawnProcessor(`${app}-b`, 'repayment', [...args, `--application-id=${rebuilt}`]);
    await caughtUp(rebuilt, prefix);
    expect(await terminate(b)).toBe(0);
    const driver = new TestDriver(createRepaymentProcessor(), { startAt: Date.now() });
    for (const e of [...loans, ...payouts]) driver.pipe(e.topic, e.value as never);
    const problems = verifyRepayment(
      {
        deductions: (await readAll(prefix, TOPICS.deductions, codec)) as Deduction[],
        loanStates: (await readAll(prefix, TOPICS.loanStates, codec)) as LoanState[],
      },
      {
        deductions: driver.outputs(TOPICS.deductions).map((o) => o.value),
        loanStates: driver.outputs(TOPICS.loanStates).map((o) => o.value),
      },
    );
    expect(problems.slice(0, 10)).toEqual([]);
  });
});

describe('the rebuild reads its outputs only once their transactions are settled', () => {
  const topic = `${run}-settle`;

  afterAll(async () => {
    await deleteTopics(`${run}-settle`);
  });

  test('waits while a transaction is open and returns once it is committed', async () => {
    const kafka = kafkaClient();
    const admin = kafka.admin();
    await admin.connect();
    const producer = kafka.producer({ transactionalId: topic, idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    try {
      await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
      const config = { clientId: topic, brokers: endpoints.kafkaBrokers };
      const tx = await producer.transaction();
      await tx.send({ topic, messages: [{ key: 'a', value: 'open', partition: 1 }] });
      // Open: the stable offset of partition 1 is behind its high watermark.
      await expect(awaitSettled(admin, config, [topic], 1_500)).rejects.toThrow(
        new RegExp(`${topic}/1 still has an open transaction`),
      );
      await tx.commit();
      await awaitSettled(admin, config, [topic], 30_000);
      const ends = await admin.fetchTopicOffsets(topic);
      // One record and its commit marker.
      expect(ends.find((e) => e.partition === 1)?.offset).toBe('2');
    } finally {
      await producer.disconnect();
      await admin.disconnect();
    }
  });
});
