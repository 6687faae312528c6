/**
 * A task kept across a rebalance must fetch again every partition it had paused (issue 16).
 *
 * A loan backlog at one time and payouts after it: the first instance takes every task, and
 * while it works through the loans (time order: every loan comes first), each task's payouts
 * buffer fills and its payouts partition is paused. A second instance joining takes half the
 * tasks; the first keeps the rest, starting their buffers again. librdkafka keeps an application
 * pause across unassign and assign, so before the fix a kept task never fetched its payouts
 * again: its buffer full of loans, it waited for ever (found by bench/scaling.bench.ts with four
 * instances). Both instances must drain everything: every payout decided once.
 */
import type { Deduction, LoanEvent, PayoutEvent } from '../../schemas/generated/types';
import { TOPICS } from '../../schemas/topics';
import { createTopics, deleteTopics, kafkaClient, produce, readAll, registeredCodec } from '../harness/kafka';
import { healthOf, logTail, spawnProcessor, terminate, waitFor } from '../harness/processes';

jest.setTimeout(240_000);

const run = `pause-${Date.now().toString(36)}`;
const MERCHANTS = 80_000;
const PAYOUTS = 20_000;

describe.each(['rdkafka', 'kafkajs'])('on the %s transport', (transport) => {
  test('a second instance joins while the first has paused partitions: both drain everything', async () => {
    const app = `${run}-${transport}`;
    const prefix = `${app}.`;
    const codec = await registeredCodec();
    await createTopics(prefix);
    const t0 = Date.now() - 10 * 86_400_000;
    const loans: LoanEvent[] = Array.from({ length: MERCHANTS }, (_, i) => ({
      event_id: `${app}-f${i}`,
      loan_id: `${app}-loan${i}`,
      merchant_id: `${app}-m${i}`,
      type: 'FUNDED',
      occurred_at: t0,
      principal_minor: 10_000_000,
      fee_minor: 1_000_000,
      holdback_rate_bps: 1000,
      minimum_payment_minor: 0,
      period_days: 30,
      currency: 'USD',
    }));
    const payouts: PayoutEvent[] = Array.from({ length: PAYOUTS }, (_, j) => ({
      event_id: `${app}-p${j}`,
      merchant_id: `${app}-m${(j * 7919) % MERCHANTS}`,
      payout_id: `${app}-p${j}`,
      type: 'SCHEDULED',
      gross_amount_minor: 10_000,
      withheld_minor: null,
      currency: 'USD',
      occurred_at: t0 + 3_600_000 + j * 1000,
    }));
    await produce(
      prefix,
      codec,
      [
        ...loans.map((l) => ({ topic: TOPICS.loanEvents, key: l.merchant_id, value: l })),
        ...payouts.map((p) => ({ topic: TOPICS.payouts, key: p.merchant_id, value: p })),
      ],
      5000,
    );

    const spawn = (name: string) =>
      spawnProcessor(`${app}-${name}`, 'repayment', [
        `--topic-prefix=${prefix}`,
        `--application-id=${app}`,
        `--transport=${transport}`,
        '--max-buffered-per-partition=200',
        '--metrics-port=0',
      ]);
    const a = spawn('a');
    const procs = [a];
    const admin = kafkaClient('rebalance-pause').admin();
    await admin.connect();
    try {
      await waitFor(
        'the first instance to take every task',
        async () => logTail(a, 200).includes('tasks ready'),
        60_000,
      );
      procs.push(spawn('b'));
      const inputs = [prefix + TOPICS.loanEvents, prefix + TOPICS.payouts];
      const committed = async (): Promise<number> => {
        const offsets = await admin.fetchOffsets({ groupId: app, topics: inputs });
        return offsets.flatMap((t) => t.partitions).reduce((n, p) => n + Math.max(0, Number(p.offset)), 0);
      };
      await waitFor(
        'both instances to commit every input record',
        async () => {
          for (const p of procs)
            if (p.child.exitCode !== null) throw new Error(`an instance exited:\n${logTail(p)}`);
          return (await committed()) >= MERCHANTS + PAYOUTS;
        },
        150_000,
        1000,
      ).catch(async (e: Error) => {
        const health = await Promise.all(procs.map((p) => healthOf(p)));
        throw new Error(
          `${e.message}: ${await committed()} of ${MERCHANTS + PAYOUTS}\n/health: ${health.join('\n')}`,
        );
      });
      // Each instance had tasks at the end (the rebalance happened), and each payout was decided once.
      expect(procs.every((p) => logTail(p, 400).includes('"msg":"assignment"'))).toBe(true);
      const deductions = (await readAll(prefix, TOPICS.deductions, codec)) as Deduction[];
      expect(deductions.length).toBe(PAYOUTS);
      expect(new Set(deductions.map((d) => d.payout_id)).size).toBe(PAYOUTS);
    } finally {
      await Promise.all(procs.map((p) => terminate(p)));
      await admin.disconnect();
      await deleteTopics(prefix, [`${app}-state-changelog`]).catch(() => undefined);
    }
  });
});
