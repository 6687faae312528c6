/**
 * The DeadLetter record (holdback.dlq.v1) for a source record Holdback did not accept: where it
 * came from (topic, partition, offset), why (a stable reason code and a short detail), and the
 * SHA-256 of its raw value, so that it can be matched without keeping it. The raw value itself
 * is kept only where configured (it may hold merchant data). The detail is cleaned: no control
 * characters, anything that looks like a credential redacted, and truncated.
 * The time of failure is an input (the runtime's clock), and so is who wrote it: the processor
 * that refused the record (`processor`), since several read the same input topics and share the
 * DLQ.
 */
import { redact } from './secrets';
import { createHash } from 'node:crypto';
import { InvariantViolation } from '../processors/api';
import type { DeadLetter } from '../schemas/generated/types';

export interface DeadLetterOptions {
  /**
   * Who writes the dead letter: the processor that refused the record (its Processor.name, e.g.
   * repayment or eligibility), also when an operator skips a record that stopped its partition.
   */
  readonly processor: string;
  /** Keep the raw value bytes in `payload` (default: no, only their hash). */
  readonly includePayload?: boolean;
  /** Longest detail kept, in characters (default 1024). */
  readonly maxDetailChars?: number;
  /**
   * Largest payload kept (default DEFAULT_MAX_DLQ_PAYLOAD_BYTES). A larger one is left out and the
   * detail says so: a dead letter over the broker's message size limit would never be written,
   * and the partition would retry it forever.
   */
  readonly maxPayloadBytes?: number;
}

/** Half the broker's default message.max.bytes (1 MiB): room for the dead letter's other fields. */
export const DEFAULT_MAX_DLQ_PAYLOAD_BYTES = 512 * 1024;

/** The Kafka record that failed. */
export interface FailedSource {
  readonly topic: string;
  readonly partition: number;
  /** kafkajs gives offsets as strings. */
  readonly offset: number | string;
  readonly value: Buffer | null;
}

export interface DeadLetterReason {
  /** A stable code: a DlqReasonCode, or a processor's rejection code (docs/reason-codes.md). */
  readonly reasonCode: string;
  readonly detail: string;
}

export const DEFAULT_MAX_DETAIL_CHARS = 1024;

const CONTROL = /\p{Cc}+/gu;
const SECRETS: ReadonlyArray<readonly [RegExp, string]> = [
  [/(\/\/)[^/\s:@]+:[^/\s@]+@/g, '$1***@'],
  [
    /\b(password|passwd|pwd|secret|token|api[_-]?key|authorization|sasl[_-]?\w*)(\s*[=:]\s*)((?:bearer|basic)\s+\S+|"[^"]*"|'[^']*'|\S+)/gi,
    '$1$2***',
  ],
  [/\b(bearer|basic)\s+[\w.~+/=-]+/gi, '$1 ***'],
];

/** A detail fit for the DLQ: one line, no credentials, at most `maxChars` characters. */
export function cleanDetail(detail: string, maxChars = DEFAULT_MAX_DETAIL_CHARS): string {
  let clean = redact(detail).replace(CONTROL, ' ');
  for (const [pattern, replacement] of SECRETS) clean = clean.replace(pattern, replacement);
  return clean.length > maxChars ? `${clean.slice(0, maxChars - 3)}...` : clean;
}

export function buildDeadLetter(
  source: FailedSource,
  reason: DeadLetterReason,
  failedAt: number,
  opts: DeadLetterOptions,
): DeadLetter {
  const offset = typeof source.offset === 'string' ? Number(source.offset) : source.offset;
  if (
    !Number.isSafeInteger(offset) ||
    offset < 0 ||
    !Number.isSafeInteger(source.partition) ||
    source.partition < 0
  ) {
    throw new InvariantViolation(
      `not a Kafka position: ${source.topic}/${source.partition}@${source.offset}`,
    );
  }
  if (opts.processor.length === 0)
    throw new InvariantViolation('a dead letter names the processor that wrote it');
  const value = source.value ?? Buffer.alloc(0);
  const maxPayload = opts.maxPayloadBytes ?? DEFAULT_MAX_DLQ_PAYLOAD_BYTES;
  const keep = opts.includePayload === true && source.value !== null;
  const tooLarge = keep && value.length > maxPayload;
  const detail = tooLarge
    ? `payload not kept: ${value.length} bytes is over the DLQ's ${maxPayload}-byte limit ` +
      `(payload_sha256 identifies it); ${reason.detail}`
    : reason.detail;
  return {
    source_topic: source.topic,
    partition: source.partition,
    offset,
    reason_code: reason.reasonCode,
    detail: cleanDetail(detail, opts.maxDetailChars),
    payload_sha256: createHash('sha256').update(value).digest('hex'),
    payload: keep && !tooLarge ? Buffer.from(value) : null,
    failed_at: failedAt,
    processor: opts.processor,
  };
}
