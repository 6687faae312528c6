/**
 * The codec (connectors/codec.ts): a table of bad inputs, one row each with the reason code it
 * must get, then the behaviours around it: the synchronous cached path, schema fetching, the
 * registry outage that throws instead of dead-lettering, schema evolution and encoding.
 */
import * as avro from 'avsc';
import {
  Codec,
  EncodeError,
  RegistryUnavailableError,
  SchemaLookupError,
  type SchemaSource,
} from '../../connectors/codec';
import { RECORD_SCHEMAS, schemaText } from '../../schemas/contract';
import type { DlqReasonCode } from '../../schemas/reason-codes';
import { TOPICS, type TopicName } from '../../schemas/topics';
import {
  DAY_MS,
  IDS,
  NOW,
  PAYOUT_V2_SCHEMA,
  decision,
  forge,
  forgeBody,
  frame,
  funded,
  inMemorySource,
  makeCodec,
  noTerms,
  payout,
  sale,
} from './codec-samples';

const KEY = 'mer-42';

/** An Avro long (zig-zag varint), to splice impossible lengths and counts into bodies. */
function long(n: number): Buffer {
  return avro.Type.forSchema('long').toBuffer(n);
}

/** The body of the first `n` fields of a record: a prefix to continue by hand. */
function prefix(record: 'PayoutEvent' | 'EligibilityDecision', n: number, value: object): Buffer {
  const schema = RECORD_SCHEMAS[record];
  return forgeBody({ type: 'record', name: `${record}Prefix${n}`, fields: schema.fields.slice(0, n) }, value);
}

const goodPayout = forge('PayoutEvent', payout);

interface Row {
  readonly name: string;
  readonly topic: TopicName;
  readonly value: Buffer | null;
  readonly key?: string | null;
  readonly expected: DlqReasonCode;
}

const BAD_INPUTS: Row[] = [
  // The header.
  { name: 'no value (a tombstone)', topic: TOPICS.payouts, value: null, expected: 'MISSING_VALUE' },
  { name: 'an empty value', topic: TOPICS.payouts, value: Buffer.alloc(0), expected: 'TRUNCATED_HEADER' },
  {
    name: 'bad magic byte',
    topic: TOPICS.payouts,
    value: Buffer.concat([Buffer.from([1]), goodPayout.subarray(1)]),
    expected: 'BAD_MAGIC_BYTE',
  },
  {
    name: 'JSON instead of Avro',
    topic: TOPICS.payouts,
    value: Buffer.from('{"amount":1}'),
    expected: 'BAD_MAGIC_BYTE',
  },
  {
    name: 'a 3-byte header',
    topic: TOPICS.payouts,
    value: Buffer.from([0, 0, 0]),
    expected: 'TRUNCATED_HEADER',
  },
  {
    name: 'a value over 1 MiB',
    topic: TOPICS.payouts,
    value: Buffer.alloc(1024 * 1024 + 1),
    expected: 'PAYLOAD_TOO_LARGE',
  },
  // The writer schema.
  {
    name: 'unknown schema id',
    topic: TOPICS.payouts,
    value: frame(99, goodPayout.subarray(5)),
    expected: 'UNKNOWN_SCHEMA_ID',
  },
  {
    name: 'negative schema id',
    topic: TOPICS.payouts,
    value: frame(-1, goodPayout.subarray(5)),
    expected: 'UNKNOWN_SCHEMA_ID',
  },
  {
    name: 'a SaleEvent on the payouts topic',
    topic: TOPICS.payouts,
    value: forge('SaleEvent', sale),
    expected: 'SCHEMA_MISMATCH',
  },
  {
    name: 'a writer schema that is not valid Avro',
    topic: TOPICS.payouts,
    value: frame(IDS.notAvro, goodPayout.subarray(5)),
    expected: 'SCHEMA_MISMATCH',
  },
  // The Avro body.
  {
    name: 'truncated Avro',
    topic: TOPICS.payouts,
    value: goodPayout.subarray(0, goodPayout.length - 3),
    expected: 'MALFORMED_AVRO',
  },
  {
    name: 'header only',
    topic: TOPICS.payouts,
    value: goodPayout.subarray(0, 5),
    expected: 'MALFORMED_AVRO',
  },
  {
    name: 'trailing bytes',
    topic: TOPICS.payouts,
    value: Buffer.concat([goodPayout, Buffer.from([0])]),
    expected: 'MALFORMED_AVRO',
  },
  {
    name: 'a string length claiming 2 GB',
    topic: TOPICS.payouts,
    value: frame(IDS.PayoutEvent, Buffer.concat([long(2 ** 31), Buffer.from('evt')])),
    expected: 'MALFORMED_AVRO',
  },
  {
    name: 'a negative string length',
    topic: TOPICS.payouts,
    value: frame(IDS.PayoutEvent, Buffer.concat([long(-3), Buffer.from('evt')])),
    expected: 'MALFORMED_AVRO',
  },
  {
    name: 'an array block claiming 2^31 items',
    topic: TOPICS.eligibility,
    value: frame(
      IDS.EligibilityDecision,
      Buffer.concat([prefix('EligibilityDecision', 6, decision), long(2 ** 31), Buffer.from('x')]),
    ),
    expected: 'MALFORMED_AVRO',
  },
  {
    name: 'an array block claiming a gigabyte of bytes',
    topic: TOPICS.eligibility,
    value: frame(
      IDS.EligibilityDecision,
      Buffer.concat([prefix('EligibilityDecision', 6, decision), long(-1), long(2 ** 30), Buffer.from('x')]),
    ),
    expected: 'MALFORMED_AVRO',
  },
  {
    name: 'a map block claiming 10^9 entries',
    topic: TOPICS.eligibility,
    value: frame(
      IDS.EligibilityDecision,
      Buffer.concat([prefix('EligibilityDecision', 7, decision), long(1e9), Buffer.from('xy')]),
    ),
    expected: 'MALFORMED_AVRO',
  },
  {
    name: 'a union index out of range',
    topic: TOPICS.payouts,
    value: frame(IDS.PayoutEvent, Buffer.concat([prefix('PayoutEvent', 5, payout), long(5), long(1)])),
    expected: 'MALFORMED_AVRO',
  },
  {
    name: 'an enum index out of range',
    topic: TOPICS.payouts,
    value: frame(
      IDS.PayoutEvent,
      Buffer.concat([prefix('PayoutEvent', 3, payout), long(7), goodPayout.subarray(5)]),
    ),
    expected: 'MALFORMED_AVRO',
  },
  // Integers JavaScript cannot hold.
  {
    name: 'an amount of 2^53 + 1',
    topic: TOPICS.payouts,
    value: forge('PayoutEvent', { ...payout, gross_amount_minor: 2n ** 53n + 1n }),
    expected: 'UNSAFE_INTEGER',
  },
  {
    name: 'an amount of -2^63',
    topic: TOPICS.payouts,
    value: forge('PayoutEvent', { ...payout, withheld_minor: -(2n ** 63n) }),
    expected: 'UNSAFE_INTEGER',
  },
  {
    name: 'a timestamp of 2^62',
    topic: TOPICS.payouts,
    value: forge('PayoutEvent', { ...payout, occurred_at: 2n ** 62n }),
    expected: 'UNSAFE_INTEGER',
  },
  {
    name: 'a feature value of 2^60',
    topic: TOPICS.eligibility,
    value: forge('EligibilityDecision', { ...decision, features: { x: 2n ** 60n } }),
    expected: 'UNSAFE_INTEGER',
  },
  // Amounts.
  {
    name: 'a negative amount',
    topic: TOPICS.payouts,
    value: forge('PayoutEvent', { ...payout, gross_amount_minor: -1 }),
    expected: 'NEGATIVE_AMOUNT',
  },
  {
    name: 'a negative withheld amount',
    topic: TOPICS.payouts,
    value: forge('PayoutEvent', { ...payout, withheld_minor: -5 }),
    expected: 'NEGATIVE_AMOUNT',
  },
  {
    name: 'a zero sale amount',
    topic: TOPICS.sales,
    value: forge('SaleEvent', { ...sale, amount_minor: 0 }),
    expected: 'AMOUNT_OUT_OF_RANGE',
  },
  {
    name: 'an amount above 10^13',
    topic: TOPICS.payouts,
    value: forge('PayoutEvent', { ...payout, gross_amount_minor: 1e13 + 1 }),
    expected: 'AMOUNT_OUT_OF_RANGE',
  },
  {
    name: 'an amount of 2^53 - 1',
    topic: TOPICS.sales,
    value: forge('SaleEvent', { ...sale, amount_minor: 2 ** 53 - 1 }),
    expected: 'AMOUNT_OUT_OF_RANGE',
  },
  // Currencies.
  {
    name: 'an unknown currency',
    topic: TOPICS.payouts,
    value: forge('PayoutEvent', { ...payout, currency: 'XYZ' }),
    expected: 'UNKNOWN_CURRENCY',
  },
  {
    name: 'a lower-case currency',
    topic: TOPICS.payouts,
    value: forge('PayoutEvent', { ...payout, currency: 'eur' }),
    expected: 'UNKNOWN_CURRENCY',
  },
  {
    name: 'gold is not money',
    topic: TOPICS.sales,
    value: forge('SaleEvent', { ...sale, currency: 'XAU' }),
    expected: 'UNKNOWN_CURRENCY',
  },
  {
    name: 'an empty currency',
    topic: TOPICS.sales,
    value: forge('SaleEvent', { ...sale, currency: '' }),
    expected: 'UNKNOWN_CURRENCY',
  },
  // Timestamps.
  {
    name: 'a timestamp two days in the future',
    topic: TOPICS.payouts,
    value: forge('PayoutEvent', { ...payout, occurred_at: NOW + 2 * DAY_MS }),
    expected: 'TIMESTAMP_OUT_OF_RANGE',
  },
  {
    name: 'a timestamp in the year 3000',
    topic: TOPICS.sales,
    value: forge('SaleEvent', { ...sale, occurred_at: Date.UTC(3000, 0, 1) }),
    expected: 'TIMESTAMP_OUT_OF_RANGE',
  },
  {
    name: 'a timestamp in 1999',
    topic: TOPICS.payouts,
    value: forge('PayoutEvent', { ...payout, occurred_at: Date.UTC(1999, 11, 31) }),
    expected: 'TIMESTAMP_OUT_OF_RANGE',
  },
  {
    name: 'the epoch',
    topic: TOPICS.payouts,
    value: forge('PayoutEvent', { ...payout, occurred_at: 0 }),
    expected: 'TIMESTAMP_OUT_OF_RANGE',
  },
  {
    name: 'a negative timestamp',
    topic: TOPICS.payouts,
    value: forge('PayoutEvent', { ...payout, occurred_at: -1 }),
    expected: 'TIMESTAMP_OUT_OF_RANGE',
  },
  // Strings.
  {
    name: 'a 257-character id',
    topic: TOPICS.payouts,
    value: forge('PayoutEvent', { ...payout, payout_id: 'p'.repeat(257) }),
    expected: 'STRING_TOO_LONG',
  },
  {
    name: 'an empty id',
    topic: TOPICS.payouts,
    value: forge('PayoutEvent', { ...payout, event_id: '' }),
    expected: 'INVALID_ID',
  },
  {
    name: 'a NUL in an id',
    topic: TOPICS.payouts,
    value: forge('PayoutEvent', { ...payout, payout_id: 'po\u00001' }),
    expected: 'INVALID_ID',
  },
  {
    name: 'a newline in an id',
    topic: TOPICS.sales,
    value: forge('SaleEvent', { ...sale, sale_id: 'sal\n1' }),
    expected: 'INVALID_ID',
  },
  {
    name: 'a bidi override in an id',
    topic: TOPICS.sales,
    value: forge('SaleEvent', { ...sale, sale_id: 'sal\u202e1' }),
    expected: 'INVALID_ID',
  },
  {
    name: 'a zero-width space in an id',
    topic: TOPICS.sales,
    value: forge('SaleEvent', { ...sale, order_id: 'ord\u200b1' }),
    expected: 'INVALID_ID',
  },
  {
    name: 'invalid UTF-8 in an id',
    topic: TOPICS.payouts,
    value: frame(
      IDS.PayoutEvent,
      Buffer.concat([long(2), Buffer.from([0xc3, 0x28]), forgeBody('PayoutEvent', payout).subarray(10)]),
    ),
    expected: 'INVALID_ID',
  },
  {
    name: 'a 5000-character policy version',
    topic: TOPICS.eligibility,
    value: forge('EligibilityDecision', { ...decision, policy_version: 'v'.repeat(5000) }),
    expected: 'STRING_TOO_LONG',
  },
  {
    name: 'a 5000-character reason',
    topic: TOPICS.eligibility,
    value: forge('EligibilityDecision', { ...decision, reasons: ['OK', 'r'.repeat(5000)] }),
    expected: 'STRING_TOO_LONG',
  },
  // Map keys.
  {
    name: 'a __proto__ key in the features map',
    topic: TOPICS.eligibility,
    value: forge('EligibilityDecision', {
      ...decision,
      features: JSON.parse('{"a": 1, "__proto__": 2}') as object,
    }),
    expected: 'INVALID_MAP_KEY',
  },
  {
    name: 'a constructor key in the features map',
    topic: TOPICS.eligibility,
    value: forge('EligibilityDecision', { ...decision, features: { constructor: 1 } }),
    expected: 'INVALID_MAP_KEY',
  },
  {
    name: 'an empty key in the features map',
    topic: TOPICS.eligibility,
    value: forge('EligibilityDecision', { ...decision, features: { '': 1 } }),
    expected: 'INVALID_MAP_KEY',
  },
  {
    name: 'a control character in a features key',
    topic: TOPICS.eligibility,
    value: forge('EligibilityDecision', { ...decision, features: { 'a\u0007': 1 } }),
    expected: 'INVALID_MAP_KEY',
  },
  // Loan terms.
  {
    name: 'FUNDED without terms',
    topic: TOPICS.loanEvents,
    value: forge('LoanEvent', { ...funded, ...noTerms }),
    expected: 'MISSING_LOAN_TERMS',
  },
  {
    name: 'FUNDED without a currency',
    topic: TOPICS.loanEvents,
    value: forge('LoanEvent', { ...funded, currency: null }),
    expected: 'MISSING_LOAN_TERMS',
  },
  {
    name: 'FUNDED with principal 0',
    topic: TOPICS.loanEvents,
    value: forge('LoanEvent', { ...funded, principal_minor: 0 }),
    expected: 'INVALID_LOAN_TERMS',
  },
  {
    name: 'FUNDED at 0 bps',
    topic: TOPICS.loanEvents,
    value: forge('LoanEvent', { ...funded, holdback_rate_bps: 0 }),
    expected: 'INVALID_LOAN_TERMS',
  },
  {
    name: 'FUNDED at 10001 bps',
    topic: TOPICS.loanEvents,
    value: forge('LoanEvent', { ...funded, holdback_rate_bps: 10_001 }),
    expected: 'INVALID_LOAN_TERMS',
  },
  {
    name: 'FUNDED with 0-day periods',
    topic: TOPICS.loanEvents,
    value: forge('LoanEvent', { ...funded, period_days: 0 }),
    expected: 'INVALID_LOAN_TERMS',
  },
  {
    name: 'FUNDED with 367-day periods',
    topic: TOPICS.loanEvents,
    value: forge('LoanEvent', { ...funded, period_days: 367 }),
    expected: 'INVALID_LOAN_TERMS',
  },
  {
    name: 'FUNDED with a negative fee',
    topic: TOPICS.loanEvents,
    value: forge('LoanEvent', { ...funded, fee_minor: -1 }),
    expected: 'NEGATIVE_AMOUNT',
  },
  {
    name: 'FUNDED in an unknown currency',
    topic: TOPICS.loanEvents,
    value: forge('LoanEvent', { ...funded, currency: 'EURO' }),
    expected: 'UNKNOWN_CURRENCY',
  },
  // The key.
  {
    name: 'a key that is another merchant',
    topic: TOPICS.payouts,
    value: goodPayout,
    key: 'mer-43',
    expected: 'KEY_MISMATCH',
  },
  { name: 'no key', topic: TOPICS.payouts, value: goodPayout, key: null, expected: 'KEY_MISMATCH' },
  {
    name: 'a key with a trailing space',
    topic: TOPICS.payouts,
    value: goodPayout,
    key: `${KEY} `,
    expected: 'KEY_MISMATCH',
  },
];

describe('a bad input gets its reason code, as a result', () => {
  const codec = makeCodec();

  test.each(BAD_INPUTS)('$name: $expected', async (row) => {
    const key = row.key === undefined ? Buffer.from(KEY) : row.key === null ? null : Buffer.from(row.key);
    const result = await codec.decode(row.topic, key, row.value, NOW);
    expect(result).toMatchObject({ ok: false, reasonCode: row.expected });
    expect(result.ok || result.detail.length > 0).toBe(true);
  });
});

describe('good inputs', () => {
  const codec = makeCodec();
  const good: Array<[string, TopicName, object]> = [
    ['a payout', TOPICS.payouts, payout],
    [
      'a SCHEDULED payout with no withheld amount',
      TOPICS.payouts,
      { ...payout, type: 'SCHEDULED', withheld_minor: null },
    ],
    ['a payout of 0', TOPICS.payouts, { ...payout, gross_amount_minor: 0, withheld_minor: 0 }],
    ['a payout at the amount ceiling', TOPICS.payouts, { ...payout, gross_amount_minor: 1e13 }],
    ['a payout a day ahead (the allowed skew)', TOPICS.payouts, { ...payout, occurred_at: NOW + DAY_MS }],
    ['a payout on 2000-01-01', TOPICS.payouts, { ...payout, occurred_at: Date.UTC(2000, 0, 1) }],
    ['a sale without an order', TOPICS.sales, sale],
    ['a sale with a 256-character unicode id', TOPICS.sales, { ...sale, sale_id: 'é'.repeat(256) }],
    ['a loan FUNDED', TOPICS.loanEvents, funded],
    [
      'FUNDED at 10000 bps, 366-day periods, no fee, no minimum',
      TOPICS.loanEvents,
      { ...funded, holdback_rate_bps: 10_000, period_days: 366, fee_minor: 0, minimum_payment_minor: 0 },
    ],
    ['a loan PAUSED (no terms)', TOPICS.loanEvents, { ...funded, ...noTerms, type: 'PAUSED' }],
    ['an eligibility decision', TOPICS.eligibility, decision],
    [
      'an eligibility decision with empty collections',
      TOPICS.eligibility,
      { ...decision, reasons: [], features: {} },
    ],
    ['a negative feature value', TOPICS.eligibility, { ...decision, features: { trend_bps: -250 } }],
  ];
  const ids: Record<string, 'PayoutEvent' | 'SaleEvent' | 'LoanEvent' | 'EligibilityDecision'> = {
    [TOPICS.payouts]: 'PayoutEvent',
    [TOPICS.sales]: 'SaleEvent',
    [TOPICS.loanEvents]: 'LoanEvent',
    [TOPICS.eligibility]: 'EligibilityDecision',
  };

  test.each(good)('%s is accepted as it was written', (_name, topic, value) => {
    const result = codec.tryDecodeCached(topic, Buffer.from(KEY), forge(ids[topic]!, value), NOW);
    expect(result).toEqual({ ok: true, value, schemaId: expect.any(Number) });
  });

  test('the key may be given as a string', () => {
    expect(codec.tryDecodeCached(TOPICS.payouts, KEY, goodPayout, NOW)).toMatchObject({ ok: true });
  });

  test('a decoded map has no inherited surprises and Object.prototype is untouched', () => {
    const result = codec.tryDecodeCached(
      TOPICS.eligibility,
      KEY,
      forge('EligibilityDecision', decision),
      NOW,
    );
    expect(result?.ok && Object.keys(result.value.features)).toEqual([
      'net_sales_90d_minor',
      'refund_rate_bps',
    ]);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});

describe('the cached path is synchronous; fetching happens once per schema id', () => {
  function countingSource(inner: SchemaSource = inMemorySource()): SchemaSource & { calls: number[] } {
    const calls: number[] = [];
    return {
      calls,
      getSchemaById: (id) => {
        calls.push(id);
        return inner.getSchemaById(id);
      },
    };
  }

  test('an id given at construction decodes without any fetch', () => {
    const source = countingSource();
    const codec = makeCodec(source);
    expect(codec.tryDecodeCached(TOPICS.payouts, KEY, goodPayout, NOW)).toMatchObject({
      ok: true,
      schemaId: IDS.PayoutEvent,
    });
    expect(source.calls).toEqual([]);
  });

  test('an unfetched id is undefined on the sync path; concurrent decodes share one fetch', async () => {
    const source = countingSource();
    const codec = new Codec({ source });
    expect(codec.tryDecodeCached(TOPICS.payouts, KEY, goodPayout, NOW)).toBeUndefined();
    const results = await Promise.all(
      [1, 2, 3].map(() => codec.decode(TOPICS.payouts, KEY, goodPayout, NOW)),
    );
    expect(results.every((r) => r.ok)).toBe(true);
    expect(source.calls).toEqual([IDS.PayoutEvent]);
    expect(codec.tryDecodeCached(TOPICS.payouts, KEY, goodPayout, NOW)).toMatchObject({ ok: true });
  });

  test('header failures are results on the sync path too', () => {
    const codec = new Codec({ source: inMemorySource() });
    expect(codec.tryDecodeCached(TOPICS.payouts, KEY, Buffer.from([7, 0, 0, 0, 1]), NOW)).toMatchObject({
      reasonCode: 'BAD_MAGIC_BYTE',
    });
  });

  test('an unknown id is remembered for a while (by the caller clock), then asked again', async () => {
    const source = countingSource();
    const codec = new Codec({ source, unknownIdTtlMs: 10_000 });
    const unknown = frame(99, goodPayout.subarray(5));
    await codec.decode(TOPICS.payouts, KEY, unknown, NOW);
    expect(codec.tryDecodeCached(TOPICS.payouts, KEY, unknown, NOW + 9_999)).toMatchObject({
      reasonCode: 'UNKNOWN_SCHEMA_ID',
    });
    expect(codec.tryDecodeCached(TOPICS.payouts, KEY, unknown, NOW + 10_000)).toBeUndefined();
    await codec.decode(TOPICS.payouts, KEY, unknown, NOW + 10_000);
    expect(source.calls).toEqual([99, 99]);
  });

  test('with no memory of unknown ids, each decode asks again and gets UNKNOWN_SCHEMA_ID', async () => {
    const source = countingSource();
    const codec = new Codec({ source, unknownIdTtlMs: 0 });
    const unknown = frame(99, goodPayout.subarray(5));
    expect(await codec.decode(TOPICS.payouts, KEY, unknown, NOW)).toMatchObject({
      reasonCode: 'UNKNOWN_SCHEMA_ID',
    });
    expect(await codec.decode(TOPICS.payouts, KEY, unknown, NOW)).toMatchObject({
      reasonCode: 'UNKNOWN_SCHEMA_ID',
    });
    expect(source.calls).toEqual([99, 99]);
  });

  test('a writer schema that does not resolve is decided once per topic and id', async () => {
    const source = countingSource();
    const codec = new Codec({ source });
    const wrong = forge('SaleEvent', sale);
    for (let i = 0; i < 3; i++) {
      expect(await codec.decode(TOPICS.payouts, KEY, wrong, NOW)).toMatchObject({
        reasonCode: 'SCHEMA_MISMATCH',
      });
    }
    expect(await codec.decode(TOPICS.sales, KEY, wrong, NOW)).toMatchObject({ ok: true });
    expect(source.calls).toEqual([IDS.SaleEvent]);
  });
});

describe('a registry outage throws, and is not remembered', () => {
  test('decode rejects with RegistryUnavailableError, then succeeds once the registry is back', async () => {
    let up = false;
    const inner = inMemorySource();
    const codec = new Codec({
      source: {
        getSchemaById: async (id) => {
          if (!up) throw new RegistryUnavailableError('connect ECONNREFUSED');
          return inner.getSchemaById(id);
        },
      },
    });
    await expect(codec.decode(TOPICS.payouts, KEY, goodPayout, NOW)).rejects.toBeInstanceOf(
      RegistryUnavailableError,
    );
    expect(codec.tryDecodeCached(TOPICS.payouts, KEY, goodPayout, NOW)).toBeUndefined();
    up = true;
    expect(await codec.decode(TOPICS.payouts, KEY, goodPayout, NOW)).toMatchObject({ ok: true });
  });

  test('a source that says the schema is not Avro is SCHEMA_MISMATCH', async () => {
    const codec = new Codec({
      source: {
        getSchemaById: async () => {
          throw new SchemaLookupError('SCHEMA_MISMATCH', 'schema 1 is a PROTOBUF schema');
        },
      },
    });
    expect(await codec.decode(TOPICS.payouts, KEY, goodPayout, NOW)).toMatchObject({
      ok: false,
      reasonCode: 'SCHEMA_MISMATCH',
      detail: 'schema 1 is a PROTOBUF schema',
    });
  });
});

describe('schema evolution', () => {
  test('v1 and a backward-compatible v2 (an optional field) decode side by side', async () => {
    const codec = makeCodec();
    const v2 = frame(IDS.payoutV2, forgeBody(PAYOUT_V2_SCHEMA, { ...payout, channel: 'app' }));
    expect(await codec.decode(TOPICS.payouts, KEY, v2, NOW)).toEqual({
      ok: true,
      value: payout,
      schemaId: IDS.payoutV2,
    });
    expect(codec.tryDecodeCached(TOPICS.payouts, KEY, goodPayout, NOW)).toEqual({
      ok: true,
      value: payout,
      schemaId: IDS.PayoutEvent,
    });
  });
});

describe('encode', () => {
  test('writes the Confluent framing around exactly what avsc writes', () => {
    const bytes = makeCodec().encode(TOPICS.payouts, payout);
    const body = avro.Type.forSchema(RECORD_SCHEMAS.PayoutEvent as unknown as avro.Schema).toBuffer(payout);
    expect(bytes).toEqual(frame(IDS.PayoutEvent, body));
  });

  test('each result owns its bytes, and the buffer grows for a large record', () => {
    const codec = makeCodec();
    const first = codec.encode(TOPICS.payouts, payout);
    const copy = Buffer.from(first);
    const big = {
      ...decision,
      reasons: Array.from({ length: 200 }, (_, i) => `REASON_${i}_${'x'.repeat(40)}`),
    };
    const bigBytes = codec.encode(TOPICS.eligibility, big);
    expect(bigBytes.length).toBeGreaterThan(8192);
    codec.encode(TOPICS.payouts, { ...payout, payout_id: 'po-2' });
    expect(first).toEqual(copy);
    expect(codec.tryDecodeCached(TOPICS.eligibility, KEY, bigBytes, NOW)).toEqual({
      ok: true,
      value: big,
      schemaId: IDS.EligibilityDecision,
    });
  });

  test.each<[string, object, DlqReasonCode]>([
    ['a negative amount', { ...payout, gross_amount_minor: -1 }, 'NEGATIVE_AMOUNT'],
    ['an unknown currency', { ...payout, currency: 'ABC' }, 'UNKNOWN_CURRENCY'],
    ['a fractional amount', { ...payout, gross_amount_minor: 1.5 }, 'INVALID_RECORD'],
    ['an unsafe amount', { ...payout, withheld_minor: 2 ** 60 }, 'UNSAFE_INTEGER'],
    ['a missing field', { ...payout, currency: undefined }, 'INVALID_RECORD'],
    ['an unknown enum symbol', { ...payout, type: 'LOST' }, 'INVALID_RECORD'],
  ])('refuses %s with EncodeError (a broken invariant)', (_name, value, reasonCode) => {
    const encode = (): Buffer => makeCodec().encode(TOPICS.payouts, value as typeof payout);
    expect(encode).toThrow(EncodeError);
    expect(encode).toThrow(reasonCode);
  });

  test('a timestamp ahead of any clock is fine on output (the runtime stamps it)', () => {
    expect(() =>
      makeCodec().encode(TOPICS.payouts, { ...payout, occurred_at: NOW + 30 * DAY_MS }),
    ).not.toThrow();
  });

  test('needs the schema id of the topic', () => {
    expect(() => new Codec({ source: inMemorySource() }).encode(TOPICS.payouts, payout)).toThrow(
      /no schema id/,
    );
  });

  test('refuses one id for two records', () => {
    expect(
      () => new Codec({ source: inMemorySource(), schemaIds: { [TOPICS.payouts]: 1, [TOPICS.sales]: 1 } }),
    ).toThrow(/two different records/);
  });

  test('the local schema text is what is registered', () => {
    expect(JSON.parse(schemaText('PayoutEvent'))).toEqual(RECORD_SCHEMAS.PayoutEvent);
  });
});
