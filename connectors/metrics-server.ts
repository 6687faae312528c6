/**
 * One HTTP endpoint per process:
 * - /metrics (prom-client, Prometheus text format);
 * - /health: 200 when the caller's progress check passes, 503 otherwise, with the details;
 * - /live: liveness, for a probe that restarts the process: 503 only when restarting it would
 *   help (its work loop is wedged or ended). A stopped partition or a slow broker is not that;
 * - /ready: readiness, for a probe that routes work or holds a rollout: tasks assigned and
 *   restored, progress within bounds;
 * - the process's POST commands (JSON in, JSON out; processors: /admin/skip).
 * It binds HOLDBACK_METRICS_HOST (127.0.0.1 unless set). With HOLDBACK_METRICS_TOKEN, /metrics,
 * /health and the commands need `Authorization: Bearer <token>`; /live and /ready stay open, as
 * orchestrators' probes expect. Every JSON answer is redacted (connectors/secrets.ts). The process
 * announces itself to Prometheus by a file_sd target file, removed on close.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import { redact } from './secrets';
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
  /** Readiness; /ready answers 503 when false (default: always ready). */
  ready?: () => boolean;
  /** Liveness; /live answers 503 when false (default: always live). */
  live?: () => Health;
  /** A bearer token that /metrics, /health and the commands require. */
  token?: string;
  /** POST commands by path: the JSON body in, an HTTP status and a JSON answer out. */
  commands?: Record<string, (body: unknown) => Promise<CommandResult>>;
  /** Where Prometheus looks for file_sd targets; when set, a target file is written there. */
  scrapeTargetsDir?: string;
  /** The `job`-like name of this process in Prometheus (label `service`). */
  service: string;
}

export interface CommandResult {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

const MAX_COMMAND_BYTES = 64 * 1024;

function answer(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(redact(JSON.stringify(body)));
}

/** Whether the request carries the bearer token (compared in constant time). */
function authorized(req: IncomingMessage, token: string | undefined): boolean {
  if (token === undefined) return true;
  const given = Buffer.from(req.headers.authorization ?? '');
  const wanted = Buffer.from(`Bearer ${token}`);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

/** Runs a POST command: 400 for a body that is not JSON or too large, its own status otherwise. */
function runCommand(
  req: IncomingMessage,
  res: ServerResponse,
  command: (body: unknown) => Promise<CommandResult>,
): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size <= MAX_COMMAND_BYTES) chunks.push(c);
  });
  req.on('end', () => {
    if (size > MAX_COMMAND_BYTES) return answer(res, 413, { error: `body over ${MAX_COMMAND_BYTES} bytes` });
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
    } catch (e) {
      return answer(res, 400, { error: `body is not JSON: ${e instanceof Error ? e.message : String(e)}` });
    }
    command(body).then(
      (r) => answer(res, r.status, r.body),
      (e: unknown) => answer(res, 500, { error: e instanceof Error ? e.message : String(e) }),
    );
  });
}

export interface MetricsServer {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

export async function startMetricsServer(o: MetricsServerOptions): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.url === '/live') {
      const h = o.live ? o.live() : { ok: true, detail: {} };
      answer(res, h.ok ? 200 : 503, { live: h.ok, ...h.detail });
      return;
    }
    if (req.url === '/ready') {
      const ready = o.ready ? o.ready() : true;
      answer(res, ready ? 200 : 503, { ready });
      return;
    }
    if (!authorized(req, o.token)) {
      res.writeHead(401, { 'WWW-Authenticate': 'Bearer', 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({ error: 'this endpoint needs Authorization: Bearer <HOLDBACK_METRICS_TOKEN>' }),
      );
      return;
    }
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
    const command = req.url !== undefined ? o.commands?.[req.url] : undefined;
    if (command) {
      if (req.method !== 'POST') {
        res.writeHead(405, { Allow: 'POST' });
        res.end();
        return;
      }
      runCommand(req, res, command);
      return;
    }
    if (req.url === '/health') {
      const h = o.health ? o.health() : { ok: true, detail: {} };
      answer(res, h.ok ? 200 : 503, h);
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
    // Bound to every address: the local Prometheus scrapes it on loopback.
    const scrapeHost = o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host;
    writeFileSync(
      tmp,
      JSON.stringify([{ targets: [`${scrapeHost}:${port}`], labels: { service: o.service } }]),
    );
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
