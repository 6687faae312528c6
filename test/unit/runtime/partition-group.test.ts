/**
 * The task's time-ordered input (runtime/partition-group.ts), one behaviour per test: what comes
 * next, when a task waits for an empty partition and when it goes on without it, and the bounds
 * on what it buffers.
 */
import { NEVER_WAIT, PartitionGroup, TOPIC_ORDER, type Stamped } from '../../../runtime/partition-group';
import { TOPICS } from '../../../schemas/topics';

const LOANS = TOPICS.loanEvents;
const PAYOUTS = TOPICS.payouts;

interface Rec extends Stamped {
  readonly topic: string;
}

function recs(topic: string, ...times: number[]): Rec[] {
  return times.map((time, i) => ({ topic, offset: i, time }));
}

function group(maxTaskIdleMs = 0, maxBuffered = 100): PartitionGroup<Rec> {
  return new PartitionGroup<Rec>({ topics: [PAYOUTS, LOANS], maxTaskIdleMs, maxBuffered });
}

function drain(g: PartitionGroup<Rec>): string[] {
  const out: string[] = [];
  for (let r = g.next(); r; r = g.next()) out.push(`${r.topic === LOANS ? 'L' : 'P'}${r.time}`);
  return out;
}

test('the smallest head timestamp comes next; ties go to the loan events, then by offset', () => {
  const g = group();
  g.add(PAYOUTS, recs(PAYOUTS, 1, 5, 5, 9), 0);
  g.add(LOANS, recs(LOANS, 2, 5, 10), 0);
  expect(drain(g)).toEqual(['P1', 'L2', 'L5', 'P5', 'P5', 'P9', 'L10']);
});

test('the documented topic order puts the lender first and orders last', () => {
  expect(TOPIC_ORDER).toEqual([LOANS, TOPICS.loanStates, PAYOUTS, TOPICS.sales, TOPICS.orders]);
});

test('an empty partition whose end is unknown is probed before anything is processed', () => {
  const g = group();
  g.add(PAYOUTS, recs(PAYOUTS, 5), 100);
  expect(g.readiness(100)).toEqual({ kind: 'probe', topics: [LOANS] });
});

test('an empty partition the broker holds more of is waited for: a burst is never split by fetch timing', () => {
  const g = group();
  g.add(PAYOUTS, recs(PAYOUTS, 5), 100);
  g.setEnd(LOANS, 3, 101, 0); // three loan events written, none fetched
  expect(g.readiness(102)).toEqual({ kind: 'fetch', topics: [LOANS] });
  g.add(LOANS, recs(LOANS, 1, 2, 7), 103);
  expect(g.readiness(103)).toEqual({ kind: 'ready', without: [] });
  expect(drain(g)).toEqual(['L1', 'L2', 'P5', 'L7']);
});

test('caught up (end observed after the data was fetched): the task goes on without it', () => {
  const g = group();
  g.setFetched(LOANS, 4);
  g.add(PAYOUTS, recs(PAYOUTS, 5), 100);
  g.setEnd(LOANS, 4, 100);
  expect(g.readiness(100)).toEqual({ kind: 'ready', without: [LOANS] });
});

test('an end observed before newer data was fetched is stale and asked again', () => {
  const g = group();
  g.setFetched(LOANS, 4);
  g.setEnd(LOANS, 4, 50);
  g.add(PAYOUTS, recs(PAYOUTS, 5), 100);
  expect(g.readiness(100)).toEqual({ kind: 'probe', topics: [LOANS] });
});

test('a fresh group starts where the partition starts, as the consumer does', () => {
  const g = group();
  g.add(PAYOUTS, recs(PAYOUTS, 5), 100);
  g.setEnd(LOANS, 7, 100, 7); // retention removed everything before 7
  expect(g.readiness(100).kind).toBe('ready');
});

test('a transaction marker past the last record counts as fetched', () => {
  const g = group();
  g.add(LOANS, recs(LOANS, 1), 100, 2); // record at 0, marker at 1
  g.add(PAYOUTS, recs(PAYOUTS, 5), 100);
  expect(g.next()?.time).toBe(1);
  g.setEnd(LOANS, 2, 101);
  expect(g.readiness(101)).toEqual({ kind: 'ready', without: [LOANS] });
});

test('a positive max-task-idle-ms also waits that long for new data, then goes on', () => {
  const g = group(500);
  g.setFetched(LOANS, 0);
  g.add(PAYOUTS, recs(PAYOUTS, 5), 100);
  g.setEnd(LOANS, 0, 100);
  expect(g.readiness(100)).toEqual({ kind: 'idle', until: 600 });
  expect(g.readiness(599)).toEqual({ kind: 'idle', until: 600 });
  expect(g.readiness(600)).toEqual({ kind: 'ready', without: [LOANS] });
});

test('-1 never waits', () => {
  const g = group(NEVER_WAIT);
  g.add(PAYOUTS, recs(PAYOUTS, 5), 100);
  expect(g.readiness(100)).toEqual({ kind: 'ready', without: [] });
});

test('nothing buffered: nothing to do', () => {
  expect(group().readiness(0)).toEqual({ kind: 'empty' });
});

test('a full buffer is paused once and resumed at half its bound', () => {
  const g = group(0, 4);
  g.add(PAYOUTS, recs(PAYOUTS, 1, 2, 3, 4), 0);
  expect(g.toPause()).toEqual([PAYOUTS]);
  expect(g.toPause()).toEqual([]);
  g.next();
  expect(g.toResume()).toEqual([]);
  g.next();
  expect(g.toResume()).toEqual([PAYOUTS]);
  expect(g.toResume()).toEqual([]);
});

test('a record fetched twice (a re-fetch after a pause or seek) is buffered once', () => {
  const g = group(NEVER_WAIT);
  g.add(PAYOUTS, recs(PAYOUTS, 1, 2), 0);
  g.add(PAYOUTS, recs(PAYOUTS, 1, 2, 3), 0);
  expect(g.size).toBe(3);
  expect(drain(g)).toEqual(['P1', 'P2', 'P3']);
});

test('clear forgets buffers and positions: the consumer starts again where the task says', () => {
  const g = group();
  g.add(PAYOUTS, recs(PAYOUTS, 1, 2), 0);
  g.clear();
  expect(g.size).toBe(0);
  expect(g.fetchedOf(PAYOUTS)).toBeUndefined();
  g.add(PAYOUTS, recs(PAYOUTS, 1), 0);
  expect(g.size).toBe(1);
});
