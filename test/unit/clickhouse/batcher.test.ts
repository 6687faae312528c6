/** The sink's buffer: bounds by rows and by age, positions that drop what is already durable. */
import { Batcher } from '../../../connectors/clickhouse/batcher';
import { TOPICS } from '../../../schemas/topics';
import type { Deduction, OrderEvent } from '../../../schemas/generated/types';

const order = (i: number): OrderEvent => ({
  event_id: `e${i}`,
  merchant_id: 'm1',
  order_id: `o${i}`,
  type: 'PLACED',
  amount_minor: 100 + i,
  currency: 'EUR',
  occurred_at: 1_700_000_000_000 + i,
});

const deduction: Deduction = {
  deduction_id: 'd1',
  type: 'WITHHOLD',
  payout_id: 'p1',
  loan_id: 'l1',
  merchant_id: 'm1',
  amount_minor: 500,
  gross_amount_minor: 10_000,
  holdback_rate_bps: 500,
  balance_after_minor: 9_500,
  currency: 'EUR',
  source_event_id: 'e1',
  occurred_at: 1_700_000_000_000,
  decided_at: 1_700_000_000_050,
};

const at = (offset: number, partition = 0) => ({ topic: TOPICS.orders, partition, offset, timestampMs: 1 });

test('a partition accepts nothing until its position is known', () => {
  const b = new Batcher({ maxRows: 10, maxAgeMs: 1000 });
  expect(b.offer(at(0), order(0), 0)).toBe('unpositioned');
  expect(b.rows).toBe(0);
});

test('records below the position are duplicates; the position moves past accepted and skipped records', () => {
  const b = new Batcher({ maxRows: 10, maxAgeMs: 1000 });
  b.setPosition(TOPICS.orders, 0, 5);
  expect(b.offer(at(3), order(3), 0)).toBe('duplicate');
  expect(b.offer(at(5), order(5), 0)).toBe('accepted');
  expect(b.offer(at(5), order(5), 0)).toBe('duplicate'); // the same record handed back again
  expect(b.offer(at(7), undefined, 0)).toBe('skipped'); // undecodable; offsets may have gaps
  expect(b.nextOffset(TOPICS.orders, 0)).toBe(8);
  expect(b.offer(at(6), order(6), 0)).toBe('duplicate');
  expect(b.rows).toBe(1);
  const d = b.drain();
  expect(d.positions.get(`${TOPICS.orders}/0`)).toBe(8);
  expect([...d.byTable.keys()]).toEqual(['orders']);
});

test('full at maxRows over all tables; due when the oldest row is maxAgeMs old', () => {
  const b = new Batcher({ maxRows: 3, maxAgeMs: 1000 });
  b.setPosition(TOPICS.orders, 0, 0);
  b.setPosition(TOPICS.deductions, 1, 0);
  expect(b.isDue(10_000)).toBe(false); // empty is never due
  b.offer(at(0), order(0), 100);
  expect(b.isDue(1099)).toBe(false);
  expect(b.isDue(1100)).toBe(true);
  b.offer({ topic: TOPICS.deductions, partition: 1, offset: 0, timestampMs: 1 }, deduction, 500);
  expect(b.isFull()).toBe(false);
  b.offer(at(1), order(1), 600);
  expect(b.isFull()).toBe(true);
  const d = b.drain();
  expect(d.rows).toBe(3);
  expect(d.byTable.get('orders')).toHaveLength(2);
  expect(d.byTable.get('deductions')).toHaveLength(1);
  expect(b.rows).toBe(0);
  expect(b.isDue(1_000_000)).toBe(false); // the age restarts with the next row
});

test('reset drops the buffer and every position', () => {
  const b = new Batcher({ maxRows: 10, maxAgeMs: 1000 });
  b.setPosition(TOPICS.orders, 0, 0);
  b.offer(at(0), order(0), 0);
  b.reset();
  expect(b.rows).toBe(0);
  expect(b.nextOffset(TOPICS.orders, 0)).toBeUndefined();
  expect(b.offer(at(1), order(1), 0)).toBe('unpositioned');
});

test('limits are checked', () => {
  expect(() => new Batcher({ maxRows: 0, maxAgeMs: 1 })).toThrow(/maxRows/);
  expect(() => new Batcher({ maxRows: 1, maxAgeMs: 0 })).toThrow(/maxAgeMs/);
});
