/**
 * Risk portfolio (ClickHouse): what is lent and to whom. Exposure by grade and status, limits and
 * grades, why eligibility changed, delinquency. Tables and views: connectors/clickhouse/README.md.
 * "Latest" panels read the *_latest tables with argMax (the answer does not depend on merges);
 * the others are filtered by the dashboard's time range.
 */
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { sql } from './clickhouse';
import {
  HALF,
  THIRD,
  barChartPanel,
  databaseVariable,
  finish,
  row,
  tablePanel,
  timeSeriesPanel,
} from './panels';

/** The latest state of every loan (argMax by version over loan_states_latest). */
const LATEST_LOANS = `(
  SELECT
    loan_id,
    argMax(merchant_id, version) AS loan_merchant,
    argMax(status, version) AS loan_status,
    argMax(balance_minor, version) AS loan_balance_minor,
    argMax(missed_periods, version) AS loan_missed_periods,
    argMax(currency, version) AS loan_currency,
    argMax(updated_at_ms, version) AS loan_updated_at_ms
  FROM \${database}.loan_states_latest
  GROUP BY loan_id
)`;

/** The latest decision of every merchant (argMax by Kafka offset over eligibility_latest). */
const LATEST_DECISIONS = `(
  SELECT
    merchant_id,
    argMax(grade, position) AS latest_grade,
    argMax(eligible, position) AS latest_eligible,
    argMax(limit_minor, position) AS latest_limit_minor,
    argMax(currency, position) AS latest_currency
  FROM \${database}.eligibility_latest
  GROUP BY merchant_id
)`;

export function riskPortfolio(): dashboard.Dashboard {
  const b = new dashboard.DashboardBuilder('Holdback: risk portfolio')
    .uid('holdback-risk-portfolio')
    .description('Exposure, limits and grades, eligibility changes and delinquency, from ClickHouse.')
    .tags(['holdback', 'clickhouse'])
    .timezone('utc')
    .time({ from: 'now-90d', to: 'now' })
    .refresh('1m')
    .withVariable(databaseVariable())

    .withRow(row('Exposure'))
    .withPanel(
      tablePanel(
        'Outstanding by grade and status',
        "Latest state of each loan, with its merchant's latest grade ('' = no decision yet); view outstanding_by_grade_status. Amounts in minor units of the currency.",
        [
          sql(`
SELECT
  if(grade = '', '(no decision)', grade) AS merchant_grade,
  status,
  currency,
  sum(loans) AS loans,
  sum(outstanding_minor) AS outstanding_minor
FROM \${database}.outstanding_by_grade_status
GROUP BY merchant_grade, status, currency
ORDER BY merchant_grade, status, currency`),
        ],
        HALF,
      ),
    )
    .withPanel(
      barChartPanel(
        'Outstanding by status and currency',
        'Sum of the latest balance of every loan, by status (view outstanding_by_grade_status), minor units.',
        'short',
        [
          sql(`
SELECT
  concat(status, ' ', currency) AS status_currency,
  sum(outstanding_minor) AS outstanding_minor
FROM \${database}.outstanding_by_grade_status
GROUP BY status, currency
ORDER BY status, currency`),
        ],
        HALF,
      ),
    )

    .withRow(row('Limits and grades'))
    .withPanel(
      tablePanel(
        'Merchants by current grade',
        "Each merchant's latest decision (eligibility_latest): merchants and the sum of their limits, minor units.",
        [
          sql(`
SELECT
  latest_grade AS grade,
  latest_eligible AS eligible,
  latest_currency AS currency,
  count() AS merchants,
  sum(latest_limit_minor) AS limits_minor
FROM ${LATEST_DECISIONS}
GROUP BY latest_grade, latest_eligible, latest_currency
ORDER BY grade, eligible DESC, currency`),
        ],
        THIRD,
      ),
    )
    .withPanel(
      timeSeriesPanel(
        'Decisions per day by grade',
        'Eligibility decisions per day (computed_at) and grade (eligibility_daily).',
        'short',
        [
          sql(`
SELECT
  toDateTime(day) AS time,
  grade,
  sum(decisions) AS decisions
FROM \${database}.eligibility_daily
WHERE $__dateFilter(day)
GROUP BY day, grade
ORDER BY time, grade`).timeSeries(),
        ],
        THIRD,
        { bars: true, stack: true },
      ),
    )
    .withPanel(
      timeSeriesPanel(
        'Limits granted per day',
        'Sum of the limits of eligible decisions per day and currency (eligibility_daily), minor units.',
        'short',
        [
          sql(`
SELECT
  toDateTime(day) AS time,
  currency,
  sum(limit_total_minor) AS limits_minor
FROM \${database}.eligibility_daily
WHERE $__dateFilter(day) AND eligible = 1
GROUP BY day, currency
ORDER BY time, currency`).timeSeries(),
        ],
        THIRD,
        { bars: true, stack: true },
      ),
    )

    .withRow(row('Eligibility changes'))
    .withPanel(
      timeSeriesPanel(
        'Reasons per day',
        'Reason codes of the decisions per day (eligibility_decisions, one row per reason with arrayJoin); a decision is emitted only when the outcome changed.',
        'short',
        [
          sql(`
SELECT
  toStartOfDay(computed_at) AS time,
  arrayJoin(reasons) AS reason,
  count() AS decisions
FROM \${database}.eligibility_decisions
WHERE $__timeFilter(computed_at)
GROUP BY time, reason
ORDER BY time, reason`).timeSeries(),
        ],
        HALF,
        { bars: true, stack: true },
      ),
    )
    .withPanel(
      tablePanel(
        'Latest eligibility changes',
        'The 200 most recent decisions in the time range, with their reasons and policy version.',
        [
          sql(`
SELECT
  computed_at,
  merchant_id,
  eligible,
  grade,
  limit_minor,
  currency,
  arrayStringConcat(reasons, ', ') AS reason_codes,
  policy_version
FROM \${database}.eligibility_decisions
WHERE $__timeFilter(computed_at)
ORDER BY computed_at_ms DESC, decision_id
LIMIT 200`),
        ],
        HALF,
      ),
    )

    .withRow(row('Delinquency'))
    .withPanel(
      tablePanel(
        'Loans by status',
        'Latest state of each loan (loan_states_latest): loans, balance and missed periods, by status and currency.',
        [
          sql(`
SELECT
  loan_status AS status,
  loan_currency AS currency,
  count() AS loans,
  sum(loan_balance_minor) AS balance_minor,
  countIf(loan_missed_periods > 0) AS loans_with_missed_periods,
  sum(loan_missed_periods) AS missed_periods
FROM ${LATEST_LOANS}
GROUP BY loan_status, loan_currency
ORDER BY status, currency`),
        ],
        THIRD,
      ),
    )
    .withPanel(
      barChartPanel(
        'Open loans by missed periods',
        'Open loans (not PAID_OFF or WRITTEN_OFF) by the number of minimum-payment periods they missed, and status.',
        'short',
        [
          sql(`
SELECT
  concat(toString(loan_missed_periods), ' missed, ', loan_status) AS missed_status,
  count() AS loans
FROM ${LATEST_LOANS}
WHERE loan_status NOT IN ('PAID_OFF', 'WRITTEN_OFF')
GROUP BY loan_missed_periods, loan_status
ORDER BY loan_missed_periods, loan_status`),
        ],
        THIRD,
      ),
    )
    .withPanel(
      tablePanel(
        'Loans furthest behind',
        'Open loans with the most missed periods, then the largest balance (latest state).',
        [
          sql(`
SELECT
  loan_id,
  loan_merchant AS merchant_id,
  loan_status AS status,
  loan_missed_periods AS missed_periods,
  loan_balance_minor AS balance_minor,
  loan_currency AS currency,
  toDateTime(intDiv(loan_updated_at_ms, 1000)) AS updated_at
FROM ${LATEST_LOANS}
WHERE loan_status NOT IN ('PAID_OFF', 'WRITTEN_OFF')
ORDER BY missed_periods DESC, balance_minor DESC, loan_id
LIMIT 50`),
        ],
        THIRD,
      ),
    );
  return finish(b);
}
