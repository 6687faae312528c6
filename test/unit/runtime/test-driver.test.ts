import type { Processor } from '../../../processors/api';
import { TestDriver } from '../../../runtime/test-driver';
import { countingProcessor, sale, T0, type Count } from './counting-processor';

const SALES = 'marketplace.sales.v1' as const;

test('moving the clock fires each due timer at its own time, earliest first; one already due fires at once', () => {
  const d = new TestDriver(countingProcessor, { startAt: T0 });
  d.pipe(SALES, sale('b', 1, T0 + 500)); // deadline T0 + 1500
  d.pipe(SALES, sale('a', 1, T0)); // deadline T0 + 1000
  d.pipe(SALES, sale('c', 1, T0 - 5000)); // deadline T0 - 4000: due already
  d.advanceTime(1200);
  d.setTime(T0 + 2000);
  expect(d.steps.filter((s) => s.kind === 'tick').map((s) => [s.key, s.now])).toEqual([
    ['c', T0],
    ['a', T0 + 1000],
    ['b', T0 + 1500],
  ]);
  expect(d.now).toBe(T0 + 2000);
  expect(() => d.setTime(T0)).toThrow(/only moves forward/);
});

test('setClock moves the clock either way without firing; tick() ticks one key whether or not it is due', () => {
  const d = new TestDriver(countingProcessor, { startAt: T0 });
  d.pipe(SALES, sale('m1', 1));
  d.setClock(T0 + 5000);
  expect(d.timer('m1')).toBe(T0 + 1000);
  expect(d.state('m1')?.expired).toBe(false);
  d.setClock(T0 - 1);
  expect(d.tick('m1')?.now).toBe(T0 - 1);
  expect(d.state('m1')?.expired).toBe(true);
  expect(d.timer('m1')).toBeUndefined();
  expect(d.tick('nobody')).toBeUndefined();
});

test('a tick that leaves its own timer due would tick forever: the driver refuses it', () => {
  const stuck: Processor<Count> = { ...countingProcessor, tick: (state) => ({ state, outputs: [] }) };
  const d = new TestDriver(stuck, { startAt: T0 });
  d.pipe(SALES, sale('m1', 1));
  expect(() => d.advanceTime(1000)).toThrow(/a tick at .* left a timer/);
});

test('a crash with redelivery replays what was not committed from the restored state, at the same clock readings', () => {
  const run = (crash: boolean) => {
    const d = new TestDriver(countingProcessor, { startAt: T0, autoCommit: false });
    d.pipe(SALES, sale('m1', 3));
    d.commit();
    d.pipe(SALES, sale('m1', 4));
    d.advanceTime(1500);
    d.pipe(SALES, sale('m2', 5));
    const lost = crash ? d.crash({ redeliver: true }) : [];
    d.commit();
    return { d, lost };
  };
  const { d, lost } = run(true);
  const clean = run(false).d;
  expect(lost.map((r) => [r.topic, r.offset, r.key])).toEqual([
    [SALES, 1, 'm1'],
    [SALES, 2, 'm2'],
  ]);
  expect(d.state('m1')).toEqual(clean.state('m1'));
  expect(d.state('m2')).toEqual(clean.state('m2'));
  expect(d.timer('m2')).toBe(clean.timer('m2'));
  expect(d.now).toBe(T0 + 1500);
  // The redelivered sale met the committed state (one sale), and the timer fired again at its time.
  expect(d.steps.filter((s) => s.key === 'm1').map((s) => [s.kind, s.now, s.result.state?.sales])).toEqual([
    ['process', T0, 1],
    ['process', T0, 2],
    ['tick', T0 + 1000, 2],
    ['process', T0, 2],
    ['tick', T0 + 1000, 2],
  ]);
});

test('a crash without redelivery drops what was not committed, inputs included', () => {
  const d = new TestDriver(countingProcessor, { startAt: T0, autoCommit: false });
  d.pipe(SALES, sale('m1', 3));
  d.commit();
  d.pipe(SALES, sale('m1', 4));
  expect(d.crash().map((r) => r.offset)).toEqual([1]);
  expect(d.state('m1')?.amountMinor).toBe(3);
  d.pipe(SALES, sale('m1', 6));
  d.commit();
  expect(d.crash({ redeliver: true })).toEqual([]);
  expect(d.state('m1')).toMatchObject({ sales: 2, amountMinor: 9 });
});

test('the driver can check that a processor leaves the state it was given alone', () => {
  const mutating: Processor<Count> = {
    ...countingProcessor,
    process(state, input, ctx) {
      if (state) state.sales += 1;
      return countingProcessor.process(state, input, ctx);
    },
  };
  const d = new TestDriver(mutating, { startAt: T0, checkPurity: true });
  d.pipe(SALES, sale('m1', 1));
  expect(() => d.pipe(SALES, sale('m1', 2))).toThrow(/counting mutated the state it was given/);
});

test('with roundTripState the task keeps a decoded copy of what the processor returned', () => {
  const d = new TestDriver(countingProcessor, { startAt: T0, roundTripState: true });
  d.pipe(SALES, sale('m1', 1));
  const returned = d.steps[0]?.result.state;
  expect(d.state('m1')).toEqual(returned);
  expect(d.state('m1')).not.toBe(returned);
});
