/** A tiny processor for runtime tests: counts a merchant's sales, rejects zero amounts, and ticks at a deadline. */
import type { Processor } from '../../../processors/api';
import type { SaleEvent } from '../../../schemas/generated/types';

export interface Count {
  sales: number;
  amountMinor: number;
  deadline: number;
  expired: boolean;
}

export const countingProcessor: Processor<Count> = {
  name: 'counting',
  inputs: ['marketplace.sales.v1'],
  outputs: [],
  stateSerde: {
    encode: (s) => Buffer.from(JSON.stringify(s)),
    decode: (b) => JSON.parse(b.toString('utf8')) as Count,
  },
  process(state, input) {
    if (input.topic !== 'marketplace.sales.v1') throw new Error('unexpected topic');
    const sale = input.value as { amount_minor: number; occurred_at: number };
    if (sale.amount_minor === 0) {
      return { state, outputs: [], rejection: { reasonCode: 'ZERO', detail: 'zero amount' } };
    }
    const s = state ?? { sales: 0, amountMinor: 0, deadline: sale.occurred_at + 1000, expired: false };
    return {
      state: { ...s, sales: s.sales + 1, amountMinor: s.amountMinor + sale.amount_minor },
      outputs: [],
    };
  },
  timerAt: (s) => (s.expired ? undefined : s.deadline),
  tick(state) {
    return { state: { ...state, expired: true }, outputs: [] };
  },
};

export const T0 = Date.UTC(2026, 10, 1);

/** A captured sale for the counting processor's tests. */
export function sale(merchant: string, amount: number, at = T0): SaleEvent {
  return {
    event_id: `${merchant}-${amount}-${at}`,
    merchant_id: merchant,
    sale_id: 's',
    order_id: null,
    type: 'CAPTURED',
    amount_minor: amount,
    currency: 'USD',
    occurred_at: at,
  };
}
