/**
 * The ClickHouse SQL on current engines. The local stack serves Debian's ClickHouse 18.16; the
 * docker-compose image is 25.8 and users run newer. Each engine runs in process here (chDB from
 * PyPI, installed by scripts/chdb-setup.sh, which `npm test` runs): every migration in order, one
 * row per raw table mapped from the golden fixtures exactly as the sink maps records
 * (connectors/clickhouse/rows.ts), then a count of every table and view, so that each view's query
 * is analysed and run. The 18.16 server runs the same migrations in the integration tests.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { bind, loadMigrations } from '../../../connectors/clickhouse/migrate';
import { RAW_TABLES, SINK_TOPICS, tableOf, toRow, type Row } from '../../../connectors/clickhouse/rows';
import { readFixtureValue } from '../../../scripts/gen-fixtures';
import { TOPIC_SPECS } from '../../../schemas/topics';
import { REPO_ROOT } from '../../../stack/paths';

jest.setTimeout(120_000);

const ENGINES = [
  { version: '25.8', package: 'chdb 3.7.2', why: 'the docker-compose image' },
  { version: '26.9', package: 'chdb 4.4.0 (chdb-core 26.9.0)', why: 'the newest' },
];
const DB = 'holdback_check';

function input(): string {
  const statements = loadMigrations().flatMap((m) => m.statements.map((s) => bind(s, DB)));
  const rows: Record<string, Row[]> = {};
  SINK_TOPICS.forEach((topic, i) => {
    const record = TOPIC_SPECS.find((t) => t.name === topic)!.record;
    const value = readFixtureValue(record as never);
    rows[tableOf(topic)] = [
      toRow(topic, value as never, { topic, partition: 1, offset: i, timestampMs: 1_793_534_401_000 }),
    ];
  });
  return JSON.stringify({ database: DB, statements, rows });
}

describe.each(ENGINES)('ClickHouse $version ($why)', ({ version, package: pkg }) => {
  test('takes every migration, a row of every raw table, and runs every view', () => {
    const python = join(REPO_ROOT, '.holdback', 'cache', 'chdb', version, 'bin', 'python');
    if (!existsSync(python))
      throw new Error(
        `${pkg} is not installed in ${python}: run \`bash scripts/chdb-setup.sh\` (npm test runs it)`,
      );
    const r = spawnSync(python, [join(REPO_ROOT, 'test', 'clickhouse', 'current_engine.py')], {
      input: input(),
      encoding: 'utf8',
      timeout: 100_000,
    });
    const out = r.stdout.trim().split('\n').at(-1) ?? '';
    if (r.status !== 0)
      throw new Error(`ClickHouse ${version} refused the SQL: ${out || r.stderr.slice(-2000)}`);
    const result = JSON.parse(out) as { version: string; counts: Record<string, number> };
    expect(result.version.startsWith(`${version}.`)).toBe(true);
    for (const table of RAW_TABLES) expect(`${table}: ${result.counts[table]}`).toBe(`${table}: 1`);
    // Every migration's objects exist (views included), and each answered its count.
    expect(Object.keys(result.counts).length).toBeGreaterThan(RAW_TABLES.length);
  });
});
