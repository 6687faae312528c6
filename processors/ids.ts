/**
 * Output ids built from input ids (deduction_id, decision_id, trigger ids) must fit the contract's
 * id limit like any id. Inputs may each be MAX_ID_LENGTH long, so a composed id can be longer: it
 * is then shortened to a prefix and the SHA-256 of the whole, deterministic and collision-free in
 * practice, so the same inputs always give the same id. Shorter ids are unchanged.
 */
// Only createHash, which is deterministic: no randomness, no I/O, so the processor stays pure.
// eslint-disable-next-line no-restricted-imports
import { createHash } from 'node:crypto';
import { MAX_ID_LENGTH } from '../schemas/validate';

const HASH_CHARS = 64;

/** Escapes '%' and ':' so that the parts of a composed id (`a:b:c`) cannot run into each other. */
export const escapeId = (id: string): string => id.replace(/%/g, '%25').replace(/:/g, '%3A');

export function fitId(id: string): string {
  if (id.length <= MAX_ID_LENGTH) return id;
  const digest = createHash('sha256').update(id, 'utf8').digest('hex');
  return `${id.slice(0, MAX_ID_LENGTH - HASH_CHARS - 1)}#${digest}`;
}

/**
 * The first 8 bytes of the SHA-256 of an event's source and event_id, as two unsigned 32-bit
 * halves: what eligibility remembers of an event id. 64 bits of a cryptographic hash: two different
 * ids among the at most 256 a merchant remembers agree with a probability below 2^-56, and no
 * producer can make them agree by accident of format, as it could with a short non-cryptographic hash.
 */
export function eventIdHash(source: string, eventId: string): { hi: number; lo: number } {
  const d = createHash('sha256').update(source).update('\0').update(eventId, 'utf8').digest();
  return { hi: d.readUInt32LE(0), lo: d.readUInt32LE(4) };
}
