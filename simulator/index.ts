/** The marketplace simulator (issue 9): see simulator/README.md. */
export { simulate, type SimulateHooks, type SimulationProgress, type SimulationSummary } from './producer';
export { Marketplace, type MarketplaceConfig, type MerchantProfile, type SimEvent } from './marketplace';
export {
  FaultInjector,
  MALFORMED_KINDS,
  type FaultConfig,
  type MalformedKind,
  type SimRecord,
} from './faults';
export { RecordEncoder } from './encode';
export {
  resolveOptions,
  parseSimulateArgs,
  SimulateOptionError,
  type SimulateInput,
  type SimulateOptions,
} from './options';
export { Rng } from './rng';
