/**
 * schemas/validate.ts on values from non-Avro sources (JSON, HTTP): the zod shapes derived from
 * the .avsc files, and the semantic rules that the codec also runs.
 */
import { RECORD_NAMES, RECORD_SCHEMAS } from '../../schemas/contract';
import type { DlqReasonCode } from '../../schemas/reason-codes';
import { readFixtureValue } from '../../scripts/gen-fixtures';
import {
  DEFAULT_MAX_FUTURE_SKEW_MS,
  RECORD_SHAPES,
  timestampBounds,
  validateRecord,
} from '../../schemas/validate';
import { DAY_MS, NOW, decision, funded, payout, sale } from './codec-samples';

const opts = { now: NOW };

test('each zod shape has exactly the fields of its .avsc', () => {
  for (const record of RECORD_NAMES) {
    const shape = (RECORD_SHAPES[record] as unknown as { shape: Record<string, unknown> }).shape;
    expect(Object.keys(shape)).toEqual(RECORD_SCHEMAS[record].fields.map((f) => f.name));
  }
});

test('a valid value passes and comes back as a clean copy', () => {
  const input = JSON.parse(JSON.stringify(payout)) as unknown;
  const result = validateRecord('PayoutEvent', input, opts);
  expect(result).toEqual({ ok: true, value: payout });
  expect(result.ok && result.value).not.toBe(input);
});

describe.each<[string, string, unknown, DlqReasonCode]>([
  ['not an object', 'PayoutEvent', 'payout', 'INVALID_RECORD'],
  ['null', 'PayoutEvent', null, 'INVALID_RECORD'],
  ['a missing field', 'PayoutEvent', { ...payout, currency: undefined }, 'INVALID_RECORD'],
  ['a null where none is allowed', 'PayoutEvent', { ...payout, gross_amount_minor: null }, 'INVALID_RECORD'],
  ['an unknown field', 'PayoutEvent', { ...payout, note: 'x' }, 'INVALID_RECORD'],
  [
    'a __proto__ field',
    'PayoutEvent',
    JSON.parse(`{"__proto__": {"polluted": true}, "a": 1}`),
    'INVALID_RECORD',
  ],
  ['an amount as a string', 'PayoutEvent', { ...payout, gross_amount_minor: '100' }, 'INVALID_RECORD'],
  ['a fractional amount', 'PayoutEvent', { ...payout, gross_amount_minor: 10.5 }, 'INVALID_RECORD'],
  ['an unknown enum symbol', 'PayoutEvent', { ...payout, type: 'LOST' }, 'INVALID_RECORD'],
  ['an int beyond 32 bits', 'LoanEvent', { ...funded, period_days: 2 ** 31 }, 'INVALID_RECORD'],
  ['an amount of 2^60', 'PayoutEvent', { ...payout, gross_amount_minor: 2 ** 60 }, 'UNSAFE_INTEGER'],
  ['a negative amount', 'SaleEvent', { ...sale, amount_minor: -1 }, 'NEGATIVE_AMOUNT'],
  ['a zero sale', 'SaleEvent', { ...sale, amount_minor: 0 }, 'AMOUNT_OUT_OF_RANGE'],
  ['an unknown currency', 'SaleEvent', { ...sale, currency: 'BTC' }, 'UNKNOWN_CURRENCY'],
  ['a lone surrogate in an id', 'SaleEvent', { ...sale, sale_id: 'sal-\ud800' }, 'INVALID_ID'],
  [
    'a __proto__ map key',
    'EligibilityDecision',
    { ...decision, features: JSON.parse('{"__proto__": 1}') },
    'INVALID_MAP_KEY',
  ],
  [
    'a prototype map key',
    'EligibilityDecision',
    { ...decision, features: { prototype: 1 } },
    'INVALID_MAP_KEY',
  ],
  [
    'a 257-character map key',
    'EligibilityDecision',
    { ...decision, features: { ['k'.repeat(257)]: 1 } },
    'STRING_TOO_LONG',
  ],
  [
    'FUNDED without terms',
    'LoanEvent',
    { ...funded, fee_minor: null, period_days: null },
    'MISSING_LOAN_TERMS',
  ],
  [
    'a Deduction at 0 bps',
    'Deduction',
    {
      deduction_id: 'd',
      type: 'WITHHOLD',
      payout_id: 'p',
      loan_id: 'l',
      merchant_id: 'm',
      amount_minor: 1,
      gross_amount_minor: 10,
      holdback_rate_bps: 0,
      balance_after_minor: 0,
      currency: 'EUR',
      source_event_id: 'e',
      occurred_at: NOW,
      decided_at: NOW,
    },
    'INVALID_FIELD',
  ],
])('%s', (_name, record, input, expected) => {
  test(`is ${expected}`, () => {
    const result = validateRecord(record as 'PayoutEvent', input, opts);
    expect(result).toMatchObject({ ok: false, reasonCode: expected });
    expect(result.ok || result.detail).toMatch(new RegExp(`^${record}`));
  });
});

test('validating __proto__ keys pollutes nothing', () => {
  validateRecord(
    'EligibilityDecision',
    { ...decision, features: JSON.parse('{"__proto__": {"polluted": 1}}') },
    opts,
  );
  validateRecord('PayoutEvent', JSON.parse('{"__proto__": {"polluted": 1}}'), opts);
  expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
});

describe('time is a parameter', () => {
  const tomorrow = { ...payout, occurred_at: NOW + DAY_MS - 1 };

  test('the same record is valid or not depending on the now passed in', () => {
    expect(validateRecord('PayoutEvent', tomorrow, { now: NOW })).toMatchObject({ ok: true });
    expect(validateRecord('PayoutEvent', tomorrow, { now: NOW - DAY_MS })).toMatchObject({
      reasonCode: 'TIMESTAMP_OUT_OF_RANGE',
    });
  });

  test('the allowed future skew is configurable', () => {
    expect(validateRecord('PayoutEvent', tomorrow, { now: NOW, maxFutureSkewMs: 60_000 })).toMatchObject({
      reasonCode: 'TIMESTAMP_OUT_OF_RANGE',
    });
    expect(timestampBounds({ now: NOW })).toEqual({
      minMs: Date.UTC(2000, 0, 1),
      maxMs: NOW + DEFAULT_MAX_FUTURE_SKEW_MS,
    });
  });
});

describe('exceptions to the conventions', () => {
  const settlement = {
    payout_id: 'po-1',
    merchant_id: 'mer-42',
    currency: 'EUR',
    gross_amount_minor: 250_000,
    instructed_minor: 25_500,
    reported_withheld_minor: 25_000,
    mismatch_minor: -500,
    status: 'SETTLED',
    scheduled_at: null,
    first_withheld_decided_at: null,
    settled_at: NOW,
    source_event_id: 'evt-1',
    decided_at: NOW,
  };

  test('the end of a loan period is planned: it may lie far ahead, unlike when the loan was funded', () => {
    const state = { ...readFixtureValue('LoanState'), updated_at: NOW };
    expect(validateRecord('LoanState', { ...state, period_ends_at: NOW + 300 * DAY_MS }, opts)).toMatchObject(
      { ok: true },
    );
    expect(validateRecord('LoanState', { ...state, funded_at: NOW + 300 * DAY_MS }, opts)).toMatchObject({
      reasonCode: 'TIMESTAMP_OUT_OF_RANGE',
    });
  });

  test('a reconciliation mismatch may be negative, but not beyond the ceiling', () => {
    expect(validateRecord('PayoutSettlement', settlement, opts)).toMatchObject({ ok: true });
    expect(
      validateRecord('PayoutSettlement', { ...settlement, mismatch_minor: -(10 ** 13) - 1 }, opts),
    ).toMatchObject({
      reasonCode: 'AMOUNT_OUT_OF_RANGE',
    });
    expect(validateRecord('PayoutSettlement', { ...settlement, instructed_minor: -1 }, opts)).toMatchObject({
      reasonCode: 'NEGATIVE_AMOUNT',
    });
  });
});
