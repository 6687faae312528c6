/**
 * One HTTP endpoint per process: /metrics (prom-client, Prometheus text format) and /health
 * (200 when the caller's progress check passes, 503 otherwise: it reflects progress, not mere
 * liveness). The process announces itself to Prometheus by a file_sd target file, removed on close.
 */
import { createServer, type Server } from 'node:http';
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Registry } from 'prom-client';

export interface Health {
  ok: boolean;
  detail: Record<string, unknown>;
}

export interface MetricsServerOptions {
  registry: Registry;
  host: string;
  /** 0 picks a free port. */
  port: number;
  health?: () => Health;
  /** Where Prometheus looks for file_sd targets; when set, a target file is written there. */
  scrapeTargetsDir?: string;
  /** The `job`-like name of this process in Prometheus (label `service`). */
  service: string;
}

export interface MetricsServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

export async function startMetricsServer(o: MetricsServerOptions): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.url === '/metrics') {
      o.registry.metrics().then(
        (text) => {
          res.writeHead(200, { 'Content-Type': o.registry.contentType });
          res.end(text);
        },
        (err: unknown) => {
          res.writeHead(500);
          res.end(String(err));
        },
      );
      return;
    }
    if (req.url === '/health') {
      const h = o.health ? o.health() : { ok: true, detail: {} };
      res.writeHead(h.ok ? 200 : 503, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(h));
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port, o.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;
  let targetFile: string | undefined;
  if (o.scrapeTargetsDir) {
    mkdirSync(o.scrapeTargetsDir, { recursive: true });
    removeDeadTargets(o.scrapeTargetsDir);
    targetFile = join(o.scrapeTargetsDir, `${o.service}-${process.pid}-${port}.json`);
    const tmp = `${targetFile}.tmp`;
    writeFileSync(tmp, JSON.stringify([{ targets: [`${o.host}:${port}`], labels: { service: o.service } }]));
    // Prometheus reads *.json: write then rename, so it never sees half a file.
    renameSync(tmp, targetFile);
  }
  return {
    port,
    url: `http://${o.host}:${port}`,
    async close() {
      if (targetFile) rmSync(targetFile, { force: true });
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A process killed with SIGKILL leaves its target file behind, and Prometheus would report it
 * down (HoldbackProcessorDown) forever. Each starting process removes the files of processes
 * that no longer exist on this machine (the pid is in the name: `<service>-<pid>-<port>.json`).
 */
export function removeDeadTargets(dir: string, alive: (pid: number) => boolean = isAlive): string[] {
  const removed: string[] = [];
  for (const name of readdirSync(dir)) {
    const m = /-(\d+)-\d+\.json$/.exec(name);
    if (!m || alive(Number(m[1]))) continue;
    rmSync(join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by someone else
  }
}
