/** Options: defaults, forms of durations and speeds, and errors that name the option. */
import { DAY_MS } from '../../../simulator/marketplace';
import {
  parseDurationMs,
  parseSimulateArgs,
  resolveOptions,
  SimulateOptionError,
} from '../../../simulator/options';

const NOW = Date.UTC(2025, 5, 15, 13, 45);
const resolve = (args: string[]) => resolveOptions(parseSimulateArgs(args), NOW);

test('defaults: 500 merchants, 10k/s, 2 simulated days per second, start 120 days ago at midnight UTC', () => {
  const o = resolve([]);
  expect(o).toMatchObject({
    merchants: 500,
    rate: 10_000,
    speed: 172_800,
    seed: 1,
    durationMs: undefined,
    events: undefined,
    topicPrefix: '',
    failRate: 0.02,
    duplicateRate: 0,
    lateSettlementDelayMs: 36 * 3_600_000,
    json: false,
  });
  expect(o.startMs).toBe(Date.UTC(2025, 1, 15));
});

test('every option, in both --name value and --name=value forms', () => {
  const o = resolve([
    '--merchants=20',
    '--rate',
    '500',
    '--duration',
    '2m',
    '--events=1000',
    '--seed',
    '9',
    '--speed=1d/0.5s',
    '--start',
    '2025-01-01',
    '--topic-prefix=t1.',
    '--duplicate-rate=0.01',
    '--reorder-rate=0.02',
    '--malformed-rate=0.001',
    '--fail-rate=0.1',
    '--late-settlement-rate=0.05',
    '--late-settlement-delay=2d',
    '--mismatch-rate=0.03',
    '--json',
  ]);
  expect(o).toEqual({
    merchants: 20,
    rate: 500,
    durationMs: 120_000,
    events: 1000,
    seed: 9,
    speed: 172_800,
    startMs: Date.UTC(2025, 0, 1),
    topicPrefix: 't1.',
    duplicateRate: 0.01,
    reorderRate: 0.02,
    malformedRate: 0.001,
    failRate: 0.1,
    lateSettlementRate: 0.05,
    lateSettlementDelayMs: 2 * DAY_MS,
    mismatchRate: 0.03,
    json: true,
  });
});

test('durations and speeds', () => {
  expect(parseDurationMs('90')).toBe(90_000);
  expect(parseDurationMs('1.5h')).toBe(5_400_000);
  expect(parseDurationMs('250ms')).toBe(250);
  expect(parseDurationMs('s')).toBe(1000);
  expect(parseDurationMs('abc')).toBeUndefined();
  expect(parseDurationMs('')).toBeUndefined();
  expect(resolve(['--speed', '86400']).speed).toBe(86_400);
  expect(resolve(['--speed', '2d/s']).speed).toBe(172_800);
  expect(resolve(['--speed', '1h/1m']).speed).toBe(60);
  expect(resolve(['--start', '30d']).startMs).toBe(Date.UTC(2025, 4, 16));
  expect(resolve(['--start', '2025-03-01T12:00:00Z']).startMs).toBe(Date.UTC(2025, 2, 1, 12));
  expect(resolveOptions({ start: Date.UTC(2024, 0, 1), duration: 5 }, NOW)).toMatchObject({
    startMs: Date.UTC(2024, 0, 1),
    durationMs: 5000,
  });
});

test.each([
  [['--merchant', '5'], 'unknown option --merchant'],
  [['--bogus=1'], 'unknown option --bogus'],
  [['extra'], "unexpected argument 'extra'"],
  [['--rate'], 'option --rate needs a value'],
  [['--rate', '--seed', '1'], 'option --rate needs a value'],
  [['--seed', '1', '--seed', '2'], 'option --seed given twice'],
  [['--merchants', '0'], 'bad option --merchants=0'],
  [['--merchants', 'many'], 'bad option --merchants=many'],
  [['--rate', '0'], 'bad option --rate=0'],
  [['--duplicate-rate', '1.5'], 'bad option --duplicate-rate=1.5: must be between 0 and 1'],
  [['--fail-rate', '-0.1'], 'bad option --fail-rate=-0.1'],
  [['--speed', 'fast'], 'bad option --speed=fast'],
  [['--speed', '1d/0s'], 'bad option --speed=1d/0s'],
  [['--duration', 'soon'], 'bad option --duration=soon: expected a duration'],
  [['--late-settlement-delay', '0'], 'bad option --late-settlement-delay=0'],
  [['--start', 'yesterday'], 'bad option --start=yesterday'],
  [['--start', '2030-01-01'], 'bad option --start=2030-01-01: must be between 2000-01-01 and now'],
  [['--start', '1999-01-01'], 'bad option --start=1999-01-01'],
  [['--topic-prefix', 'a b'], 'bad option --topic-prefix=a b'],
  [['--events', '1.5'], 'bad option --events=1.5'],
])('%j is refused: %s', (args, message) => {
  expect(() => resolve(args)).toThrow(SimulateOptionError);
  expect(() => resolve(args)).toThrow(message);
});

test('the programmatic API refuses unknown keys too', () => {
  expect(() => resolveOptions({ merchants: 5, colour: 'red' } as never, NOW)).toThrow(
    'unknown option --colour',
  );
});
