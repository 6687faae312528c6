/**
 * Issue 17 on the real stack, on each transport: every SCHEDULED payout is answered on
 * holdback.payout-decisions.v1 (withheld, or 0 and why), and a record a producer put in another
 * partition than murmur2 gives its key (here librdkafka's default, consistent_random: CRC32) goes
 * to the DLQ as WRONG_PARTITION naming the partition it belongs in, instead of being applied by a
 * task that does not hold its merchant.
 */
import { crc32 } from 'node:zlib';
import { partitionOfKey } from '../../connectors/partitioner';
import type { DeadLetter, LoanEvent, PayoutDecision, PayoutEvent } from '../../schemas/generated/types';
import { TOPICS } from '../../schemas/topics';
import { createTopics, deleteTopics, endpoints, produce, readAll, registeredCodec } from '../harness/kafka';
import { spawnProcessor, terminate, waitFor } from '../harness/processes';

jest.setTimeout(120_000);

const run = `decide-${Date.now().toString(36)}`;
const T = Date.now() - 86_400_000;
const partitions = endpoints.partitions;

/** librdkafka's consistent_random partitioner for a keyed record. */
const crcPartition = (key: string): number => crc32(Buffer.from(key, 'utf8')) % partitions;
/** A merchant id that the two partitioners put in different partitions. */
function misroutable(stem: string): string {
  for (let i = 0; ; i++) {
    const id = `${stem}-${i}`;
    if (crcPartition(id) !== partitionOfKey(Buffer.from(id, 'utf8'), partitions)) return id;
  }
}

function payout(
  merchant: string,
  id: string,
  gross: number,
  at: number,
  extra: Partial<PayoutEvent> = {},
): PayoutEvent {
  return {
    event_id: `${id}-scheduled`,
    merchant_id: merchant,
    payout_id: id,
    type: 'SCHEDULED',
    gross_amount_minor: gross,
    withheld_minor: null,
    currency: 'USD',
    occurred_at: at,
    ...extra,
  };
}

describe.each(['kafkajs', 'rdkafka'])('on the %s transport', (transport) => {
  test('each SCHEDULED payout gets a decision; a record in the wrong partition is dead-lettered with the right one', async () => {
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
      const M = misroutable(`${app}-m`);
      const N = `${app}-n`; // no loan
      const loan: LoanEvent = {
        event_id: `${app}-L1-funded`,
        loan_id: `${app}-L1`,
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
      const P1 = payout(M, `${app}-P1`, 5_000, T + 1000);
      const misrouted = payout(M, `${app}-P2`, 7_000, T + 2000);
      await produce(prefix, codec, [
        { topic: TOPICS.loanEvents, key: M, value: loan },
        { topic: TOPICS.payouts, key: M, value: P1 },
        { topic: TOPICS.payouts, key: M, value: misrouted, partition: crcPartition(M) },
        {
          topic: TOPICS.payouts,
          key: M,
          value: payout(M, `${app}-P3`, 4_000, T + 3000, { currency: 'EUR' }),
        },
        {
          topic: TOPICS.payouts,
          key: M,
          value: { ...P1, event_id: `${app}-P1-resent`, occurred_at: T + 4000 },
        },
        { topic: TOPICS.payouts, key: N, value: payout(N, `${app}-P4`, 3_000, T + 1000) },
      ]);

      let decisions: PayoutDecision[] = [];
      let dead: DeadLetter[] = [];
      await waitFor(
        'four payout decisions and one dead letter',
        async () => {
          decisions = await readAll(prefix, TOPICS.payoutDecisions, codec);
          dead = await readAll(prefix, TOPICS.dlq, codec);
          return decisions.length >= 4 && dead.length >= 1;
        },
        60_000,
        500,
      );
      const byPayout = new Map(decisions.map((d) => [`${d.payout_id} ${d.source_event_id}`, d]));
      expect(decisions).toHaveLength(4);
      expect(byPayout.get(`${app}-P1 ${app}-P1-scheduled`)).toMatchObject({
        merchant_id: M,
        reason_code: 'WITHHELD',
        withheld_minor: 500,
        deduction_ids: [`${app}-P1:${app}-L1:WITHHOLD`],
        gross_amount_minor: 5_000,
        currency: 'USD',
      });
      expect(byPayout.get(`${app}-P3 ${app}-P3-scheduled`)).toMatchObject({
        reason_code: 'OTHER_CURRENCY',
        withheld_minor: 0,
        deduction_ids: [],
      });
      expect(byPayout.get(`${app}-P1 ${app}-P1-resent`)).toMatchObject({
        reason_code: 'ALREADY_DECIDED',
        withheld_minor: 0,
      });
      expect(byPayout.get(`${app}-P4 ${app}-P4-scheduled`)).toMatchObject({
        merchant_id: N,
        reason_code: 'NO_LIVE_LOAN',
        withheld_minor: 0,
      });

      // The misrouted payout: dead-lettered from the partition it was put in, nothing withheld,
      // by the repayment processor (the letter says so: eligibility reads payouts too).
      const expected = partitionOfKey(Buffer.from(M, 'utf8'), partitions);
      expect(dead).toHaveLength(1);
      expect(dead[0]).toMatchObject({
        source_topic: TOPICS.payouts,
        partition: crcPartition(M),
        reason_code: 'WRONG_PARTITION',
        processor: 'repayment',
      });
      expect(dead[0]!.detail).toContain(`expected partition ${expected}`);
      const deductions = await readAll(prefix, TOPICS.deductions, codec);
      expect(deductions.map((d) => [d.payout_id, d.amount_minor])).toEqual([[`${app}-P1`, 500]]);
    } finally {
      expect(await terminate(p)).toBe(0);
      await deleteTopics(prefix);
    }
  });
});
