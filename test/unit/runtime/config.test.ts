import { ConfigError } from '../../../connectors/endpoints';
import { parseRunOptions } from '../../../runtime/config';

test('defaults: exactly-once, 100 ms commits', () => {
  const o = parseRunOptions([]);
  expect(o.guarantee).toBe('exactly_once');
  expect(o.commitIntervalMs).toBe(100);
  expect(o.dlqPayload).toBe(false);
  expect(o.clock).toBe('wall');
});

test('--clock=stream makes processors run on stream time (simulations, replays)', () => {
  expect(parseRunOptions(['--clock=stream']).clock).toBe('stream');
  expect(() => parseRunOptions(['--clock=event'])).toThrow(/bad option --clock=event/);
});

test('flags in both spellings', () => {
  const o = parseRunOptions(['--commit-interval-ms=250', '--guarantee', 'at_least_once', '--dlq-payload']);
  expect(o).toMatchObject({ commitIntervalMs: 250, guarantee: 'at_least_once', dlqPayload: true });
});

test.each([
  [['--commit-interval-msec=5'], /unknown option --commit-interval-msec/],
  [['--commit-interval-ms=0'], /bad option --commit-interval-ms=0/],
  [['--guarantee=maybe'], /bad option --guarantee=maybe/],
  [['repayment'], /unexpected argument 'repayment'/],
])('%j stops start-up naming the option', (args, message) => {
  expect(() => parseRunOptions(args)).toThrow(ConfigError);
  expect(() => parseRunOptions(args)).toThrow(message);
});

test('--policy names the eligibility policy file; absent, it is undefined (the default policy)', () => {
  expect(parseRunOptions(['--policy=policies/candidate.json']).policy).toBe('policies/candidate.json');
  expect(parseRunOptions([]).policy).toBeUndefined();
  expect(() => parseRunOptions(['--policy='])).toThrow(/bad option --policy=/);
});

test('--compression chooses the codec of what is produced: none or gzip, on rdkafka only', () => {
  expect(parseRunOptions([]).compression).toBe('none');
  expect(parseRunOptions(['--compression=gzip']).compression).toBe('gzip');
  // The ClickHouse sink reads with kafkajs, which has no lz4, snappy or zstd codec.
  expect(() => parseRunOptions(['--compression=lz4'])).toThrow(/bad option --compression=lz4/);
  expect(() => parseRunOptions(['--compression=gzip', '--transport=kafkajs'])).toThrow(ConfigError);
  expect(() => parseRunOptions(['--compression=gzip', '--transport=kafkajs'])).toThrow(
    'option --compression=gzip needs --transport=rdkafka',
  );
  expect(parseRunOptions(['--compression=none', '--transport=kafkajs']).compression).toBe('none');
});
