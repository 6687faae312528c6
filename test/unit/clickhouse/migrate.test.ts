/** Migration files: parsing, splitting and the SQL subset both ClickHouse 18.16 and 25.8 accept. */
import {
  bind,
  checkDatabaseName,
  loadMigrations,
  parseMigration,
  splitStatements,
} from '../../../connectors/clickhouse/migrate';

test('statements split at ; ending a line; comment lines dropped', () => {
  expect(splitStatements('-- c\nCREATE TABLE a (x UInt8) ENGINE = Memory;\n\n-- d\nSELECT 1;\n')).toEqual([
    'CREATE TABLE a (x UInt8) ENGINE = Memory',
    'SELECT 1',
  ]);
});

test('file names give the version; bad names are refused', () => {
  expect(parseMigration('0007_add_x.sql', 'SELECT 1;').version).toBe(7);
  expect(() => parseMigration('7_add_x.sql', 'SELECT 1;')).toThrow(/NNNN_name/);
  expect(parseMigration('0001_a.sql', 'SELECT 1;').checksum).not.toBe(
    parseMigration('0001_a.sql', 'SELECT 2;').checksum,
  );
});

test('database names are checked before they reach SQL', () => {
  expect(bind('CREATE TABLE {db}.t', 'hb_1')).toBe('CREATE TABLE hb_1.t');
  expect(() => checkDatabaseName('x; DROP DATABASE y')).toThrow(/bad ClickHouse database name/);
});

test('every statement of the repository migrations is idempotent and avoids what 18.16 or 25.8 lacks', () => {
  const migrations = loadMigrations();
  expect(migrations.map((m) => m.version)).toEqual(migrations.map((_, i) => i + 1));
  for (const m of migrations) {
    for (const s of m.statements) {
      expect(s).toMatch(/^CREATE (TABLE|MATERIALIZED VIEW|VIEW) IF NOT EXISTS \{db\}\./);
      // Missing on 18.16 (stack.md) ...
      expect(s).not.toMatch(/DateTime64|\bTTL\b|\bMap\(|\bBool\b|CODEC|INDEX|LowCardinality|\{\w+:\w+\}/);
      // ... or refused by default on 25.8: old MergeTree(date, key, granularity) syntax, nullable sort keys.
      expect(s).not.toMatch(/MergeTree\([^)]*,[^)]*\)/);
      // One part per INSERT keeps inserts atomic: no PARTITION BY on any table.
      expect(s).not.toMatch(/PARTITION BY/);
    }
  }
});
