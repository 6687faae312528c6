/**
 * Changelog faults on the three-node cluster (issue 14), on both transports: the repayment
 * processor's changelog is deleted, or truncated (its records deleted up to the end), while the
 * group keeps its committed offsets. Starting again must be refused, naming the topic and the
 * recovery; `holdback rebuild` must then rebuild the state from the inputs into a fresh
 * application id, report that its outputs match what was published, and the processor started
 * under that id must go on exactly: the scenario's verifier compares every published output
 * with a clean run, and checks the new group decided every input offset.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { whileRetriable } from '../../connectors/kafka-read';
import { changelogTopic } from '../../runtime/kafka-runtime';
import { TOPICS } from '../../schemas/topics';
import { REPO_ROOT } from '../../stack/paths';
import { scenario, TRANSPORTS, type Scenario } from '../harness/eos-scenario';
import { deleteAllRecords, kafkaClient } from '../harness/kafka';
import { kill9, logTail, spawnHoldback, terminate, waitFor } from '../harness/processes';

jest.setTimeout(420_000);

type Fault = 'deleted' | 'truncated';

/** Loses the changelog of `s`'s processor the way `fault` says. */
async function loseChangelog(s: Scenario, fault: Fault): Promise<void> {
  const topic = changelogTopic(s.applicationId);
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    if (fault === 'deleted') {
      await whileRetriable(() => admin.deleteTopics({ topics: [topic] }));
      await waitFor(
        'the changelog to be gone',
        async () => !(await admin.listTopics()).includes(topic),
        30_000,
      );
    } else {
      await deleteAllRecords(admin, topic);
    }
  } finally {
    await admin.disconnect();
  }
}

const cases = (['deleted', 'truncated'] as const).flatMap((fault) =>
  TRANSPORTS.map((transport) => [fault, transport] as const),
);

test.each(cases)(
  'the changelog %s: start is refused, the state is rebuilt from the inputs and the rebuilt id goes on exactly (%s)',
  async (fault, transport) => {
    await scenario(
      `changelog-${fault}`,
      fault === 'deleted' ? 21 : 22,
      async (s) => {
        const a = s.spawn('a');
        await waitFor('40% progress', async () => (await s.progress()) >= 0.4, 120_000);
        // Deleted after a crash; truncated after a clean stop (records can be deleted only up to
        // the last stable offset, which a crashed instance's open transaction holds back).
        if (fault === 'deleted') await kill9(a);
        else expect(await terminate(a)).toBe(0);
        await loseChangelog(s, fault);

        // Refused: going on would process from the committed offsets with no loans.
        const b = s.spawn('refused');
        const code = await Promise.race([
          b.exited,
          new Promise<'running'>((r) => setTimeout(() => r('running'), 90_000)),
        ]);
        const said = logTail(b, 20);
        expect({ code, refused: said.includes('DurabilityError') }).toEqual({ code: 1, refused: true });
        expect(said).toContain(changelogTopic(s.applicationId));
        expect(said).toContain('holdback rebuild');

        // Rebuilt into a fresh id, up to where the old group committed, and compared.
        const rebuiltId = `${s.applicationId}-rebuilt`;
        const report = join(REPO_ROOT, '.holdback', 'test-logs', `${rebuiltId}.json`);
        const r = spawnHoldback(`${rebuiltId}-rebuild`, [
          'rebuild',
          'repayment',
          `--from=${s.applicationId}`,
          `--application-id=${rebuiltId}`,
          `--topic-prefix=${s.prefix}`,
          `--transport=${transport}`,
          '--session-timeout-ms=6000',
          `--report=${report}`,
        ]);
        const rebuildCode = await Promise.race([
          r.exited,
          new Promise<'running'>((res) => setTimeout(() => res('running'), 180_000)),
        ]);
        expect({ rebuildCode, log: rebuildCode === 0 ? '' : logTail(r, 30) }).toEqual({
          rebuildCode: 0,
          log: '',
        });
        const result = JSON.parse(readFileSync(report, 'utf8')) as {
          matches: boolean;
          topics: Array<{ topic: string; published: number; rebuilt: number; matches: boolean }>;
        };
        expect(result.matches).toBe(true);
        const deductions = result.topics.find((t) => t.topic === TOPICS.deductions)!;
        expect(deductions.rebuilt).toBeGreaterThan(0);
        expect(deductions.rebuilt).toBe(deductions.published);

        // Adopted: the rebuilt id goes on from where the old one stopped, publishing nothing twice.
        s.applicationId = rebuiltId;
        return [s.spawn('adopted')];
      },
      { transport },
    );
  },
);
