/**
 * Which time orders a task's input (docs/contract.md, "Time order"): the event's own time from
 * its value, not the Kafka record timestamp. A platform or lender that re-sends history after an
 * outage produces it with new record timestamps, but its `occurred_at` is still when it happened,
 * so a FUNDED re-sent after the payouts it precedes still comes first.
 *
 * The field is validated before it is used: the codec refuses a timestamp-millis before
 * 2000-01-01 or more than the allowed skew (1 day) past the wall clock (TIMESTAMP_OUT_OF_RANGE,
 * docs/reason-codes.md), so a bad clock upstream sends the record to the DLQ instead of moving a
 * task's stream time years ahead.
 */
import type { InputRecord, TopicWithRecord } from '../processors/api';
import { TOPICS } from '../schemas/topics';

/** The field of each input record that carries its event time. */
export const EVENT_TIME_FIELD: { readonly [T in TopicWithRecord]?: string } = {
  [TOPICS.orders]: 'occurred_at',
  [TOPICS.sales]: 'occurred_at',
  [TOPICS.payouts]: 'occurred_at',
  [TOPICS.loanEvents]: 'occurred_at',
  [TOPICS.loanStates]: 'updated_at',
};

/** The event time of a decoded record; the Kafka timestamp for a topic without an event-time field. */
export function eventTime(record: InputRecord): number {
  const field = EVENT_TIME_FIELD[record.topic];
  const t = field === undefined ? undefined : (record.value as unknown as Record<string, unknown>)[field];
  return typeof t === 'number' ? t : record.timestamp;
}
