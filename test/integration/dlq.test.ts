/**
 * A dead letter is never a dead end: a lender's PAUSED that arrives before its loan's FUNDED is
 * rejected (UNKNOWN_LOAN, payload kept); once FUNDED has arrived, `holdback dlq inspect` shows it,
 * with the processor that wrote it (and filters by it), and `holdback dlq replay` re-publishes it,
 * and the processor accepts it.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import type { LoanEvent, LoanState } from '../../schemas/generated/types';
import { TOPICS } from '../../schemas/topics';
import { REPO_ROOT } from '../../stack/paths';
import { changelogTopic } from '../../runtime/kafka-runtime';
import { createTopics, deleteTopics, produce, readAll, registeredCodec } from '../harness/kafka';
import { spawnProcessor, terminate, waitFor } from '../harness/processes';

jest.setTimeout(120_000);

const run = `dlq-${Date.now().toString(36)}`;
const prefix = `${run}.`;

function holdback(...args: string[]): string {
  return execFileSync(process.execPath, [join(REPO_ROOT, 'bin', 'holdback'), ...args], { encoding: 'utf8' });
}

test('inspect shows a rejected event with its reason; replay after the fix gets it accepted', async () => {
  const codec = await registeredCodec();
  await createTopics(prefix);
  const p = spawnProcessor(run, 'repayment', [
    `--topic-prefix=${prefix}`,
    `--application-id=${run}`,
    '--dlq-payload',
  ]);
  try {
    const t = Date.now() - 3_600_000;
    const paused: LoanEvent = {
      event_id: `${run}-paused`,
      loan_id: `${run}-loan`,
      merchant_id: `${run}-m`,
      type: 'PAUSED',
      occurred_at: t + 2000,
      principal_minor: null,
      fee_minor: null,
      holdback_rate_bps: null,
      minimum_payment_minor: null,
      period_days: null,
      currency: null,
    };
    const funded: LoanEvent = {
      ...paused,
      event_id: `${run}-funded`,
      type: 'FUNDED',
      occurred_at: t,
      principal_minor: 100_000,
      fee_minor: 10_000,
      holdback_rate_bps: 1000,
      minimum_payment_minor: 0,
      period_days: 30,
      currency: 'USD',
    };
    await produce(prefix, codec, [{ topic: TOPICS.loanEvents, key: paused.merchant_id, value: paused }]);
    await waitFor(
      'the PAUSED to be dead-lettered',
      async () => (await readAll(prefix, TOPICS.dlq, codec)).length === 1,
      60_000,
      1000,
    );
    await produce(prefix, codec, [{ topic: TOPICS.loanEvents, key: funded.merchant_id, value: funded }]);
    await waitFor(
      'the loan to be funded',
      async () => (await readAll(prefix, TOPICS.loanStates, codec)).length === 1,
      60_000,
      1000,
    );

    const inspected = holdback('dlq', 'inspect', `--topic-prefix=${prefix}`, '--json');
    const letters = inspected
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(letters).toEqual([
      expect.objectContaining({
        reason_code: 'UNKNOWN_LOAN',
        source_topic: TOPICS.loanEvents,
        payload_kept: true,
        processor: 'repayment',
      }),
    ]);
    const byRepayment = holdback('dlq', 'inspect', `--topic-prefix=${prefix}`, '--processor', 'repayment');
    expect(byRepayment).toMatch(/^1 dead letters, UNKNOWN_LOAN: 1\n/);
    expect(byRepayment).toMatch(/ repayment +UNKNOWN_LOAN +lending\.loans\.v1\//);
    expect(holdback('dlq', 'inspect', `--topic-prefix=${prefix}`, '--processor=eligibility')).toBe(
      '0 dead letters\n',
    );
    expect(holdback('dlq', 'replay', `--topic-prefix=${prefix}`, '--reason', 'UNKNOWN_LOAN')).toMatch(
      /replayed 1 dead letters/,
    );

    await waitFor(
      'the replayed PAUSED to be applied',
      async () => {
        const states = (await readAll(prefix, TOPICS.loanStates, codec)) as LoanState[];
        return states.some((s) => s.status === 'PAUSED');
      },
      60_000,
      1000,
    );
    // Accepted this time: the DLQ still holds only the first rejection.
    expect(await readAll(prefix, TOPICS.dlq, codec)).toHaveLength(1);
  } finally {
    await terminate(p);
    await deleteTopics(prefix, [changelogTopic(run)]);
  }
});

test('replay refuses to send everything without a filter', () => {
  expect(() => holdback('dlq', 'replay', `--topic-prefix=${prefix}`)).toThrow(/choose what to replay/);
});
