/**
 * `holdback clickhouse migrate` on the real ClickHouse: versioned (recorded in
 * schema_migrations), idempotent, refuses an applied migration whose file changed, and applies
 * only what is new. Each test uses its own database and drops it.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import { loadEndpoints } from '../../connectors/endpoints';
import { loadMigrations, migrate, MIGRATIONS_DIR, parseMigration } from '../../connectors/clickhouse/migrate';
import { RAW_TABLES } from '../../connectors/clickhouse/rows';
import { REPO_ROOT } from '../../stack/paths';
import { rowsOf } from '../unit/clickhouse/verify';

const e = loadEndpoints();
const RUN = `${process.pid}_${Date.now().toString(36)}`;
let client: ClickHouseClient;
const databases: string[] = [];

function db(name: string): string {
  const d = `hbt_migrate_${name}_${RUN}`;
  databases.push(d);
  return d;
}

beforeAll(() => {
  client = createClient({ url: e.clickhouseUrl });
});

afterAll(async () => {
  for (const d of databases) await client.command({ query: `DROP DATABASE IF EXISTS ${d}` });
  await client.close();
});

async function tables(d: string): Promise<string[]> {
  return (
    await rowsOf<{ name: string }>(
      client,
      `SELECT name FROM system.tables WHERE database = '${d}' ORDER BY name`,
    )
  ).map((r) => r.name);
}

test('the CLI applies every migration once; a second run applies nothing and changes nothing', async () => {
  const d = db('cli');
  const run = promisify(execFile);
  const cli = join(REPO_ROOT, 'bin', 'holdback');
  const first = await run(process.execPath, [cli, 'clickhouse', 'migrate', `--database=${d}`]);
  expect(first.stdout).toMatch(/applied 0001_raw_tables/);
  expect(first.stdout).toMatch(/applied 0002_aggregates/);
  expect(first.stdout).toMatch(/applied 0003_payout_decisions/);
  expect(first.stdout).toMatch(/applied 0004_dead_letter_processor/);
  const after1 = await tables(d);
  for (const t of [
    ...RAW_TABLES,
    'daily_collections',
    'eligibility_daily',
    'settlement_lag_daily',
    'payout_decisions_hourly',
    'payout_decisions_hourly_mv',
    'outstanding_by_grade_status',
    'reconciliation_mismatches',
    'schema_migrations',
  ])
    expect(after1).toContain(t);
  const second = await run(process.execPath, [cli, 'clickhouse', 'migrate', `--database=${d}`]);
  expect(second.stdout).toMatch(/up to date \(4 migrations applied earlier\)/);
  expect(await tables(d)).toEqual(after1);
  const recorded = await rowsOf<{ version: number; name: string }>(
    client,
    `SELECT version, name FROM ${d}.schema_migrations ORDER BY version`,
  );
  expect(recorded).toEqual([
    { version: 1, name: 'raw_tables' },
    { version: 2, name: 'aggregates' },
    { version: 3, name: 'payout_decisions' },
    { version: 4, name: 'dead_letter_processor' },
  ]);
  const status = await run(process.execPath, [cli, 'clickhouse', 'status', `--database=${d}`]);
  expect(status.stdout).toMatch(/4 migrations applied, 0 pending/);
}, 60_000);

test('a new numbered migration is applied alone; an edited applied one is refused', async () => {
  const d = db('versions');
  const base = loadMigrations();
  expect(base.map((m) => m.version)).toEqual([1, 2, 3, 4]);
  expect((await migrate(client, d, base.slice(0, 1))).applied.map((m) => m.version)).toEqual([1]);
  expect(await tables(d)).not.toContain('daily_collections');
  const probe = parseMigration(
    '0005_probe.sql',
    'CREATE TABLE IF NOT EXISTS {db}.probe (x UInt8) ENGINE = MergeTree ORDER BY x;\n',
  );
  const r = await migrate(client, d, [...base, probe]);
  expect(r.applied.map((m) => m.version)).toEqual([2, 3, 4, 5]);
  expect(r.alreadyApplied).toBe(1);
  expect(await tables(d)).toEqual(expect.arrayContaining(['daily_collections', 'probe']));

  const edited = parseMigration(
    '0005_probe.sql',
    'CREATE TABLE IF NOT EXISTS {db}.probe (x UInt16) ENGINE = MergeTree ORDER BY x;\n',
  );
  await expect(migrate(client, d, [...base, edited])).rejects.toThrow(/applied migrations are immutable/);
});

test('a database migrated before payout decisions gets 0003 alone; the sink can write it', async () => {
  const d = db('upgrade');
  const base = loadMigrations();
  await migrate(client, d, base.slice(0, 2));
  expect(await tables(d)).not.toContain('payout_decisions');
  const r = await migrate(client, d);
  expect(r.applied.map((m) => `${m.version}_${m.name}`)).toEqual([
    '3_payout_decisions',
    '4_dead_letter_processor',
  ]);
  expect(r.alreadyApplied).toBe(2);
  // What the sink's RowBinary layout is built from: the insertable columns and their types.
  const described = await rowsOf<{ name: string; type: string; default_type: string }>(
    client,
    `DESCRIBE TABLE ${d}.payout_decisions`,
  );
  expect(described.filter((c) => c.default_type === '').map((c) => `${c.name} ${c.type}`)).toEqual([
    '_topic String',
    '_partition Int32',
    '_offset Int64',
    '_timestamp_ms Int64',
    'decision_id String',
    'payout_id String',
    'merchant_id String',
    'currency String',
    'gross_amount_minor Int64',
    'withheld_minor Int64',
    'reason_code String',
    'deduction_ids Array(String)',
    'source_event_id String',
    'occurred_at_ms Int64',
    'decided_at_ms Int64',
  ]);
  expect(described.filter((c) => c.default_type === 'MATERIALIZED').map((c) => c.name)).toEqual([
    '_inserted_at',
    'occurred_at',
    'decided_at',
  ]);
});

test('a database that applied 0002 before its fix for current ClickHouse versions is up to date', async () => {
  // 0002 was corrected (aliases on its join, which 20.x and later require); a database that applied
  // the former text recorded its checksum, listed in migrate.ts as one of 0002's.
  const d = db('rewritten');
  const [first, second, ...rest] = loadMigrations();
  const former = readFileSync(join(MIGRATIONS_DIR, '0002_aggregates.sql'), 'utf8')
    .replace(') AS loans\nANY LEFT JOIN', ')\nANY LEFT JOIN')
    .replace(') AS grades USING (merchant_id)', ') USING (merchant_id)');
  const old = parseMigration('0002_aggregates.sql', former);
  expect(old.checksum).toBe('4bb34acb2e384ee1');
  await migrate(client, d, [first!, old]);
  const r = await migrate(client, d, [first!, second!, ...rest]);
  expect(r.applied.map((m) => m.version)).toEqual([3, 4]);
  expect(r.alreadyApplied).toBe(2);
  // Any other change to an applied migration is still refused.
  const edited = parseMigration('0002_aggregates.sql', `${former}\n-- edited\n`);
  await expect(migrate(client, d, [first!, edited, ...rest])).rejects.toThrow(
    /applied migrations are immutable/,
  );
});

test('a migration interrupted half-way is completed by the next run', async () => {
  const d = db('resume');
  const [first] = loadMigrations();
  // Only the first three statements ran, and the migration was not recorded.
  await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${d}` });
  for (const s of first!.statements.slice(0, 3)) await client.command({ query: s.replace(/\{db\}/g, d) });
  const r = await migrate(client, d);
  expect(r.applied.map((m) => m.version)).toEqual([1, 2, 3, 4]);
  expect(await tables(d)).toEqual(expect.arrayContaining([...RAW_TABLES]));
});

test('a database migrated before DeadLetter.processor gets 0004 alone: old rows NULL, new rows keep it', async () => {
  const d = db('processor');
  const base = loadMigrations();
  await migrate(client, d, base.slice(0, 3));
  const row = (offset: number) => ({
    _topic: 'holdback.dlq.v1',
    _partition: 0,
    _offset: offset,
    _timestamp_ms: 1,
    source_topic: 'marketplace.payouts.v1',
    source_partition: 0,
    source_offset: offset,
    reason_code: 'WRONG_PARTITION',
    detail: 'd',
    payload_sha256: 'ab'.repeat(32),
    payload_kept: 0,
    failed_at_ms: 1,
  });
  await client.insert({ table: `${d}.dead_letters`, format: 'JSONEachRow', values: [row(0)] });
  const r = await migrate(client, d);
  expect(r.applied.map((m) => `${m.version}_${m.name}`)).toEqual(['4_dead_letter_processor']);
  const described = await rowsOf<{ name: string; type: string; default_type: string }>(
    client,
    `DESCRIBE TABLE ${d}.dead_letters`,
  );
  expect(described.find((c) => c.name === 'processor')).toMatchObject({
    type: 'Nullable(String)',
    default_type: '',
  });
  await client.insert({
    table: `${d}.dead_letters`,
    format: 'JSONEachRow',
    values: [{ ...row(1), processor: 'repayment' }],
  });
  expect(
    await rowsOf<{ source_offset: string | number; processor: string | null }>(
      client,
      `SELECT source_offset, processor FROM ${d}.dead_letters ORDER BY source_offset`,
    ),
  ).toEqual([
    { source_offset: expect.anything(), processor: null },
    { source_offset: expect.anything(), processor: 'repayment' },
  ]);
});

test('an ADD COLUMN that ran before an interruption is skipped on the next run (18.16 has no IF NOT EXISTS)', async () => {
  const d = db('resume_alter');
  const base = loadMigrations();
  await migrate(client, d, base.slice(0, 3));
  // 0004's ALTER ran, but the migration was not recorded.
  for (const s of base[3]!.statements) await client.command({ query: s.replace(/\{db\}/g, d) });
  const r = await migrate(client, d);
  expect(r.applied.map((m) => m.version)).toEqual([4]);
  const columns = await rowsOf<{ name: string }>(
    client,
    `SELECT name FROM system.columns WHERE database = '${d}' AND table = 'dead_letters' AND name = 'processor'`,
  );
  expect(columns).toHaveLength(1);
});

test('migrations are numbered without gaps; loading refuses a gap', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hb-migrations-'));
  try {
    writeFileSync(join(dir, '0001_a.sql'), readFileSync(join(MIGRATIONS_DIR, '0001_raw_tables.sql')));
    writeFileSync(join(dir, '0003_c.sql'), 'SELECT 1;\n');
    expect(() => loadMigrations(dir)).toThrow(/without gaps/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
