/** Migration files: parsing, splitting and the SQL subset both ClickHouse 18.16 and 25.8 accept. */
import {
  addedColumn,
  bind,
  checkDatabaseName,
  loadMigrations,
  parseMigration,
  REWRITTEN,
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

test('an ALTER TABLE adding one column is recognised, so migrate() can skip it when the column is there', () => {
  expect(addedColumn('ALTER TABLE {db}.dead_letters ADD COLUMN processor Nullable(String)')).toEqual({
    table: 'dead_letters',
    column: 'processor',
  });
  // Not idempotent that way: two columns at once, another ALTER, another database.
  expect(addedColumn('ALTER TABLE {db}.t ADD COLUMN a String, ADD COLUMN b String')).toBeUndefined();
  expect(addedColumn('ALTER TABLE {db}.t DROP COLUMN a')).toBeUndefined();
  expect(addedColumn('ALTER TABLE other.t ADD COLUMN a String')).toBeUndefined();
  // 18.16 does not know this form at all.
  expect(addedColumn('ALTER TABLE {db}.t ADD COLUMN IF NOT EXISTS a String')).toBeUndefined();
});

test('every statement of the repository migrations is idempotent and avoids what 18.16 or 25.8 lacks', () => {
  const migrations = loadMigrations();
  expect(migrations.map((m) => m.version)).toEqual(migrations.map((_, i) => i + 1));
  for (const m of migrations) {
    for (const s of m.statements) {
      // Idempotent: IF NOT EXISTS, or an ADD COLUMN of one column that migrate() skips when it is there.
      if (addedColumn(s) === undefined)
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

test('a rewritten migration names the file as it is now: only its former texts are accepted in its place', () => {
  const files = new Map(loadMigrations().map((m) => [m.version, m]));
  for (const [version, r] of Object.entries(REWRITTEN)) {
    expect(`${version}: ${files.get(Number(version))?.checksum}`).toBe(`${version}: ${r.now}`);
    expect(r.former).not.toContain(r.now);
  }
});
