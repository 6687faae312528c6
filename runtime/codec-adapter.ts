/**
 * Binds the Avro codec (connectors/codec.ts) and the dead-letter builder to the runtime's
 * RuntimeCodec and DeadLetterSink: decode synchronously when the writer schema is cached (no
 * promise per record on the hot path), fetch it otherwise; a registry outage is transient.
 * Every dead letter the sink writes names the processor it serves (DeadLetter.processor).
 */
import { Codec, RegistryUnavailableError } from '../connectors/codec';
import { buildDeadLetter } from '../connectors/dead-letter';
import type { InputRecord } from '../processors/api';
import { TOPICS, type TopicName } from '../schemas/topics';
import type { DeadLetterSink, RuntimeCodec } from './kafka-runtime';
import type { Decoded, Rejected, SourceRecord } from './task';

type DecodeResult = Awaited<ReturnType<Codec['decode']>>;

function toDecoded(src: SourceRecord, r: DecodeResult): Decoded {
  if (!r.ok) return { ok: false, reasonCode: r.reasonCode, detail: r.detail };
  // The state key is the merchant: every input record names it (a LoanState is keyed by
  // loan_id on Kafka, but lives in its merchant's partition, see kafka-runtime.ts).
  const merchant = (r.value as { merchant_id?: unknown }).merchant_id;
  const record = {
    topic: src.topic,
    key: typeof merchant === 'string' ? merchant : (src.key?.toString('utf8') ?? ''),
    value: r.value,
    timestamp: src.timestamp,
  };
  return { ok: true, record: record as InputRecord };
}

export function runtimeCodec(codec: Codec, clock: () => number): RuntimeCodec {
  return {
    decode(src) {
      const topic = src.topic as TopicName;
      const now = clock();
      const cached = codec.tryDecodeCached(topic, src.key, src.value, now);
      if (cached !== undefined) return toDecoded(src, cached);
      return codec.decode(topic, src.key, src.value, now).then((r) => toDecoded(src, r));
    },
    encode: (topic, value) => codec.encode(topic as TopicName, value as never),
    isTransient: (err) => err instanceof RegistryUnavailableError,
  };
}

export interface DeadLetterSinkOptions {
  /** The processor whose rejections these are: its Processor.name. */
  readonly processor: string;
  /** Keep the raw value bytes (--dlq-payload). */
  readonly includePayload: boolean;
}

export function deadLetterSink(codec: Codec, o: DeadLetterSinkOptions): DeadLetterSink {
  return {
    topic: TOPICS.dlq,
    encode: (r: Rejected, now: number) =>
      codec.encode(
        TOPICS.dlq,
        buildDeadLetter(
          {
            topic: r.source.topic,
            partition: r.source.partition,
            offset: r.source.offset,
            value: r.source.value,
          },
          { reasonCode: r.reasonCode, detail: r.detail },
          now,
          { processor: o.processor, includePayload: o.includePayload },
        ),
      ),
  };
}
