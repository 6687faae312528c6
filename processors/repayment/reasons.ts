/**
 * Why the repayment processor rejects an input (it goes to the DLQ with this code). A closed,
 * stable set, listed in the order the checks run: an input gets the first code that applies.
 * The meanings live with every other reason code in schemas/reason-codes.ts (docs/reason-codes.md).
 */
import type { ProcessorReasonCode } from '../../schemas/reason-codes';

export const REPAYMENT_REJECTION_CODES = [
  'MERCHANT_MISMATCH',
  'INVALID_PAYOUT',
  'INVALID_LOAN_EVENT',
  'DUPLICATE_LOAN',
  'UNKNOWN_LOAN',
  'INVALID_TRANSITION',
  'BEYOND_DEDUP_HORIZON',
] as const satisfies readonly ProcessorReasonCode[];

export type RepaymentRejectionCode = (typeof REPAYMENT_REJECTION_CODES)[number];
