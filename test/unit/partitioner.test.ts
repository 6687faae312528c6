/**
 * The partitioner every producer of Holdback's inputs must use: Kafka's murmur2, checked against
 * the Java client's own test values and against kafkajs's DefaultPartitioner (which the simulator
 * and the harness produce with) on random keys, multi-byte and empty ones included.
 */
import fc from 'fast-check';
import { keyPartitioner } from '../../connectors/kafka-send';
import { murmur2, partitionOfKey } from '../../connectors/partitioner';

// org.apache.kafka.common.utils.UtilsTest#testMurmur2.
const JAVA_CASES: ReadonlyArray<[string, number]> = [
  ['21', -973932308],
  ['foobar', -790332482],
  ['a-little-bit-long-string', -985981536],
  ['a-little-bit-longer-string', -1486304829],
  ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
  ['abc', 479470107],
];

test.each(JAVA_CASES)("murmur2('%s') is the Java client's %d", (key, expected) => {
  expect(murmur2(Buffer.from(key, 'utf8'))).toBe(expected);
});

test("partitionOfKey agrees with kafkajs's DefaultPartitioner (Java compatible) on any key and partition count", () => {
  const partitioners = new Map<number, (topic: string, key: string | null) => number>();
  fc.assert(
    fc.property(
      fc.string({ unit: 'grapheme', maxLength: 64 }),
      fc.integer({ min: 1, max: 256 }),
      (key, n) => {
        let kafkajs = partitioners.get(n);
        if (!kafkajs) partitioners.set(n, (kafkajs = keyPartitioner(n)));
        expect(partitionOfKey(Buffer.from(key, 'utf8'), n)).toBe(kafkajs('t', key));
      },
    ),
    { numRuns: 2000 },
  );
});
