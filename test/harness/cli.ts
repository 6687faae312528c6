/**
 * The compiled CLI (bin/holdback, dist/) as a child process, for tests of what a user sees: exit
 * code, stdout, stderr and time, with the services' settings pointing at closed ports and
 * HOLDBACK_HOME at a directory of the test's own, so that nothing reaches the shared local stack.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { REPO_ROOT } from '../../stack/paths';

export const BIN = join(REPO_ROOT, 'bin', 'holdback');
/** Preloaded to refuse (and report as `SIDE EFFECT: ...`) every write, process, connection and fetch. */
export const NO_SIDE_EFFECTS = join(REPO_ROOT, 'test', 'harness', 'no-side-effects.cjs');

/** Every service of the local stack on a port where nothing listens: a connection is refused at once. */
export const CLOSED_PORTS: Record<string, string> = {
  HOLDBACK_KAFKA_PORT: '1031',
  HOLDBACK_KAFKA_CONTROLLER_PORT: '1032',
  HOLDBACK_REGISTRY_PORT: '1033',
  HOLDBACK_REGISTRY_MANAGEMENT_PORT: '1034',
  HOLDBACK_CLICKHOUSE_HTTP_PORT: '1035',
  HOLDBACK_CLICKHOUSE_TCP_PORT: '1036',
  HOLDBACK_PROMETHEUS_PORT: '1037',
  HOLDBACK_ALERTMANAGER_PORT: '1038',
};

/** This process's environment without any HOLDBACK_* setting, then HOLDBACK_HOME, the closed ports and `extra`. */
export function cliEnv(home: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('HOLDBACK_')) env[k] = v;
  return { ...env, HOLDBACK_HOME: home, ...CLOSED_PORTS, ...extra };
}

export interface CliResult {
  readonly args: readonly string[];
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** `holdback ...args` (asynchronously, so that this process can serve it meanwhile). */
export function holdback(
  args: readonly string[],
  options: { env: NodeJS.ProcessEnv; preload?: string; timeoutMs?: number },
): Promise<CliResult> {
  const t0 = Date.now();
  const node = options.preload ? ['--require', options.preload] : [];
  const child = spawn(process.execPath, [...node, BIN, ...args], {
    cwd: REPO_ROOT,
    env: options.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ args, status, signal, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

/** Runs `work` over `items`, at most `limit` at a time, results in the items' order. */
export async function pooled<T, R>(
  items: readonly T[],
  limit: number,
  work: (t: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

/**
 * These tests run the compiled CLI: it must be built (npm test and the set-up scripts build
 * first) and not older than the CLI's sources, or the tests would judge old code.
 */
export function assertBuilt(): void {
  const files = [
    ...sources(join(REPO_ROOT, 'cli')),
    join(REPO_ROOT, 'connectors', 'flags.ts'),
    join(REPO_ROOT, 'runtime', 'config.ts'),
  ];
  for (const ts of files) {
    const rel = relative(REPO_ROOT, ts);
    const js = join(REPO_ROOT, 'dist', rel.replace(/\.ts$/, '.js'));
    if (!existsSync(js))
      throw new Error(`${relative(REPO_ROOT, js)} is missing: run \`npm run build\` first`);
    if (statSync(js).mtimeMs < statSync(ts).mtimeMs)
      throw new Error(`${relative(REPO_ROOT, js)} is older than ${rel}: run \`npm run build\` first`);
  }
}
