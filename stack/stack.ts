/**
 * `holdback stack up | down | status | logs`: the real components as local processes.
 * up is idempotent: a component already running and healthy is left alone; one that is not is
 * (re)started after checking its ports are free. Every wait is bounded and ends in a message
 * that says what failed and where its log is.
 */
import { existsSync, rmSync } from 'node:fs';
import type { Endpoints } from '../connectors/endpoints';
import { checkCluster, componentNames, components, type Component } from './components';
import { HOME, runDir } from './paths';
import { ensureSecureMaterial } from './secure';
import { ensureDebianPackages } from './install';
import { logFile, portFree, runningPid, sleep, start, stop, tailLog } from './proc';

type Log = (line: string) => void;

export class StackError extends Error {
  override readonly name = 'StackError';
}

const DOCKER_HINT =
  'Or, with a Docker engine: `docker compose up -d` runs the same stack from official images.';

function select(e: Endpoints, names: string[]): Component[] {
  const all = components(e);
  if (names.length === 0) return all;
  return names.map((n) => {
    const c = all.find((x) => x.name === n);
    if (!c) {
      const more = componentNames().includes(n) ? ` (a ${e.kafkaNodes.length}-node cluster has no ${n})` : '';
      throw new StackError(`unknown component '${n}'${more}: one of ${all.map((x) => x.name).join(', ')}`);
    }
    return c;
  });
}

async function waitHealthy(c: Component, e: Endpoints, pid: number): Promise<void> {
  const deadline = Date.now() + c.startTimeoutSec * 1000;
  while (Date.now() < deadline) {
    if (await c.healthy(e)) return;
    if (runningPid(c.name) !== pid) {
      throw new StackError(
        `${c.name} exited during start-up. Last lines of ${logFile(c.name)}:\n${tailLog(c.name, 25)}`,
      );
    }
    await sleep(250);
  }
  throw new StackError(
    `${c.name} did not become healthy within ${c.startTimeoutSec}s at ${c.address(e)}. ` +
      `Last lines of ${logFile(c.name)}:\n${tailLog(c.name, 25)}\n${DOCKER_HINT}`,
  );
}

export async function up(e: Endpoints, names: string[], log: Log): Promise<void> {
  const chosen = select(e, names);
  // Before anything starts: data of another cluster size (or plain vs secure) is refused even if
  // node 1 runs.
  if (chosen.some((c) => c.name.startsWith('kafka'))) checkCluster(e);
  if (e.secure) {
    await ensureDebianPackages({ openssl: 'openssl' }, log);
    ensureSecureMaterial(e, log);
  }
  const started: Array<{ c: Component; pid: number; t0: number }> = [];
  for (const c of chosen) {
    const pid = runningPid(c.name);
    if (pid !== undefined && (await c.healthy(e))) {
      log(`${c.name}: already running (pid ${pid}) at ${c.address(e)}`);
      continue;
    }
    if (pid !== undefined) {
      log(`${c.name}: running (pid ${pid}) but not healthy; restarting it`);
      await stop(c.name, 10_000);
    }
    for (const [setting, port] of c.ports(e)) {
      if (!(await portFree(e.host, port))) {
        throw new StackError(
          `${c.name} cannot start: port ${port} on ${e.host} is taken by another process ` +
            `(see \`ss -ltnp 'sport = :${port}'\`). Stop it, or choose another port with ${setting}=<port>. ${DOCKER_HINT}`,
        );
      }
    }
    const launch = await c.prepare(e, log);
    const t0 = Date.now();
    const newPid = start(launch);
    log(`${c.name}: started (pid ${newPid}), log ${logFile(c.name)}`);
    started.push({ c, pid: newPid, t0 });
  }
  // Components start in parallel; wait for each with its own protocol check.
  await Promise.all(
    started.map(async ({ c, pid, t0 }) => {
      await waitHealthy(c, e, pid);
      log(`${c.name}: healthy after ${((Date.now() - t0) / 1000).toFixed(1)}s at ${c.address(e)}`);
    }),
  );
  for (const c of chosen) await c.afterStart?.(e, log);
}

export async function down(names: string[], purge: boolean, log: Log): Promise<void> {
  const all = componentNames();
  const unknown = names.filter((n) => !all.includes(n));
  if (unknown.length > 0) throw new StackError(`unknown component '${unknown[0]}': one of ${all.join(', ')}`);
  // `kafka` means the whole cluster: its data is one cluster's, whatever its size.
  const chosen =
    names.length === 0
      ? all
      : all.filter((n) => names.includes(n) || (names.includes('kafka') && n.startsWith('kafka-')));
  const stopOne = async (name: string): Promise<void> => {
    const result = await stop(name, name.startsWith('kafka') ? 30_000 : 10_000);
    const hadData = existsSync(runDir(name));
    if (result !== 'not running' || hadData) log(`${name}: ${result}`);
    if (purge && hadData) {
      rmSync(runDir(name), { recursive: true, force: true });
      log(`${name}: data removed`);
    }
  };
  // Reverse order: clients of Kafka (none here) before Kafka; Kafka last, with a longer grace.
  // A cluster's nodes stop together: one stopped after the others have gone waits in vain for a
  // controller quorum to accept its controlled shutdown.
  const kafka = chosen.filter((n) => n.startsWith('kafka'));
  for (const name of chosen.filter((n) => !n.startsWith('kafka')).reverse()) await stopOne(name);
  await Promise.all(kafka.map(stopOne));
}

export interface ComponentStatus {
  name: string;
  pid: number | undefined;
  healthy: boolean;
  address: string;
  log: string;
}

export async function status(e: Endpoints): Promise<ComponentStatus[]> {
  return Promise.all(
    components(e).map(async (c) => ({
      name: c.name,
      pid: runningPid(c.name),
      healthy: await c.healthy(e),
      address: c.address(e),
      log: logFile(c.name),
    })),
  );
}

export function formatStatus(rows: ComponentStatus[]): string {
  const lines = rows.map((r) => {
    const state =
      r.pid === undefined ? (r.healthy ? 'external' : 'stopped') : r.healthy ? 'healthy' : 'unhealthy';
    return `${r.name.padEnd(13)}${state.padEnd(11)}${String(r.pid ?? '-').padEnd(9)}${r.address}`;
  });
  return [
    `${'component'.padEnd(13)}${'state'.padEnd(11)}${'pid'.padEnd(9)}address`,
    ...lines,
    '',
    `state and logs: ${HOME}/run`,
  ].join('\n');
}

export { logFile, tailLog };
