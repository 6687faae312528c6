-- Raw tables: one per record type, one row per Kafka record the sink accepted.
-- Every row carries its Kafka position (_topic, _partition, _offset): the sink derives where to
-- resume from max(_offset) per partition in each table (README.md, "Exactly once").
-- No PARTITION BY: an INSERT of one block into an unpartitioned MergeTree writes one part, which
-- is atomic; an INSERT spanning several partitions is not.
-- Money is Int64 minor units; times are Int64 milliseconds (*_ms) plus a MATERIALIZED DateTime
-- in UTC for grouping (DateTime64 does not exist on 18.16). Enums are String so that a symbol
-- added to the Avro contract never stops the sink.
-- Syntax kept to what both ClickHouse 18.16 and 25.8 accept.

-- Inputs may carry the same event_id twice (the producer's idempotency key): ReplacingMergeTree
-- keyed by (merchant_id, event_id) keeps one row per event after merges; count with FINAL.
-- The version is _offset, so a merge keeps the latest copy and max(_offset) per partition never falls.
CREATE TABLE IF NOT EXISTS {db}.orders
(
    _topic String,
    _partition Int32,
    _offset Int64,
    _timestamp_ms Int64,
    _inserted_at DateTime MATERIALIZED now(),
    event_id String,
    merchant_id String,
    order_id String,
    type String,
    amount_minor Int64,
    currency String,
    occurred_at_ms Int64,
    occurred_at DateTime('UTC') MATERIALIZED toDateTime(intDiv(occurred_at_ms, 1000), 'UTC')
)
ENGINE = ReplacingMergeTree(_offset)
ORDER BY (merchant_id, event_id);

CREATE TABLE IF NOT EXISTS {db}.sales
(
    _topic String,
    _partition Int32,
    _offset Int64,
    _timestamp_ms Int64,
    _inserted_at DateTime MATERIALIZED now(),
    event_id String,
    merchant_id String,
    sale_id String,
    order_id Nullable(String),
    type String,
    amount_minor Int64,
    currency String,
    occurred_at_ms Int64,
    occurred_at DateTime('UTC') MATERIALIZED toDateTime(intDiv(occurred_at_ms, 1000), 'UTC')
)
ENGINE = ReplacingMergeTree(_offset)
ORDER BY (merchant_id, event_id);

CREATE TABLE IF NOT EXISTS {db}.payouts
(
    _topic String,
    _partition Int32,
    _offset Int64,
    _timestamp_ms Int64,
    _inserted_at DateTime MATERIALIZED now(),
    event_id String,
    merchant_id String,
    payout_id String,
    type String,
    gross_amount_minor Int64,
    withheld_minor Nullable(Int64),
    currency String,
    occurred_at_ms Int64,
    occurred_at DateTime('UTC') MATERIALIZED toDateTime(intDiv(occurred_at_ms, 1000), 'UTC')
)
ENGINE = ReplacingMergeTree(_offset)
ORDER BY (merchant_id, event_id);

CREATE TABLE IF NOT EXISTS {db}.loan_events
(
    _topic String,
    _partition Int32,
    _offset Int64,
    _timestamp_ms Int64,
    _inserted_at DateTime MATERIALIZED now(),
    event_id String,
    loan_id String,
    merchant_id String,
    type String,
    principal_minor Nullable(Int64),
    fee_minor Nullable(Int64),
    holdback_rate_bps Nullable(Int32),
    minimum_payment_minor Nullable(Int64),
    period_days Nullable(Int32),
    currency Nullable(String),
    occurred_at_ms Int64,
    occurred_at DateTime('UTC') MATERIALIZED toDateTime(intDiv(occurred_at_ms, 1000), 'UTC')
)
ENGINE = ReplacingMergeTree(_offset)
ORDER BY (merchant_id, event_id);

-- Outputs are written exactly once by the processors: plain MergeTree, one row per record.
CREATE TABLE IF NOT EXISTS {db}.deductions
(
    _topic String,
    _partition Int32,
    _offset Int64,
    _timestamp_ms Int64,
    _inserted_at DateTime MATERIALIZED now(),
    deduction_id String,
    type String,
    payout_id String,
    loan_id String,
    merchant_id String,
    amount_minor Int64,
    gross_amount_minor Int64,
    holdback_rate_bps Int32,
    balance_after_minor Int64,
    currency String,
    source_event_id String,
    occurred_at_ms Int64,
    occurred_at DateTime('UTC') MATERIALIZED toDateTime(intDiv(occurred_at_ms, 1000), 'UTC'),
    decided_at_ms Int64,
    decided_at DateTime('UTC') MATERIALIZED toDateTime(intDiv(decided_at_ms, 1000), 'UTC')
)
ENGINE = MergeTree
ORDER BY (merchant_id, payout_id, loan_id, deduction_id);

-- Every LoanState snapshot (the topic is compacted; the sink reads it live, so it sees them all).
CREATE TABLE IF NOT EXISTS {db}.loan_states
(
    _topic String,
    _partition Int32,
    _offset Int64,
    _timestamp_ms Int64,
    _inserted_at DateTime MATERIALIZED now(),
    loan_id String,
    merchant_id String,
    status String,
    principal_minor Int64,
    fee_minor Int64,
    collected_minor Int64,
    balance_minor Int64,
    period_index Int32,
    period_required_minor Int64,
    period_collected_minor Int64,
    missed_periods Int32,
    currency String,
    updated_at_ms Int64,
    updated_at DateTime('UTC') MATERIALIZED toDateTime(intDiv(updated_at_ms, 1000), 'UTC'),
    version Int64,
    holdback_rate_bps Nullable(Int32),
    minimum_payment_minor Nullable(Int64),
    period_days Nullable(Int32),
    funded_at_ms Nullable(Int64),
    period_ends_at_ms Nullable(Int64),
    pace Nullable(String),
    projected_period_collected_minor Nullable(Int64),
    closure Nullable(String)
)
ENGINE = MergeTree
ORDER BY (loan_id, version);

-- features (an Avro map of longs) is two parallel arrays: Map does not exist on 18.16.
CREATE TABLE IF NOT EXISTS {db}.eligibility_decisions
(
    _topic String,
    _partition Int32,
    _offset Int64,
    _timestamp_ms Int64,
    _inserted_at DateTime MATERIALIZED now(),
    decision_id String,
    merchant_id String,
    eligible UInt8,
    grade String,
    limit_minor Int64,
    currency String,
    reasons Array(String),
    feature_names Array(String),
    feature_values Array(Int64),
    policy_version String,
    computed_at_ms Int64,
    computed_at DateTime('UTC') MATERIALIZED toDateTime(intDiv(computed_at_ms, 1000), 'UTC'),
    trigger_event_id String
)
ENGINE = MergeTree
ORDER BY (merchant_id, computed_at_ms, decision_id);

-- holdback.settlements.v1: one row per SETTLED or FAILED payout; mismatch_minor <> 0 on SETTLED
-- is a reconciliation mismatch.
CREATE TABLE IF NOT EXISTS {db}.settlements
(
    _topic String,
    _partition Int32,
    _offset Int64,
    _timestamp_ms Int64,
    _inserted_at DateTime MATERIALIZED now(),
    payout_id String,
    merchant_id String,
    currency String,
    gross_amount_minor Int64,
    instructed_minor Int64,
    reported_withheld_minor Nullable(Int64),
    mismatch_minor Int64,
    status String,
    scheduled_at_ms Nullable(Int64),
    first_withheld_decided_at_ms Nullable(Int64),
    settled_at_ms Int64,
    settled_at DateTime('UTC') MATERIALIZED toDateTime(intDiv(settled_at_ms, 1000), 'UTC'),
    source_event_id String,
    decided_at_ms Int64
)
ENGINE = MergeTree
ORDER BY (merchant_id, payout_id, settled_at_ms);

-- Dead letters keep their reason and payload hash; the raw payload stays in Kafka (no payloads,
-- and so no personal data, in analytics). payload_kept says whether the DLQ record carried it.
CREATE TABLE IF NOT EXISTS {db}.dead_letters
(
    _topic String,
    _partition Int32,
    _offset Int64,
    _timestamp_ms Int64,
    _inserted_at DateTime MATERIALIZED now(),
    source_topic String,
    source_partition Int32,
    source_offset Int64,
    reason_code String,
    detail String,
    payload_sha256 String,
    payload_kept UInt8,
    failed_at_ms Int64,
    failed_at DateTime('UTC') MATERIALIZED toDateTime(intDiv(failed_at_ms, 1000), 'UTC')
)
ENGINE = MergeTree
ORDER BY (reason_code, source_topic, failed_at_ms);
