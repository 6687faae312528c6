-- Aggregates maintained by materialized views. A materialized view sees each inserted block once,
-- so these are exact only because the sink never inserts a Kafka record twice (README.md).
-- Aggregate column names differ from the source columns they are computed from: an alias equal
-- to a source column name confuses old and new analyzers alike.

-- Daily collections, by the payout's day (occurred_at) and currency. net = withheld - reversed.
CREATE TABLE IF NOT EXISTS {db}.daily_collections
(
    day Date,
    currency String,
    withholds UInt64,
    reversals UInt64,
    withheld_total_minor Int64,
    reversed_total_minor Int64
)
ENGINE = SummingMergeTree
ORDER BY (day, currency);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.daily_collections_mv TO {db}.daily_collections
AS SELECT
    toDate(toDateTime(intDiv(occurred_at_ms, 1000), 'UTC')) AS day,
    currency,
    countIf(type = 'WITHHOLD') AS withholds,
    countIf(type = 'REVERSAL') AS reversals,
    sumIf(amount_minor, type = 'WITHHOLD') AS withheld_total_minor,
    sumIf(amount_minor, type = 'REVERSAL') AS reversed_total_minor
FROM {db}.deductions
GROUP BY day, currency;

-- Eligibility distribution: decisions per day (computed_at), grade, eligibility and currency.
CREATE TABLE IF NOT EXISTS {db}.eligibility_daily
(
    day Date,
    grade String,
    eligible UInt8,
    currency String,
    decisions UInt64,
    limit_total_minor Int64
)
ENGINE = SummingMergeTree
ORDER BY (day, grade, eligible, currency);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.eligibility_daily_mv TO {db}.eligibility_daily
AS SELECT
    toDate(toDateTime(intDiv(computed_at_ms, 1000), 'UTC')) AS day,
    grade,
    eligible,
    currency,
    count() AS decisions,
    sum(limit_minor) AS limit_total_minor
FROM {db}.eligibility_decisions
GROUP BY day, grade, eligible, currency;

-- Settlement lag: settled_at - scheduled_at per day (settled_at), currency and status, over the
-- settlements whose SCHEDULED Holdback saw; plus reconciliation mismatches per day.
CREATE TABLE IF NOT EXISTS {db}.settlement_lag_daily
(
    day Date,
    currency String,
    status String,
    settlements AggregateFunction(count),
    lag_count AggregateFunction(countIf, UInt8),
    lag_sum_ms AggregateFunction(sumIf, Int64, UInt8),
    lag_max_ms AggregateFunction(maxIf, Int64, UInt8),
    lag_quantiles_ms AggregateFunction(quantilesIf(0.5, 0.9, 0.99), Int64, UInt8),
    mismatches AggregateFunction(countIf, UInt8),
    mismatch_total_minor AggregateFunction(sum, Int64)
)
ENGINE = AggregatingMergeTree
ORDER BY (day, currency, status);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.settlement_lag_daily_mv TO {db}.settlement_lag_daily
AS SELECT
    toDate(toDateTime(intDiv(settled_at_ms, 1000), 'UTC')) AS day,
    currency,
    status,
    countState() AS settlements,
    countIfState(isNotNull(scheduled_at_ms)) AS lag_count,
    sumIfState(settled_at_ms - ifNull(scheduled_at_ms, settled_at_ms), isNotNull(scheduled_at_ms)) AS lag_sum_ms,
    maxIfState(settled_at_ms - ifNull(scheduled_at_ms, settled_at_ms), isNotNull(scheduled_at_ms)) AS lag_max_ms,
    quantilesIfState(0.5, 0.9, 0.99)(settled_at_ms - ifNull(scheduled_at_ms, settled_at_ms), isNotNull(scheduled_at_ms)) AS lag_quantiles_ms,
    countIfState(mismatch_minor != 0) AS mismatches,
    sumState(mismatch_minor) AS mismatch_total_minor
FROM {db}.settlements
GROUP BY day, currency, status;

-- The latest state of each loan (ReplacingMergeTree by version: read with FINAL or argMax).
CREATE TABLE IF NOT EXISTS {db}.loan_states_latest
(
    loan_id String,
    merchant_id String,
    status String,
    principal_minor Int64,
    fee_minor Int64,
    collected_minor Int64,
    balance_minor Int64,
    missed_periods Int32,
    currency String,
    updated_at_ms Int64,
    version Int64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY loan_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.loan_states_latest_mv TO {db}.loan_states_latest
AS SELECT loan_id, merchant_id, status, principal_minor, fee_minor, collected_minor, balance_minor,
    missed_periods, currency, updated_at_ms, version
FROM {db}.loan_states;

-- The latest decision of each merchant (version: the Kafka offset; a merchant's decisions are in
-- one partition, in decision order).
CREATE TABLE IF NOT EXISTS {db}.eligibility_latest
(
    merchant_id String,
    eligible UInt8,
    grade String,
    limit_minor Int64,
    currency String,
    computed_at_ms Int64,
    position Int64
)
ENGINE = ReplacingMergeTree(position)
ORDER BY merchant_id;

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.eligibility_latest_mv TO {db}.eligibility_latest
AS SELECT merchant_id, eligible, grade, limit_minor, currency, computed_at_ms, _offset AS position
FROM {db}.eligibility_decisions;

-- Outstanding balance by grade and status: the latest state of each loan joined at query time
-- with its merchant's latest grade ('' when the merchant has no decision yet). argMax, not FINAL,
-- so the answer does not depend on whether parts have merged.
CREATE VIEW IF NOT EXISTS {db}.outstanding_by_grade_status
AS SELECT
    grade,
    status,
    currency,
    count() AS loans,
    sum(balance_minor) AS outstanding_minor
FROM
(
    SELECT
        loan_id,
        argMax(merchant_id, version) AS merchant_id,
        argMax(status, version) AS status,
        argMax(balance_minor, version) AS balance_minor,
        argMax(currency, version) AS currency
    FROM {db}.loan_states_latest
    GROUP BY loan_id
) AS loans
ANY LEFT JOIN
(
    SELECT merchant_id, argMax(grade, position) AS grade
    FROM {db}.eligibility_latest
    GROUP BY merchant_id
) AS grades USING (merchant_id)
GROUP BY grade, status, currency;

-- Reconciliation mismatches: SETTLED payouts whose reported withholding differs from what
-- Holdback instructed.
CREATE VIEW IF NOT EXISTS {db}.reconciliation_mismatches
AS SELECT payout_id, merchant_id, currency, instructed_minor, reported_withheld_minor, mismatch_minor,
    settled_at_ms, decided_at_ms
FROM {db}.settlements
WHERE status = 'SETTLED' AND mismatch_minor != 0;
