/**
 * The public topics of contract v1 (docs/contract.md): which record each carries,
 * how it is keyed and whether it is compacted. Everything that creates, registers, produces to
 * or reads from a topic takes its name from here.
 */
export const TOPICS = {
  orders: 'marketplace.orders.v1',
  sales: 'marketplace.sales.v1',
  payouts: 'marketplace.payouts.v1',
  loanEvents: 'lending.loans.v1',
  deductions: 'holdback.deductions.v1',
  loanStates: 'holdback.loans.v1',
  settlements: 'holdback.settlements.v1',
  payoutDecisions: 'holdback.payout-decisions.v1',
  eligibility: 'holdback.eligibility.v1',
  dlq: 'holdback.dlq.v1',
} as const;

export type TopicName = (typeof TOPICS)[keyof typeof TOPICS];

export interface TopicSpec {
  readonly name: TopicName;
  /** The .avsc file in schemas/ (without extension): the record's name. */
  readonly record: string;
  /** Which field of the record is the Kafka key. */
  readonly keyField: string;
  /** Compacted topics keep the latest record per key. */
  readonly compacted: boolean;
  /** Inputs are produced by the platform or the lender and are co-partitioned by merchant_id. */
  readonly role: 'input' | 'output';
}

export const TOPIC_SPECS: readonly TopicSpec[] = [
  { name: TOPICS.orders, record: 'OrderEvent', keyField: 'merchant_id', compacted: false, role: 'input' },
  { name: TOPICS.sales, record: 'SaleEvent', keyField: 'merchant_id', compacted: false, role: 'input' },
  { name: TOPICS.payouts, record: 'PayoutEvent', keyField: 'merchant_id', compacted: false, role: 'input' },
  { name: TOPICS.loanEvents, record: 'LoanEvent', keyField: 'merchant_id', compacted: false, role: 'input' },
  { name: TOPICS.deductions, record: 'Deduction', keyField: 'merchant_id', compacted: false, role: 'output' },
  { name: TOPICS.loanStates, record: 'LoanState', keyField: 'loan_id', compacted: true, role: 'output' },
  {
    name: TOPICS.settlements,
    record: 'PayoutSettlement',
    keyField: 'merchant_id',
    compacted: false,
    role: 'output',
  },
  {
    name: TOPICS.payoutDecisions,
    record: 'PayoutDecision',
    keyField: 'merchant_id',
    compacted: false,
    role: 'output',
  },
  {
    name: TOPICS.eligibility,
    record: 'EligibilityDecision',
    keyField: 'merchant_id',
    compacted: true,
    role: 'output',
  },
  // The DLQ is keyed by the source record's key, which may be anything (or nothing).
  { name: TOPICS.dlq, record: 'DeadLetter', keyField: '', compacted: false, role: 'output' },
];

/** Subject under which a topic's value schema is registered (TopicNameStrategy). */
export function subjectOf(topic: string): string {
  return `${topic}-value`;
}

import type {
  Deduction,
  DeadLetter,
  EligibilityDecision,
  LoanEvent,
  LoanState,
  OrderEvent,
  PayoutDecision,
  PayoutEvent,
  PayoutSettlement,
  SaleEvent,
} from './generated/types';

/** The record type each topic carries. */
export interface TopicRecords {
  'marketplace.orders.v1': OrderEvent;
  'marketplace.sales.v1': SaleEvent;
  'marketplace.payouts.v1': PayoutEvent;
  'lending.loans.v1': LoanEvent;
  'holdback.deductions.v1': Deduction;
  'holdback.loans.v1': LoanState;
  'holdback.settlements.v1': PayoutSettlement;
  'holdback.payout-decisions.v1': PayoutDecision;
  'holdback.eligibility.v1': EligibilityDecision;
  'holdback.dlq.v1': DeadLetter;
}
