-- DeadLetter.processor (contract v1.2): the processor that wrote each dead letter (repayment,
-- eligibility), since both read marketplace.payouts.v1 and lending.loans.v1 and share the DLQ.
-- NULL for letters written before the field existed, and for rows inserted before this migration.
-- ClickHouse 18.16 has no ADD COLUMN IF NOT EXISTS: migrate.ts makes an ADD COLUMN idempotent by
-- skipping it when system.columns already lists the column (a migration interrupted half-way).
ALTER TABLE {db}.dead_letters ADD COLUMN processor Nullable(String);
