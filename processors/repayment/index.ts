export { createRepaymentProcessor, deductionId, REPAYMENT_PROCESSOR_NAME } from './processor';
export { DEFAULT_REPAYMENT_CONFIG, parseRepaymentConfig, type RepaymentConfig } from './config';
export { REPAYMENT_REJECTION_CODES, type RepaymentRejectionCode } from './reasons';
export {
  repaymentStateSerde,
  type RepaymentState,
  type Loan,
  type PayoutRecord,
  type Withholding,
} from './state';
