/**
 * A processor host whose wall clock is hours off (issue 14), on both transports: the repayment
 * processor runs 5 hours ahead or behind, under libfaketime (Debian's faketime, LD_PRELOAD) on
 * kafkajs, and with JavaScript's clock skewed by a preload (test/harness/skew-clock.cjs) on
 * rdkafka, whose librdkafka hangs under libfaketime.
 * Under --clock=wall the rules run by the Kafka cluster's clock (connectors/broker-clock.ts), so
 * a minimum-payment period closes when the cluster's time passes its end:
 * - 5 h ahead, a period ending in 2 h stays open (the host alone would close it now);
 * - 5 h behind, a period that ended 1 h ago closes (the host alone would wait 4 more hours);
 * - the control, 50 min ahead with --clock-reference=local, closes a period ending in 30 min
 *   early: the test can tell. (Not 5 h: Kafka 4 refuses records stamped more than an hour ahead
 *   of the broker, message.timestamp.after.max.ms, so a host 5 h ahead with its own clock cannot
 *   commit at all; with the broker's clock it stamps by the broker's.)
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { LoanEvent, LoanState } from '../../schemas/generated/types';
import { TOPICS } from '../../schemas/topics';
import { changelogTopic } from '../../runtime/kafka-runtime';
import { createTopics, deleteTopics, produce, readAll, registeredCodec } from '../harness/kafka';
import { logTail, spawnProcessor, terminate, waitFor } from '../harness/processes';
import { TRANSPORTS } from '../harness/eos-scenario';

jest.setTimeout(120_000);

const LIBFAKETIME = ['x86_64', 'aarch64']
  .map((arch) => `/usr/lib/${arch}-linux-gnu/faketime/libfaketimeMT.so.1`)
  .find((p) => existsSync(p));
const HOUR = 3_600_000;
const run = `skew-${Date.now().toString(36)}`;

const MINUTE = 60_000;
const cases = [
  { skew: '+5h', skewMs: 5 * HOUR, reference: 'broker', fundedAgo: 22 * HOUR, closes: false },
  { skew: '-5h', skewMs: -5 * HOUR, reference: 'broker', fundedAgo: 25 * HOUR, closes: true },
  { skew: '+50m', skewMs: 50 * MINUTE, reference: 'local', fundedAgo: 24 * HOUR - 30 * MINUTE, closes: true },
] as const;

/** The environment that skews the processor's clock on `transport`. */
function skewed(transport: string, skew: string, skewMs: number): Record<string, string> {
  if (transport === 'rdkafka') {
    return {
      NODE_OPTIONS: `--require ${join(__dirname, '..', 'harness', 'skew-clock.cjs')}`,
      SKEW_CLOCK_MS: String(skewMs),
    };
  }
  return { LD_PRELOAD: LIBFAKETIME!, FAKETIME: skew, FAKETIME_DONT_FAKE_MONOTONIC: '1' };
}

beforeAll(() => {
  if (!LIBFAKETIME)
    throw new Error('libfaketime is not installed: `npm test` installs it (apt-get install faketime)');
});

describe.each(TRANSPORTS)('on the %s transport', (transport) => {
  test.each(cases)(
    'a host clock $skew with --clock-reference=$reference: the one-day period closes: $closes',
    async ({ skew, skewMs, reference, fundedAgo, closes }) => {
      const app = `${run}-${transport}-${reference}-${skew.replace(/[+-]/, (c) => (c === '+' ? 'ahead' : 'behind'))}`;
      const prefix = `${app}.`;
      const codec = await registeredCodec();
      await createTopics(prefix);
      try {
        const loan: LoanEvent = {
          event_id: `${app}-funded`,
          loan_id: `${app}-L`,
          merchant_id: `${app}-m`,
          type: 'FUNDED',
          occurred_at: Date.now() - fundedAgo,
          principal_minor: 100_000,
          fee_minor: 10_000,
          holdback_rate_bps: 1000,
          minimum_payment_minor: 5_000,
          period_days: 1,
          currency: 'USD',
        };
        await produce(prefix, codec, [{ topic: TOPICS.loanEvents, key: loan.merchant_id, value: loan }]);
        const p = spawnProcessor(
          app,
          'repayment',
          [
            `--topic-prefix=${prefix}`,
            `--application-id=${app}`,
            `--transport=${transport}`,
            `--clock-reference=${reference}`,
          ],
          skewed(transport, skew, skewMs),
        );
        const states = async () => (await readAll(prefix, TOPICS.loanStates, codec)) as LoanState[];
        try {
          await waitFor('the FUNDED loan', async () => (await states()).length > 0, 60_000, 500);
          if (closes) {
            await waitFor(
              'the period to close',
              async () => (await states()).some((s) => s.period_index >= 1),
              30_000,
              500,
            );
          } else {
            // Timers are checked every second: five checks pass with the period still open.
            await new Promise((r) => setTimeout(r, 6000));
          }
          const last = (await states()).at(-1)!;
          expect({ period: last.period_index, status: last.status, missed: last.missed_periods }).toEqual(
            closes ? { period: 1, status: 'BEHIND', missed: 1 } : { period: 0, status: 'ACTIVE', missed: 0 },
          );
          if (reference === 'broker') {
            const offset = Number(
              /clock is off the Kafka cluster's.*"offsetMs":(-?\d+)/.exec(logTail(p, 200))?.[1],
            );
            expect(Math.abs(offset + skewMs)).toBeLessThan(1000);
          }
        } finally {
          expect(await terminate(p)).toBe(0);
        }
      } finally {
        await deleteTopics(prefix, [changelogTopic(app)]);
      }
    },
  );
});
