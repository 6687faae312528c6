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

export function spawnProcessor(
  name: string,
  processor: string,
  args: string[],
  env?: Record<string, string | undefined>,
): ProcessorProcess {
  return spawnHoldback(name, ['run', processor, ...args], env);
}

/** Any `holdback <command>` as a child (e.g. `clickhouse sink`), logging to `<name>.log`. */
export function spawnHoldback(
  name: string,
  command: string[],
  /** Replaces settings of the child's environment; an undefined value removes the setting. */
  env?: Record<string, string | undefined>,
): ProcessorProcess {
  mkdirSync(LOG_DIR, { recursive: true });
  const logFile = join(LOG_DIR, `${name}.log`);
  const out = openSync(logFile, 'a');
  // BENCH_PROFILE_DIR=<dir>: write a V8 CPU profile of each process there when it exits
  // (open it in Chrome DevTools); how the benchmarks find where the time goes.
  const profileDir = process.env['BENCH_PROFILE_DIR'];
  const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const child = spawn(process.execPath, [...nodeArgs, join(REPO_ROOT, 'bin', 'holdback'), ...command], {
    stdio: ['ignore', out, out],
    env: withEnv(env),
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { name, child, logFile, exited };
}

function withEnv(changes: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const [k, v] of Object.entries(changes)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
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

/** A line of a processor's JSON log, with the fields the failover measurements read. */
export interface LogLine {
  /** ms since the epoch */
  t: number;
  msg: string;
  partitions?: number[];
  ms?: number;
  fromStandby?: number[];
}

/** The processor's JSON log lines so far (a line cut by kill -9 is left out). */
export function logLines(p: ProcessorProcess): LogLine[] {
  const out: LogLine[] = [];
  for (const line of readFileSync(p.logFile, 'utf8').split('\n')) {
    if (!line.startsWith('{"t":')) continue;
    try {
      const j = JSON.parse(line) as Omit<LogLine, 't'> & { t: string };
      out.push({ ...j, t: Date.parse(j.t) });
    } catch {
      // A line cut by kill -9: nothing to learn from it.
    }
  }
  return out;
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

/**
 * The processor's /health (tasks, buffers, lag, last error) as its "starting" log line names its
 * endpoint: what a test that timed out prints beside the log. Never throws.
 */
export async function healthOf(p: ProcessorProcess): Promise<string> {
  const url = /"metrics":"(http:\/\/[^"]+)"/.exec(logTail(p, 10_000))?.[1];
  if (!url) return '(no metrics endpoint logged)';
  try {
    const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
    return await r.text();
  } catch (e) {
    return `(no /health: ${String(e)})`;
  }
}
