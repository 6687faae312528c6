/**
 * Exactly-once under faults, on the real broker (issue 4, reliability.md's fault plan): the
 * repayment processor runs as real `holdback run` processes while inputs stream in; processes
 * are killed, paused past their session timeout, replaced, and the broker itself is killed and
 * restarted. Afterwards a read_committed verifier compares every output with a clean run of
 * the same processor over the same inputs (TestDriver): nothing lost, nothing doubled.
 *
 * These tests kill shared services, so they run alone (jest project `fault`, in band).
 */
import { TOPICS, subjectOf } from '../../schemas/topics';
import { down, up } from '../../stack/stack';
import { SchemaRegistryClient } from '../../connectors/registry';
import { RECORD_SCHEMAS } from '../../schemas/contract';
import { runningPid } from '../../stack/proc';
import { endOffsetSum, endpoints } from '../harness/kafka';
import { kill9, logTail, terminate, waitFor, type ProcessorProcess } from '../harness/processes';
import { scenario, TRANSPORTS } from '../harness/eos-scenario';

jest.setTimeout(240_000);

test.each(TRANSPORTS)(
  'without faults, the outputs equal the clean run exactly; health, metrics and SIGTERM behave (%s)',
  async (transport) => {
    await scenario(
      'clean',
      0,
      async (s) => {
        const a = s.spawn('a');
        await waitFor('half the work', async () => (await s.progress()) >= 0.5, 120_000);
        const url = /"metrics":"(http:[^"]+)"/.exec(logTail(a, 50))?.[1];
        expect(url).toBeDefined();
        const health = await fetch(`${url}/health`);
        const body = (await health.json()) as { ok: boolean; detail: { tasks: Array<{ ready: boolean }> } };
        expect(health.status).toBe(200);
        expect(body.ok).toBe(true);
        expect(body.detail.tasks.filter((t) => t.ready)).toHaveLength(endpoints.partitions);
        const metrics = await (await fetch(`${url}/metrics`)).text();
        expect(metrics).toMatch(
          /holdback_records_in_total\{processor="repayment",topic="marketplace.payouts.v1"\} [1-9]/,
        );
        expect(metrics).toMatch(/holdback_commit_seconds_count\{processor="repayment"\} [1-9]/);
        expect(metrics).not.toMatch(/merchant_id|loan_id/);
        return [a];
      },
      { transport },
    );
  },
);

test('1% poison pills go to the DLQ with their reasons, while the partitions keep moving', async () => {
  await scenario('poison', 5, async (s) => [s.spawn('a')], { poisonRate: 0.01 });
});

test('a registry outage holds records back (retried with backoff) and sends nothing to the DLQ', async () => {
  // Payouts written with a v2 schema the processor has never seen: decoding them needs the registry.
  const v2 = {
    ...RECORD_SCHEMAS.PayoutEvent,
    fields: [
      ...RECORD_SCHEMAS.PayoutEvent.fields,
      { name: 'channel', type: ['null', 'string'], default: null },
    ],
  };
  const registry = new SchemaRegistryClient({ url: endpoints.registryUrl });
  const v2Id = await registry.register(subjectOf(TOPICS.payouts), JSON.stringify(v2));
  const log = (): void => undefined;
  await scenario(
    'registry',
    6,
    async (s) => {
      const a = s.spawn('a');
      await waitFor('every payout to be produced', async () => s.produced() >= 1, 120_000);
      await new Promise((r) => setTimeout(r, 5000));
      // While the registry is down nothing is decided and nothing is dead-lettered.
      expect(await s.progress()).toBe(0);
      expect(await endOffsetSum(s.prefix + TOPICS.dlq)).toBe(0);
      // The outage was met by retrying, not by skipping.
      expect(logTail(a, 400)).toMatch(/schema registry unavailable; retrying/);
      // SIGTERM in the middle of the wait stops the processor promptly and cleanly.
      const t0 = Date.now();
      expect(await terminate(a, 15_000)).toBe(0);
      expect(Date.now() - t0).toBeLessThan(10_000);
      const b = s.spawn('b');
      await new Promise((r) => setTimeout(r, 2000));
      await up(endpoints, ['registry'], log);
      return [b];
    },
    {
      payoutWriter: { id: v2Id, schema: v2 },
      beforePayouts: () => down(['registry'], false, log),
    },
  );
});

test.each(TRANSPORTS)(
  'kill -9 the processor three times, each after at least 20% more progress (%s)',
  async (transport) => {
    await scenario(
      'kill',
      1,
      async (s) => {
        let p = s.spawn('a');
        for (const at of [0.2, 0.4, 0.6]) {
          await waitFor(`${at * 100}% progress`, async () => (await s.progress()) >= at, 120_000);
          await kill9(p);
          p = s.spawn(`after-${at}`);
        }
        return [p];
      },
      { transport },
    );
  },
);

test.each(TRANSPORTS)(
  'with standby replicas, the survivor of a kill -9 opens the killed instance’s tasks from its warm copies (%s)',
  async (transport) => {
    await scenario(
      'standby',
      8,
      async (s) => {
        const flags = ['--standby-replicas=1'];
        const a = s.spawn('a', flags);
        const b = s.spawn('b', flags);
        await waitFor('30% progress', async () => (await s.progress()) >= 0.3, 120_000);
        // Each keeps the other's two tasks warm (4 partitions, 2 instances).
        await waitFor(
          'both instances to keep standbys',
          async () => [a, b].every((p) => /"msg":"standby replicas"/.test(logTail(p, 400))),
          60_000,
        );
        await kill9(b);
        await waitFor(
          'the survivor to open the killed instance’s tasks from standbys',
          async () => /"msg":"tasks ready".*"fromStandby":\[\d/.test(logTail(a, 400)),
          60_000,
        );
        return [a];
      },
      { transport },
    );
  },
);

test.each(TRANSPORTS)(
  'a second instance joins, the first leaves, the second is killed, the first returns (%s)',
  async (transport) => {
    await scenario(
      'handover',
      2,
      async (s) => {
        const a = s.spawn('a');
        await waitFor('15% progress', async () => (await s.progress()) >= 0.15, 120_000);
        const b = s.spawn('b');
        await waitFor('35% progress', async () => (await s.progress()) >= 0.35, 120_000);
        await terminate(a);
        await waitFor('55% progress', async () => (await s.progress()) >= 0.55, 120_000);
        await kill9(b);
        const a2 = s.spawn('a-returns');
        return [a2];
      },
      { transport },
    );
  },
);

test.each(TRANSPORTS)(
  'an instance paused past its session timeout is fenced when it resumes (%s)',
  async (transport) => {
    let zombie: ProcessorProcess | undefined;
    await scenario(
      'zombie',
      3,
      async (s) => {
        // A long commit interval: when paused, a surely holds uncommitted work it will try to commit.
        const a = s.spawn('a', ['--commit-interval-ms=4000']);
        zombie = a;
        await waitFor('20% progress', async () => (await s.progress()) >= 0.2, 120_000);
        const b = s.spawn('b');
        await new Promise((r) => setTimeout(r, 3000)); // b joins and shares the work
        a.child.kill('SIGSTOP');
        // Past a's session timeout (6 s): b takes every partition and goes on.
        await new Promise((r) => setTimeout(r, 9000));
        await waitFor('60% progress', async () => (await s.progress()) >= 0.6, 120_000);
        a.child.kill('SIGCONT'); // a's late commits must fail: its producers were fenced
        await waitFor(
          'the zombie to find out',
          async () => /commit failed on partition/.test(logTail(a, 200)),
          30_000,
        );
        return [a, b];
      },
      { transport },
    );
    // The late commit was refused by the broker (fenced), not merely skipped.
    expect(logTail(zombie!, 400)).toMatch(
      /commit failed on partition \d+: .*(fenced|epoch|transactional id)/i,
    );
  },
);

test('the broker is killed between send and commit and restarted; the processor recovers by itself', async () => {
  await scenario('broker', 4, async (s) => {
    const a = s.spawn('a');
    await waitFor('30% progress', async () => (await s.progress()) >= 0.3, 120_000);
    const pid = runningPid('kafka');
    if (pid === undefined)
      throw new Error("the fault test needs the local stack's Kafka (holdback stack up)");
    process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 8000));
    await up(endpoints, ['kafka'], () => undefined);
    return [a];
  });
});
