import type { Processor, StateSerde } from '../../../processors/api';
import { TOPICS } from '../../../schemas/topics';
import { Entries, entryChangelogKey, parseEntryChangelogKey } from '../../../runtime/entries';
import { Task } from '../../../runtime/task';

const json: StateSerde<{ n: number }> = {
  encode: (v) => Buffer.from(JSON.stringify(v)),
  decode: (b) => JSON.parse(b.toString('utf8')) as { n: number },
};

test('entry changelog keys cannot collide with each other, whatever the ids hold', () => {
  const a = entryChangelogKey('m:1', 'p');
  const b = entryChangelogKey('m', ':1p');
  expect(a).not.toBe(b);
  expect(parseEntryChangelogKey(a)).toEqual({ key: 'm:1', id: 'p' });
  expect(parseEntryChangelogKey(b)).toEqual({ key: 'm', id: ':1p' });
  expect(parseEntryChangelogKey('m1')).toBeUndefined();
});

test('entries expire earliest first at the key’s clock, rewritten ones by their latest expiry, and restore as written', () => {
  const e = new Entries(json);
  e.apply(
    'm',
    [
      { id: 'a', value: { n: 1 }, expiresAt: 30 },
      { id: 'b', value: { n: 2 }, expiresAt: 10 }, // out of order
      { id: 'c', value: { n: 3 } }, // no expiry
      { id: 'd', value: { n: 4 }, expiresAt: 20 },
    ],
    undefined,
  );
  e.apply('m', [{ id: 'd', value: { n: 5 }, expiresAt: 40 }], 21); // d moved past 21; b expires
  expect([...e.of('m')]).toEqual([
    ['a', { n: 1 }],
    ['c', { n: 3 }],
    ['d', { n: 5 }],
  ]);
  const log = new Map(e.drain().map((c) => [c.key, c.value]));
  expect(log.get(entryChangelogKey('m', 'b'))).toBeNull();
  e.apply('m', [], 41);
  expect([...e.of('m').keys()]).toEqual(['c']);
  expect(e.size).toBe(1);
  for (const c of e.drain()) log.set(c.key, c.value);

  const restored = new Entries(json);
  for (const [k, v] of log) {
    const { key, id } = parseEntryChangelogKey(k)!;
    restored.restore(key, id, v);
  }
  expect([...restored.of('m')]).toEqual([['c', { n: 3 }]]);
  expect(restored.view('m').get('c')).toEqual({ n: 3 });
  expect(restored.view('other').get('c')).toBeUndefined();
});

test('a task sums what its entries hold unsettled as they are written, expire and restore', () => {
  // A processor whose input value is a list of entry changes: n > 0 is held unsettled (n minor
  // units, decided at n), n = 0 is not; `expire` moves the key's clock.
  type In = { set: Array<[string, number, number | undefined]>; expire?: number };
  const processor: Processor<number, { n: number }> = {
    name: 'entries',
    inputs: [TOPICS.orders],
    outputs: [],
    stateSerde: { encode: (s) => Buffer.from(String(s)), decode: (b) => Number(b.toString()) },
    entrySerde: json,
    process: (state, input) => {
      const v = JSON.parse((input.value as unknown as { order_id: string }).order_id) as In;
      return {
        state: (state ?? 0) + 1,
        outputs: [],
        entries: v.set.map(([id, n, expiresAt]) => ({
          id,
          value: n < 0 ? undefined : { n },
          ...(expiresAt !== undefined && { expiresAt }),
        })),
        ...(v.expire !== undefined && { expireEntriesBefore: v.expire }),
      };
    },
    unsettledEntry: (e) =>
      e.n > 0 ? { count: 1, minorByCurrency: [['EUR', e.n]], oldestAt: e.n } : undefined,
  };
  const task = new Task(processor, 0);
  let offset = 0;
  const send = (v: In): void => {
    const src = {
      topic: TOPICS.orders,
      partition: 0,
      offset: offset++,
      key: null,
      value: null,
      timestamp: 0,
    };
    const value = { order_id: JSON.stringify(v) } as never;
    task.accept(src, { ok: true, record: { topic: TOPICS.orders, key: 'm', value, timestamp: 0 } }, 0);
  };
  const totals = (t: Task<number, { n: number }>) => {
    const u = t.unsettled();
    return [u.count, u.minorByCurrency.get('EUR'), u.oldestAt];
  };
  send({
    set: [
      ['a', 5, undefined],
      ['b', 7, 100],
      ['c', 0, 100],
    ],
  });
  expect(totals(task)).toEqual([2, 12, 5]);
  send({ set: [['a', 0, 50]] }); // settled: kept until 50, no longer unsettled
  expect(totals(task)).toEqual([1, 7, 7]);
  send({ set: [['d', 3, 10]], expire: 20 }); // written and expired in one step: never counted
  expect(totals(task)).toEqual([1, 7, 7]);
  send({ set: [], expire: 101 }); // b expires
  expect(totals(task)).toEqual([0, 0, undefined]);
  send({
    set: [
      ['e', 9, undefined],
      ['f', 4, undefined],
    ],
  });
  send({ set: [['f', -1, undefined]] }); // deleted
  expect(totals(task)).toEqual([1, 9, 9]);

  const restored = new Task(processor, 0);
  for (const c of task.drain().changelog) restored.restore(c.key, c.value);
  expect(totals(restored)).toEqual([1, 9, 9]);
});
