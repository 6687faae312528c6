/**
 * Starting and stopping the stack's server processes. Each runs detached in its own process
 * group with its output in run/<component>/<component>.log, and its PID in run/<component>/pid.
 * A PID is trusted only while /proc/<pid>/cmdline still names the component's run folder, so a
 * recycled PID is never signalled.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { runDir } from './paths';

export interface Launch {
  component: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export function logFile(component: string): string {
  return join(runDir(component), `${component}.log`);
}

function pidFile(component: string): string {
  return join(runDir(component), 'pid');
}

/** The PID of the component's running process, or undefined when it is not running. */
export function runningPid(component: string): number | undefined {
  const file = pidFile(component);
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    return cmdline.includes(runDir(component)) ? pid : undefined;
  } catch {
    return undefined; // no such process
  }
}

export function start(launch: Launch): number {
  mkdirSync(runDir(launch.component), { recursive: true });
  const out = openSync(logFile(launch.component), 'a');
  try {
    const child = spawn(launch.command, launch.args, {
      cwd: launch.cwd ?? runDir(launch.component),
      env: launch.env ?? process.env,
      detached: true,
      stdio: ['ignore', out, out],
    });
    if (child.pid === undefined) throw new Error(`could not start ${launch.command}`);
    child.unref();
    writeFileSync(pidFile(launch.component), `${child.pid}\n`);
    return child.pid;
  } finally {
    closeSync(out);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM the component's process group, wait up to `graceMs`, then SIGKILL it. */
export async function stop(
  component: string,
  graceMs: number,
): Promise<'stopped' | 'killed' | 'not running'> {
  const pid = runningPid(component);
  rmSync(pidFile(component), { force: true });
  if (pid === undefined) return 'not running';
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-pid, sig);
    } catch {
      try {
        process.kill(pid, sig);
      } catch {
        /* already gone */
      }
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!alive(pid)) return 'stopped';
    await sleep(100);
  }
  signal('SIGKILL');
  while (alive(pid)) await sleep(50);
  return 'killed';
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** True when nothing listens on host:port (we can bind it ourselves). */
export function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** The last `lines` lines of a component's log, for error messages. */
export function tailLog(component: string, lines: number): string {
  const file = logFile(component);
  if (!existsSync(file)) return '(no log yet)';
  const text = readFileSync(file, 'utf8');
  return text
    .split('\n')
    .slice(-lines - 1)
    .join('\n');
}
