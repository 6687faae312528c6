-- holdback.payout-decisions.v1 (issue 17): what the repayment processor decided for each SCHEDULED
-- payout event, including to withhold nothing (withheld_minor = 0) and why (reason_code,
-- docs/reason-codes.md "Payout decision codes"). Conventions of 0001_raw_tables.sql: the Kafka
-- position on every row, no PARTITION BY, money Int64 minor units, times Int64 ms plus a
-- MATERIALIZED DateTime in UTC, the code a String so a code added to the contract never stops
-- the sink. Syntax kept to what both ClickHouse 18.16 and 25.8 accept.

-- An output written exactly once by the processor: plain MergeTree, one row per record.
-- deduction_ids: the WITHHOLD deductions of this decision (holdback.deductions.v1), oldest loan
-- first; empty when nothing was withheld.
CREATE TABLE IF NOT EXISTS {db}.payout_decisions
(
    _topic String,
    _partition Int32,
    _offset Int64,
    _timestamp_ms Int64,
    _inserted_at DateTime MATERIALIZED now(),
    decision_id String,
    payout_id String,
    merchant_id String,
    currency String,
    gross_amount_minor Int64,
    withheld_minor Int64,
    reason_code String,
    deduction_ids Array(String),
    source_event_id String,
    occurred_at_ms Int64,
    occurred_at DateTime('UTC') MATERIALIZED toDateTime(intDiv(occurred_at_ms, 1000), 'UTC'),
    decided_at_ms Int64,
    decided_at DateTime('UTC') MATERIALIZED toDateTime(intDiv(decided_at_ms, 1000), 'UTC')
)
ENGINE = MergeTree
ORDER BY (merchant_id, payout_id, decision_id);

-- Decisions per hour of the payout (the SCHEDULED event's occurred_at, as daily_collections uses
-- the payout's day), reason and currency. Exact for the reason daily_collections is (README.md).
-- withheld nothing = every reason but WITHHELD; ALREADY_DECIDED is a re-sent payout, not a new one.
CREATE TABLE IF NOT EXISTS {db}.payout_decisions_hourly
(
    hour DateTime('UTC'),
    reason_code String,
    currency String,
    decisions UInt64,
    gross_total_minor Int64,
    withheld_total_minor Int64
)
ENGINE = SummingMergeTree
ORDER BY (hour, reason_code, currency);

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.payout_decisions_hourly_mv TO {db}.payout_decisions_hourly
AS SELECT
    toStartOfHour(toDateTime(intDiv(occurred_at_ms, 1000), 'UTC')) AS hour,
    reason_code,
    currency,
    count() AS decisions,
    sum(gross_amount_minor) AS gross_total_minor,
    sum(withheld_minor) AS withheld_total_minor
FROM {db}.payout_decisions
GROUP BY hour, reason_code, currency;
