/**
 * From a decoded Kafka record to the row of its ClickHouse table. Pure: no I/O, no clock.
 * One table per topic, so a topic-partition's positions live in exactly one table. Every row
 * carries its Kafka position (_topic, _partition, _offset) and the record's Kafka timestamp.
 * Money stays Int64 minor units; times stay integer milliseconds (the tables derive DateTime
 * columns from them).
 */
import type {
  DeadLetter,
  Deduction,
  EligibilityDecision,
  LoanEvent,
  LoanState,
  OrderEvent,
  PayoutDecision,
  PayoutEvent,
  PayoutSettlement,
  SaleEvent,
} from '../../schemas/generated/types';
import { TOPICS, type TopicName, type TopicRecords } from '../../schemas/topics';

export interface Position {
  /** The contract topic name (without any prefix). */
  readonly topic: TopicName;
  readonly partition: number;
  readonly offset: number;
  /** The Kafka record's timestamp (ms). */
  readonly timestampMs: number;
}

export type Row = Record<string, string | number | null | readonly string[] | readonly number[]>;

type Mapper<T extends TopicName> = (v: TopicRecords[T]) => Row;

const mappers: { [T in TopicName]: { table: string; map: Mapper<T> } } = {
  [TOPICS.orders]: {
    table: 'orders',
    map: (v: OrderEvent) => ({
      event_id: v.event_id,
      merchant_id: v.merchant_id,
      order_id: v.order_id,
      type: v.type,
      amount_minor: v.amount_minor,
      currency: v.currency,
      occurred_at_ms: v.occurred_at,
    }),
  },
  [TOPICS.sales]: {
    table: 'sales',
    map: (v: SaleEvent) => ({
      event_id: v.event_id,
      merchant_id: v.merchant_id,
      sale_id: v.sale_id,
      order_id: v.order_id,
      type: v.type,
      amount_minor: v.amount_minor,
      currency: v.currency,
      occurred_at_ms: v.occurred_at,
    }),
  },
  [TOPICS.payouts]: {
    table: 'payouts',
    map: (v: PayoutEvent) => ({
      event_id: v.event_id,
      merchant_id: v.merchant_id,
      payout_id: v.payout_id,
      type: v.type,
      gross_amount_minor: v.gross_amount_minor,
      withheld_minor: v.withheld_minor,
      currency: v.currency,
      occurred_at_ms: v.occurred_at,
    }),
  },
  [TOPICS.loanEvents]: {
    table: 'loan_events',
    map: (v: LoanEvent) => ({
      event_id: v.event_id,
      loan_id: v.loan_id,
      merchant_id: v.merchant_id,
      type: v.type,
      principal_minor: v.principal_minor,
      fee_minor: v.fee_minor,
      holdback_rate_bps: v.holdback_rate_bps,
      minimum_payment_minor: v.minimum_payment_minor,
      period_days: v.period_days,
      currency: v.currency,
      occurred_at_ms: v.occurred_at,
    }),
  },
  [TOPICS.deductions]: {
    table: 'deductions',
    map: (v: Deduction) => ({
      deduction_id: v.deduction_id,
      type: v.type,
      payout_id: v.payout_id,
      loan_id: v.loan_id,
      merchant_id: v.merchant_id,
      amount_minor: v.amount_minor,
      gross_amount_minor: v.gross_amount_minor,
      holdback_rate_bps: v.holdback_rate_bps,
      balance_after_minor: v.balance_after_minor,
      currency: v.currency,
      source_event_id: v.source_event_id,
      occurred_at_ms: v.occurred_at,
      decided_at_ms: v.decided_at,
    }),
  },
  [TOPICS.loanStates]: {
    table: 'loan_states',
    map: (v: LoanState) => ({
      loan_id: v.loan_id,
      merchant_id: v.merchant_id,
      status: v.status,
      principal_minor: v.principal_minor,
      fee_minor: v.fee_minor,
      collected_minor: v.collected_minor,
      balance_minor: v.balance_minor,
      period_index: v.period_index,
      period_required_minor: v.period_required_minor,
      period_collected_minor: v.period_collected_minor,
      missed_periods: v.missed_periods,
      currency: v.currency,
      updated_at_ms: v.updated_at,
      version: v.version,
      holdback_rate_bps: v.holdback_rate_bps ?? null,
      minimum_payment_minor: v.minimum_payment_minor ?? null,
      period_days: v.period_days ?? null,
      funded_at_ms: v.funded_at ?? null,
      period_ends_at_ms: v.period_ends_at ?? null,
      pace: v.pace ?? null,
      projected_period_collected_minor: v.projected_period_collected_minor ?? null,
      closure: v.closure ?? null,
    }),
  },
  [TOPICS.settlements]: {
    table: 'settlements',
    map: (v: PayoutSettlement) => ({
      payout_id: v.payout_id,
      merchant_id: v.merchant_id,
      currency: v.currency,
      gross_amount_minor: v.gross_amount_minor,
      instructed_minor: v.instructed_minor,
      reported_withheld_minor: v.reported_withheld_minor,
      mismatch_minor: v.mismatch_minor,
      status: v.status,
      scheduled_at_ms: v.scheduled_at,
      first_withheld_decided_at_ms: v.first_withheld_decided_at,
      settled_at_ms: v.settled_at,
      source_event_id: v.source_event_id,
      decided_at_ms: v.decided_at,
    }),
  },
  [TOPICS.payoutDecisions]: {
    table: 'payout_decisions',
    map: (v: PayoutDecision) => ({
      decision_id: v.decision_id,
      payout_id: v.payout_id,
      merchant_id: v.merchant_id,
      currency: v.currency,
      gross_amount_minor: v.gross_amount_minor,
      withheld_minor: v.withheld_minor,
      reason_code: v.reason_code,
      deduction_ids: v.deduction_ids,
      source_event_id: v.source_event_id,
      occurred_at_ms: v.occurred_at,
      decided_at_ms: v.decided_at,
    }),
  },
  [TOPICS.eligibility]: {
    table: 'eligibility_decisions',
    map: (v: EligibilityDecision) => {
      // Sorted by name, so the same decision always gives the same row.
      const names = Object.keys(v.features).sort();
      return {
        decision_id: v.decision_id,
        merchant_id: v.merchant_id,
        eligible: v.eligible ? 1 : 0,
        grade: v.grade,
        limit_minor: v.limit_minor,
        currency: v.currency,
        reasons: v.reasons,
        feature_names: names,
        feature_values: names.map((n) => v.features[n]!),
        policy_version: v.policy_version,
        computed_at_ms: v.computed_at,
        trigger_event_id: v.trigger_event_id,
      };
    },
  },
  [TOPICS.dlq]: {
    table: 'dead_letters',
    map: (v: DeadLetter) => ({
      source_topic: v.source_topic,
      source_partition: v.partition,
      source_offset: v.offset,
      reason_code: v.reason_code,
      detail: v.detail,
      payload_sha256: v.payload_sha256,
      payload_kept: v.payload === null ? 0 : 1,
      failed_at_ms: v.failed_at,
      processor: v.processor,
    }),
  },
};

/** Every topic the sink reads, in a stable order. */
export const SINK_TOPICS: readonly TopicName[] = Object.values(TOPICS);

/** The table a topic's records go to. */
export function tableOf(topic: TopicName): string {
  return mappers[topic].table;
}

/** Every raw table, in SINK_TOPICS order. */
export const RAW_TABLES: readonly string[] = SINK_TOPICS.map(tableOf);

export function toRow<T extends TopicName>(topic: T, value: TopicRecords[T], at: Position): Row {
  // The mapper's fresh object gets the position added (a spread into a new one cost twice as much).
  const row = (mappers[topic].map as Mapper<T>)(value) as Record<string, Row[string]>;
  row['_topic'] = at.topic;
  row['_partition'] = at.partition;
  row['_offset'] = at.offset;
  row['_timestamp_ms'] = at.timestampMs;
  return row;
}
