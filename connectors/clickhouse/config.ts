/**
 * Options of `holdback clickhouse <migrate|sink|status>`: a schema with documented defaults that
 * rejects unknown keys; a bad option stops start-up naming it.
 */
import { z } from 'zod';
import { ConfigError } from '../endpoints';

export const CLICKHOUSE_OPTIONS = z
  .object({
    /** The ClickHouse database of the analytics tables (created by migrate). */
    database: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]{0,100}$/)
      .default('holdback'),
    /** Prepended to every contract topic (tests, simulations, tenants). */
    topicPrefix: z
      .string()
      .regex(/^[A-Za-z0-9._-]{0,100}$/)
      .default(''),
    /** Consumer group of the sink; default holdback-clickhouse-<database>. Its offsets are advisory. */
    groupId: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,200}$/)
      .optional(),
    /** Flush when this many rows are buffered (over all tables). */
    maxBatchRows: z.coerce.number().int().min(1).max(500_000).default(20_000),
    /** Flush when the oldest buffered row is this old (ms). */
    maxBatchMs: z.coerce.number().int().min(10).max(600_000).default(1000),
    /** An INSERT not answered within this is fenced and reconciled (ms). */
    insertTimeoutMs: z.coerce.number().int().min(1000).max(600_000).default(30_000),
    /** Consumer group session timeout (ms). */
    sessionTimeoutMs: z.coerce.number().int().min(6000).max(300_000).default(30_000),
    /** /metrics and /health port; 0 picks a free one. */
    metricsPort: z.coerce.number().int().min(0).max(65535).default(0),
  })
  .strict();

export type ClickHouseOptions = z.infer<typeof CLICKHOUSE_OPTIONS>;

function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

function kebab(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}

export function parseClickHouseOptions(args: readonly string[]): ClickHouseOptions {
  const raw: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--')) throw new ConfigError(`unexpected argument '${a}'`);
    const eq = a.indexOf('=');
    if (eq > 0) raw[camel(a.slice(2, eq))] = a.slice(eq + 1);
    else if (args[i + 1] !== undefined && !args[i + 1]!.startsWith('--')) raw[camel(a.slice(2))] = args[++i]!;
    else throw new ConfigError(`option ${a} needs a value`);
  }
  const parsed = CLICKHOUSE_OPTIONS.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = issue.path[0] === undefined ? undefined : String(issue.path[0]);
    if (issue.code === 'unrecognized_keys') {
      throw new ConfigError(`unknown option --${kebab((issue as { keys: string[] }).keys[0]!)}`);
    }
    throw new ConfigError(`bad option --${kebab(key ?? '?')}=${key ? raw[key] : ''}: ${issue.message}`);
  }
  return parsed.data;
}

export function describeClickHouseOptions(): string {
  return [
    '  --database=D            ClickHouse database (default holdback)',
    '  --topic-prefix=P        prefix of every contract topic (default none)',
    '  --group-id=G            sink consumer group (default holdback-clickhouse-<database>)',
    '  --max-batch-rows=N      flush at N buffered rows (default 20000)',
    '  --max-batch-ms=MS       flush when the oldest buffered row is MS old (default 1000)',
    '  --insert-timeout-ms=MS  fence and reconcile an INSERT unanswered after MS (default 30000)',
    '  --session-timeout-ms=MS consumer group session timeout (default 30000)',
    '  --metrics-port=N        /metrics and /health port, 0 = any free port (default 0)',
  ].join('\n');
}
