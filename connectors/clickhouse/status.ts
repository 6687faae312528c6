/** What `holdback clickhouse status` reports: migrations, rows per table, and lag behind Kafka. */
import type { ClickHouseClient } from '@clickhouse/client';
import type { Kafka } from 'kafkajs';
import { whileRetriable } from '../kafka-read';
import { appliedMigrations, checkDatabaseName, loadMigrations, type AppliedMigration } from './migrate';
import { SINK_TOPICS, tableOf } from './rows';

export interface TableStatus {
  table: string;
  topic: string;
  rows: number;
  /** Kafka records not yet in ClickHouse: sum over partitions of high watermark - next offset. */
  lag: number;
}

export interface SinkStatus {
  database: string;
  migrations: AppliedMigration[];
  pending: number;
  tables: TableStatus[];
}

export async function sinkStatus(
  client: ClickHouseClient,
  kafka: Kafka,
  database: string,
  topicPrefix: string,
): Promise<SinkStatus> {
  const db = checkDatabaseName(database);
  const migrations = await appliedMigrations(client, db);
  const pending = loadMigrations().length - migrations.length;
  const tables: TableStatus[] = [];
  if (migrations.length === 0) return { database: db, migrations, pending, tables };
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (const topic of SINK_TOPICS) {
      const table = tableOf(topic);
      const rows = await (
        await client.query({
          query: `SELECT _partition AS p, count() AS n, max(_offset) AS o FROM ${db}.${table} GROUP BY _partition`,
          format: 'JSONEachRow',
        })
      ).json<{ p: string | number; n: string | number; o: string | number }>();
      const byPartition = new Map(rows.map((r) => [Number(r.p), Number(r.o)]));
      let lag = 0;
      try {
        const ends = await whileRetriable(() => admin.fetchTopicOffsets(topicPrefix + topic), 3000);
        for (const e of ends) {
          const next = (byPartition.get(e.partition) ?? Number(e.low) - 1) + 1;
          lag += Math.max(0, Number(e.high) - next);
        }
      } catch {
        lag = Number.NaN; // no such topic
      }
      tables.push({
        table,
        topic: topicPrefix + topic,
        rows: rows.reduce((n, r) => n + Number(r.n), 0),
        lag,
      });
    }
  } finally {
    await admin.disconnect();
  }
  return { database: db, migrations, pending, tables };
}
