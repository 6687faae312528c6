/**
 * Standby placement (runtime/standby.ts): each instance keeps warm the tasks the assignor would
 * give it if up to K other members left. Checked against both assignors, by brute force: after
 * any K members leave, every task that lands on a survivor it was not on must be one that
 * survivor kept a standby of.
 */
import fc from 'fast-check';
import { assignPartitions, rangePartitions } from '../../../runtime/assigner';
import { standbyPartitions, type AssignFn } from '../../../runtime/standby';

const assignors: Array<[string, AssignFn]> = [
  ['co-partitioned round robin (kafkajs)', assignPartitions],
  ['range (rdkafka)', rangePartitions],
];

describe.each(assignors)('%s', (_name, assign) => {
  test('two instances, four tasks: each keeps the other one’s tasks', () => {
    const [a, b] = ['member-a', 'member-b'];
    const now = assign([a, b], 4);
    expect(standbyPartitions(assign, [a, b], a, 4, 1)).toEqual(now.get(b));
    expect(standbyPartitions(assign, [a, b], b, 4, 1)).toEqual(now.get(a));
  });

  test('no standbys without K, for a member not in the group, or alone', () => {
    expect(standbyPartitions(assign, ['a', 'b'], 'a', 4, 0)).toEqual([]);
    expect(standbyPartitions(assign, ['a', 'b'], 'c', 4, 1)).toEqual([]);
    expect(standbyPartitions(assign, ['a'], 'a', 4, 1)).toEqual([]);
  });

  test('after any K members leave, every moved task finds a standby at its new owner', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.string({ minLength: 1, maxLength: 6 }), { minLength: 2, maxLength: 6 }),
        fc.integer({ min: 1, max: 16 }),
        fc.integer({ min: 1, max: 3 }),
        fc.nat(),
        (members, partitions, k, pick) => {
          const before = assign(members, partitions);
          const standbys = new Map(
            members.map((m) => [m, new Set(standbyPartitions(assign, members, m, partitions, k))]),
          );
          // Standbys are never of the member's own tasks.
          for (const m of members)
            for (const p of before.get(m)!) expect(standbys.get(m)!.has(p)).toBe(false);
          // Some K members (at most all but one) leave.
          const gone = new Set<string>();
          const leave = Math.min(k, members.length - 1);
          for (let i = 0; gone.size < leave; i++) gone.add(members[(pick + i * 7) % members.length]!);
          const left = members.filter((m) => !gone.has(m));
          const after = assign(left, partitions);
          for (const m of left) {
            const had = new Set(before.get(m));
            for (const p of after.get(m)!) if (!had.has(p)) expect(standbys.get(m)!.has(p)).toBe(true);
          }
        },
      ),
    );
  });
});

test('range gives contiguous ranges, the first count % members one more, as librdkafka does', () => {
  expect(rangePartitions(['c', 'a', 'b'], 4)).toEqual(
    new Map([
      ['a', [0, 1]],
      ['b', [2]],
      ['c', [3]],
    ]),
  );
  expect(rangePartitions(['a', 'b', 'c', 'd', 'e'], 3).get('e')).toEqual([]);
});
