/**
 * Simulated records to Kafka values, without I/O: clean events and duplicates through the Codec
 * (which checks every contract rule, so a generator bug stops the run instead of producing bad
 * data), malformed records around it: rule-breaking values are written with the topic's schema
 * directly (the Codec refuses to), behind the same Confluent header.
 */
import * as avro from 'avsc';
import type { Codec } from '../connectors/codec';
import { RECORD_SCHEMAS } from '../schemas/contract';
import type { RecordName } from '../schemas/generated/types';
import { TOPIC_SPECS, type TopicName } from '../schemas/topics';
import type { SimRecord } from './faults';
import type { InputTopic } from './marketplace';

export class RecordEncoder {
  private readonly raw = new Map<string, avro.Type>();

  constructor(
    private readonly codec: Codec,
    private readonly schemaIds: Readonly<Partial<Record<TopicName, number>>>,
  ) {
    for (const spec of TOPIC_SPECS) {
      if (spec.role !== 'input') continue;
      this.raw.set(
        spec.name,
        avro.Type.forSchema(RECORD_SCHEMAS[spec.record as RecordName] as unknown as avro.Schema, {
          omitRecordMethods: true,
        }),
      );
    }
  }

  encode(r: SimRecord): Buffer {
    if (r.kind !== 'malformed') return this.codec.encode(r.event.topic, r.event.value as never);
    switch (r.fault) {
      case 'NOT_AVRO':
        return Buffer.from(JSON.stringify(r.value), 'utf8');
      case 'TRUNCATED_AVRO': {
        const whole = this.codec.encode(r.topic, r.value as never);
        return whole.subarray(0, 5 + Math.floor((whole.length - 5) / 2));
      }
      case 'KEY_MISMATCH':
        return this.codec.encode(r.topic, r.value as never);
      default:
        return this.unchecked(r.topic, r.value);
    }
  }

  /** The Confluent header and the Avro body, with no contract rule checked. */
  private unchecked(topic: InputTopic, value: unknown): Buffer {
    const id = this.schemaIds[topic];
    if (id === undefined) throw new Error(`no schema id for ${topic}`);
    const body = this.raw.get(topic)!.toBuffer(value);
    const header = Buffer.alloc(5);
    header.writeInt32BE(id, 1);
    return Buffer.concat([header, body]);
  }
}
