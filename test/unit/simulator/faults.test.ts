/** Duplicates, reorderings and malformed records: at about their rates, and only where allowed. */
import { TOPICS } from '../../../schemas/topics';
import { DUPLICATE_WINDOW, REORDER_WINDOW, type SimRecord } from '../../../simulator/faults';
import { CLEAN, NO_FAULTS, recordsFor } from './helpers';

const id = (r: SimRecord) =>
  r.kind === 'malformed'
    ? `bad:${String(r.value['event_id'])}`
    : `${r.event.topic}/${r.event.value.event_id}`;

test('faults appear at about the configured rates', () => {
  const records = recordsFor(CLEAN, { duplicateRate: 0.05, reorderRate: 0.1, malformedRate: 0.02 }, 60_000);
  const events = records.filter((r) => r.kind === 'event');
  const movable = events.filter(
    (r) => r.kind === 'event' && (r.event.topic === TOPICS.orders || r.event.topic === TOPICS.sales),
  );
  const duplicates = records.filter((r) => r.kind === 'duplicate').length / events.length;
  const malformed = records.filter((r) => r.kind === 'malformed').length / events.length;
  const reordered = movable.filter((r) => r.kind === 'event' && r.reordered).length / movable.length;
  expect(duplicates).toBeGreaterThan(0.045);
  expect(duplicates).toBeLessThan(0.055);
  expect(malformed).toBeGreaterThan(0.017);
  expect(malformed).toBeLessThan(0.023);
  expect(reordered).toBeGreaterThan(0.09);
  expect(reordered).toBeLessThan(0.11);
});

test('no faults: exactly the clean events', () => {
  const records = recordsFor(CLEAN, NO_FAULTS, 5_000);
  expect(records.every((r) => r.kind === 'event' && !r.reordered)).toBe(true);
});

test('a duplicate is the same event, sent after its original within the window', () => {
  const records = recordsFor(CLEAN, { duplicateRate: 0.1, reorderRate: 0.1, malformedRate: 0.05 }, 30_000);
  const firstAt = new Map<string, number>();
  const problems: string[] = [];
  records.forEach((r, i) => {
    if (r.kind === 'event') firstAt.set(id(r), i);
    if (r.kind !== 'duplicate') return;
    const first = firstAt.get(id(r));
    if (first === undefined) problems.push(`${id(r)} duplicated before it was sent`);
    // Within the window, plus whatever other pending records were released first.
    else if (i - first > DUPLICATE_WINDOW + REORDER_WINDOW + 4)
      problems.push(`${id(r)} duplicated ${i - first} records later`);
    else if (JSON.stringify(r.event) !== JSON.stringify((records[first] as { event: unknown }).event))
      problems.push(`${id(r)} differs`);
  });
  expect(problems).toEqual([]);
});

test('reordering moves only order and sale events, by a few records; payouts and loans keep their order', () => {
  const clean = recordsFor(CLEAN, NO_FAULTS, 20_000).map(id);
  const faulty = recordsFor(CLEAN, { duplicateRate: 0, reorderRate: 0.3, malformedRate: 0 }, 20_000);
  const cleanIndex = new Map(clean.map((x, i) => [x, i]));
  const fixed = (x: string) => x.startsWith(TOPICS.payouts) || x.startsWith(TOPICS.loanEvents);
  expect(faulty.map(id).filter(fixed)).toEqual(
    clean.filter(fixed).slice(0, faulty.map(id).filter(fixed).length),
  );
  let moved = 0;
  faulty.forEach((r, i) => {
    const was = cleanIndex.get(id(r));
    if (was === undefined) return; // beyond the clean prefix
    if (r.kind === 'event' && r.reordered) {
      moved++;
      expect([TOPICS.orders, TOPICS.sales]).toContain(r.event.topic);
    }
    expect(Math.abs(i - was)).toBeLessThanOrEqual(3 * REORDER_WINDOW);
  });
  expect(moved).toBeGreaterThan(1000);
});
