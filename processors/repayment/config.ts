/**
 * The repayment processor's configuration: every key optional, with the documented default;
 * unknown keys and bad values are refused when the processor is created.
 *
 * Times are on the merchant clock (processor.ts). The de-duplication horizon bounds what a
 * merchant's state remembers of its payouts (docs/contract.md, "One decision per event").
 */
const DAY_MS = 86_400_000;

export interface RepaymentConfig {
  /**
   * How long a payout is remembered after its latest event (one with withholdings not yet
   * settled or failed: until it is). An event of a payout no longer remembered whose occurred_at is
   * older than this is not decided again (BEYOND_DEDUP_HORIZON). Default 35 days.
   */
  readonly dedupHorizonMs: number;
  /**
   * How far ahead of ctx.now an event's occurred_at may move the merchant clock. Default 1 day: a
   * far-future timestamp cannot close a loan's periods early (it is still processed).
   */
  readonly futureToleranceMs: number;
  /** Pace is judged only after this share of the period has run (basis points). Default 2500 (25%). */
  readonly paceWarmupBps: number;
}

export const DEFAULT_REPAYMENT_CONFIG: RepaymentConfig = {
  dedupHorizonMs: 35 * DAY_MS,
  futureToleranceMs: DAY_MS,
  paceWarmupBps: 2500,
};

export function parseRepaymentConfig(input: Partial<RepaymentConfig> = {}): RepaymentConfig {
  const config: Record<string, number> = { ...DEFAULT_REPAYMENT_CONFIG };
  for (const [key, value] of Object.entries(input)) {
    if (!Object.prototype.hasOwnProperty.call(DEFAULT_REPAYMENT_CONFIG, key)) {
      throw new Error(`repayment config: unknown key '${key}'`);
    }
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new Error(`repayment config: '${key}' must be a non-negative integer, got ${String(value)}`);
    }
    config[key] = value;
  }
  if ((config['paceWarmupBps'] ?? 0) > 10_000)
    throw new Error('repayment config: paceWarmupBps must be <= 10000');
  return config as unknown as RepaymentConfig;
}
