/**
 * Scaling curves of repayment on a payout backlog (issue 16): throughput and memory as the number
 * of merchants grows (one instance), and as the number of instances grows (a fixed workload).
 * Each point drains the same kind of backlog as bench/peer.bench.ts (one FUNDED loan per merchant,
 * then SCHEDULED payouts over 20 days) under its own application id, exactly-once, 100 ms commits.
 * Reported per point: payouts/s (whole drain and its steady middle), cores, the instances' peak RSS
 * summed, and RSS per merchant.
 *
 *   npx tsx bench/scaling.bench.ts [merchants, default 10000,100000,1000000] [instances, default 1,2,4]
 *     [payouts per point, default 500000] [transport, default rdkafka]
 *
 * The instance curve runs on the second merchant count (100,000 by default). One instance is
 * bound by its one JavaScript thread (about 1.1 cores), so on two cores a second instance adds
 * throughput and more only cost memory: the curve shows both. Needs `holdback stack up` and a
 * build. Saves bench/results/scaling.json. A report, not a test.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../stack/paths';
import { createTopics, deleteTopics, endpoints, registeredCodec } from '../test/harness/kafka';
import { drain, holdbackRepayment, produceRepaymentBacklog, repaymentInputs, type Drain } from './backlog';
import { consumerPerformance } from './kafka-tools';
import { kafkaSetup, machine } from './machine';
import { TOPICS } from '../schemas/topics';

const MERCHANTS = (process.argv[2] ?? '10000,100000,1000000').split(',').map(Number);
const INSTANCES = (process.argv[3] ?? '1,2,4').split(',').map(Number);
const PAYOUTS = Number(process.argv[4] ?? 500_000);
const TRANSPORT = process.argv[5] ?? 'rdkafka';
const RUN = `bench-scale-${Date.now().toString(36)}`;

interface Point extends Drain {
  merchants: number;
  instances: number;
  rssPerMerchantBytes: number | null;
}

async function main(): Promise<void> {
  const codec = await registeredCodec();
  const points: Point[] = [];
  const ceilings: Record<string, number> = {};
  const curveAt = MERCHANTS[Math.min(1, MERCHANTS.length - 1)]!;
  for (const merchants of MERCHANTS) {
    const input = `${RUN}-${merchants}.`;
    console.log(`\n${merchants} merchants, ${PAYOUTS} payouts (${input})`);
    await createTopics(input);
    try {
      await produceRepaymentBacklog(input, codec, merchants, PAYOUTS);
      ceilings[String(merchants)] = consumerPerformance(
        input + TOPICS.payouts,
        PAYOUTS,
        `${input}perf`,
        120_000,
      );
      const counts = merchants === curveAt ? INSTANCES : INSTANCES.filter((n) => n === 1);
      for (const instances of counts) {
        const app = `${input}holdback-${instances}`;
        await createTopics(`${app}.`);
        try {
          console.log(`draining with ${instances} instance(s)...`);
          const d = await drain(
            `holdback ${TRANSPORT} x${instances}`,
            app,
            repaymentInputs(input),
            PAYOUTS,
            () =>
              Array.from({ length: instances }, (_, i) =>
                holdbackRepayment(app, input, `${app}.`, TRANSPORT, i),
              ),
          );
          const point: Point = {
            ...d,
            merchants,
            instances,
            rssPerMerchantBytes:
              d.peakRssMb === null ? null : Math.round((d.peakRssMb * 1048576) / merchants),
          };
          points.push(point);
          console.log(JSON.stringify(point));
        } finally {
          await deleteTopics(`${app}.`).catch(() => undefined);
          await deleteTopics(`${app}-`).catch(() => undefined);
        }
      }
    } finally {
      await deleteTopics(input).catch(() => undefined);
    }
  }
  console.log('\nmerchants  instances   payouts/s (whole, steady)   cores   peak RSS   RSS/merchant');
  for (const p of points)
    console.log(
      `${String(p.merchants).padStart(9)}  ${String(p.instances).padStart(9)}   ${String(p.payoutsPerSec).padStart(9)} ${String(p.steadyPayoutsPerSec).padStart(9)}       ${String(p.cores).padStart(5)}   ${String(p.peakRssMb).padStart(5)} MB   ${String(p.rssPerMerchantBytes).padStart(7)} B`,
    );
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'scaling.json'),
    `${JSON.stringify(
      {
        run: RUN,
        date: new Date().toISOString(),
        machine: machine(),
        kafka: kafkaSetup(endpoints),
        transport: TRANSPORT,
        payoutsPerPoint: PAYOUTS,
        ceiling: { consumerPerformanceRecordsPerSecByMerchants: ceilings },
        points,
      },
      null,
      2,
    )}\n`,
  );
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
