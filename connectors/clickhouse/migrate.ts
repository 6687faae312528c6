/**
 * Versioned ClickHouse migrations: connectors/clickhouse/migrations/NNNN_name.sql, applied in
 * order, each recorded in `<database>.schema_migrations` (version, name, checksum) once all its
 * statements ran. `{db}` in a file is the target database. Every statement is idempotent
 * (IF NOT EXISTS; an `ALTER TABLE ... ADD COLUMN` of one column is skipped when the column is
 * there, as 18.16 has no ADD COLUMN IF NOT EXISTS), so a migration interrupted half-way is simply
 * run again; an applied migration whose file has changed since is refused (write a new migration
 * instead).
 *
 * The SQL is kept to what ClickHouse 18.16 (Debian, the local stack) and 25.8 (docker-compose)
 * both accept: README.md lists what that rules out.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClickHouseClient } from '@clickhouse/client';
import { REPO_ROOT } from '../../stack/paths';

export const MIGRATIONS_DIR = join(REPO_ROOT, 'connectors', 'clickhouse', 'migrations');
export const MIGRATIONS_TABLE = 'schema_migrations';

export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly checksum: string;
  /** Statements with `{db}` still in them. */
  readonly statements: readonly string[];
}

export interface AppliedMigration {
  readonly version: number;
  readonly name: string;
  readonly checksum: string;
  readonly appliedAt: string;
}

const FILE = /^(\d{4})_([a-z0-9_]+)\.sql$/;
const DATABASE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Applied migrations are immutable, with one kind of exception: a file corrected so that current
 * ClickHouse versions accept it, creating the same objects. The correction's checksum and the
 * former ones are listed here: a database that applied a former text is up to date with the
 * correction, and with nothing else (any other edit is still refused). 0002: its join of two
 * subqueries had no aliases, which ClickHouse 18.16 accepts and 20.x and later refuse
 * (joined_subquery_requires_alias), so `migrate` stopped there on the docker-compose image.
 */
export const REWRITTEN: Readonly<
  Record<number, { readonly now: string; readonly former: readonly string[] }>
> = {
  2: { now: 'cf99d616626bed20', former: ['4bb34acb2e384ee1'] },
};

/** Whether a migration recorded with `applied` is the file `m` as it is now. */
function sameMigration(m: Migration, applied: string): boolean {
  if (applied === m.checksum) return true;
  const r = REWRITTEN[m.version];
  return r !== undefined && r.now === m.checksum && r.former.includes(applied);
}

export function checkDatabaseName(database: string): string {
  if (!DATABASE.test(database)) {
    throw new Error(`bad ClickHouse database name '${database}': letters, digits and _ only`);
  }
  return database;
}

/** Splits a file into statements: `;` at the end of a line ends one; `--` comment lines are dropped. */
export function splitStatements(sql: string): string[] {
  return sql
    .split(/;[ \t]*$/m)
    .map((s) =>
      s
        .split('\n')
        .filter((line) => !line.trim().startsWith('--'))
        .join('\n')
        .trim(),
    )
    .filter((s) => s.length > 0);
}

export function parseMigration(fileName: string, sql: string): Migration {
  const m = FILE.exec(fileName);
  if (!m) throw new Error(`migration file ${fileName} is not named NNNN_name.sql`);
  return {
    version: Number(m[1]),
    name: m[2]!,
    checksum: createHash('sha256').update(sql).digest('hex').slice(0, 16),
    statements: splitStatements(sql),
  };
}

export function loadMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.sql'))
    .sort();
  const migrations = files.map((f) => parseMigration(f, readFileSync(join(dir, f), 'utf8')));
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(
        `migrations must be numbered 0001, 0002, ... without gaps: found ${m.version} at ${i + 1}`,
      );
    }
  });
  return migrations;
}

const ADD_COLUMN = /^ALTER TABLE \{db\}\.(\w+) ADD COLUMN (?!IF )(\w+) [^,]+$/;

/**
 * The table and column of an `ALTER TABLE {db}.<table> ADD COLUMN <column> <type>` statement (one
 * column, no comma), which migrate() skips when the column exists already; undefined otherwise.
 */
export function addedColumn(statement: string): { table: string; column: string } | undefined {
  const m = ADD_COLUMN.exec(statement);
  return m ? { table: m[1]!, column: m[2]! } : undefined;
}

async function hasColumn(
  client: ClickHouseClient,
  db: string,
  { table, column }: { table: string; column: string },
): Promise<boolean> {
  const rows = await (
    await client.query({
      query: `SELECT count() AS n FROM system.columns WHERE database = '${db}' AND table = '${table}' AND name = '${column}'`,
      format: 'JSONEachRow',
    })
  ).json<{ n: string | number }>();
  return Number(rows[0]?.n ?? 0) > 0;
}

export function bind(statement: string, database: string): string {
  return statement.replace(/\{db\}/g, checkDatabaseName(database));
}

export async function appliedMigrations(
  client: ClickHouseClient,
  database: string,
): Promise<AppliedMigration[]> {
  const db = checkDatabaseName(database);
  const exists = await (
    await client.query({
      query: `SELECT count() AS n FROM system.tables WHERE database = '${db}' AND name = '${MIGRATIONS_TABLE}'`,
      format: 'JSONEachRow',
    })
  ).json<{ n: string | number }>();
  if (Number(exists[0]?.n ?? 0) === 0) return [];
  const rows = await (
    await client.query({
      query: `SELECT version, name, checksum, toString(applied_at) AS applied_at FROM ${db}.${MIGRATIONS_TABLE} ORDER BY version`,
      format: 'JSONEachRow',
    })
  ).json<{ version: number | string; name: string; checksum: string; applied_at: string }>();
  return rows.map((r) => ({
    version: Number(r.version),
    name: r.name,
    checksum: r.checksum,
    appliedAt: r.applied_at,
  }));
}

export interface MigrateResult {
  readonly applied: Migration[];
  readonly alreadyApplied: number;
}

/** Creates the database if needed and applies every migration not yet recorded, in order. */
export async function migrate(
  client: ClickHouseClient,
  database: string,
  migrations: readonly Migration[] = loadMigrations(),
  log: (line: string) => void = () => undefined,
): Promise<MigrateResult> {
  const db = checkDatabaseName(database);
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${db}` });
  await client.command({
    query: `CREATE TABLE IF NOT EXISTS ${db}.${MIGRATIONS_TABLE} (version UInt32, name String, checksum String, applied_at DateTime) ENGINE = MergeTree ORDER BY version`,
  });
  const done = new Map((await appliedMigrations(client, db)).map((a) => [a.version, a]));
  const applied: Migration[] = [];
  for (const m of migrations) {
    const previous = done.get(m.version);
    if (previous) {
      if (!sameMigration(m, previous.checksum)) {
        throw new Error(
          `migration ${m.version} (${m.name}) was applied to ${db} with checksum ${previous.checksum} but the file now has ${m.checksum}: ` +
            'applied migrations are immutable; add a new numbered migration instead',
        );
      }
      continue;
    }
    for (const statement of m.statements) {
      const added = addedColumn(statement);
      if (added && (await hasColumn(client, db, added))) continue; // ran before an interruption
      await client.command({ query: bind(statement, db) });
    }
    await client.insert({
      table: `${db}.${MIGRATIONS_TABLE}`,
      format: 'JSONEachRow',
      values: [
        {
          version: m.version,
          name: m.name,
          checksum: m.checksum,
          applied_at: new Date().toISOString().slice(0, 19).replace('T', ' '),
        },
      ],
    });
    log(
      `applied ${String(m.version).padStart(4, '0')}_${m.name} to ${db} (${m.statements.length} statements)`,
    );
    applied.push(m);
  }
  return { applied, alreadyApplied: done.size };
}
