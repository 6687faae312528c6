/**
 * The money path end to end on the real stack, checked to the minor unit against figures worked
 * out by hand from docs/contract.md: a platform's loan and payout events in, deductions, loan states and
 * settlements out (read_committed), through a real `holdback run repayment` process.
 */
import type {
  Deduction,
  LoanEvent,
  LoanState,
  PayoutEvent,
  PayoutSettlement,
} from '../../schemas/generated/types';
import { TOPICS } from '../../schemas/topics';
import { changelogTopic } from '../../runtime/kafka-runtime';
import { latestLoanStates } from '../harness/verify';
import { createTopics, deleteTopics, produce, readAll, registeredCodec } from '../harness/kafka';
import { spawnProcessor, terminate, waitFor } from '../harness/processes';

jest.setTimeout(120_000);

const run = `e2e-${Date.now().toString(36)}`;
const M = `${run}-merchant`;
const T = Date.now() - 3 * 86_400_000;

function funded(loan: string, at: number, principal: number, fee: number, bps: number): LoanEvent {
  return {
    event_id: `${loan}-funded`,
    loan_id: loan,
    merchant_id: M,
    type: 'FUNDED',
    occurred_at: at,
    principal_minor: principal,
    fee_minor: fee,
    holdback_rate_bps: bps,
    minimum_payment_minor: 0,
    period_days: 30,
    currency: 'USD',
  };
}

function payout(
  id: string,
  type: PayoutEvent['type'],
  gross: number,
  at: number,
  extra: Partial<PayoutEvent> = {},
): PayoutEvent {
  return {
    event_id: `${id}-${type}`,
    merchant_id: M,
    payout_id: id,
    type,
    gross_amount_minor: gross,
    withheld_minor: null,
    currency: 'USD',
    occurred_at: at,
    ...extra,
  };
}

// The same test on each Kafka transport (issue 9): they must give identical results.
describe.each(['kafkajs', 'rdkafka'])('on the %s transport', (transport) => {
  test('loans and payouts in, deductions, loan states and settlements out, exact to the minor unit', async () => {
    const app = `${run}-${transport}`;
    const prefix = `${app}.`;
    const codec = await registeredCodec();
    await createTopics(prefix);
    const p = spawnProcessor(app, 'repayment', [
      `--topic-prefix=${prefix}`,
      `--application-id=${app}`,
      `--transport=${transport}`,
    ]);
    try {
      const L1 = `${run}-L1`;
      const L2 = `${run}-L2`;
      // L1: 100000 + 10000 at 10%; L2, funded later: 50000 + 5000 at 5%.
      const loans = [funded(L1, T, 100_000, 10_000, 1000), funded(L2, T + 1000, 50_000, 5_000, 500)];
      await produce(
        prefix,
        codec,
        loans.map((value) => ({ topic: TOPICS.loanEvents, key: M, value })),
      );
      await waitFor(
        'both loans funded',
        async () => (await readAll(prefix, TOPICS.loanStates, codec)).length === 2,
        60_000,
        1000,
      );

      const P = (n: number): string => `${run}-P${n}`;
      const payouts = [
        payout(P(1), 'SCHEDULED', 250_000, T + 60_000), // L1 25000 (-> 85000), L2 12500 (-> 42500)
        payout(P(1), 'SCHEDULED', 250_000, T + 60_000), // the same event again: nothing
        payout(P(2), 'SCHEDULED', 900_000, T + 120_000), // L1 85000 capped by balance, L2 42500: both paid off
        payout(P(2), 'FAILED', 900_000, T + 180_000), // both reversed exactly; both re-open
        payout(P(3), 'SCHEDULED', 99_999, T + 240_000), // floor: L1 9999, L2 4999
        payout(P(4), 'SCHEDULED', 100_000, T + 300_000, { currency: 'EUR' }), // no EUR loan: nothing
        payout(P(3), 'SETTLED', 99_999, T + 360_000, { withheld_minor: 14_000 }), // instructed 14998: mismatch -998
      ];
      await produce(
        prefix,
        codec,
        payouts.map((value) => ({ topic: TOPICS.payouts, key: M, value })),
      );
      await waitFor(
        'the settlement',
        async () => (await readAll(prefix, TOPICS.settlements, codec)).length === 2,
        60_000,
        1000,
      );

      const deductions = (await readAll(prefix, TOPICS.deductions, codec)) as Deduction[];
      expect(
        deductions.map((d) => [d.payout_id, d.loan_id, d.type, d.amount_minor, d.balance_after_minor]),
      ).toEqual([
        [P(1), L1, 'WITHHOLD', 25_000, 85_000],
        [P(1), L2, 'WITHHOLD', 12_500, 42_500],
        [P(2), L1, 'WITHHOLD', 85_000, 0],
        [P(2), L2, 'WITHHOLD', 42_500, 0],
        [P(2), L1, 'REVERSAL', 85_000, 85_000],
        [P(2), L2, 'REVERSAL', 42_500, 42_500],
        [P(3), L1, 'WITHHOLD', 9_999, 75_001],
        [P(3), L2, 'WITHHOLD', 4_999, 37_501],
      ]);
      expect(deductions[0]).toMatchObject({
        gross_amount_minor: 250_000,
        holdback_rate_bps: 1000,
        currency: 'USD',
        source_event_id: `${P(1)}-SCHEDULED`,
      });
      expect(new Set(deductions.map((d) => d.deduction_id)).size).toBe(deductions.length);

      const states = latestLoanStates((await readAll(prefix, TOPICS.loanStates, codec)) as LoanState[]);
      expect(states.get(L1)).toMatchObject({
        status: 'ACTIVE',
        collected_minor: 34_999,
        balance_minor: 75_001,
        principal_minor: 100_000,
        fee_minor: 10_000,
      });
      expect(states.get(L2)).toMatchObject({
        status: 'ACTIVE',
        collected_minor: 17_499,
        balance_minor: 37_501,
      });

      const settlements = (await readAll(prefix, TOPICS.settlements, codec)) as PayoutSettlement[];
      expect(
        settlements.map((s) => [
          s.payout_id,
          s.status,
          s.instructed_minor,
          s.reported_withheld_minor,
          s.mismatch_minor,
        ]),
      ).toEqual([
        [P(2), 'FAILED', 127_500, null, 0],
        [P(3), 'SETTLED', 14_998, 14_000, -998],
      ]);
      expect(await readAll(prefix, TOPICS.dlq, codec)).toEqual([]);
    } finally {
      await terminate(p);
      await deleteTopics(prefix, [changelogTopic(app)]);
    }
  });
});
