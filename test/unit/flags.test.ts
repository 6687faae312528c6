import { z } from 'zod';
import { ConfigError } from '../../connectors/endpoints';
import { OptionError, parseFlags, schemaOptions } from '../../connectors/flags';
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

test('commander reads them: negative numbers, empty values, a boolean with a value, no help flag of its own', () => {
  const signed = z.object({ idle: z.coerce.number().int(), name: z.string().optional() }).strict();
  expect(parseFlags(signed, ['--idle', '-1'])).toEqual({ idle: -1 });
  expect(parseFlags(signed, ['--idle=-1', '--name='])).toEqual({ idle: -1, name: '' });
  expect(parseFlags(signed, ['--idle=2', '--name=-x'])).toEqual({ idle: 2, name: '-x' });
  expect(parseFlags(schema, ['--verbose=false'], new Set(['verbose']))).toEqual({
    maxRows: 10,
    verbose: false,
  });
  expect(parseFlags(schema, ['--verbose', 'true'], new Set(['verbose']))).toEqual({
    maxRows: 10,
    verbose: true,
  });
  expect(() => parseFlags(schema, ['--help'])).toThrow('unknown option --help');
  expect(() => parseFlags(schema, ['-x'])).toThrow('unknown option -x');
  expect(() => parseFlags(schema, ['--max-rows', '--verbose'], new Set(['verbose']))).toThrow(
    'option --max-rows needs a value',
  );
  expect(() => parseFlags(signed, ['--idle=1', '--idle', '2'])).toThrow(OptionError);
});

test('a schema option without a help line is a programming error, caught when the command is built', () => {
  expect(() =>
    schemaOptions(schema, { help: { maxRows: 'rows' } as never }, () => undefined as never),
  ).toThrow('option --verbose has no help line');
  const [rows, verbose] = schemaOptions(
    schema,
    { help: { maxRows: 'rows', verbose: 'say more' }, booleans: new Set(['verbose'] as const) },
    () => undefined as never,
  );
  expect(rows!.flags).toBe('--max-rows <n>');
  expect(rows!.description).toBe('rows (default 10)');
  expect(verbose!.flags).toBe('--verbose [true|false]');
});
