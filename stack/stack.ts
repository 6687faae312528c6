/**
 * `holdback stack up | down | status | logs`: the real components as local processes.
 * up is idempotent: a component already running and healthy is left alone; one that is not is
 * (re)started after checking its ports are free. Every wait is bounded and ends in a message
 * that says what failed and where its log is.
 */
import { rmSync } from 'node:fs';
import type { Endpoints } from '../connectors/endpoints';
import { COMPONENTS, type Component } from './components';
import { HOME, runDir } from './paths';
import { logFile, portFree, runningPid, sleep, start, stop, tailLog } from './proc';

type Log = (line: string) => void;

export class StackError extends Error {
  override readonly name = 'StackError';
}

const DOCKER_HINT =
  'Or, with a Docker engine: `docker compose up -d` runs the same stack from official images.';

function select(names: string[]): Component[] {
  if (names.length === 0) return [...COMPONENTS];
  return names.map((n) => {
    const c = COMPONENTS.find((x) => x.name === n);
    if (!c)
      throw new StackError(`unknown component '${n}': one of ${COMPONENTS.map((x) => x.name).join(', ')}`);
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
  const chosen = select(names);
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
  // Reverse order: clients of Kafka (none here) before Kafka; Kafka last gets a longer grace.
  for (const c of select(names).reverse()) {
    const result = await stop(c.name, c.name === 'kafka' ? 30_000 : 10_000);
    log(`${c.name}: ${result}`);
    if (purge) {
      rmSync(runDir(c.name), { recursive: true, force: true });
      log(`${c.name}: data removed`);
    }
  }
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
    COMPONENTS.map(async (c) => ({
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
