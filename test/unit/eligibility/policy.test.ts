/** The policy file: validated at start-up; every error names the file, the key path and the reason. */
/* eslint-disable @typescript-eslint/no-explicit-any -- the rows edit raw policy JSON, wrong types included */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_POLICY, parsePolicy } from '../../../processors/eligibility';
import { PROCESSORS } from '../../../processors';

const ROOT = join(__dirname, '..', '..', '..');
const DEFAULT_TEXT = readFileSync(join(ROOT, 'policies', 'default.json'), 'utf8');

/** The default policy's JSON with one change made by `edit`. */
function variant(edit: (p: Record<string, any>) => void): string {
  const p = JSON.parse(DEFAULT_TEXT) as Record<string, any>;
  edit(p);
  return JSON.stringify(p);
}

test('policies/default.json is valid and is the default policy', () => {
  const p = parsePolicy(DEFAULT_TEXT, 'policies/default.json');
  expect(p.version).toBe('2026-11-default');
  expect(p).toEqual(DEFAULT_POLICY);
  expect(p.loans.refillShareRepaidBps).toBe(7500);
});

test('refillShareRepaidBps defaults to 75%', () => {
  const p = parsePolicy(
    variant((x) => delete x.loans.refillShareRepaidBps),
    'p.json',
  );
  expect(p.loans.refillShareRepaidBps).toBe(7500);
});

test.each([
  [
    'an unknown top-level key',
    (p: any) => (p.limitz = {}),
    'cand.json: invalid eligibility policy: limitz: unknown key',
  ],
  [
    'an unknown nested key',
    (p: any) => (p.grades.B.maxRefundRate = 5),
    'cand.json: invalid eligibility policy: grades.B.maxRefundRate: unknown key',
  ],
  [
    'a missing key',
    (p: any) => delete p.limits.minOfferMinor,
    'cand.json: invalid eligibility policy: limits.minOfferMinor: required key is missing',
  ],
  [
    'a missing grade',
    (p: any) => delete p.grades.C,
    'cand.json: invalid eligibility policy: grades.C: required key is missing',
  ],
  [
    'a rate above 100%',
    (p: any) => (p.eligibility.maxRefundRateBps = 12_000),
    'cand.json: invalid eligibility policy: eligibility.maxRefundRateBps: must be <=10000 (got 12000)',
  ],
  [
    'a negative amount',
    (p: any) => (p.limits.maxLimitMinor = -1),
    'cand.json: invalid eligibility policy: limits.maxLimitMinor: must be >=1 (got -1)',
  ],
  [
    'a fraction',
    (p: any) => (p.grades.A.limitMultipleBps = 1.5),
    'cand.json: invalid eligibility policy: grades.A.limitMultipleBps: Invalid input: expected int, received number (got 1.5)',
  ],
  [
    'a string for a number',
    (p: any) => (p.emission.minLimitChangeBps = '1000'),
    'cand.json: invalid eligibility policy: emission.minLimitChangeBps: Invalid input: expected number, received string (got "1000")',
  ],
  [
    'a bad version',
    (p: any) => (p.version = 'new policy!'),
    'cand.json: invalid eligibility policy: version: must be 1..64 characters of A-Z a-z 0-9 . _ : - (got "new policy!")',
  ],
  [
    'requirements on the lowest band',
    (p: any) => (p.grades.E.maxRefundRateBps = 100),
    'cand.json: invalid eligibility policy: grades.E.maxRefundRateBps: the lowest band takes every merchant the better bands do not, so it cannot have requirements',
  ],
  [
    'a worse grade with a larger multiple',
    (p: any) => (p.grades.C.limitMultipleBps = 13_000),
    'cand.json: invalid eligibility policy: grades.C.limitMultipleBps: must not exceed grades.B.limitMultipleBps (12000): a worse grade cannot get a larger multiple',
  ],
  [
    'a minimum offer above the cap',
    (p: any) => (p.limits.minOfferMinor = 60_000_000),
    'cand.json: invalid eligibility policy: limits.minOfferMinor: must not exceed limits.maxLimitMinor (50000000)',
  ],
])('%s is refused, naming the file, key path and reason', (_, edit, message) => {
  expect(() => parsePolicy(variant(edit), 'cand.json')).toThrow(message);
  try {
    parsePolicy(variant(edit), 'cand.json');
  } catch (e) {
    expect((e as Error).message).toBe(message);
  }
});

test('every problem is listed, not only the first', () => {
  const text = variant((p) => {
    p.extra = 1;
    p.limits.roundingStepMinor = 0;
  });
  expect(() => parsePolicy(text, 'two.json')).toThrow(
    'two.json: invalid eligibility policy: limits.roundingStepMinor: must be >=1 (got 0); extra: unknown key',
  );
});

test('text that is not JSON is refused, naming the file', () => {
  expect(() => parsePolicy('{"version": ', 'broken.json')).toThrow(/^broken\.json: not valid JSON: /);
});

test('the processor registry loads the default policy, or a file through the reader it is given', () => {
  expect(PROCESSORS['eligibility']!().name).toBe('eligibility');
  expect(PROCESSORS['repayment']!().name).toBe('repayment');
  const files: Record<string, string> = {
    'good.json': variant((p) => (p.version = 'cand-1')),
    'bad.json': variant((p) => (p.grades.A.limitMultipleBps = -5)),
  };
  const readFile = (path: string): string => {
    const text = files[path];
    if (text === undefined) throw new Error(`ENOENT: no such file '${path}'`);
    return text;
  };
  expect(PROCESSORS['eligibility']!({ policyPath: 'good.json', readFile }).name).toBe('eligibility');
  expect(() => PROCESSORS['eligibility']!({ policyPath: 'bad.json', readFile })).toThrow(
    'bad.json: invalid eligibility policy: grades.A.limitMultipleBps: must be >=0 (got -5)',
  );
  expect(() => PROCESSORS['eligibility']!({ policyPath: 'none.json', readFile })).toThrow(
    "none.json: cannot read the policy: ENOENT: no such file 'none.json'",
  );
});
