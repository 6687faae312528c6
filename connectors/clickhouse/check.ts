/**
 * Start-up's first contact with ClickHouse (migrate, status, sink, demo): one query with the
 * configured user, so that a wrong password, an untrusted certificate or a wrong URL stops the
 * command within seconds naming the setting to fix. (`ping` would not do: /ping answers without
 * credentials.)
 */
import { createClient } from '@clickhouse/client';
import { clickhouseClientOptions, type ClickHouseConnection } from '../connections';

export class ClickHouseConnectionError extends Error {
  override readonly name = 'ClickHouseConnectionError';
}

export function explainClickHouseError(e: unknown, c: ClickHouseConnection): string {
  const text = e instanceof Error ? e.message : String(e);
  const where = `ClickHouse at HOLDBACK_CLICKHOUSE_URL=${c.url}`;
  if (/Code: (192|193|516)\b|Authentication failed|Wrong password|Unknown user/i.test(text))
    return `${where} refused HOLDBACK_CLICKHOUSE_USER=${c.username} with its HOLDBACK_CLICKHOUSE_PASSWORD(_FILE): ${text.split('\n')[0]}`;
  if (
    /self[- ]signed certificate|unable to (?:verify|get local issuer)|certificate has expired|Hostname\/IP does not match/i.test(
      text,
    )
  ) {
    const ca =
      c.ca !== undefined
        ? 'the CA in HOLDBACK_CLICKHOUSE_SSL_CA_LOCATION'
        : "the system's CAs (HOLDBACK_CLICKHOUSE_SSL_CA_LOCATION is not set)";
    return `the TLS certificate of ${where} is not trusted by ${ca}: ${text}`;
  }
  if (/wrong version number|EPROTO|socket hang up|ECONNRESET/i.test(text))
    return `${where} did not answer as expected: check http vs https in HOLDBACK_CLICKHOUSE_URL (${text})`;
  if (/ECONNREFUSED|ENOTFOUND|ETIMEDOUT|Timeout/i.test(text))
    return `cannot reach ${where}: ${text} (locally: holdback stack up)`;
  return `${where}: ${text}`;
}

export async function checkClickHouse(c: ClickHouseConnection): Promise<void> {
  const client = createClient({ ...clickhouseClientOptions(c), request_timeout: 5_000 });
  try {
    await client.query({ query: 'SELECT 1', format: 'JSONEachRow' }).then((r) => r.json());
  } catch (e) {
    throw new ClickHouseConnectionError(explainClickHouseError(e, c), { cause: e });
  } finally {
    await client.close();
  }
}
