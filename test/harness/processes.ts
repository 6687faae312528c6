/**
 * Real processor processes for fault tests: `holdback run` spawned as a child (compiled CLI),
 * killed with SIGKILL, paused with SIGSTOP, resumed with SIGCONT. Their stderr goes to a log file
 * per process so a failing test can say what the processor said.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../stack/paths';

export interface ProcessorProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string;
  readonly exited: Promise<number | null>;
}

const LOG_DIR = join(REPO_ROOT, '.holdback', 'test-logs');

export function spawnProcessor(name: string, processor: string, args: string[]): ProcessorProcess {
  return spawnHoldback(name, ['run', processor, ...args]);
}

/** Any `holdback <command>` as a child (e.g. `clickhouse sink`), logging to `<name>.log`. */
export function spawnHoldback(name: string, command: string[]): ProcessorProcess {
  mkdirSync(LOG_DIR, { recursive: true });
  const logFile = join(LOG_DIR, `${name}.log`);
  const out = openSync(logFile, 'a');
  // BENCH_PROFILE_DIR=<dir>: write a V8 CPU profile of each process there when it exits
  // (open it in Chrome DevTools); how the benchmarks find where the time goes.
  const profileDir = process.env['BENCH_PROFILE_DIR'];
  const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const child = spawn(process.execPath, [...nodeArgs, join(REPO_ROOT, 'bin', 'holdback'), ...command], {
    stdio: ['ignore', out, out],
    env: process.env,
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { name, child, logFile, exited };
}

export async function kill9(p: ProcessorProcess): Promise<void> {
  p.child.kill('SIGKILL');
  await p.exited;
}

export async function terminate(p: ProcessorProcess, timeoutMs = 20_000): Promise<number | null> {
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  const code = await p.exited;
  clearTimeout(timer);
  return code;
}

export function logTail(p: ProcessorProcess, lines = 30): string {
  try {
    return readFileSync(p.logFile, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs = 250,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
