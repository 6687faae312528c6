/**
 * Issue 12 on the real stack: loans, payouts, sales and orders of many merchants produced in one
 * burst, onto 1 and onto 4 partitions: live, all topics together in time order as one producer
 * writes them; as a backlog, payouts far ahead of the loans they depend on. The
 * repayment processor's outputs must be exactly those of time order, on both transports, whether
 * it was running while the burst arrived or was down and drains it as a backlog.
 */
import { changelogTopic } from '../../runtime/kafka-runtime';
import type { Deduction, LoanState } from '../../schemas/generated/types';
import { TOPICS } from '../../schemas/topics';
import { burstWorkload } from '../harness/burst';
import { createTopics, deleteTopics, produce, readAll, registeredCodec } from '../harness/kafka';
import { healthOf, logTail, spawnProcessor, terminate, waitFor } from '../harness/processes';
import { verifyRepayment } from '../harness/verify';

jest.setTimeout(240_000);

const run = `order-${Date.now().toString(36)}`;

describe.each(['kafkajs', 'rdkafka'])('on the %s transport', (transport) => {
  test.each([
    [1, 'live'],
    [4, 'live'],
    [1, 'backlog'],
    [4, 'backlog'],
  ] as const)('a burst onto %i partition(s), %s: the outputs of time order', async (partitions, mode) => {
    const app = `${run}-${transport}-${partitions}-${mode}`;
    const prefix = `${app}.`;
    const codec = await registeredCodec();
    await createTopics(prefix, partitions);
    const burst = burstWorkload({
      seed: partitions * 7 + mode.length,
      merchants: 120,
      idPrefix: `${app}-`,
      startAt: Date.now() - 86_400_000,
    });
    const withheld = burst.expected.deductions.filter((d) => d.type === 'WITHHOLD').length;
    expect(withheld).toBeGreaterThan(100);
    const spawn = () =>
      spawnProcessor(app, 'repayment', [
        `--topic-prefix=${prefix}`,
        `--application-id=${app}`,
        `--transport=${transport}`,
      ]);
    let p = mode === 'live' ? spawn() : undefined;
    try {
      if (p) {
        const live = p;
        await waitFor(
          'the processor to be ready',
          async () => logTail(live, 200).includes('tasks ready'),
          60_000,
        );
      }
      // Live: the burst as a platform produces it, every topic at once in time order, 400 records
      // a request. Backlog: payouts far ahead of their loans in every partition.
      await produce(prefix, codec, mode === 'live' ? burst.inTime : burst.records, 400);
      p ??= spawn();
      const deductions = async () => (await readAll(prefix, TOPICS.deductions, codec)) as Deduction[];
      const proc = p;
      await waitFor(
        'every expected deduction',
        async () => {
          if (proc.child.exitCode !== null) throw new Error(`the processor exited:\n${logTail(proc)}`);
          return (await deductions()).length >= burst.expected.deductions.length;
        },
        120_000,
        1000,
      ).catch(async (e: Error) => {
        const actual = {
          deductions: await deductions(),
          loanStates: (await readAll(prefix, TOPICS.loanStates, codec)) as LoanState[],
        };
        throw new Error(
          `${e.message}\n${verifyRepayment(actual, burst.expected).slice(0, 10).join('\n')}\n` +
            `--- the processor's log\n${logTail(proc, 30)}\n/health: ${await healthOf(proc)}`,
        );
      });
      // A moment more, so that anything extra would be there too.
      await new Promise((r) => setTimeout(r, 1500));
      const actual = {
        deductions: await deductions(),
        loanStates: (await readAll(prefix, TOPICS.loanStates, codec)) as LoanState[],
      };
      expect(verifyRepayment(actual, burst.expected)).toEqual([]);
      expect(await readAll(prefix, TOPICS.dlq, codec)).toEqual([]);
    } finally {
      if (p) await terminate(p);
      await deleteTopics(prefix, [changelogTopic(app)]);
    }
  });
});
