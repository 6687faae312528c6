/**
 * Repayments and settlement (ClickHouse and Prometheus): what was collected, at which rate, how
 * long settlement takes, where the platform's reports disagree with Holdback, what is withheld
 * but not settled yet, and what was decided for each payout, including to withhold nothing and
 * why. ClickHouse panels follow the time range; Prometheus panels read the processors selected
 * by `service`. New panels go at the end: panel ids are their order, and links use them.
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { sql } from './clickhouse';
import {
  THIRD,
  databaseVariable,
  finish,
  promql,
  row,
  serviceVariable,
  statPanel,
  tablePanel,
  timeSeriesPanel,
} from './panels';

const S = 'service=~"$service"';

/**
 * Buckets of payout_decisions_hourly for the time range: an hour up to 2 days, 6 hours up to 14
 * days, a day beyond (about 50 to 120 bars on the usual ranges), aligned to UTC.
 */
const DECISION_BUCKETS = `
WITH
  toUInt32($__toTime) - toUInt32($__fromTime) AS range_s,
  multiIf(range_s <= 2 * 86400, 3600, range_s <= 14 * 86400, 21600, 86400) AS bucket_s`;

export function repayments(): dashboard.Dashboard {
  const b = new dashboard.DashboardBuilder('Holdback: repayments and settlement')
    .uid('holdback-repayments-settlement')
    .description(
      'Collections, realised withholding rate, settlement lag, reconciliation, unsettled withholdings.',
    )
    .tags(['holdback', 'clickhouse', 'prometheus'])
    .timezone('utc')
    .time({ from: 'now-30d', to: 'now' })
    .refresh('1m')
    .withVariable(databaseVariable())
    .withVariable(serviceVariable())

    .withRow(row('Collections'))
    .withPanel(
      timeSeriesPanel(
        'Net collected per day',
        "Withheld minus reversed, by the payout's day and currency (daily_collections), minor units.",
        'short',
        [
          sql(`
SELECT
  toDateTime(day) AS time,
  currency,
  sum(withheld_total_minor) - sum(reversed_total_minor) AS net_collected_minor
FROM \${database}.daily_collections
WHERE $__dateFilter(day)
GROUP BY day, currency
ORDER BY time, currency`).timeSeries(),
        ],
        THIRD,
        { bars: true, stack: true },
      ),
    )
    .withPanel(
      tablePanel(
        'Daily collections',
        'Withholds and reversals per day and currency (daily_collections), minor units.',
        [
          sql(`
SELECT
  day,
  currency,
  sum(withholds) AS withhold_count,
  sum(reversals) AS reversal_count,
  sum(withheld_total_minor) AS withheld_minor,
  sum(reversed_total_minor) AS reversed_minor,
  sum(withheld_total_minor) - sum(reversed_total_minor) AS net_minor
FROM \${database}.daily_collections
WHERE $__dateFilter(day)
GROUP BY day, currency
ORDER BY day DESC, currency`),
        ],
        THIRD,
      ),
    )
    .withPanel(
      timeSeriesPanel(
        'Withholding rate realised',
        "Per day of the payout: amount withheld / gross of the payouts withheld from (each payout's gross counted once), against the loans' contracted holdback rate weighted by gross. Realised is lower when balances cap the withholding.",
        'percentunit',
        [
          sql(`
SELECT
  toStartOfDay(payout_time) AS time,
  sum(payout_withheld_minor) / sum(payout_gross_minor) AS realised,
  sum(payout_contracted_minor) / sum(payout_gross_minor) AS contracted
FROM
(
  SELECT
    payout_id,
    min(occurred_at) AS payout_time,
    sumIf(amount_minor, type = 'WITHHOLD') AS payout_withheld_minor,
    any(gross_amount_minor) AS payout_gross_minor,
    any(gross_amount_minor) * max(holdback_rate_bps) / 10000 AS payout_contracted_minor
  FROM \${database}.deductions
  WHERE $__timeFilter(occurred_at) AND type = 'WITHHOLD'
  GROUP BY payout_id
)
WHERE payout_gross_minor > 0
GROUP BY time
ORDER BY time`).timeSeries(),
        ],
        THIRD,
      ),
    )

    .withRow(row('Settlement'))
    .withPanel(
      timeSeriesPanel(
        'Settlement lag per day (platform)',
        'SETTLED time minus SCHEDULED time of the payouts settled that day (settlement_lag_daily; only payouts whose SCHEDULED Holdback saw). Event times, as the platform reports them.',
        's',
        [
          sql(`
SELECT
  toDateTime(day) AS time,
  sumIfMerge(lag_sum_ms) / countIfMerge(lag_count) / 1000 AS avg_lag,
  arrayElement(quantilesIfMerge(0.5, 0.9, 0.99)(lag_quantiles_ms), 1) / 1000 AS p50_lag,
  arrayElement(quantilesIfMerge(0.5, 0.9, 0.99)(lag_quantiles_ms), 3) / 1000 AS p99_lag,
  maxIfMerge(lag_max_ms) / 1000 AS max_lag
FROM \${database}.settlement_lag_daily
WHERE $__dateFilter(day) AND status = 'SETTLED'
GROUP BY day
HAVING countIfMerge(lag_count) > 0
ORDER BY time`).timeSeries(),
        ],
        THIRD,
      ),
    )
    .withPanel(
      timeSeriesPanel(
        'Settlement lag (processors)',
        'holdback_settlement_lag_seconds over the last hour: from the first withholding decision (withheld_to_settled) or the SCHEDULED event (scheduled_to_settled) to SETTLED. The SLO alert reads the p99 of withheld_to_settled over 6 hours.',
        's',
        [0.5, 0.99].map((q) =>
          promql(
            `histogram_quantile(${q}, sum by (stage, le) (rate(holdback_settlement_lag_seconds_bucket{${S}}[1h])))`,
            `{{stage}} p${q * 100}`,
          ),
        ),
        THIRD,
      ),
    )
    .withPanel(
      tablePanel(
        'Settlements per day',
        'SETTLED and FAILED payouts per day and currency (settlement_lag_daily).',
        [
          sql(`
SELECT
  day,
  currency,
  status,
  countMerge(settlements) AS payouts,
  countIfMerge(mismatches) AS mismatched
FROM \${database}.settlement_lag_daily
WHERE $__dateFilter(day)
GROUP BY day, currency, status
ORDER BY day DESC, currency, status`),
        ],
        THIRD,
      ),
    )

    .withRow(row('Reconciliation'))
    .withPanel(
      timeSeriesPanel(
        'Mismatches per day',
        'SETTLED payouts whose reported withholding differs from the instruction (settlement_lag_daily), by currency.',
        'short',
        [
          sql(`
SELECT
  toDateTime(day) AS time,
  currency,
  countIfMerge(mismatches) AS mismatches
FROM \${database}.settlement_lag_daily
WHERE $__dateFilter(day) AND status = 'SETTLED'
GROUP BY day, currency
ORDER BY time, currency`).timeSeries(),
        ],
        THIRD,
        { bars: true, stack: true },
      ),
    )
    .withPanel(
      timeSeriesPanel(
        'Mismatches in the last hour (processors)',
        'holdback_reconciliation_mismatches_total: mismatched settlements seen by the processors in the last hour, by currency (the HoldbackReconciliationMismatch alert).',
        'short',
        [
          promql(
            `sum by (currency) (increase(holdback_reconciliation_mismatches_total{${S}}[1h]))`,
            '{{currency}}',
          ),
        ],
        THIRD,
      ),
    )
    .withPanel(
      tablePanel(
        'Largest mismatches',
        'Payouts settled in the time range whose reported withholding differs most from what Holdback instructed (view reconciliation_mismatches), minor units.',
        [
          sql(`
SELECT
  toDateTime(intDiv(settled_at_ms, 1000)) AS settled_at,
  payout_id,
  merchant_id,
  currency,
  instructed_minor,
  reported_withheld_minor,
  mismatch_minor
FROM \${database}.reconciliation_mismatches
WHERE settled_at_ms >= toUnixTimestamp($__fromTime) * 1000 AND settled_at_ms <= toUnixTimestamp($__toTime) * 1000
ORDER BY abs(mismatch_minor) DESC, payout_id
LIMIT 50`),
        ],
        THIRD,
      ),
    )

    .withRow(row('Unsettled withholdings'))
    .withPanel(
      statPanel(
        'Unsettled withholdings',
        'Withholdings whose payout has neither settled nor failed yet (holdback_unsettled_withholdings).',
        'short',
        [promql(`sum(holdback_unsettled_withholdings{${S}})`, 'withholdings')],
        { w: 6, h: 8 },
      ),
    )
    .withPanel(
      timeSeriesPanel(
        'Unsettled amount by currency',
        'Amount withheld from payouts not settled yet (holdback_unsettled_withheld_minor), minor units.',
        'short',
        [promql(`sum by (currency) (holdback_unsettled_withheld_minor{${S}})`, '{{currency}}')],
        { w: 9, h: 8 },
      ),
    )
    .withPanel(
      timeSeriesPanel(
        'Oldest unsettled withholding',
        'Age of the oldest withholding whose payout has not settled (holdback_oldest_unsettled_withholding_age_seconds); the alert fires above 48h.',
        's',
        [promql(`max by (service) (holdback_oldest_unsettled_withholding_age_seconds{${S}})`, '{{service}}')],
        { w: 9, h: 8 },
      ),
    )

    .withRow(row('Payout decisions'))
    .withPanel(
      timeSeriesPanel(
        'Payout decisions by reason',
        "One decision per SCHEDULED payout (payout_decisions_hourly, by the payout's time): WITHHELD, or why nothing was withheld (docs/reason-codes.md, Payout decision codes). Bars: decisions per reason and bucket (1 h up to 2 days, 6 h up to 14 days, else 1 day). Line, right axis: the share of payouts that withheld nothing (every reason but WITHHELD, over all but ALREADY_DECIDED, which is a re-sent payout).",
        'short',
        [
          sql(`${DECISION_BUCKETS}
SELECT
  toDateTime(intDiv(toUInt32(hour), bucket_s) * bucket_s, 'UTC') AS time,
  reason_code,
  sum(decisions) AS payout_decisions
FROM \${database}.payout_decisions_hourly
WHERE $__timeFilter(hour)
GROUP BY time, reason_code
ORDER BY time, reason_code`).timeSeries(),
          sql(`${DECISION_BUCKETS}
SELECT
  toDateTime(intDiv(toUInt32(hour), bucket_s) * bucket_s, 'UTC') AS time,
  sumIf(decisions, reason_code NOT IN ('WITHHELD', 'ALREADY_DECIDED'))
    / sumIf(decisions, reason_code != 'ALREADY_DECIDED') AS withheld_nothing_share
FROM \${database}.payout_decisions_hourly
WHERE $__timeFilter(hour)
GROUP BY time
HAVING sumIf(decisions, reason_code != 'ALREADY_DECIDED') > 0
ORDER BY time`).timeSeries(),
        ],
        { w: 14, h: 9 },
        { bars: true, stack: true },
      ).overrideByQuery('B', [
        { id: 'displayName', value: 'withheld nothing (share)' },
        { id: 'unit', value: 'percentunit' },
        { id: 'min', value: 0 },
        { id: 'max', value: 1 },
        { id: 'custom.axisPlacement', value: common.AxisPlacement.Right },
        { id: 'custom.drawStyle', value: common.GraphDrawStyle.Line },
        { id: 'custom.fillOpacity', value: 0 },
        { id: 'custom.lineWidth', value: 2 },
        { id: 'custom.stacking', value: { mode: common.StackingMode.None, group: 'B' } },
      ]),
    )
    .withPanel(
      tablePanel(
        'Latest payouts that withheld nothing',
        'The latest decisions (by decided_at, in the time range) that withheld nothing from a SCHEDULED payout, with the reason (payout_decisions). ALREADY_DECIDED: the payout was decided before, and its first decision stands.',
        [
          sql(`
SELECT
  decided_at,
  reason_code,
  merchant_id,
  payout_id,
  currency,
  gross_amount_minor,
  occurred_at AS scheduled_at,
  source_event_id,
  decision_id
FROM \${database}.payout_decisions
WHERE $__timeFilter(decided_at) AND withheld_minor = 0
ORDER BY decided_at_ms DESC, decision_id
LIMIT 50`),
        ],
        { w: 10, h: 9 },
      ),
    );
  return finish(b);
}
