export {
  createEligibilityProcessor,
  DEFAULT_DEDUP,
  type DedupWindow,
  decisionId,
  ELIGIBILITY_PROCESSOR_NAME,
  isoDay,
  policyTag,
} from './processor';
export { DEFAULT_POLICY, parsePolicy, type EligibilityPolicy, type GradeBand } from './policy';
export { computeFeatures, decisionFeatures, evaluate, type Evaluation, type Features } from './decide';
export { ELIGIBILITY_REASONS } from './reasons';
export {
  dayOf,
  eligibilityStateSerde,
  startOfDay,
  STATE_BYTES,
  StateView,
  type EligibilityState,
} from './state';
