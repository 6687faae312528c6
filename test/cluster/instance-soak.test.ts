/**
 * Instance soak on the three-node cluster (issue 14), on both transports, as Kafka Streams' EOS
 * soak tests do: three repayment instances in one group while the payouts stream in, and for
 * SOAK_SECONDS (default 75 s in `npm test`) a seeded random fault every 4-8 s: an instance
 * killed with `kill -9`, one frozen with SIGSTOP for 8-14 s (past its session timeout) then
 * resumed with SIGCONT, or a new instance started when fewer than three run. The scenario's
 * verifier then checks exact equality with a clean run, the money invariants, every input
 * offset decided or dead-lettered, and one owner at a time per partition.
 *
 * Each transport runs twice: without standby replicas and with `--standby-replicas=1`.
 * Reported (printed, and saved to .holdback/soak-<transport>-standby<K>.json): for each kill,
 * the time from the kill until every partition the killed instance held was ready on another
 * instance ("tasks ready" in that instance's log), p50 and max, and how long opening those
 * tasks took (the restore part) and how many opened from a standby. No time is asserted on: the machine is
 * shared. Asserted: every kill's partitions came back, and the survivors' final assignments
 * spread the four tasks 2, 1, 1.
 *
 * The long run: `SOAK_SECONDS=600 npx jest --selectProjects cluster --runInBand -t soak`
 * in the cluster's shell (test/cluster/cluster.env); docs/performance.md has its last figures.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../stack/paths';
import { scenario, TRANSPORTS } from '../harness/eos-scenario';
import { kill9, logLines, waitFor, type ProcessorProcess } from '../harness/processes';

const SOAK_MS = Number(process.env['SOAK_SECONDS'] ?? 75) * 1000;
jest.setTimeout(SOAK_MS + 420_000);

/** The partitions `p` held last: its latest assignment. */
function heldBy(p: ProcessorProcess): number[] {
  const assignments = logLines(p).filter((l) => l.msg === 'assignment');
  return assignments[assignments.length - 1]?.partitions ?? [];
}

/** The instances' latest assignments cover each of the four partitions once, 2, 1 and 1 of them. */
function evenlySpread(instances: readonly ProcessorProcess[]): boolean {
  const held = instances.map(heldBy);
  const all = held.flat().sort((a, b) => a - b);
  const sizes = held.map((h) => h.length).sort((a, b) => a - b);
  return JSON.stringify(all) === '[0,1,2,3]' && JSON.stringify(sizes) === '[1,1,2]';
}

/** A small seeded generator (mulberry32): the same seed, the same faults. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};

const cases = TRANSPORTS.flatMap((transport) => [0, 1].map((standbys) => [transport, standbys] as const));

test.each(cases)(
  'instance soak: three instances under random kill -9, start, SIGSTOP and SIGCONT (%s, %i standby replicas)',
  async (transport, standbys) => {
    const all: ProcessorProcess[] = [];
    const kills: Array<{ at: number; victim: ProcessorProcess; held: number[] }> = [];
    const faults: string[] = [];
    const note = (what: string): void => void faults.push(`${new Date().toISOString()} ${what}`);
    let survivors: ProcessorProcess[] = [];
    const soak = scenario(
      `soak-sb${standbys}`,
      31,
      async (s) => {
        const rng = random(transport === 'kafkajs' ? 7 : 11);
        const live = new Set<ProcessorProcess>();
        const frozen = new Map<ProcessorProcess, number>();
        let n = 0;
        const start = (): void => {
          const p = s.spawn(`i${++n}`, [`--standby-replicas=${standbys}`]);
          all.push(p);
          live.add(p);
        };
        for (let i = 0; i < 3; i++) start();
        await waitFor('the first decisions', async () => (await s.progress()) > 0, 120_000);
        const deadline = Date.now() + SOAK_MS;
        while (Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 4000 + rng() * 4000));
          for (const [p, until] of frozen) {
            if (Date.now() < until) continue;
            p.child.kill('SIGCONT');
            frozen.delete(p);
            note(`SIGCONT ${p.name}`);
          }
          const awake = [...live].filter((p) => !frozen.has(p));
          const roll = rng();
          if (live.size < 3 && roll < 0.5) {
            start();
            note(`start i${n}`);
          } else if (awake.length >= 2 && roll < 0.8) {
            const victim = awake[Math.floor(rng() * awake.length)]!;
            const held = heldBy(victim);
            const at = Date.now();
            await kill9(victim);
            live.delete(victim);
            kills.push({ at, victim, held });
            note(`kill -9 ${victim.name} (held ${held.join(',') || 'nothing'})`);
          } else if (awake.length >= 2) {
            const victim = awake[Math.floor(rng() * awake.length)]!;
            victim.child.kill('SIGSTOP');
            frozen.set(victim, Date.now() + 8000 + rng() * 6000);
            note(`SIGSTOP ${victim.name}`);
          } else {
            start();
            note(`start i${n}`);
          }
        }
        for (const p of frozen.keys()) p.child.kill('SIGCONT');
        while (live.size < 3) start();
        survivors = [...live];
        // Scale-out: the group settles with the four tasks spread 2, 1, 1 over the three.
        await waitFor(
          'the three instances to share the tasks evenly',
          async () => evenlySpread(survivors),
          120_000,
          500,
        );
        return survivors;
      },
      { transport, feedMs: SOAK_MS },
    );
    // A failure says what was done, and when.
    await soak.catch((e: Error) => {
      e.message = `${e.message}\nfaults:\n${faults.join('\n')}`;
      throw e;
    });

    // Kill to working: every partition the victim held ready again on another instance.
    const recoveries = kills.map(({ at, victim, held }) => {
      const readyAt = held.map((partition) => {
        const times = all
          .filter((p) => p !== victim)
          .flatMap((p) => logLines(p))
          .filter((l) => l.msg === 'tasks ready' && l.t >= at && (l.partitions ?? []).includes(partition))
          .map((l) => l.t);
        return times.length > 0 ? Math.min(...times) : undefined;
      });
      // The "tasks ready" lines that brought them back: how long opening took, from standbys or not.
      const opened = all
        .filter((p) => p !== victim)
        .flatMap((p) => logLines(p))
        .filter((l) => l.msg === 'tasks ready' && readyAt.includes(l.t));
      return {
        victim: victim.name,
        held,
        ms: readyAt.some((t) => t === undefined) ? undefined : Math.max(at, ...(readyAt as number[])) - at,
        openMs: Math.max(0, ...opened.map((l) => l.ms ?? 0)),
        fromStandby: opened.flatMap((l) => l.fromStandby ?? []).filter((p) => held.includes(p)).length,
      };
    });
    // Every killed instance's partitions came back.
    expect(recoveries.filter((r) => r.ms === undefined)).toEqual([]);
    const ms = recoveries.filter((r) => r.held.length > 0).map((r) => r.ms!);
    // Still spread evenly after the verifier's wait: nothing moved once the faults stopped.
    const final = survivors.map(heldBy);
    expect(evenlySpread(survivors)).toBe(true);
    const openMs = recoveries.filter((r) => r.held.length > 0).map((r) => r.openMs);
    const result = {
      transport,
      standbyReplicas: standbys,
      soakSeconds: SOAK_MS / 1000,
      faults,
      kills: recoveries,
      killToReadyMs: { count: ms.length, p50: quantile(ms, 0.5), max: Math.max(...ms) },
      openMs: { p50: quantile(openMs, 0.5), max: Math.max(...openMs) },
      tasksFromStandby: recoveries.reduce((n, r) => n + r.fromStandby, 0),
      tasksMoved: recoveries.reduce((n, r) => n + r.held.length, 0),
      finalAssignments: Object.fromEntries(survivors.map((p, i) => [p.name, final[i]])),
    };
    mkdirSync(join(REPO_ROOT, '.holdback'), { recursive: true });
    writeFileSync(
      join(REPO_ROOT, '.holdback', `soak-${transport}-standby${standbys}.json`),
      `${JSON.stringify(result, null, 2)}\n`,
    );
    console.log(
      `soak (${transport}, ${standbys} standby replicas, ${result.soakSeconds} s, ${faults.length} faults): ` +
        `kill to ready p50 ${result.killToReadyMs.p50} ms, max ${result.killToReadyMs.max} ms over ` +
        `${ms.length} kills; opening the tasks p50 ${result.openMs.p50} ms, max ${result.openMs.max} ms, ` +
        `${result.tasksFromStandby} of ${result.tasksMoved} from standbys; ` +
        `final assignments ${JSON.stringify(result.finalAssignments)}`,
    );
    expect(kills.length).toBeGreaterThan(0);
  },
);
