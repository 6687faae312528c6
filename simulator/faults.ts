/**
 * Faults layered on the marketplace's clean stream, drawn from their own seeded stream (so the
 * clean events are the same whatever the fault rates): duplicates, small reorderings and
 * malformed records. Pure: malformed records are described here and turned into bytes by
 * simulator/encode.ts.
 *
 * - Duplicate: an event sent again, identical (same event_id, same bytes), 1..DUPLICATE_WINDOW
 *   records after its first send.
 * - Reorder: an order or sale event held back and sent after the next 1..REORDER_WINDOW records.
 *   Payout and loan events are never moved: the repayment rules follow arrival order, so moving
 *   them would change what Holdback withholds and make the platform's withheld_minor disagree.
 *   Order and sale events of one merchant may thus arrive with occurred_at out of order (late
 *   events), as they do from real producers.
 * - Malformed: an extra record, never one replacing a real event (the stream stays consistent),
 *   sent right after the event it was derived from, with a fresh event_id. One of MALFORMED_KINDS,
 *   each rejected by the codec with a known reason code.
 */
import type { DlqReasonCode } from '../schemas/reason-codes';
import { TOPICS } from '../schemas/topics';
import type { InputTopic, SimEvent } from './marketplace';
import { Rng } from './rng';

export const DUPLICATE_WINDOW = 8;
export const REORDER_WINDOW = 4;

/** How a malformed record is broken, and the reason code the codec gives it. */
export const MALFORMED_KINDS = {
  /** The event as JSON text: not the Confluent wire format. */
  NOT_AVRO: 'BAD_MAGIC_BYTE',
  /** A valid encoding cut in the middle of the Avro body. */
  TRUNCATED_AVRO: 'MALFORMED_AVRO',
  /** An amount below zero. */
  NEGATIVE_AMOUNT: 'NEGATIVE_AMOUNT',
  /** Currency "ZZZ". */
  UNKNOWN_CURRENCY: 'UNKNOWN_CURRENCY',
  /** occurred_at in 1999. */
  TIMESTAMP_OUT_OF_RANGE: 'TIMESTAMP_OUT_OF_RANGE',
  /** A sound record under another merchant's key. */
  KEY_MISMATCH: 'KEY_MISMATCH',
} as const satisfies Record<string, DlqReasonCode>;

export type MalformedKind = keyof typeof MALFORMED_KINDS;
const KINDS = Object.keys(MALFORMED_KINDS) as MalformedKind[];

export type SimRecord =
  /** First send of a clean event; `reordered` when it was held back. */
  | { readonly kind: 'event'; readonly event: SimEvent; readonly reordered: boolean }
  | { readonly kind: 'duplicate'; readonly event: SimEvent }
  | {
      readonly kind: 'malformed';
      readonly topic: InputTopic;
      readonly key: string;
      readonly time: number;
      readonly fault: MalformedKind;
      readonly expectedReason: DlqReasonCode;
      /** The broken record (for NOT_AVRO and TRUNCATED_AVRO, the sound record the bytes come from). */
      readonly value: Record<string, unknown>;
    };

export interface FaultConfig {
  readonly seed: number;
  readonly duplicateRate: number;
  readonly reorderRate: number;
  readonly malformedRate: number;
}

export function recordTime(r: SimRecord): number {
  return r.kind === 'malformed' ? r.time : r.event.time;
}

export function recordTopic(r: SimRecord): InputTopic {
  return r.kind === 'malformed' ? r.topic : r.event.topic;
}

interface Pending {
  /** Released once this many records have been emitted. */
  readonly due: number;
  readonly record: SimRecord;
}

export class FaultInjector {
  private readonly rng: Rng;
  private readonly pending: Pending[] = [];
  private emitted = 0;
  private malformed = 0;

  constructor(
    private readonly source: () => SimEvent,
    private readonly config: FaultConfig,
  ) {
    this.rng = Rng.fork(config.seed, 'faults');
  }

  next(): SimRecord {
    for (;;) {
      const i = this.pending.findIndex((p) => p.due <= this.emitted);
      if (i >= 0) {
        const [p] = this.pending.splice(i, 1);
        return this.release(p!.record);
      }
      const event = this.source();
      const movable = event.topic === TOPICS.orders || event.topic === TOPICS.sales;
      if (movable && this.rng.chance(this.config.reorderRate)) {
        this.pending.push({
          due: this.emitted + this.rng.int(1, REORDER_WINDOW),
          record: { kind: 'event', event, reordered: true },
        });
        continue;
      }
      return this.release({ kind: 'event', event, reordered: false });
    }
  }

  private release(record: SimRecord): SimRecord {
    this.emitted++;
    if (record.kind === 'event') {
      const r = this.rng;
      if (r.chance(this.config.duplicateRate)) {
        this.pending.push({
          due: this.emitted + r.int(0, DUPLICATE_WINDOW - 1),
          record: { kind: 'duplicate', event: record.event },
        });
      }
      if (r.chance(this.config.malformedRate)) {
        this.pending.push({ due: this.emitted, record: this.breakEvent(record.event, r.pick(KINDS)) });
      }
    }
    return record;
  }

  private breakEvent(e: SimEvent, fault: MalformedKind): SimRecord {
    const value: Record<string, unknown> = {
      ...e.value,
      event_id: `${e.value.event_id}:bad${++this.malformed}`,
    };
    let key = e.key;
    switch (fault) {
      case 'NEGATIVE_AMOUNT':
        switch (e.topic) {
          case TOPICS.orders:
          case TOPICS.sales:
            value['amount_minor'] = -e.value.amount_minor;
            break;
          case TOPICS.payouts:
            value['gross_amount_minor'] = -Math.max(1, e.value.gross_amount_minor);
            break;
          case TOPICS.loanEvents:
            // Only FUNDED has amounts; others get a negative fee, which the rules also refuse.
            value['fee_minor'] = -1 - (e.value.fee_minor ?? 0);
            break;
        }
        break;
      case 'UNKNOWN_CURRENCY':
        value['currency'] = 'ZZZ';
        break;
      case 'TIMESTAMP_OUT_OF_RANGE':
        value['occurred_at'] = Date.UTC(1999, 11, 31);
        break;
      case 'KEY_MISMATCH':
        key = `${e.key}-other`;
        break;
      case 'NOT_AVRO':
      case 'TRUNCATED_AVRO':
        break;
    }
    return {
      kind: 'malformed',
      topic: e.topic,
      key,
      time: e.time,
      fault,
      expectedReason: MALFORMED_KINDS[fault],
      value,
    };
  }
}
