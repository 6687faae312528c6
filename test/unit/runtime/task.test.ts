import { InvariantViolation, type OutputRecord, type Processor } from '../../../processors/api';
import { OFFSETS_KEY, OutputEncodingError, Task, type SourceRecord } from '../../../runtime/task';
import { TestDriver } from '../../../runtime/test-driver';
import { chunkBySize } from '../../../runtime/kafka-runtime';
import { countingProcessor, sale, T0, type Count } from './counting-processor';

function src(offset: number, partition = 0): SourceRecord {
  return {
    topic: 'marketplace.sales.v1',
    partition,
    offset,
    key: Buffer.from('m1'),
    value: null,
    timestamp: T0,
  };
}

test('a record below the next offset is skipped: redelivery after a seek or rebalance changes nothing', () => {
  const task = new Task(countingProcessor, 0);
  const rec = { topic: 'marketplace.sales.v1' as const, key: 'm1', value: sale('m1', 5), timestamp: T0 };
  expect(task.accept(src(0), { ok: true, record: rec }, T0)).toBe('processed');
  expect(task.accept(src(1), { ok: true, record: rec }, T0)).toBe('processed');
  expect(task.accept(src(1), { ok: true, record: rec }, T0)).toBe('skipped');
  expect(task.accept(src(0), { ok: true, record: rec }, T0)).toBe('skipped');
  expect(task.get('m1')?.sales).toBe(2);
  expect(task.nextOffset('marketplace.sales.v1')).toBe(2);
});

test('decode failures and processor rejections are collected for the DLQ and still advance the offset', () => {
  const task = new Task(countingProcessor, 0);
  task.accept(src(0), { ok: false, reasonCode: 'BAD_MAGIC_BYTE', detail: 'x' }, T0);
  task.accept(
    src(1),
    { ok: true, record: { topic: 'marketplace.sales.v1', key: 'm1', value: sale('m1', 0), timestamp: T0 } },
    T0,
  );
  const flush = task.drain();
  expect(flush.rejected.map((r) => [r.source.offset, r.reasonCode])).toEqual([
    [0, 'BAD_MAGIC_BYTE'],
    [1, 'ZERO'],
  ]);
  expect(flush.offsets.get('marketplace.sales.v1')).toBe(2);
  expect(flush.changelog.map((c) => c.key)).toEqual([OFFSETS_KEY]);
});

test('a task rebuilt from its changelog has the same state, offsets and timers', () => {
  const a = new Task(countingProcessor, 0);
  a.accept(
    src(0),
    { ok: true, record: { topic: 'marketplace.sales.v1', key: 'm1', value: sale('m1', 7), timestamp: T0 } },
    T0,
  );
  const flush = a.drain();
  const b = new Task(countingProcessor, 0);
  for (const c of flush.changelog) b.restore(c.key, c.value);
  expect(b.get('m1')).toEqual(a.get('m1'));
  expect(b.nextOffset('marketplace.sales.v1')).toBe(1);
  expect(b.tickDue(T0 + 999)).toBe(0);
  expect(b.tickDue(T0 + 1000)).toBe(1);
  expect(b.get('m1')?.expired).toBe(true);
});

test('a rejecting step may remember the rejection in its state, but emitting outputs breaks an invariant', () => {
  const remembered = { sales: 1, amountMinor: 0, deadline: 0, expired: false };
  const rejecting = (outputs: OutputRecord[]): Processor<Count> => ({
    ...countingProcessor,
    process: (_s, input) => ({
      state: remembered,
      outputs,
      rejection: { reasonCode: 'X', detail: String(input.key) },
    }),
  });
  const input = {
    ok: true as const,
    record: { topic: 'marketplace.sales.v1' as const, key: 'm1', value: sale('m1', 1), timestamp: T0 },
  };
  const task = new Task(rejecting([]), 0);
  expect(task.accept(src(0), input, T0)).toBe('rejected');
  expect(task.get('m1')).toBe(remembered);
  expect(task.drain().changelog.map((c) => c.key)).toEqual(['m1', OFFSETS_KEY]);
  const output: OutputRecord = { topic: 'marketplace.sales.v1', key: 'm1', value: sale('m1', 1) };
  expect(() => new Task(rejecting([output]), 0).accept(src(0), input, T0)).toThrow(InvariantViolation);
});

test('an output that does not encode leaves the task as before that record: earlier work can still commit', () => {
  const emitting: Processor<Count> = {
    ...countingProcessor,
    outputs: ['holdback.deductions.v1'],
    process: (state, input, ctx) => {
      const step = countingProcessor.process(state, input, ctx);
      return { ...step, outputs: [{ topic: 'holdback.deductions.v1', key: input.key, value: {} as never }] };
    },
  };
  let calls = 0;
  const task = new Task(emitting, 0, () => {
    if (++calls === 2) throw new Error('amount_minor: missing');
    return Buffer.from('ok');
  });
  const rec = { topic: 'marketplace.sales.v1' as const, key: 'm1', value: sale('m1', 5), timestamp: T0 };
  expect(task.accept(src(0), { ok: true, record: rec }, T0)).toBe('processed');
  expect(() => task.accept(src(1), { ok: true, record: rec }, T0)).toThrow(OutputEncodingError);
  expect(() => task.accept(src(1), { ok: true, record: rec }, T0)).not.toThrow();
  // The failed step changed nothing; the third call (a retry of offset 1) went through.
  expect(task.get('m1')?.sales).toBe(2);
  const flush = task.drain();
  expect(flush.encoded.map((b) => b.toString())).toEqual(['ok', 'ok']);
  expect(flush.offsets.get('marketplace.sales.v1')).toBe(2);
});

test('the failed step is named by its source position', () => {
  const task = new Task(
    {
      ...countingProcessor,
      process: () => ({
        state: undefined,
        outputs: [{ topic: 'holdback.deductions.v1', key: 'm1', value: {} as never }],
      }),
    },
    0,
    () => {
      throw new Error('bad');
    },
  );
  const rec = { topic: 'marketplace.sales.v1' as const, key: 'm1', value: sale('m1', 5), timestamp: T0 };
  expect(() => task.accept(src(7), { ok: true, record: rec }, T0)).toThrow(
    'holdback.deductions.v1 output of marketplace.sales.v1/0@7 does not encode: bad',
  );
  expect(task.nextOffset('marketplace.sales.v1')).toBeUndefined();
});

test('the test driver: uncommitted work is lost on a crash and redone from the changelog', () => {
  const d = new TestDriver(countingProcessor, { startAt: T0, autoCommit: false });
  d.pipe('marketplace.sales.v1', sale('m1', 3));
  d.commit();
  d.pipe('marketplace.sales.v1', sale('m1', 4));
  expect(d.state('m1')?.amountMinor).toBe(7);
  d.crash();
  expect(d.state('m1')?.amountMinor).toBe(3);
  d.advanceTime(1000);
  expect(d.state('m1')?.expired).toBe(true);
});

test('commits are split into requests under the broker limit, keeping every message and its order', () => {
  const msg = (i: number) => ({ key: `k${i}`, value: Buffer.alloc(1000, i % 256) });
  const input = [
    { topic: 'a', messages: Array.from({ length: 1500 }, (_, i) => msg(i)) },
    { topic: 'b', messages: Array.from({ length: 10 }, (_, i) => msg(i)) },
  ];
  const chunks = chunkBySize(input, 512 * 1024);
  expect(chunks.length).toBeGreaterThan(2);
  for (const c of chunks) {
    const bytes = c
      .flatMap((t) => t.messages)
      .reduce((n, m) => n + 64 + String(m.key).length + (m.value as Buffer).length, 0);
    expect(bytes).toBeLessThanOrEqual(512 * 1024);
  }
  const flat = (t: string) =>
    chunks.flatMap((c) => c.filter((x) => x.topic === t).flatMap((x) => x.messages.map((m) => m.key)));
  expect(flat('a')).toEqual(input[0]!.messages.map((m) => m.key));
  expect(flat('b')).toEqual(input[1]!.messages.map((m) => m.key));
});

test('each output carries the time of the step that produced it (its Kafka timestamp), record or timer', () => {
  const echo: Processor<number> = {
    ...(countingProcessor as unknown as Processor<number>),
    stateSerde: { encode: (n) => Buffer.from(String(n)), decode: (b) => Number(b.toString()) },
    process: (s, input) => ({
      state: (s ?? 0) + 1,
      outputs: [{ topic: 'holdback.dlq.v1', key: input.key, value: {} as never }],
    }),
    timerAt: (s) => (s > 0 ? T0 + 5000 : undefined),
    tick: (_s, key) => ({ state: 0, outputs: [{ topic: 'holdback.dlq.v1', key, value: {} as never }] }),
  };
  const task = new Task(echo, 0);
  const rec = { topic: 'marketplace.sales.v1' as const, key: 'm1', value: sale('m1', 5), timestamp: T0 };
  task.accept(src(0), { ok: true, record: rec }, T0 + 100);
  task.accept(src(1), { ok: true, record: rec }, T0 + 200);
  task.tickDue(T0 + 6000);
  expect(task.drain().outputTimestamps).toEqual([T0 + 100, T0 + 200, T0 + 6000]);
});

test('an operator skip dead-letters the next record, also past a transaction marker, and never one already processed', () => {
  const task = new Task(countingProcessor, 0);
  const rec = { topic: 'marketplace.sales.v1' as const, key: 'm1', value: sale('m1', 1), timestamp: T0 };
  expect(task.accept(src(0), { ok: true, record: rec }, T0)).toBe('processed');
  expect(() => task.skip(src(0), 'OPERATOR_SKIPPED', 'again')).toThrow(InvariantViolation);
  task.skip(src(2), 'OPERATOR_SKIPPED', 'judged wrong'); // offset 1 was a marker
  const flush = task.drain();
  expect(flush.rejected.map((r) => [r.source.offset, r.reasonCode, r.detail])).toEqual([
    [2, 'OPERATOR_SKIPPED', 'judged wrong'],
  ]);
  expect(flush.offsets.get('marketplace.sales.v1')).toBe(3);
});

test('due timers tick in slices of a limit, earliest first, each key once (the runtime commits between slices)', () => {
  const task = new Task(countingProcessor, 0);
  for (let i = 0; i < 5; i++) {
    const key = `m${i}`;
    task.accept(
      src(i),
      {
        ok: true,
        record: { topic: 'marketplace.sales.v1', key, value: sale(key, 1, T0 + i), timestamp: T0 + i },
      },
      T0 + i,
    );
  }
  task.drain();
  const at = T0 + 10_000;
  expect(task.hasDue(at)).toBe(true);
  expect(task.tickDue(at, 2)).toBe(2);
  expect(task.drain().changelog.map((c) => c.key)).toEqual(['m0', 'm1']);
  expect(task.tickDue(at, 2)).toBe(2);
  expect(task.tickDue(at, 2)).toBe(1);
  expect(task.hasDue(at)).toBe(false);
  expect(task.drain().changelog.map((c) => c.key)).toEqual(['m2', 'm3', 'm4']);
});
