/**
 * Restore of a large state (issue 14): how long a repayment instance takes, from start to its
 * tasks being ready, when its changelog holds one million merchants (one FUNDED loan each), on
 * each transport; beside it, in the same run, Kafka's own ConsumerPerformance reading the same
 * changelog: the ceiling of reading it on this machine.
 *
 * The changelog is written as the runtime writes it: each merchant's state encoded by the
 * repayment processor's Task (a FUNDED per merchant, drained as a commit drains), keyed by
 * merchant, in the partition of the merchant's input (murmur2, connectors/kafka-send.ts).
 *
 *   npx tsx bench/restore.bench.ts [merchants=1000000] [transports=kafkajs,rdkafka]
 *
 * Prints the figures and saves bench/results/restore.json. Needs `holdback stack up` and
 * `npm run build`. A report, not a test: nothing fails on a slow machine.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { changelogTopic } from '../runtime/runtime-base';
import { REPO_ROOT } from '../stack/paths';
import { createTopics, deleteTopics, endpoints, kafkaClient } from '../test/harness/kafka';
import { logTail, spawnProcessor, terminate, waitFor } from '../test/harness/processes';
import { clusterReplication, createTopicsReady } from '../connectors/kafka-admin';
import { writeChangelog } from './changelog-fixture';
import { consumerPerformance, rssMb } from './kafka-tools';
import { kafkaSetup, machine } from './machine';

const MERCHANTS = Number(process.argv[2] ?? 1_000_000);
const TRANSPORTS = (process.argv[3] ?? 'kafkajs,rdkafka').split(',');
const RUN = `bench-restore-${Date.now().toString(36)}`;
const PREFIX = `${RUN}.`;

/** Kafka's ConsumerPerformance reading the whole changelog: the ceiling. */
function ceiling(topic: string, records: number): { recordsPerSecond: number; seconds: number } {
  const perSecond = consumerPerformance(topic, records, `${RUN}-perf`, 120_000);
  return { recordsPerSecond: Math.round(perSecond), seconds: Number((records / perSecond).toFixed(1)) };
}

interface RestoreRun {
  transport: string;
  restoredEntries: number;
  /** From the process's start to its "tasks ready" line. */
  startToReadySeconds: number;
  /** The restore itself, as the runtime logs it. */
  restoreSeconds: number;
  recordsPerSecond: number;
  rssMb: number | null;
}

async function restore(applicationId: string, transport: string): Promise<RestoreRun> {
  const t0 = Date.now();
  const p = spawnProcessor(`${RUN}-${transport}`, 'repayment', [
    `--topic-prefix=${PREFIX}`,
    `--application-id=${applicationId}`,
    `--transport=${transport}`,
  ]);
  try {
    let ready: { restoredEntries: number; ms: number } | undefined;
    await waitFor(
      'the tasks to be ready',
      async () => {
        const line = logTail(p, 400)
          .split('\n')
          .find((l) => l.includes('"msg":"tasks ready"'));
        if (line) ready = JSON.parse(line) as { restoredEntries: number; ms: number };
        if (p.child.exitCode !== null) throw new Error(`the processor exited:\n${logTail(p, 20)}`);
        return ready !== undefined;
      },
      1_800_000,
      500,
    );
    const seconds = (Date.now() - t0) / 1000;
    return {
      transport,
      restoredEntries: ready!.restoredEntries,
      startToReadySeconds: Number(seconds.toFixed(1)),
      restoreSeconds: Number((ready!.ms / 1000).toFixed(1)),
      recordsPerSecond: Math.round(ready!.restoredEntries / (ready!.ms / 1000)),
      rssMb: rssMb(p.child.pid),
    };
  } finally {
    await terminate(p);
  }
}

async function main(): Promise<void> {
  await createTopics(PREFIX);
  const runs: RestoreRun[] = [];
  const topics: string[] = [];
  try {
    // One application id (and changelog) per transport: each restore starts from a cold group.
    const written: Array<{ transport: string; records: number; bytes: number; ms: number }> = [];
    const admin = kafkaClient().admin();
    await admin.connect();
    for (const transport of TRANSPORTS) {
      const app = `${RUN}-${transport}`;
      const topic = changelogTopic(app);
      topics.push(topic);
      await createTopicsReady(admin, [
        {
          topic,
          numPartitions: endpoints.partitions,
          replicationFactor: (await clusterReplication(admin)).replicationFactor,
          configEntries: [{ name: 'cleanup.policy', value: 'compact' }],
        },
      ]);
      console.log(`writing ${MERCHANTS} merchants' state to ${topic}`);
      written.push({ transport, ...(await writeChangelog(topic, MERCHANTS)) });
    }
    await admin.disconnect();
    const ceil = ceiling(topics[0]!, written[0]!.records);
    for (const transport of TRANSPORTS) {
      console.log(`restoring on ${transport}`);
      runs.push(await restore(`${RUN}-${transport}`, transport));
    }
    const result = {
      at: new Date().toISOString(),
      machine: machine(),
      kafka: kafkaSetup(endpoints),
      merchants: MERCHANTS,
      changelog: written,
      ceiling: { tool: 'kafka ConsumerPerformance', ...ceil },
      runs,
    };
    console.log(JSON.stringify(result, null, 2));
    console.log(
      [
        '',
        `restore of ${MERCHANTS} merchants (${written[0]!.records} changelog records, ${Math.round(written[0]!.bytes / 1e6)} MB):`,
        ...runs.map(
          (r) =>
            `  ${r.transport.padEnd(8)} ready after ${r.startToReadySeconds} s (restore ${r.restoreSeconds} s, ${r.recordsPerSecond} records/s, RSS ${r.rssMb} MB)`,
        ),
        `  ceiling  ConsumerPerformance reads it in ${ceil.seconds} s (${ceil.recordsPerSecond} records/s)`,
      ].join('\n'),
    );
    const dir = join(REPO_ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'restore.json'), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await deleteTopics(PREFIX, topics);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
