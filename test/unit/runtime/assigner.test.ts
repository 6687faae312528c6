import { assignPartitions } from '../../../runtime/assigner';

test('every partition number goes to exactly one member, spread evenly, independent of member order', () => {
  const a = assignPartitions(['m-b', 'm-a', 'm-c'], 8);
  expect([...a.values()].flat().sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  expect([...a.values()].map((ps) => ps.length).sort()).toEqual([2, 3, 3]);
  expect(assignPartitions(['m-c', 'm-a', 'm-b'], 8)).toEqual(a);
});
