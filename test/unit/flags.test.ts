import { z } from 'zod';
import { ConfigError } from '../../connectors/endpoints';
import { parseFlags } from '../../connectors/flags';
import { parseClickHouseOptions } from '../../connectors/clickhouse/config';

const schema = z
  .object({ maxRows: z.coerce.number().int().min(1).default(10), verbose: z.stringbool().default(false) })
  .strict();

test('every command reads --name=value, --name value and declared bare flags the same way', () => {
  expect(parseFlags(schema, ['--max-rows=5', '--verbose'], new Set(['verbose']))).toEqual({
    maxRows: 5,
    verbose: true,
  });
  expect(parseFlags(schema, ['--max-rows', '7'])).toEqual({ maxRows: 7, verbose: false });
});

test.each([
  [['--max-rows'], 'option --max-rows needs a value'],
  [['--max-rows=1', '--max-rows=2'], 'option --max-rows given twice'],
  [['--max-row=1'], 'unknown option --max-row'],
  [['--max-rows=0'], 'bad option --max-rows=0'],
  [['rows'], "unexpected argument 'rows'"],
])('%j stops with the option and the reason', (args, message) => {
  expect(() => parseFlags(schema, args)).toThrow(ConfigError);
  expect(() => parseFlags(schema, args)).toThrow(message);
});

test('holdback clickhouse options go through the same reader', () => {
  expect(parseClickHouseOptions(['--database', 'analytics']).database).toBe('analytics');
  expect(() => parseClickHouseOptions(['--database'])).toThrow('option --database needs a value');
});
