import { command } from '../../../cli/commands/rebuild';
import { asPublishedBy, compareRecords, ignoredFields } from '../../../runtime/rebuild';
import { RECORD_SCHEMAS } from '../../../schemas/contract';
import type { RecordName } from '../../../schemas/generated/types';
import { TOPIC_SPECS, TOPICS } from '../../../schemas/topics';

const d = (id: string, amount: number, decidedAt = 1) => ({
  deduction_id: id,
  amount_minor: amount,
  decided_at: decidedAt,
});

test('identical outputs match, whatever the wall-clock fields and the order', () => {
  const ignore = ignoredFields(TOPICS.deductions, 'wall');
  expect(ignore).toEqual(['decided_at']);
  const c = compareRecords(
    TOPICS.deductions,
    [d('a', 5, 10), d('b', 7, 11)],
    [d('b', 7, 99), d('a', 5, 98)],
    ignore,
    'equal',
  );
  expect(c).toMatchObject({
    published: 2,
    rebuilt: 2,
    matches: true,
    onlyPublishedCount: 0,
    onlyRebuiltCount: 0,
  });
});

test('a different amount, a missing record and an extra one are each reported', () => {
  const ignore = ignoredFields(TOPICS.deductions, 'wall');
  const c = compareRecords(
    TOPICS.deductions,
    [d('a', 5), d('b', 7)],
    [d('a', 6), d('b', 7), d('c', 1)],
    ignore,
    'equal',
  );
  expect(c.matches).toBe(false);
  expect(c.onlyPublishedCount).toBe(1);
  expect(c.onlyRebuiltCount).toBe(2);
  expect(c.onlyPublished[0]).toContain('"amount_minor":5');
});

test('records are compared as multisets: a record published twice and rebuilt once differs', () => {
  const c = compareRecords(TOPICS.deductions, [d('a', 5), d('a', 5)], [d('a', 5)], [], 'equal');
  expect(c).toMatchObject({ matches: false, onlyPublishedCount: 1, onlyRebuiltCount: 0 });
});

test("the DLQ is compared as contained: other processors' letters may be there too", () => {
  const letter = (offset: number) => ({ source_topic: TOPICS.payouts, offset, failed_at: offset * 7 });
  const ignore = ignoredFields(TOPICS.dlq, 'stream');
  expect(ignore).toEqual(['failed_at']);
  const ok = compareRecords(TOPICS.dlq, [letter(1), letter(1), letter(2)], [letter(1)], ignore, 'contained');
  expect(ok.matches).toBe(true);
  const bad = compareRecords(TOPICS.dlq, [letter(1)], [letter(3)], ignore, 'contained');
  expect(bad).toMatchObject({ matches: false, onlyRebuiltCount: 1 });
});

test('a published letter from before contract v1.2 (no processor) counts as written by the rebuilt processor', () => {
  const letter = (offset: number, processor: string | null) => ({
    source_topic: TOPICS.payouts,
    offset,
    failed_at: 1,
    processor,
  });
  const ignore = ignoredFields(TOPICS.dlq, 'stream');
  const published = asPublishedBy(
    TOPICS.dlq,
    [letter(1, null), letter(2, 'eligibility'), letter(3, 'repayment')],
    'repayment',
  );
  expect(published).toEqual([letter(1, 'repayment'), letter(2, 'eligibility'), letter(3, 'repayment')]);
  const rebuilt = [letter(1, 'repayment'), letter(3, 'repayment')];
  expect(compareRecords(TOPICS.dlq, published, rebuilt, ignore, 'contained').matches).toBe(true);
  // Another processor's letter does not stand for this one's.
  const other = compareRecords(TOPICS.dlq, published, [letter(2, 'repayment')], ignore, 'contained');
  expect(other).toMatchObject({ matches: false, onlyRebuiltCount: 1 });
  // Other topics are compared as published.
  const d = { deduction_id: 'x', processor: null };
  expect(asPublishedBy(TOPICS.deductions, [d], 'repayment')).toEqual([d]);
});

test('under --clock=stream the as-of-now fields are compared too', () => {
  expect(ignoredFields(TOPICS.loanStates, 'stream')).toEqual([]);
  expect(ignoredFields(TOPICS.loanStates, 'wall')).toEqual([
    'updated_at',
    'projected_period_collected_minor',
  ]);
});

describe('holdback rebuild: usage errors exit 2 before touching Kafka', () => {
  // The CLI (commander) writes its help and errors to the process's streams.
  let err: jest.SpyInstance;
  let out: jest.SpyInstance;
  const written = (spy: jest.SpyInstance): string => spy.mock.calls.map((c) => String(c[0])).join('');
  beforeEach(() => {
    err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    out = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  });
  afterEach(() => {
    err.mockRestore();
    out.mockRestore();
  });

  test('--help prints the usage and exits 0', async () => {
    expect(await command.run(['repayment', '--help'])).toBe(0);
    expect(written(out)).toContain('Usage: holdback rebuild repayment [options]');
  });

  test.each([
    [['repayment', '--application-id=new'], /missing option --from/],
    [['repayment', '--from=old'], /missing option --application-id/],
    [['nope', '--from=old', '--application-id=new'], /unknown processor 'nope'/],
    [['repayment', '--from=old', '--application-id=new', '--guarantee=at_least_once'], /exactly_once only/],
    [['repayment', '--from=old', '--application-id=new', '--bogus=1'], /unknown option --bogus/],
  ])('%j', async (args, message) => {
    expect(await command.run(args)).toBe(2);
    expect(written(err)).toMatch(message);
  });
});

test('every wall-clock stamp of an output record is left out of the comparison under --clock=wall', () => {
  // A stamp the rebuild compared would report every record of a new output topic as different.
  for (const spec of TOPIC_SPECS.filter((t) => t.role === 'output' && t.name !== TOPICS.dlq)) {
    const stamps = RECORD_SCHEMAS[spec.record as RecordName].fields
      .map((f) => f.name)
      .filter((n) => /(decided_at|computed_at|updated_at)$/.test(n));
    for (const field of stamps)
      expect(`${spec.name} ${field}: ${ignoredFields(spec.name, 'wall').includes(field)}`).toBe(
        `${spec.name} ${field}: true`,
      );
  }
});
