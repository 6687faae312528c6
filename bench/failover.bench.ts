/**
 * Failover with and without standby replicas (issue 14): two repayment instances share a large
 * state (one million merchants by default, half on each); one is killed with `kill -9` and the
 * other takes its tasks over. Measured per transport, without standbys and with
 * `--standby-replicas=1`:
 * - kill to assignment: until the survivor is given the killed one's tasks (the session timeout
 *   and the rebalance): the floor under any failover, measured in the same run;
 * - kill to ready: until those tasks are ready on the survivor;
 * - opening them: the survivor's "tasks ready" time (fencing, then a full restore, or reading a
 *   standby to the changelog's end).
 *
 *   npx tsx bench/failover.bench.ts [merchants=1000000] [transports=kafkajs,rdkafka] [fundedDaysAgo=1]
 *
 * Prints the figures and saves bench/results/failover.json. Needs `holdback stack up` and
 * `npm run build`. A report, not a test: nothing fails on a slow machine.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { clusterReplication, createTopicsReady } from '../connectors/kafka-admin';
import { changelogTopic } from '../runtime/runtime-base';
import { REPO_ROOT } from '../stack/paths';
import { createTopics, deleteTopics, endpoints, kafkaClient } from '../test/harness/kafka';
import {
  kill9,
  logLines,
  logTail,
  spawnProcessor,
  terminate,
  waitFor,
  type LogLine,
  type ProcessorProcess,
} from '../test/harness/processes';
import { writeChangelog } from './changelog-fixture';
import { rssMb } from './kafka-tools';
import { kafkaSetup, machine } from './machine';

const MERCHANTS = Number(process.argv[2] ?? 1_000_000);
const TRANSPORTS = (process.argv[3] ?? 'kafkajs,rdkafka').split(',');
/** How long ago the loans were funded; over 30 days, every period closes at the survivor's first tick. */
const FUNDED_DAYS_AGO = Number(process.argv[4] ?? 1);
const RUN = `bench-failover-${Date.now().toString(36)}`;
const PREFIX = `${RUN}.`;
const APP = RUN;
const SESSION_TIMEOUT_MS = 6000;

/** The partitions `p` was last assigned, once each of them has been ready (kept tasks stay ready). */
function readyHeld(p: ProcessorProcess): number[] | undefined {
  const ls = logLines(p);
  const assignments = ls.filter((l) => l.msg === 'assignment');
  const last = assignments[assignments.length - 1];
  if (!last?.partitions?.length) return undefined;
  const ready = new Set(ls.filter((l) => l.msg === 'tasks ready').flatMap((l) => l.partitions ?? []));
  return last.partitions.every((x) => ready.has(x)) ? last.partitions : undefined;
}

interface Run {
  transport: string;
  standbyReplicas: number;
  moved: number[];
  killToAssignmentSeconds: number;
  killToReadySeconds: number;
  openSeconds: number;
  fromStandby: number[];
  survivorRssMb: number | null;
}

async function failover(transport: string, standbys: number): Promise<Run> {
  const args = [
    `--topic-prefix=${PREFIX}`,
    `--application-id=${APP}`,
    `--transport=${transport}`,
    `--session-timeout-ms=${SESSION_TIMEOUT_MS}`,
    `--standby-replicas=${standbys}`,
  ];
  const a = spawnProcessor(`${RUN}-${transport}-sb${standbys}-a`, 'repayment', args);
  const b = spawnProcessor(`${RUN}-${transport}-sb${standbys}-b`, 'repayment', args);
  try {
    await waitFor(
      'both instances to hold two ready tasks',
      async () => {
        for (const p of [a, b]) {
          if (p.child.exitCode !== null) throw new Error(`${p.name} exited:\n${logTail(p, 20)}`);
        }
        return [a, b].every((p) => readyHeld(p)?.length === 2);
      },
      1_800_000,
      1000,
    );
    if (standbys > 0) {
      // Warm: the survivor's standby copies have read the changelog (nothing applied for 3 s).
      let applied = -1;
      let still = 0;
      await waitFor(
        'the standbys to be warm',
        async () => {
          const text = await (await fetch(`${metricsUrl(a)}/metrics`)).text();
          const now = Number(/^holdback_standby_records_total\{[^}]*\} (\d+)/m.exec(text)?.[1] ?? 0);
          still = now > 0 && now === applied ? still + 1 : 0;
          applied = now;
          return still >= 3;
        },
        1_800_000,
        1000,
      );
    }
    const moved = readyHeld(b)!;
    const at = Date.now();
    await kill9(b);
    let assignedAt: number | undefined;
    let ready: LogLine | undefined;
    await waitFor(
      'the survivor to have the killed instance’s tasks ready',
      async () => {
        const ls = logLines(a).filter((l) => l.t >= at);
        assignedAt ??= ls.find(
          (l) => l.msg === 'assignment' && moved.every((x) => l.partitions?.includes(x)),
        )?.t;
        ready = ls.find((l) => l.msg === 'tasks ready' && moved.every((x) => l.partitions?.includes(x)));
        return assignedAt !== undefined && ready !== undefined;
      },
      1_800_000,
      200,
    );
    return {
      transport,
      standbyReplicas: standbys,
      moved,
      killToAssignmentSeconds: Number(((assignedAt! - at) / 1000).toFixed(2)),
      killToReadySeconds: Number(((ready!.t - at) / 1000).toFixed(2)),
      openSeconds: Number(((ready!.ms ?? 0) / 1000).toFixed(2)),
      fromStandby: ready!.fromStandby ?? [],
      survivorRssMb: rssMb(a.child.pid),
    };
  } finally {
    await terminate(a);
    if (b.child.exitCode === null) await terminate(b);
  }
}

/** The instance's metrics address, from its "starting" line. */
function metricsUrl(p: ProcessorProcess): string {
  const m = /"metrics":"(http:[^"]+)"/.exec(readFileSync(p.logFile, 'utf8'));
  if (!m) throw new Error(`${p.name} logged no metrics address`);
  return m[1]!;
}

async function main(): Promise<void> {
  await createTopics(PREFIX);
  const topic = changelogTopic(APP);
  try {
    const admin = kafkaClient().admin();
    await admin.connect();
    await createTopicsReady(admin, [
      {
        topic,
        numPartitions: endpoints.partitions,
        replicationFactor: (await clusterReplication(admin)).replicationFactor,
        configEntries: [{ name: 'cleanup.policy', value: 'compact' }],
      },
    ]);
    await admin.disconnect();
    console.log(`writing ${MERCHANTS} merchants' state to ${topic}`);
    const written = await writeChangelog(topic, MERCHANTS, Date.now() - FUNDED_DAYS_AGO * 86_400_000);
    const runs: Run[] = [];
    for (const transport of TRANSPORTS) {
      for (const standbys of [0, 1]) {
        console.log(`failover on ${transport}, ${standbys} standby replicas`);
        runs.push(await failover(transport, standbys));
        console.log(`  ${JSON.stringify(runs[runs.length - 1])}`);
      }
    }
    const result = {
      at: new Date().toISOString(),
      machine: machine(),
      kafka: kafkaSetup(endpoints),
      merchants: MERCHANTS,
      fundedDaysAgo: FUNDED_DAYS_AGO,
      changelog: written,
      sessionTimeoutMs: SESSION_TIMEOUT_MS,
      runs,
    };
    console.log(
      [
        '',
        `failover of half of ${MERCHANTS} merchants' state (2 of 4 tasks), kill -9 to ready on the survivor:`,
        ...runs.map(
          (r) =>
            `  ${r.transport.padEnd(8)} standbys ${r.standbyReplicas}: ready after ${r.killToReadySeconds} s ` +
            `(floor: assigned after ${r.killToAssignmentSeconds} s; opening ${r.openSeconds} s` +
            `${r.fromStandby.length > 0 ? `, ${r.fromStandby.length} tasks from standbys` : ', full restore'}; ` +
            `survivor RSS ${r.survivorRssMb} MB)`,
        ),
      ].join('\n'),
    );
    const dir = join(REPO_ROOT, 'bench', 'results');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'failover.json'), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    await deleteTopics(PREFIX, [topic]);
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
