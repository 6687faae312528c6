/**
 * Shared by the codec tests: an in-memory schema source, valid sample records, and a forger that
 * writes any value (negative amounts, longs beyond 2^53, bad strings) in a record's Avro encoding,
 * since the codec's own encoder refuses them.
 */
import * as avro from 'avsc';
import { Codec, StaticSchemaSource, type SchemaSource } from '../../connectors/codec';
import { RECORD_SCHEMAS, schemaText } from '../../schemas/contract';
import type {
  EligibilityDecision,
  LoanEvent,
  PayoutEvent,
  RecordName,
  SaleEvent,
} from '../../schemas/generated/types';
import { TOPICS } from '../../schemas/topics';

/** The clock of every decode in these tests. */
export const NOW = Date.UTC(2026, 10, 22, 12);
export const DAY_MS = 24 * 60 * 60 * 1000;

/** Writer schema ids in the in-memory registry. */
export const IDS = {
  PayoutEvent: 1,
  SaleEvent: 2,
  LoanEvent: 3,
  EligibilityDecision: 4,
  /** Registered, but not valid Avro. */
  notAvro: 7,
  /** PayoutEvent plus an optional field: a backward-compatible v2. */
  payoutV2: 8,
} as const;

export const PAYOUT_V2_SCHEMA = {
  ...RECORD_SCHEMAS.PayoutEvent,
  fields: [
    ...RECORD_SCHEMAS.PayoutEvent.fields,
    { name: 'channel', type: ['null', 'string'], default: null },
  ],
};

export function inMemorySource(): StaticSchemaSource {
  return new StaticSchemaSource(
    new Map<number, string>([
      [IDS.PayoutEvent, schemaText('PayoutEvent')],
      [IDS.SaleEvent, schemaText('SaleEvent')],
      [IDS.LoanEvent, schemaText('LoanEvent')],
      [IDS.EligibilityDecision, schemaText('EligibilityDecision')],
      [IDS.notAvro, '{"type": "record", "name": "Broken", "fields": "not a list"}'],
      [IDS.payoutV2, JSON.stringify(PAYOUT_V2_SCHEMA)],
    ]),
  );
}

/** A codec whose encoders know the ids above. */
export function makeCodec(source: SchemaSource = inMemorySource()): Codec {
  return new Codec({
    source,
    schemaIds: {
      [TOPICS.payouts]: IDS.PayoutEvent,
      [TOPICS.sales]: IDS.SaleEvent,
      [TOPICS.loanEvents]: IDS.LoanEvent,
      [TOPICS.eligibility]: IDS.EligibilityDecision,
    },
  });
}

export const payout: PayoutEvent = {
  event_id: 'evt-pay-1',
  merchant_id: 'mer-42',
  payout_id: 'po-1',
  type: 'SETTLED',
  gross_amount_minor: 250_000,
  withheld_minor: 25_000,
  currency: 'EUR',
  occurred_at: NOW - 60_000,
};

export const sale: SaleEvent = {
  event_id: 'evt-sal-1',
  merchant_id: 'mer-42',
  sale_id: 'sal-1',
  order_id: null,
  type: 'CAPTURED',
  amount_minor: 12_999,
  currency: 'USD',
  occurred_at: NOW - 60_000,
};

export const funded: LoanEvent = {
  event_id: 'evt-loan-1',
  loan_id: 'loan-1',
  merchant_id: 'mer-42',
  type: 'FUNDED',
  occurred_at: NOW - DAY_MS,
  principal_minor: 1_000_000,
  fee_minor: 80_000,
  holdback_rate_bps: 1_000,
  minimum_payment_minor: 50_000,
  period_days: 30,
  currency: 'EUR',
};

export const noTerms = {
  principal_minor: null,
  fee_minor: null,
  holdback_rate_bps: null,
  minimum_payment_minor: null,
  period_days: null,
  currency: null,
} as const;

export const decision: EligibilityDecision = {
  decision_id: 'dec-1',
  merchant_id: 'mer-42',
  eligible: true,
  grade: 'B',
  limit_minor: 1_500_000,
  currency: 'EUR',
  reasons: ['NET_SALES_90D_OK'],
  features: { net_sales_90d_minor: 4_500_000, refund_rate_bps: 120 },
  policy_version: 'eligibility-2026.11',
  computed_at: NOW - 1_000,
  trigger_event_id: 'evt-pay-1',
};

/** A long that writes any integer, number or bigint, as Avro does: the forger's. */
const ANY_LONG = avro.types.LongType.__with({
  fromBuffer: (b: Buffer) => b.readBigInt64LE(0),
  toBuffer: (n: number | bigint) => {
    const b = Buffer.alloc(8);
    b.writeBigInt64LE(BigInt(n));
    return b;
  },
  fromJSON: (n: number) => n,
  toJSON: (n: number | bigint) => Number(n),
  isValid: (n: unknown) => typeof n === 'bigint' || Number.isInteger(n),
  compare: () => 0,
});

const forgers = new Map<string, avro.Type>();

/** The Avro body of `value` written with `schema` (a record name or a schema), without any check but Avro's types. */
export function forgeBody(schema: RecordName | object, value: object): Buffer {
  const key = typeof schema === 'string' ? schema : JSON.stringify(schema);
  let type = forgers.get(key);
  if (!type) {
    type = avro.Type.forSchema(
      (typeof schema === 'string' ? RECORD_SCHEMAS[schema] : schema) as avro.Schema,
      {
        typeHook: (s) =>
          s === 'long' ||
          (typeof s === 'object' && !Array.isArray(s) && (s as { type?: unknown }).type === 'long')
            ? ANY_LONG
            : undefined,
      },
    );
    forgers.set(key, type);
  }
  return type.toBuffer(value);
}

/** The Confluent framing: magic byte 0, the schema id, the body. */
export function frame(id: number, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeInt32BE(id, 1);
  return Buffer.concat([header, body]);
}

/** A forged record of `record`, framed with its id in IDS. */
export function forge(record: keyof typeof IDS & RecordName, value: object): Buffer {
  return frame(IDS[record], forgeBody(record, value));
}
