/** Event builders and one-line renderings of outputs, for table tests. */
import type { OutputRecord } from '../../../processors/api';
import type { LoanEvent, LoanEventType, PayoutEvent, PayoutType } from '../../../schemas/generated/types';

export const DAY = 86_400_000;
export const T0 = Date.UTC(2026, 0, 1);
/** T0 plus d days (fractions allowed). */
export const day = (d: number): number => T0 + Math.round(d * DAY);

export interface Terms {
  principal: number;
  fee: number;
  bps: number;
  minimum: number;
  periodDays: number;
  currency: string;
}

export const DEFAULT_TERMS: Terms = {
  principal: 10_000,
  fee: 1_000,
  bps: 1_000,
  minimum: 0,
  periodDays: 30,
  currency: 'EUR',
};

export function funded(
  loanId: string,
  at: number,
  terms: Partial<Terms> = {},
  opts: { merchant?: string; eventId?: string } = {},
): LoanEvent {
  const t = { ...DEFAULT_TERMS, ...terms };
  return {
    event_id: opts.eventId ?? `FUNDED:${loanId}`,
    loan_id: loanId,
    merchant_id: opts.merchant ?? 'M1',
    type: 'FUNDED',
    occurred_at: at,
    principal_minor: t.principal,
    fee_minor: t.fee,
    holdback_rate_bps: t.bps,
    minimum_payment_minor: t.minimum,
    period_days: t.periodDays,
    currency: t.currency,
  };
}

export function loanEvent(
  type: Exclude<LoanEventType, 'FUNDED'>,
  loanId: string,
  at: number,
  opts: { merchant?: string; eventId?: string } = {},
): LoanEvent {
  return {
    event_id: opts.eventId ?? `${type}:${loanId}:${at}`,
    loan_id: loanId,
    merchant_id: opts.merchant ?? 'M1',
    type,
    occurred_at: at,
    principal_minor: null,
    fee_minor: null,
    holdback_rate_bps: null,
    minimum_payment_minor: null,
    period_days: null,
    currency: null,
  };
}

export function payout(
  type: PayoutType,
  payoutId: string,
  gross: number,
  at: number,
  opts: { merchant?: string; eventId?: string; currency?: string; withheld?: number | null } = {},
): PayoutEvent {
  return {
    event_id: opts.eventId ?? `${type}:${payoutId}`,
    merchant_id: opts.merchant ?? 'M1',
    payout_id: payoutId,
    type,
    gross_amount_minor: gross,
    withheld_minor: opts.withheld ?? null,
    currency: opts.currency ?? 'EUR',
    occurred_at: at,
  };
}

/** Days since T0, as short as possible: d10, d12.5. */
export function dayOf(t: number): string {
  return `d${Math.round(((t - T0) / DAY) * 1000) / 1000}`;
}

/** One line per output, so that a table row can list them exactly. */
export function render(o: OutputRecord): string {
  switch (o.topic) {
    case 'holdback.deductions.v1': {
      const d = o.value;
      return `${d.type} ${d.payout_id}/${d.loan_id} ${d.amount_minor} bal=${d.balance_after_minor}`;
    }
    case 'holdback.loans.v1': {
      const l = o.value;
      return [
        `${l.loan_id} v${l.version} ${l.status} bal=${l.balance_minor} col=${l.collected_minor}`,
        `p${l.period_index} ${l.period_collected_minor}/${l.period_required_minor} missed=${l.missed_periods}`,
        ...(l.pace ? [l.pace] : []),
        ...(l.period_ends_at !== null ? [`ends=${dayOf(l.period_ends_at)}`] : []),
        ...(l.closure ? [`closed=${l.closure}`] : []),
      ].join(' ');
    }
    case 'holdback.settlements.v1': {
      const s = o.value;
      return `${s.status} ${s.payout_id} instructed=${s.instructed_minor} reported=${s.reported_withheld_minor ?? '-'} mismatch=${s.mismatch_minor}`;
    }
    case 'holdback.payout-decisions.v1': {
      const d = o.value;
      return `DECIDED ${d.payout_id} ${d.reason_code} withheld=${d.withheld_minor}${d.deduction_ids.length > 0 ? ` [${d.deduction_ids.join(' ')}]` : ''}`;
    }
    default:
      return `${o.topic} ${JSON.stringify(o.value)}`;
  }
}
