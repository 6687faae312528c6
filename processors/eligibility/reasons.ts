/**
 * The eligibility reason codes, in the order a decision lists them. Their meanings live with
 * every other reason code in schemas/reason-codes.ts (docs/reason-codes.md, "Eligibility reason
 * codes"); this file only fixes the order.
 */
import { ELIGIBILITY_REASON_CODES, type EligibilityReasonCode } from '../../schemas/reason-codes';

export const ELIGIBILITY_REASONS = Object.keys(ELIGIBILITY_REASON_CODES) as EligibilityReasonCode[];
