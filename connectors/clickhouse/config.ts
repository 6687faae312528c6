/**
 * Options of `holdback clickhouse <migrate|sink|status>`: a schema with documented defaults that
 * rejects unknown keys; a bad option stops start-up naming it.
 */
import { z } from 'zod';
import { parseFlags } from '../flags';

export const CLICKHOUSE_OPTIONS = z
  .object({
    /** The ClickHouse database of the analytics tables (created by migrate); default HOLDBACK_CLICKHOUSE_DATABASE, else holdback. */
    database: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]{0,100}$/)
      .optional(),
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
    /** /metrics and /health port; 0 picks a free one. Default HOLDBACK_METRICS_PORT, else 0. */
    metricsPort: z.coerce.number().int().min(0).max(65535).optional(),
  })
  .strict();

export type ClickHouseOptions = z.infer<typeof CLICKHOUSE_OPTIONS>;

export function parseClickHouseOptions(args: readonly string[]): ClickHouseOptions {
  return parseFlags(CLICKHOUSE_OPTIONS, args);
}

export function describeClickHouseOptions(): string {
  return [
    '  --database=D            ClickHouse database (default HOLDBACK_CLICKHOUSE_DATABASE, else holdback)',
    '  --topic-prefix=P        prefix of every contract topic (default none)',
    '  --group-id=G            sink consumer group (default holdback-clickhouse-<database>)',
    '  --max-batch-rows=N      flush at N buffered rows (default 20000)',
    '  --max-batch-ms=MS       flush when the oldest buffered row is MS old (default 1000)',
    '  --insert-timeout-ms=MS  fence and reconcile an INSERT unanswered after MS (default 30000)',
    '  --session-timeout-ms=MS consumer group session timeout (default 30000)',
    '  --metrics-port=N        /metrics and /health port, 0 = any free port (default HOLDBACK_METRICS_PORT, else 0)',
  ].join('\n');
}
