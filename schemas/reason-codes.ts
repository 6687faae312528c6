/**
 * Stable reason codes: why an input record is not accepted. A record sent to the dead-letter
 * topic (holdback.dlq.v1) carries one of these in `reason_code`; operators alert and count by
 * them, so a code is never renamed or reused with another meaning (docs/reason-codes.md).
 *
 * DLQ_REASON_CODES are found by the decode and validation layer (connectors/codec.ts,
 * schemas/validate.ts). They are listed in precedence order: the stage that finds a problem
 * first (the header, then the schema, the Avro body, the field rules, the record rules, the key)
 * decides the code, so the same bytes always get the same code.
 */
export const DLQ_REASON_CODES = {
  MISSING_VALUE: 'The record has no value (a tombstone) on a topic whose records all carry one.',
  TRUNCATED_HEADER: 'The value is shorter than the 5-byte Confluent header (magic byte + schema id).',
  BAD_MAGIC_BYTE: 'The first byte is not 0, the magic byte of the Confluent wire format.',
  PAYLOAD_TOO_LARGE: 'The value is larger than the configured maximum (1 MiB by default).',
  UNKNOWN_SCHEMA_ID:
    'The schema registry answers that it has no schema with the id in the header (HTTP 404).',
  SCHEMA_MISMATCH:
    "The writer schema is not resolvable to the topic's record: another record, an incompatible change, or not Avro.",
  MALFORMED_AVRO:
    'The Avro body does not decode with its writer schema: truncated, impossible lengths or counts, a bad union or enum index, or trailing bytes.',
  UNSAFE_INTEGER: 'An int or long is beyond +-(2^53 - 1), where a JavaScript number would silently round it.',
  INVALID_RECORD:
    "A value from a non-Avro source (JSON, HTTP) does not have the record's shape: a missing, unknown or mistyped field.",
  NEGATIVE_AMOUNT: 'An amount (a *_minor field) is below 0.',
  AMOUNT_OUT_OF_RANGE:
    'An amount is above the ceiling of 10^13 minor units, or is 0 where it must be positive.',
  UNKNOWN_CURRENCY: 'A currency field is not an ISO 4217 code of a currency (schemas/iso4217.ts).',
  TIMESTAMP_OUT_OF_RANGE:
    'A timestamp is before 2000-01-01 or later than now plus the allowed clock skew (1 day by default).',
  STRING_TOO_LONG:
    'A string is longer than its limit: 256 characters for ids and map keys, 4096 for other text.',
  INVALID_ID: 'An id (a *_id field) is empty or holds control, format, separator or replacement characters.',
  INVALID_MAP_KEY:
    'A map key is empty, a reserved name (__proto__, constructor, prototype) or holds control characters.',
  INVALID_FIELD:
    'A number is outside its range where no more specific code applies (a negative count or offset, a rate outside 1..10000 bps).',
  MISSING_LOAN_TERMS:
    'A FUNDED loan event lacks one of its terms (principal, fee, rate, minimum payment, period, currency).',
  INVALID_LOAN_TERMS:
    'A FUNDED loan event has a term out of range: principal <= 0, rate outside 1..10000 bps, or period outside 1..366 days.',
  KEY_MISMATCH: "The Kafka key is missing or differs from the record's key field (merchant_id or loan_id).",
  WRONG_PARTITION:
    "An input record is in another partition than its key's: the Java client's partitioner (murmur2) puts it in the partition the detail names.",
  OPERATOR_SKIPPED:
    'A record that stopped its partition on a broken invariant, moved here by an operator (holdback dlq skip) so that the partition goes on.',
} as const;

export type DlqReasonCode = keyof typeof DLQ_REASON_CODES;

/**
 * Rejections decided by the processors (processors/api.ts `Rejection`): data that decodes and
 * validates but that the business rules refuse. They are added here with the processors.
 */
export const PROCESSOR_REASON_CODES = {
  // processors/repayment, in the order its checks run (docs/reason-codes.md, "Repayment rejection codes").
  MERCHANT_MISMATCH:
    "The record's merchant_id differs from its Kafka key (the merchant whose loans the state holds).",
  INVALID_PAYOUT:
    "A payout whose amounts, currency or occurred_at are malformed (when it bypassed the codec's rules).",
  INVALID_LOAN_EVENT:
    'A loan event whose occurred_at is malformed, or a FUNDED whose terms are missing or out of range.',
  DUPLICATE_LOAN: 'FUNDED for a loan_id this merchant already has.',
  UNKNOWN_LOAN:
    'PAUSED, RESUMED, PAID_OFF_EXTERNALLY or WRITTEN_OFF for a loan_id never FUNDED for this merchant.',
  INVALID_TRANSITION:
    "A status event the loan's status does not allow (RESUMED when not PAUSED, anything after a terminal event).",
  BEYOND_DEDUP_HORIZON:
    'An event Holdback no longer remembers, older than its de-duplication horizon (a payout in repayment; an order, sale or payout in eligibility): it may have been applied before, so it is not applied again.',
} as const;

export type ProcessorReasonCode = keyof typeof PROCESSOR_REASON_CODES;

export type ReasonCode = DlqReasonCode | ProcessorReasonCode;

/** Every reason code with its one-line meaning. */
export const REASON_CODES: Readonly<Record<ReasonCode, string>> = {
  ...DLQ_REASON_CODES,
  ...PROCESSOR_REASON_CODES,
};

export function isProcessorReasonCode(code: string): code is ProcessorReasonCode {
  return Object.prototype.hasOwnProperty.call(PROCESSOR_REASON_CODES, code);
}

export function isReasonCode(code: string): code is ReasonCode {
  return Object.prototype.hasOwnProperty.call(REASON_CODES, code);
}

/**
 * Why a merchant is or is not eligible: the `reasons` of an EligibilityDecision
 * (holdback.eligibility.v1), docs/reason-codes.md "Eligibility reason codes". Not rejections: an
 * input that produced a decision was accepted. A decision lists every code that applies, in this
 * order. Codes are stable: never renamed, never reused with another meaning.
 */
export const ELIGIBILITY_REASON_CODES = {
  APPROVED: 'Eligible: every rule of the policy passes and the limit reaches the minimum offer.',
  INSUFFICIENT_HISTORY: "Tenure (days since the merchant's first event) is below the policy's minimum.",
  LOW_VOLUME: "Average monthly net sales over the 90-day window are below the policy's minimum.",
  HIGH_REFUND_RATE: "Refunds over captures in the 90-day window are above the policy's maximum.",
  HIGH_CHARGEBACK_RATE: "Chargebacks over captures in the 90-day window are above the policy's maximum.",
  HIGH_CANCELLATION_RATE: "Cancelled over placed orders in the 90-day window are above the policy's maximum.",
  DECLINING_SALES:
    'Net sales of the last 30 days fell, against the 30 days before, by more than the policy allows.',
  VOLATILE_SALES:
    "The relative mean absolute deviation of daily net sales over 30 days is above the policy's maximum.",
  PAYOUT_FAILURES: 'More failed payouts in the 90-day window than the policy allows.',
  DELINQUENT_LOAN:
    'A loan of the merchant is DELINQUENT (two or more missed minimum-payment periods in a row).',
  PRIOR_WRITE_OFF: 'A loan of the merchant was written off, and the policy declines after a write-off.',
  EXPOSURE_AT_LIMIT:
    "The outstanding balance of open loans leaves less than the minimum offer under the merchant's limit (or more open loans than can be tracked).",
  LIMIT_BELOW_MINIMUM: "The limit the merchant's grade and sales give is below the policy's minimum offer.",
  LOAN_BEHIND:
    "A loan is BEHIND (one missed period): the grade is lowered by the policy's penalty. Informational.",
  LIMIT_CAPPED: "The policy's maximum limit bound the limit. Informational.",
  REFILL_ELIGIBLE:
    "Refill signal: an ACTIVE loan passed the policy's share repaid (75% by default) while the merchant is eligible. Sent once per loan.",
} as const;

export type EligibilityReasonCode = keyof typeof ELIGIBILITY_REASON_CODES;

/**
 * What the repayment processor decided for a SCHEDULED payout event: the `reason_code` of a
 * PayoutDecision (holdback.payout-decisions.v1), docs/reason-codes.md "Payout decision codes".
 * Not rejections: a rejected event gets a DeadLetter instead. A decision gets the first code that
 * applies, in this order. Stable: never renamed, never reused with another meaning.
 */
export const PAYOUT_DECISION_CODES = {
  WITHHELD: 'At least one loan withheld from the payout: withheld_minor > 0, one deduction per loan.',
  ALREADY_DECIDED:
    'This payout was SCHEDULED before (a re-send, under this event_id or another): its first decision stands, nothing more is withheld.',
  FAILED_EARLIER: 'The payout FAILED before it was SCHEDULED: a failed payout withholds nothing.',
  SETTLED_EARLIER:
    'The payout SETTLED before it was SCHEDULED: nothing is withheld from a payout already paid.',
  NO_LIVE_LOAN:
    'The merchant has no loan that withholds: none was funded, or every loan is PAID_OFF or WRITTEN_OFF.',
  OTHER_CURRENCY: "The merchant's live loans are all in other currencies than the payout's.",
  LOANS_PAUSED: "Every live loan in the payout's currency is PAUSED.",
  SHARE_ROUNDS_TO_ZERO:
    "Loans withhold in the payout's currency, but each share floor(gross * rate / 10000) is 0 (a payout too small, or of 0).",
} as const;

export type PayoutDecisionCode = keyof typeof PAYOUT_DECISION_CODES;
