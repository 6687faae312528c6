import type { StateSerde } from '../../../processors/api';
import { Entries, entryChangelogKey, parseEntryChangelogKey } from '../../../runtime/entries';

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
