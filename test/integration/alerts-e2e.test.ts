/**
 * Ops learn that money is stuck (issue 7), on the real stack: a repayment processor withholds
 * from two payouts; one settles at once (and reports a different amount than instructed), the
 * other's settlement is held back. Prometheus scrapes the processor, the unsettled-withholding
 * alert fires, reaches the real Alertmanager (its API lists it) and a webhook receiver here gets
 * it; once the late settlement arrives the alert resolves and the receiver hears that too.
 *
 * The production rule waits for a withholding two days old; this test loads the same expression
 * with a threshold of 5 seconds from the local stack's extra rule folder, scoped to its own
 * service, and removes it afterwards.
 */
import { createServer, type Server } from 'node:http';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LoanEvent, PayoutEvent } from '../../schemas/generated/types';
import { TOPICS } from '../../schemas/topics';
import { changelogTopic } from '../../runtime/kafka-runtime';
import { ALERT_WEBHOOK_PORT_DEFAULT, localRulesDir } from '../../stack/components';
import { createTopics, deleteTopics, endpoints, produce, readAll, registeredCodec } from '../harness/kafka';
import { logTail, spawnProcessor, terminate, waitFor, type ProcessorProcess } from '../harness/processes';

jest.setTimeout(240_000);

const run = `alerts-${Date.now().toString(36)}`;
const prefix = `${run}.`;
const ruleFile = join(localRulesDir(), `${run}.yml`);
const ALERT = 'HoldbackUnsettledWithholdingTooOld';

interface Notification {
  status: 'firing' | 'resolved';
  alerts: Array<{ status: string; labels: Record<string, string> }>;
}

const received: Notification[] = [];

function startReceiver(): Promise<Server> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/alerts') received.push(JSON.parse(body) as Notification);
      res.writeHead(200);
      res.end();
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', (e) =>
      reject(
        new Error(
          `cannot listen on 127.0.0.1:${ALERT_WEBHOOK_PORT_DEFAULT} for Alertmanager's webhook ` +
            `(is another receiver running?): ${String(e)}`,
        ),
      ),
    );
    server.listen(ALERT_WEBHOOK_PORT_DEFAULT, '127.0.0.1', () => resolve(server));
  });
}

async function reloadPrometheus(): Promise<void> {
  const res = await fetch(`${endpoints.prometheusUrl}/-/reload`, { method: 'POST' });
  if (!res.ok) throw new Error(`Prometheus reload: HTTP ${res.status} ${await res.text()}`);
}

async function promValue(query: string): Promise<number | undefined> {
  const res = await fetch(`${endpoints.prometheusUrl}/api/v1/query?query=${encodeURIComponent(query)}`);
  const body = (await res.json()) as { data: { result: Array<{ value: [number, string] }> } };
  const v = body.data.result[0]?.value[1];
  return v === undefined ? undefined : Number(v);
}

async function alertmanagerAlerts(): Promise<
  Array<{ labels: Record<string, string>; status: { state: string } }>
> {
  const filter = encodeURIComponent(`test_run="${run}"`);
  const res = await fetch(`${endpoints.alertmanagerUrl}/api/v2/alerts?filter=${filter}`);
  return (await res.json()) as Array<{ labels: Record<string, string>; status: { state: string } }>;
}

const notified = (status: 'firing' | 'resolved'): boolean =>
  received.some((n) =>
    n.alerts.some(
      (a) => a.status === status && a.labels['alertname'] === ALERT && a.labels['test_run'] === run,
    ),
  );

let receiver: Server | undefined;
let proc: ProcessorProcess | undefined;

afterAll(async () => {
  rmSync(ruleFile, { force: true });
  await reloadPrometheus().catch(() => undefined);
  if (proc) await terminate(proc);
  await new Promise((r) => (receiver ? receiver.close(r) : r(undefined)));
  await deleteTopics(prefix, [changelogTopic(run)]);
});

test('a withholding whose settlement is late fires the alert through Alertmanager to the webhook, and it resolves', async () => {
  receiver = await startReceiver();
  writeFileSync(
    ruleFile,
    [
      'groups:',
      `  - name: ${run}`,
      '    rules:',
      `      - alert: ${ALERT}`,
      `        expr: max by (service) (holdback_oldest_unsettled_withholding_age_seconds{service="${run}"}) > 5`,
      '        labels:',
      '          severity: warning',
      `          test_run: ${run}`,
      '        annotations:',
      '          summary: "{{ $labels.service }}: a withholding has waited {{ $value }}s for its settlement"',
      `          runbook_url: docs/runbooks/${ALERT}.md`,
      '',
    ].join('\n'),
  );
  await reloadPrometheus();

  const codec = await registeredCodec();
  await createTopics(prefix);
  proc = spawnProcessor(run, 'repayment', [`--topic-prefix=${prefix}`, `--application-id=${run}`]);

  const now = Date.now();
  const funded = (m: string): LoanEvent => ({
    event_id: `${run}-${m}-funded`,
    loan_id: `${run}-${m}-loan`,
    merchant_id: `${run}-${m}`,
    type: 'FUNDED',
    occurred_at: now - 60_000,
    principal_minor: 100_000,
    fee_minor: 10_000,
    holdback_rate_bps: 1000,
    minimum_payment_minor: 0,
    period_days: 30,
    currency: 'USD',
  });
  const payout = (m: string, type: PayoutEvent['type'], withheld: number | null): PayoutEvent => ({
    event_id: `${run}-${m}-${type}`,
    merchant_id: `${run}-${m}`,
    payout_id: `${run}-${m}-payout`,
    type,
    gross_amount_minor: 10_000,
    withheld_minor: withheld,
    currency: 'USD',
    occurred_at: Date.now(),
  });
  const send = (events: Array<LoanEvent | PayoutEvent>) =>
    produce(
      prefix,
      codec,
      events.map((value) =>
        'payout_id' in value
          ? { topic: TOPICS.payouts, key: value.merchant_id, value }
          : { topic: TOPICS.loanEvents, key: value.merchant_id, value },
      ),
    );

  await send([funded('on-time'), funded('late')]);
  await waitFor(
    'both loans to be funded',
    async () => (await readAll(prefix, TOPICS.loanStates, codec)).length === 2,
    60_000,
    1000,
  ).catch((e: Error) => {
    throw new Error(`${e.message}\n${logTail(proc!)}`);
  });
  await send([payout('on-time', 'SCHEDULED', null), payout('late', 'SCHEDULED', null)]);
  // The platform settles the first payout at once, reporting 10 where 1,000 was instructed.
  await send([payout('on-time', 'SETTLED', 10)]);

  await waitFor(
    'Alertmanager to list the alert as active',
    async () =>
      (await alertmanagerAlerts()).some(
        (a) => a.labels['alertname'] === ALERT && a.status.state === 'active',
      ),
    120_000,
    1000,
  );
  await waitFor(
    'the webhook receiver to be notified of the firing alert',
    async () => notified('firing'),
    60_000,
    500,
  );

  expect(await promValue(`holdback_unsettled_withholdings{service="${run}"}`)).toBe(1);
  expect(await promValue(`holdback_unsettled_withheld_minor{service="${run}",currency="USD"}`)).toBe(1000);
  expect(await promValue(`holdback_reconciliation_mismatches_total{service="${run}",currency="USD"}`)).toBe(
    1,
  );
  expect(
    await promValue(`holdback_reconciliation_mismatch_minor_total{service="${run}",currency="USD"}`),
  ).toBe(990);

  // The late settlement arrives: nothing is unsettled, the alert resolves end to end.
  await send([payout('late', 'SETTLED', 1000)]);
  await waitFor(
    'the webhook receiver to be notified that it resolved',
    async () => notified('resolved'),
    120_000,
    500,
  );
  expect(await promValue(`holdback_unsettled_withholdings{service="${run}"}`)).toBe(0);
  expect(await promValue(`holdback_oldest_unsettled_withholding_age_seconds{service="${run}"}`)).toBe(0);
  expect(
    await promValue(`holdback_settlement_lag_seconds_count{service="${run}",stage="withheld_to_settled"}`),
  ).toBe(2);
});
