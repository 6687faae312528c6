/**
 * Issue 12: money does not depend on timing. One input history (a backlog of loans, payouts,
 * sales and orders over four partitions, payouts far ahead of their loans) is processed three
 * times on each transport: by a fresh application; by another that is killed with SIGKILL twice
 * midway; by a third with tiny fetches (1 KiB per partition, a handful of records buffered).
 * All three must give identical deductions, settlements and final loan states, the wall-clock
 * fields (decided_at, updated_at, first_withheld_decided_at) aside, and those of time order.
 */
import { changelogTopic } from '../../runtime/kafka-runtime';
import type { Deduction, LoanState, PayoutSettlement } from '../../schemas/generated/types';
import { TOPICS } from '../../schemas/topics';
import { burstWorkload } from '../harness/burst';
import {
  createTopics,
  deleteTopics,
  endOffsetSum,
  produce,
  readAll,
  registeredCodec,
} from '../harness/kafka';
import {
  kill9,
  logTail,
  spawnProcessor,
  terminate,
  waitFor,
  type ProcessorProcess,
} from '../harness/processes';
import { latestLoanStates, verifyRepayment } from '../harness/verify';

jest.setTimeout(420_000);

const run = `det-${Date.now().toString(36)}`;
// Wall-clock figures: when a step ran. The projection is made as of the step's now (the merchant
// clock is max(event time, now)), so under --clock=wall it is one of them.
const WALL_CLOCK = [
  'decided_at',
  'updated_at',
  'first_withheld_decided_at',
  'projected_period_collected_minor',
];

function stable(r: object): string {
  const copy: Record<string, unknown> = { ...(r as Record<string, unknown>) };
  for (const f of WALL_CLOCK) delete copy[f];
  return JSON.stringify(copy);
}

interface Result {
  deductions: string[];
  settlements: string[];
  loans: string[];
}

describe.each(['kafkajs', 'rdkafka'])('on the %s transport', (transport) => {
  test('fresh, killed twice, tiny fetches: identical money', async () => {
    const codec = await registeredCodec();
    // One history; the same records in the same order into each run's own topics.
    const burst = burstWorkload({
      seed: 42,
      merchants: 200,
      idPrefix: `${run}-${transport}-`,
      startAt: Date.now() - 86_400_000,
    });
    const expectedCount = burst.expected.deductions.length;
    const runs: Array<{ name: string; args: string[]; kills: number }> = [
      { name: 'fresh', args: [], kills: 0 },
      { name: 'killed', args: [], kills: 2 },
      {
        name: 'tiny',
        args: ['--max-fetch-bytes-per-partition=1024', '--max-buffered-per-partition=5'],
        kills: 0,
      },
    ];
    const results: Result[] = [];
    for (const r of runs) {
      const app = `${run}-${transport}-${r.name}`;
      const prefix = `${app}.`;
      await createTopics(prefix, 4);
      await produce(prefix, codec, burst.records, 400);
      const spawn = () =>
        spawnProcessor(app, 'repayment', [
          `--topic-prefix=${prefix}`,
          `--application-id=${app}`,
          `--transport=${transport}`,
          ...r.args,
        ]);
      let p: ProcessorProcess = spawn();
      try {
        for (let k = 0; k < r.kills; k++) {
          const target = ((k + 1) / (r.kills + 1)) * expectedCount;
          await waitFor(
            `${Math.round(target)} deductions written before kill ${k + 1}`,
            async () => (await endOffsetSum(prefix + TOPICS.deductions)) >= target,
            120_000,
            100,
          );
          await kill9(p);
          p = spawn();
        }
        const proc = p;
        await waitFor(
          `${r.name}: every deduction`,
          async () => {
            if (proc.child.exitCode !== null) throw new Error(`exited:\n${logTail(proc)}`);
            return (await readAll(prefix, TOPICS.deductions, codec)).length >= expectedCount;
          },
          180_000,
          1000,
        );
        await waitFor(
          `${r.name}: every loan state`,
          async () =>
            latestLoanStates((await readAll(prefix, TOPICS.loanStates, codec)) as LoanState[]).size ===
            latestLoanStates(burst.expected.loanStates).size,
          60_000,
          1000,
        );
        await new Promise((res) => setTimeout(res, 1500));
        const deductions = (await readAll(prefix, TOPICS.deductions, codec)) as Deduction[];
        const loanStates = (await readAll(prefix, TOPICS.loanStates, codec)) as LoanState[];
        const settlements = (await readAll(prefix, TOPICS.settlements, codec)) as PayoutSettlement[];
        const decisions = await readAll(prefix, TOPICS.payoutDecisions, codec);
        expect(verifyRepayment({ deductions, loanStates, decisions }, burst.expected)).toEqual([]);
        results.push({
          deductions: deductions.map(stable).sort(),
          settlements: settlements.map(stable).sort(),
          loans: [...latestLoanStates(loanStates).values()].map(stable).sort(),
        });
      } finally {
        await terminate(p);
        await deleteTopics(prefix, [changelogTopic(app)]);
      }
    }
    expect(results[0]!.deductions.length).toBe(expectedCount);
    expect(results[0]!.settlements.length).toBeGreaterThan(100);
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
  });
});
