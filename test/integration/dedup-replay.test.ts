/**
 * Issue 13 on the real stack, both transports: a platform re-sends its whole payout history (a
 * replay from offset 0) into a running `holdback run repayment`. Nothing is withheld twice: the
 * payouts still remembered change nothing, those past the de-duplication horizon go to the DLQ as
 * BEYOND_DEDUP_HORIZON with their payout id, and the deduction counters
 * (holdback_deductions_total, holdback_deducted_minor_total) and the ClickHouse deductions table,
 * filled by a real `holdback clickhouse sink`, stay equal to a recount of the deductions topic.
 *
 * The history spans ten days of event time on stream time (`--clock=stream`) with a 2-day
 * horizon: payouts of days 1-5 are forgotten by the end, those of the last 12 hours are not.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';
import { changelogTopic } from '../../runtime/kafka-runtime';
import type { DeadLetter, Deduction, LoanEvent, PayoutEvent } from '../../schemas/generated/types';
import { TOPICS } from '../../schemas/topics';
import { REPO_ROOT } from '../../stack/paths';
import { createTopics, deleteTopics, endpoints, produce, readAll, registeredCodec } from '../harness/kafka';
import {
  logTail,
  spawnHoldback,
  spawnProcessor,
  terminate,
  waitFor,
  type ProcessorProcess,
} from '../harness/processes';

jest.setTimeout(240_000);

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const run = `replay-${Date.now().toString(36)}`;
const END = Date.now() - HOUR;
const MERCHANTS = 24;

function history(app: string): { loans: LoanEvent[]; payouts: PayoutEvent[]; oldPayoutIds: Set<string> } {
  const loans: LoanEvent[] = [];
  const payouts: PayoutEvent[] = [];
  const oldPayoutIds = new Set<string>();
  for (let m = 0; m < MERCHANTS; m++) {
    const merchant = `${app}-m${m}`;
    loans.push({
      event_id: `${merchant}-f`,
      loan_id: `${merchant}-L`,
      merchant_id: merchant,
      type: 'FUNDED',
      occurred_at: END - 10 * DAY,
      principal_minor: 100_000_000,
      fee_minor: 0,
      holdback_rate_bps: 100 + m,
      minimum_payment_minor: 0,
      period_days: 30,
      currency: 'USD',
    });
    // Five payouts on days 1-5, five in the last 12 hours; each SCHEDULED, then SETTLED an hour on.
    const times = [1, 2, 3, 4, 5].map((d) => END - 10 * DAY + d * DAY + m * 60_000);
    times.push(...[0, 1, 2, 3, 4].map((k) => END - 12 * HOUR + k * HOUR + m * 60_000));
    times.forEach((at, k) => {
      const id = `${merchant}-P${k}`;
      if (k < 5) oldPayoutIds.add(id);
      const base = { merchant_id: merchant, payout_id: id, currency: 'USD' } as const;
      const gross = 10_000 * (k + 1) + m;
      payouts.push({
        ...base,
        event_id: `${id}-s`,
        type: 'SCHEDULED',
        gross_amount_minor: gross,
        withheld_minor: null,
        occurred_at: at,
      });
      payouts.push({
        ...base,
        event_id: `${id}-t`,
        type: 'SETTLED',
        gross_amount_minor: gross,
        withheld_minor: null,
        occurred_at: at + HOUR,
      });
    });
  }
  // Each merchant's partition is produced in event-time order.
  payouts.sort((a, b) => a.occurred_at - b.occurred_at);
  return { loans, payouts, oldPayoutIds };
}

describe.each(['kafkajs', 'rdkafka'])('on the %s transport', (transport) => {
  test('payouts replayed from offset 0 withhold nothing again; those past the horizon go to the DLQ', async () => {
    const app = `${run}-${transport}`;
    const prefix = `${app}.`;
    const database = `hbt_${app.replace(/[^A-Za-z0-9]/g, '_')}`;
    const codec = await registeredCodec();
    const clickhouse = createClient({ url: endpoints.clickhouseUrl });
    await createTopics(prefix, 4);
    execFileSync(
      process.execPath,
      [join(REPO_ROOT, 'bin', 'holdback'), 'clickhouse', 'migrate', `--database=${database}`],
      {
        stdio: 'pipe',
      },
    );
    const procs: ProcessorProcess[] = [
      spawnProcessor(app, 'repayment', [
        `--topic-prefix=${prefix}`,
        `--application-id=${app}`,
        `--transport=${transport}`,
        '--clock=stream',
        '--dedup-horizon-days=2',
      ]),
      spawnHoldback(`${app}-sink`, [
        'clickhouse',
        'sink',
        `--topic-prefix=${prefix}`,
        `--database=${database}`,
        `--group-id=${app}-sink`,
      ]),
    ];
    const [processor] = procs;
    const alive = (): void => {
      for (const p of procs)
        if (p.child.exitCode !== null) throw new Error(`${p.name} exited\n${logTail(p)}`);
    };
    const deductions = async (): Promise<Deduction[]> =>
      (await readAll(prefix, TOPICS.deductions, codec)) as Deduction[];
    const dlq = async (): Promise<DeadLetter[]> => (await readAll(prefix, TOPICS.dlq, codec)) as DeadLetter[];
    try {
      const { loans, payouts, oldPayoutIds } = history(app);
      await produce(
        prefix,
        codec,
        loans.map((value) => ({ topic: TOPICS.loanEvents, key: value.merchant_id, value })),
      );
      await produce(
        prefix,
        codec,
        payouts.map((value) => ({ topic: TOPICS.payouts, key: value.merchant_id, value })),
      );
      const scheduled = payouts.filter((p) => p.type === 'SCHEDULED').length;
      await waitFor(
        'one WITHHOLD per payout',
        async () => {
          alive();
          return (await deductions()).length >= scheduled;
        },
        120_000,
        1000,
      );
      const first = await deductions();
      expect(first).toHaveLength(scheduled);
      expect(await dlq()).toEqual([]);

      // The platform re-sends everything, from the first payout on.
      await produce(
        prefix,
        codec,
        payouts.map((value) => ({ topic: TOPICS.payouts, key: value.merchant_id, value })),
      );
      const beyond = payouts.filter((p) => oldPayoutIds.has(p.payout_id));
      await waitFor(
        'the forgotten payouts in the DLQ',
        async () => {
          alive();
          return (await dlq()).length >= beyond.length;
        },
        120_000,
        1000,
      );
      // Every replayed record is processed (the processor's lag is 0) before the recount.
      const url = /"metrics":"(http:[^"]+)"/.exec(readFileSync(processor!.logFile, 'utf8'))?.[1];
      expect(url).toBeDefined();
      const metrics = async (): Promise<string> => (await fetch(`${url}/metrics`)).text();
      await waitFor(
        'the replay processed',
        async () => {
          const lags = [...(await metrics()).matchAll(/^holdback_consumer_lag\{[^}]*\} (\S+)$/gm)].map((m) =>
            Number(m[1]),
          );
          return lags.length > 0 && lags.every((l) => l === 0);
        },
        60_000,
        1000,
      );

      const after = await deductions();
      expect(after).toEqual(first);
      expect(new Set(after.map((d) => d.deduction_id)).size).toBe(after.length);
      const letters = await dlq();
      expect(letters).toHaveLength(beyond.length);
      expect(new Set(letters.map((l) => l.reason_code))).toEqual(new Set(['BEYOND_DEDUP_HORIZON']));
      for (const l of letters) {
        const id = /of payout (\S+), which occurred/.exec(l.detail)?.[1];
        expect(oldPayoutIds.has(id ?? '')).toBe(true);
      }

      // The counters and the analytics table agree with a recount of the topic.
      const recount = { n: after.length, minor: after.reduce((s, d) => s + d.amount_minor, 0) };
      const text = await metrics();
      const sum = (name: string): number =>
        [...text.matchAll(new RegExp(`^${name}\\{[^}]*type="WITHHOLD"[^}]*\\} (\\S+)$`, 'gm'))].reduce(
          (s, m) => s + Number(m[1]),
          0,
        );
      expect({ n: sum('holdback_deductions_total'), minor: sum('holdback_deducted_minor_total') }).toEqual(
        recount,
      );
      await waitFor(
        'the sink to hold every deduction',
        async () => {
          alive();
          const rs = await clickhouse.query({
            query: `SELECT count() AS n, sum(amount_minor) AS minor FROM ${database}.deductions`,
            format: 'JSONEachRow',
          });
          const [row] = await rs.json<{ n: string; minor: string }>();
          return Number(row?.n) === recount.n && Number(row?.minor) === recount.minor;
        },
        60_000,
        1000,
      );
    } finally {
      await Promise.all(procs.map((p) => terminate(p)));
      await clickhouse.command({ query: `DROP DATABASE IF EXISTS ${database}` }).catch(() => undefined);
      await clickhouse.close();
      await deleteTopics(prefix, [changelogTopic(app)]);
    }
  });
});
