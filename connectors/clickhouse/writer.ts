/**
 * Exactly-once INSERTs into ClickHouse without insert de-duplication (which plain MergeTree on
 * 18.16 does not have). The rule: an INSERT whose outcome is not known is never simply sent
 * again. Instead, after any failure or timeout:
 *
 * 1. fence: the INSERT's TCP connection is reset (RST, not FIN), so request bytes still queued
 *    in the server's socket buffer are discarded by its kernel and can never be executed late;
 * 2. wait until ClickHouse answers again (ping, with backoff; the caller's keepAlive runs
 *    between attempts so the Kafka group membership survives a long outage);
 * 3. barrier: wait until no query of this sink (query_id prefix) is still running on the
 *    server, killing it after a while, so an INSERT the server had already read completes or
 *    dies before we look;
 * 4. re-read the table's positions (max(_offset) per partition) and drop from the retry every
 *    row ClickHouse already has; send the rest as a new INSERT.
 *
 * An INSERT of one block into an unpartitioned MergeTree writes one part, atomically, so a
 * partition's rows in a table are always a prefix of what the sink sent: max(_offset) is an
 * exact resume point. README.md discusses the residual window.
 */
import { Agent, type ClientRequestArgs } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Socket } from 'node:net';
import { Readable, type Duplex } from 'node:stream';
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client';
import { Backoff, sleep, sleepUnless } from '../backoff';
import { clickhouseClientOptions, type ClickHouseConnection } from '../connections';
import { checkDatabaseName } from './migrate';
import type { SinkMetrics } from './metrics';
import { encodeRows, tableLayout, type DescribedColumn, type TableLayout } from './rowbinary';
import type { Row } from './rows';

export interface Logger {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** Thrown out of a retry loop when the sink is asked to stop: the rows are simply read again next time. */
export class SinkStopping extends Error {
  override readonly name = 'SinkStopping';
}

/** The live sockets of an agent, to be reset (TCP RST) at once. */
class LiveSockets {
  private readonly live = new Set<Socket>();

  track(created: Duplex | null | undefined): Duplex | null | undefined {
    const socket = created as Socket | null | undefined;
    if (socket) {
      this.live.add(socket);
      socket.once('close', () => this.live.delete(socket));
    }
    return created;
  }

  /** Resets every live connection; returns how many. */
  resetAll(): number {
    let n = 0;
    for (const s of this.live) {
      if (!s.destroyed) {
        s.resetAndDestroy();
        n++;
      }
      this.live.delete(s);
    }
    return n;
  }
}

/** Rows the sink cannot encode for their table: a bug (rows.ts against the migrations), never retried. */
export class RowEncodingError extends Error {
  override readonly name = 'RowEncodingError';
}

/** An http.Agent that knows its live sockets and can reset them (TCP RST). */
export class FencingAgent extends Agent {
  private readonly liveSockets = new LiveSockets();

  constructor() {
    super({ keepAlive: false, maxSockets: 4 });
  }

  override createConnection(
    options: ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    return this.liveSockets.track(super.createConnection(options, callback));
  }

  resetAll(): number {
    return this.liveSockets.resetAll();
  }
}

/** The same for ClickHouse over HTTPS: a TLS socket is reset the same way (its TCP connection). */
export class FencingHttpsAgent extends HttpsAgent {
  private readonly liveSockets = new LiveSockets();

  constructor(ca: string | undefined) {
    super({ keepAlive: false, maxSockets: 4, ...(ca !== undefined && { ca }) });
  }

  override createConnection(
    options: ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    return this.liveSockets.track(super.createConnection(options, callback));
  }

  resetAll(): number {
    return this.liveSockets.resetAll();
  }
}

export interface WriterOptions {
  /** Where ClickHouse is and how to log in (HOLDBACK_CLICKHOUSE_*). */
  connection: ClickHouseConnection;
  database: string;
  /** An INSERT not answered within this is abandoned (fenced, then reconciled). */
  insertTimeoutMs: number;
  /** How long to wait for a previous INSERT of this sink to finish before killing it. */
  barrierTimeoutMs?: number;
  metrics: SinkMetrics;
  log: Logger;
}

export type KeepAlive = () => Promise<void>;
export type ShouldStop = () => boolean;

export class ClickHouseWriter {
  readonly database: string;
  /** For queries and commands (short timeout). */
  readonly client: ClickHouseClient;
  private readonly insertClient: ClickHouseClient;
  private readonly agent: FencingAgent | FencingHttpsAgent;
  private readonly idPrefix: string;
  private seq = 0;
  private insertSettings: Record<string, number> = {};
  private lastUp: boolean | undefined;
  private readonly layouts = new Map<string, TableLayout>();

  constructor(private readonly o: WriterOptions) {
    this.database = checkDatabaseName(o.database);
    this.idPrefix = `holdback-sink-${this.database}-`;
    // The sink logs every failure itself (one JSON line, with what it does next).
    const log = { level: ClickHouseLogLevel.OFF };
    const c = o.connection;
    this.agent = c.url.startsWith('https:') ? new FencingHttpsAgent(c.ca) : new FencingAgent();
    this.client = createClient({ ...clickhouseClientOptions(c), request_timeout: 10_000, log });
    this.insertClient = createClient({
      ...clickhouseClientOptions(c),
      http_agent: this.agent,
      keep_alive: { enabled: false },
      // Our own deadline (insertTimeoutMs) fences and aborts first; this is a backstop.
      request_timeout: o.insertTimeoutMs * 4,
      log,
    });
  }

  /** Reads the server version once; newer servers get settings that keep an INSERT one block. */
  async init(): Promise<string> {
    const rows = await (
      await this.client.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' })
    ).json<{
      v: string;
    }>();
    const version = rows[0]!.v;
    const major = Number(version.split('.')[0]);
    // 20.x+ parses big inputs in parallel chunks; one chunk per INSERT keeps it one block (and
    // so one part). 18.16 does not know the setting and would refuse it.
    this.insertSettings = major >= 20 ? { input_format_parallel_parsing: 0 } : {};
    this.setUp(true);
    return version;
  }

  /** Reads each table's columns (DESCRIBE TABLE): how its rows are encoded (rowbinary.ts). */
  async loadLayouts(tables: readonly string[]): Promise<void> {
    for (const table of tables) {
      const described = await (
        await this.client.query({ query: `DESCRIBE TABLE ${this.database}.${table}`, format: 'JSONEachRow' })
      ).json<DescribedColumn>();
      this.layouts.set(table, tableLayout(table, described));
    }
  }

  async close(): Promise<void> {
    this.agent.resetAll();
    await Promise.all([this.client.close(), this.insertClient.close()]);
    this.agent.destroy();
  }

  private setUp(up: boolean): void {
    if (this.lastUp !== up) {
      if (up && this.lastUp === false) this.o.log.info('ClickHouse is reachable again');
      this.lastUp = up;
    }
    this.o.metrics.clickhouseUp.set(up ? 1 : 0);
  }

  /** max(_offset) per Kafka partition in a raw table. */
  async positions(table: string): Promise<Map<number, number>> {
    const rows = await (
      await this.client.query({
        query: `SELECT _partition AS p, max(_offset) AS o FROM ${this.database}.${table} GROUP BY _partition`,
        format: 'JSONEachRow',
      })
    ).json<{ p: number | string; o: number | string }>();
    return new Map(rows.map((r) => [Number(r.p), Number(r.o)]));
  }

  /** Queries of this sink (any process) still running on the server. */
  async runningInserts(): Promise<number> {
    const prefix = this.idPrefix;
    const rows = await (
      await this.client.query({
        query: `SELECT count() AS n FROM system.processes WHERE substring(query_id, 1, ${prefix.length}) = '${prefix}'`,
        format: 'JSONEachRow',
      })
    ).json<{ n: number | string }>();
    return Number(rows[0]?.n ?? 0);
  }

  /** Waits until no INSERT of this sink runs on the server; kills them after barrierTimeoutMs. */
  async barrier(keepAlive: KeepAlive): Promise<void> {
    const deadline = Date.now() + (this.o.barrierTimeoutMs ?? 30_000);
    let killed = false;
    while ((await this.runningInserts()) > 0) {
      if (Date.now() >= deadline && !killed) {
        this.o.log.warn('an earlier INSERT of this sink is still running; killing it');
        await this.client.command({
          query: `KILL QUERY WHERE substring(query_id, 1, ${this.idPrefix.length}) = '${this.idPrefix}' SYNC`,
        });
        killed = true;
      }
      await keepAlive();
      await sleep(200);
    }
  }

  /** Pings with backoff until ClickHouse answers. */
  async waitUntilUp(keepAlive: KeepAlive, shouldStop: ShouldStop): Promise<void> {
    const backoff = new Backoff(250, 5000);
    for (;;) {
      if (shouldStop()) throw new SinkStopping('stopping while ClickHouse is unreachable');
      const r = await this.client.ping();
      if (r.success) {
        this.setUp(true);
        return;
      }
      this.setUp(false);
      await keepAlive();
      await sleepUnless(backoff.next(), shouldStop);
    }
  }

  /** One INSERT, fenced on failure. Resolves only when ClickHouse acknowledged it. */
  async insertOnce(table: string, rows: readonly Row[]): Promise<void> {
    const layout = this.layouts.get(table);
    if (!layout) throw new RowEncodingError(`no layout for table ${table}: loadLayouts() first`);
    let body: Buffer;
    try {
      body = encodeRows(layout, rows);
    } catch (e) {
      throw new RowEncodingError(`rows of ${table} cannot be encoded: ${(e as Error).message}`);
    }
    const queryId = `${this.idPrefix}${table}-${process.pid}-${++this.seq}`;
    const abort = new AbortController();
    const timer = setTimeout(() => {
      this.agent.resetAll();
      abort.abort(new Error(`INSERT into ${table} not answered within ${this.o.insertTimeoutMs} ms`));
    }, this.o.insertTimeoutMs);
    try {
      const { stream } = await this.insertClient.exec({
        query: `INSERT INTO ${this.database}.${table} (${layout.columns.join(', ')}) FORMAT RowBinary`,
        values: Readable.from([body]),
        query_id: queryId,
        abort_signal: abort.signal,
        clickhouse_settings: this.insertSettings,
      });
      // The answer is empty; read it to the end so the request completes.
      for await (const _ of stream) void _;
    } catch (e) {
      this.agent.resetAll();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Inserts rows of one raw table (each carrying _partition and _offset) so that each ends up
   * in ClickHouse exactly once, however many attempts it takes. Retries until it succeeds or
   * shouldStop() (then throws SinkStopping; nothing of the batch is assumed durable).
   */
  async insertExactlyOnce(
    table: string,
    rows: readonly Row[],
    keepAlive: KeepAlive,
    shouldStop: ShouldStop,
  ): Promise<number> {
    let pending = rows;
    const backoff = new Backoff(250, 5000);
    let failed = false;
    for (;;) {
      try {
        if (failed) {
          await this.waitUntilUp(keepAlive, shouldStop);
          await this.barrier(keepAlive);
          const known = await this.positions(table);
          const before = pending.length;
          pending = pending.filter(
            (r) => (r['_offset'] as number) > (known.get(r['_partition'] as number) ?? -1),
          );
          if (before > pending.length) {
            this.o.metrics.rowsAlreadyPresent.inc({ table }, before - pending.length);
            this.o.log.warn(
              'the failed INSERT had landed (in part or whole): those rows are not sent again',
              {
                table,
                alreadyPresent: before - pending.length,
              },
            );
          }
          if (pending.length === 0) return rows.length;
        }
        if (shouldStop()) throw new SinkStopping('stopping before the INSERT');
        const t0 = process.hrtime.bigint();
        await this.insertOnce(table, pending);
        this.o.metrics.insertSeconds.observe({ table }, Number(process.hrtime.bigint() - t0) / 1e9);
        this.o.metrics.batchRows.observe({ table }, pending.length);
        this.o.metrics.rowsInserted.inc({ table }, pending.length);
        this.setUp(true);
        return rows.length;
      } catch (e) {
        // Stopping, or rows that no retry can encode (a bug): not ClickHouse's failure.
        if (e instanceof SinkStopping || e instanceof RowEncodingError) throw e;
        failed = true;
        const reason = reasonOf(e);
        this.o.metrics.retries.inc({ table, reason });
        this.setUp(false);
        this.o.log.warn('ClickHouse write failed; will re-read positions and retry', {
          table,
          rows: pending.length,
          reason,
          error: String(e instanceof Error ? e.message : e).slice(0, 300),
          backoffMs: backoff.peek(),
        });
        await keepAlive();
        await sleepUnless(backoff.next(), shouldStop);
      }
    }
  }
}

function reasonOf(e: unknown): string {
  const text =
    e instanceof Error ? `${e.name} ${e.message} ${(e as { code?: string }).code ?? ''}` : String(e);
  if (/ECONNREFUSED/.test(text)) return 'refused';
  if (/not answered within|timeout|ETIMEDOUT/i.test(text)) return 'timeout';
  if (/ECONNRESET|socket hang up|EPIPE/i.test(text)) return 'reset';
  if (/aborted/i.test(text)) return 'aborted';
  return 'server_error';
}
