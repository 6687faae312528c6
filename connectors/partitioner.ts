/**
 * Kafka's default partitioner for keyed records, as the Java client computes it
 * (`Utils.toPositive(Utils.murmur2(keyBytes)) % numPartitions`): the partitioner every producer
 * of Holdback's inputs must use, so that all of a merchant's events land in one partition number
 * across the co-partitioned input topics (docs/integration.md, "Keys and partitions").
 *
 * Written here rather than borrowed from kafkajs (whose DefaultPartitioner wants a topic's
 * metadata and a message object per call) because the runtime checks every input record's
 * partition on the hot path: this reads the key's bytes as they came off the wire, allocates
 * nothing, and is checked against kafkajs's partitioner and Java's published values in
 * test/unit/partitioner.test.ts.
 */

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/** Kafka's murmur2 (32-bit, seed 0x9747b28c) of `key`, as a signed 32-bit integer like Java's. */
export function murmur2(key: Uint8Array): number {
  const length = key.length;
  let h = SEED ^ length;
  const whole = length & ~3;
  for (let i = 0; i < whole; i += 4) {
    let k = key[i]! | (key[i + 1]! << 8) | (key[i + 2]! << 16) | (key[i + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  const tail = length & 3;
  if (tail > 0) {
    if (tail === 3) h ^= key[whole + 2]! << 16;
    if (tail >= 2) h ^= key[whole + 1]! << 8;
    h ^= key[whole]!;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** The partition the Java client's default partitioner gives a record with this key. */
export function partitionOfKey(key: Uint8Array, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}
