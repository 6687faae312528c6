/**
 * The repayment processor's configuration: every key optional, with the documented default;
 * unknown keys and bad values are refused when the processor is created.
 *
 * Retention is measured on the merchant clock (event time, advanced by ticks): see README.md.
 * Forgetting a payout is a trade-off: a SCHEDULED replayed after its record is forgotten is
 * withheld again, and a FAILED that arrives after it cannot be reversed. The defaults keep terminal
 * payouts far longer than any redelivery (producer retries, a consumer group rewind) takes.
 */
const DAY_MS = 86_400_000;

export interface RepaymentConfig {
  /** How long a SETTLED or FAILED payout is remembered after its last event. Default 35 days. */
  readonly terminalPayoutRetentionMs: number;
  /** How long a payout with neither SETTLED nor FAILED is remembered after its last event. Default 180 days. */
  readonly openPayoutRetentionMs: number;
  /** How long a processed event_id is remembered, so that its redelivery changes nothing. Default 35 days. */
  readonly eventIdRetentionMs: number;
  /**
   * How far ahead of ctx.now an event's occurred_at may move the merchant clock. Default 1 day: a
   * far-future timestamp cannot close a loan's periods early (it is still processed).
   */
  readonly futureToleranceMs: number;
  /** Pace is judged only after this share of the period has run (basis points). Default 2500 (25%). */
  readonly paceWarmupBps: number;
}

export const DEFAULT_REPAYMENT_CONFIG: RepaymentConfig = {
  terminalPayoutRetentionMs: 35 * DAY_MS,
  openPayoutRetentionMs: 180 * DAY_MS,
  eventIdRetentionMs: 35 * DAY_MS,
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
