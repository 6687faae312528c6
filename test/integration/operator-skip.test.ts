/**
 * A partition stopped on a broken invariant, on the real stack and both transports: it says so
 * (/health names the record and its payload hash, /ready is 503, holdback_stopped_partitions is
 * 1), nothing after it is decided, and `holdback dlq skip` (the documented operator command)
 * moves exactly that record to the DLQ as OPERATOR_SKIPPED and lets the partition go on.
 *
 * No valid record breaks the repayment processor's invariants (that is issue 13), so the test
 * wraps it the way a processor bug would behave: one payout_id throws InvariantViolation. The
 * runtime, its HTTP endpoint and the CLI command are the ones `holdback run` uses (serve()).
 */
import { command as dlqCommand } from '../../cli/commands/dlq';
import { serve } from '../../cli/commands/run';
import { InvariantViolation, type Processor } from '../../processors/api';
import { createRepaymentProcessor } from '../../processors/repayment';
import { parseRunOptions } from '../../runtime/config';
import { changelogTopic } from '../../runtime/kafka-runtime';
import type { DeadLetter, Deduction, LoanEvent, PayoutEvent } from '../../schemas/generated/types';
import { TOPICS } from '../../schemas/topics';
import { createTopics, deleteTopics, produce, readAll, registeredCodec } from '../harness/kafka';
import { waitFor } from '../harness/processes';

jest.setTimeout(120_000);
process.env['KAFKAJS_NO_PARTITIONER_WARNING'] = '1';

const run = `skip-${Date.now().toString(36)}`;
const T = Date.now() - 3_600_000;

function buggy(poison: string): Processor<unknown, unknown> {
  const p = createRepaymentProcessor() as Processor<unknown, unknown>;
  return {
    ...p,
    process: (state, input, ctx) => {
      if ((input.value as { payout_id?: string }).payout_id === poison) {
        throw new InvariantViolation(`test: payout ${poison} breaks an invariant`);
      }
      return p.process(state, input, ctx);
    },
  };
}

interface TaskHealth {
  partition: number;
  stoppedBy?: string;
  stoppedAt?: { topic: string; partition: number; offset: number; payloadSha256: string };
}

describe.each(['kafkajs', 'rdkafka'])('on the %s transport', (transport) => {
  test('a stopped partition names its record, and holdback dlq skip moves that record to the DLQ and resumes', async () => {
    const app = `${run}-${transport}`;
    const prefix = `${app}.`;
    const M = `${app}-m`;
    const poison = `${app}-P2`;
    const codec = await registeredCodec();
    await createTopics(prefix, 1);
    const options = parseRunOptions([
      `--topic-prefix=${prefix}`,
      `--application-id=${app}`,
      `--transport=${transport}`,
    ]);
    const { runtime, server } = await serve(buggy(poison), options);
    const health = async (): Promise<TaskHealth[]> =>
      ((await (await fetch(`${server.url}/health`)).json()) as { detail: { tasks: TaskHealth[] } }).detail
        .tasks;
    const metric = async (name: string): Promise<number> =>
      Number(
        new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(
          await (await fetch(`${server.url}/metrics`)).text(),
        )?.[1],
      );
    const skip = (offset: number): Promise<number> =>
      dlqCommand.run([
        'skip',
        `--processor-url=${server.url}`,
        '--partition=0',
        `--topic=${TOPICS.payouts}`,
        `--offset=${offset}`,
        '--note=test: the record is judged wrong',
      ]);
    try {
      await runtime.start();
      const loan: LoanEvent = {
        event_id: `${app}-f`,
        loan_id: `${app}-L`,
        merchant_id: M,
        type: 'FUNDED',
        occurred_at: T,
        principal_minor: 1_000_000,
        fee_minor: 0,
        holdback_rate_bps: 1000,
        minimum_payment_minor: 0,
        period_days: 30,
        currency: 'USD',
      };
      const payout = (n: number): PayoutEvent => ({
        event_id: `${app}-e${n}`,
        merchant_id: M,
        payout_id: `${app}-P${n}`,
        type: 'SCHEDULED',
        gross_amount_minor: 10_000 * n,
        withheld_minor: null,
        currency: 'USD',
        occurred_at: T + n * 1000,
      });
      await produce(prefix, codec, [
        { topic: TOPICS.loanEvents, key: M, value: loan },
        ...[1, 2, 3].map((n) => ({ topic: TOPICS.payouts, key: M, value: payout(n) })),
      ]);

      await waitFor(
        'the partition to stop',
        async () => (await health())[0]?.stoppedBy !== undefined,
        60_000,
      );
      const [task] = await health();
      expect(task!.stoppedAt).toEqual({
        topic: TOPICS.payouts,
        partition: 0,
        offset: 1,
        payloadSha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      });
      expect((await fetch(`${server.url}/ready`)).status).toBe(503);
      expect(await metric('holdback_stopped_partitions')).toBe(1);

      // Naming another record does nothing.
      expect(await skip(2)).toBe(1);
      expect((await health())[0]?.stoppedBy).toBeDefined();

      expect(await skip(1)).toBe(0);
      await waitFor(
        'the payout after it',
        async () => (await readAll(prefix, TOPICS.deductions, codec)).length === 2,
        60_000,
        1000,
      );
      const deductions = (await readAll(prefix, TOPICS.deductions, codec)) as Deduction[];
      expect(deductions.map((d) => [d.payout_id, d.type, d.amount_minor])).toEqual([
        [`${app}-P1`, 'WITHHOLD', 1000],
        [`${app}-P3`, 'WITHHOLD', 3000],
      ]);
      const dlq = (await readAll(prefix, TOPICS.dlq, codec)) as DeadLetter[];
      expect(dlq).toHaveLength(1);
      expect(dlq[0]).toMatchObject({
        source_topic: TOPICS.payouts,
        partition: 0,
        offset: 1,
        reason_code: 'OPERATOR_SKIPPED',
        payload_sha256: task!.stoppedAt!.payloadSha256,
        // The processor whose partition was stopped.
        processor: 'repayment',
      });
      expect(dlq[0]!.detail).toContain('test: the record is judged wrong');
      expect(dlq[0]!.detail).toContain(`payout ${poison} breaks an invariant`);
      await waitFor('ready again', async () => (await fetch(`${server.url}/ready`)).status === 200, 30_000);
      await waitFor(
        'the gauge back at 0',
        async () => (await metric('holdback_stopped_partitions')) === 0,
        30_000,
      );
      expect(await metric('holdback_operator_skips_total')).toBe(1);
    } finally {
      await runtime.stop();
      await server.close();
      await deleteTopics(prefix, [changelogTopic(app)]);
    }
  });
});
