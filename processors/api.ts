/**
 * The processor contract. A processor is pure: given one key's state, one decoded input record
 * and the runtime's clock, it returns the key's new state and the records to emit. It never
 * touches Kafka, ClickHouse, metrics, files, the clock or randomness: the runtime (runtime/)
 * supplies all of those and commits a step's outputs, state and input offset together.
 *
 * State is partitioned exactly like the input: one state value per key (merchant_id) of an
 * input partition, persisted by the runtime to a compacted changelog topic. A processor may also
 * keep many small records under a key as their own entries (EntryStore): each is one changelog
 * record, written only when it changes, so a key's state stays small however much it remembers.
 */
import type { TopicRecords } from '../schemas/topics';

export type TopicWithRecord = keyof TopicRecords;

/** One decoded, validated input record. */
export interface InputRecord<T extends TopicWithRecord = TopicWithRecord> {
  readonly topic: T;
  /**
   * The state key: the record's merchant_id. It is the Kafka key of every platform and lender
   * topic; on holdback.loans.v1 (keyed by loan_id) the runtime takes it from the value.
   */
  readonly key: string;
  readonly value: TopicRecords[T];
  /** The Kafka record timestamp, ms since the epoch. */
  readonly timestamp: number;
}

/** One record to emit. The runtime encodes it with the topic's registered schema. */
export type OutputRecord = {
  [T in TopicWithRecord]: { readonly topic: T; readonly key: string; readonly value: TopicRecords[T] };
}[TopicWithRecord];

/** Why an input is not accepted: a stable reason code (docs/reason-codes.md) and a detail. */
export interface Rejection {
  readonly reasonCode: string;
  readonly detail: string;
}

export interface Context {
  /** The runtime's clock, ms since the epoch. The only source of "now" a processor has. */
  readonly now: number;
}

/** The entries of the key being processed, as of the start of the step (read-only). */
export interface EntryStore<E> {
  get(id: string): E | undefined;
}

/** What a step sees: the clock and, for a processor with entries, the key's entries. */
export interface StepContext<E = never> extends Context {
  /** Always given by the runtime and the test driver; a direct call may leave it out (none). */
  readonly entries?: EntryStore<E>;
}

/** One entry written or deleted by a step. */
export interface EntryChange<E> {
  readonly id: string;
  /** The entry's new value; undefined deletes it. */
  readonly value: E | undefined;
  /**
   * When the entry may be dropped, on the processor's own clock for the key: a later step of the
   * key whose `expireEntriesBefore` passes it deletes it. Undefined: kept until a step deletes it.
   * Dropping is clean-up only: a processor must already treat an expired entry as gone, so that
   * its decisions do not depend on when the runtime dropped it.
   */
  readonly expiresAt?: number;
}

export interface StepResult<S, E = never> {
  /** The key's new state; undefined deletes it (its entries are kept: delete them by id). */
  readonly state: S | undefined;
  readonly outputs: readonly OutputRecord[];
  /**
   * Set when the input is rejected as data: the runtime sends it to the DLQ with this reason.
   * A rejecting step emits no outputs and writes no entries; its state may differ from the one
   * it was given only by remembering the rejection (so that a redelivery is rejected alike).
   */
  readonly rejection?: Rejection;
  /** Entries of the key written or deleted by this step, applied in order. */
  readonly entries?: readonly EntryChange<E>[];
  /** After the step, the key's entries whose expiresAt is before this are dropped. */
  readonly expireEntriesBefore?: number;
}

/** Turns a key's state into bytes for its changelog topic and back. */
export interface StateSerde<S> {
  encode(state: S): Buffer;
  decode(bytes: Buffer): S;
}

/**
 * Money a key's state holds that was withheld from payouts not yet settled (or failed): what ops
 * watch to learn that money is stuck. The runtime sums it over keys into gauges.
 */
export interface Unsettled {
  /** Withholdings (one per payout and loan) still waiting for their payout's SETTLED. */
  readonly count: number;
  /** Their amounts, per currency. */
  readonly minorByCurrency: ReadonlyArray<readonly [currency: string, minor: number]>;
  /** When the oldest of them was decided (ms since the epoch, the runtime's clock). */
  readonly oldestAt: number;
}

export interface Processor<S, E = never> {
  /** Stable name: part of the consumer group, changelog topic and transactional ids. */
  readonly name: string;
  readonly inputs: readonly TopicWithRecord[];
  readonly outputs: readonly TopicWithRecord[];
  readonly stateSerde: StateSerde<S>;
  /** Serde of the processor's entries (EntryStore); a processor without one keeps none. */
  readonly entrySerde?: StateSerde<E>;
  /** Handle one input record for `input.key`, whose current state is `state` (undefined if none). */
  process(state: S | undefined, input: InputRecord, ctx: StepContext<E>): StepResult<S, E>;
  /**
   * When the runtime should next call `tick` for a key in this state (ms since the epoch;
   * undefined: no timer). Derived from the state, so timers survive a restore without being
   * stored. After a tick at `now` it must be later than `now`, or the key would tick again at once.
   */
  timerAt?(state: S): number | undefined;
  /** Timers: called when the runtime's clock passes the key's `timerAt`. */
  tick?(state: S, key: string, ctx: StepContext<E>): StepResult<S, E>;
  /** What of this key's state is withheld and unsettled (undefined: nothing). Pure, like process. */
  unsettled?(state: S): Unsettled | undefined;
  /**
   * What one entry holds withheld and unsettled (undefined: nothing). Pure. The runtime adds the
   * entries' amounts to the states' (`unsettled`) in the same gauges, keeping running totals as
   * entries are written, restored, deleted and expire.
   */
  unsettledEntry?(entry: E): Unsettled | undefined;
}

/**
 * A broken invariant: money would be wrong if processing went on. The runtime stops the
 * partition loudly rather than skipping it (never route these to the DLQ).
 */
export class InvariantViolation extends Error {
  override readonly name = 'InvariantViolation';
}

/** Floor division for money: the one place amounts are rounded (toward zero for non-negatives). */
export function floorDiv(numerator: number, denominator: number): number {
  if (!Number.isSafeInteger(numerator) || !Number.isSafeInteger(denominator) || denominator <= 0) {
    throw new InvariantViolation(
      `floorDiv needs safe integers and a positive divisor: ${numerator}/${denominator}`,
    );
  }
  return Math.floor(numerator / denominator);
}
