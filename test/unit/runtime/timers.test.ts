import fc from 'fast-check';
import { TimerQueue } from '../../../runtime/timers';

test('replacing or deleting a timer wins over its earlier time', () => {
  const q = new TimerQueue();
  q.set('a', 10);
  q.set('b', 5);
  q.set('a', 3);
  q.delete('b');
  expect(q.popDue(4)).toEqual(['a']);
  expect(q.popDue(100)).toEqual([]);
});

test('popDue returns exactly the keys whose latest time is due, in time order', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.tuple(fc.constantFrom('a', 'b', 'c', 'd', 'e'), fc.option(fc.integer({ min: 0, max: 100 }))),
        { maxLength: 60 },
      ),
      fc.integer({ min: 0, max: 100 }),
      (ops, now) => {
        const q = new TimerQueue();
        const model = new Map<string, number>();
        for (const [k, at] of ops) {
          if (at === null) {
            q.delete(k);
            model.delete(k);
          } else {
            q.set(k, at);
            model.set(k, at);
          }
        }
        const due = q.popDue(now);
        const expected = [...model].filter(([, at]) => at <= now);
        expect(new Set(due)).toEqual(new Set(expected.map(([k]) => k)));
        const times = due.map((k) => model.get(k)!);
        expect(times).toEqual([...times].sort((x, y) => x - y));
        expect(q.size).toBe(model.size - due.length);
      },
    ),
  );
});

test('popDue with a limit takes the earliest due keys and leaves the rest due', () => {
  const q = new TimerQueue();
  for (const [k, at] of [
    ['a', 3],
    ['b', 1],
    ['c', 2],
    ['d', 50],
  ] as const)
    q.set(k, at);
  expect(q.popDue(10, 2)).toEqual(['b', 'c']);
  expect(q.popDue(10, 2)).toEqual(['a']);
  expect(q.popDue(10, 2)).toEqual([]);
  expect(q.peek()).toBe(50);
});
