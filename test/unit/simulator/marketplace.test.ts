/**
 * The marketplace: deterministic, contract-valid, skewed like a real platform, and its payouts
 * follow the documented rules (gross = net captured since the last payout; withheld = what the
 * repayment rules withhold).
 */
import { validateRecord } from '../../../schemas/validate';
import { TOPICS } from '../../../schemas/topics';
import { DAY_MS, INPUT_TOPICS, Marketplace, type SimEvent } from '../../../simulator/marketplace';
import { RecordEncoder } from '../../../simulator/encode';
import { CLEAN, NOW, NO_FAULTS, SCHEMA_IDS, START, eventsFor, recordsFor, staticCodec } from './helpers';

const RECORD_OF = {
  [TOPICS.orders]: 'OrderEvent',
  [TOPICS.sales]: 'SaleEvent',
  [TOPICS.payouts]: 'PayoutEvent',
  [TOPICS.loanEvents]: 'LoanEvent',
} as const;

describe('determinism', () => {
  test('the same seed and options give the same records; another seed gives others', () => {
    const faults = { duplicateRate: 0.02, reorderRate: 0.05, malformedRate: 0.01 };
    const a = recordsFor(CLEAN, faults, 20_000);
    const b = recordsFor(CLEAN, faults, 20_000);
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    const c = recordsFor({ ...CLEAN, seed: 43 }, faults, 20_000);
    expect(JSON.stringify(c)).not.toBe(JSON.stringify(a));
  });

  test('the encoded bytes are the same too', () => {
    const faults = { duplicateRate: 0.02, reorderRate: 0.05, malformedRate: 0.05 };
    const bytes = () => {
      const enc = new RecordEncoder(staticCodec(), SCHEMA_IDS);
      return recordsFor(CLEAN, faults, 5_000).map((r) => enc.encode(r).toString('base64'));
    };
    expect(bytes()).toEqual(bytes());
  });

  test('fault rates do not change the clean events: faults draw from their own stream', () => {
    const clean = recordsFor(CLEAN, NO_FAULTS, 10_000).map((r) =>
      r.kind === 'event' ? r.event.value.event_id : r.kind,
    );
    const faulty = recordsFor(CLEAN, { duplicateRate: 0.1, reorderRate: 0, malformedRate: 0.1 }, 13_000)
      .filter((r) => r.kind === 'event')
      .map((r) => (r.kind === 'event' ? r.event.value.event_id : ''))
      .slice(0, 10_000);
    expect(faulty).toEqual(clean);
  });

  test('the stream is in event-time order and every event_id is unique', () => {
    const events = eventsFor(CLEAN, 60);
    expect(events.length).toBeGreaterThan(10_000);
    const backwards = events.filter((e, i) => i > 0 && e.time < events[i - 1]!.time);
    expect(backwards).toEqual([]);
    const ids = new Set(events.map((e) => `${e.topic}/${e.value.event_id}`));
    expect(ids.size).toBe(events.length);
    expect(events.filter((e) => e.key !== e.value.merchant_id || e.value.occurred_at !== e.time)).toEqual([]);
  });
});

describe('contract', () => {
  test('every event and duplicate encodes and decodes as valid; every malformed record is refused with its reason', () => {
    const codec = staticCodec();
    const enc = new RecordEncoder(codec, SCHEMA_IDS);
    const records = recordsFor(
      { ...CLEAN, mismatchRate: 0.05, lateSettlementRate: 0.1 },
      { duplicateRate: 0.02, reorderRate: 0.05, malformedRate: 0.02 },
      60_000,
    );
    const seen = new Set<string>();
    const problems: string[] = [];
    let malformed = 0;
    for (const r of records) {
      const topic = r.kind === 'malformed' ? r.topic : r.event.topic;
      const key = r.kind === 'malformed' ? r.key : r.event.key;
      const decoded = codec.tryDecodeCached(topic, key, enc.encode(r), NOW);
      if (!decoded) throw new Error('schema not cached');
      if (r.kind === 'malformed') {
        malformed++;
        seen.add(r.fault);
        const got = decoded.ok ? 'accepted' : decoded.reasonCode;
        if (got !== r.expectedReason) problems.push(`${r.fault}: ${got}, expected ${r.expectedReason}`);
        continue;
      }
      const id = r.event.value.event_id;
      if (!decoded.ok) problems.push(`${id}: ${decoded.reasonCode} ${decoded.detail}`);
      else if (JSON.stringify(decoded.value) !== JSON.stringify(r.event.value))
        problems.push(`${id}: decoded differently`);
      const checked = validateRecord(RECORD_OF[r.event.topic], r.event.value, { now: NOW });
      if (!checked.ok) problems.push(`${id}: ${checked.reasonCode} ${checked.detail}`);
    }
    expect(problems.slice(0, 10)).toEqual([]);
    expect(malformed).toBeGreaterThan(500);
    expect([...seen].sort()).toEqual(
      [
        'KEY_MISMATCH',
        'NEGATIVE_AMOUNT',
        'NOT_AVRO',
        'TIMESTAMP_OUT_OF_RANGE',
        'TRUNCATED_AVRO',
        'UNKNOWN_CURRENCY',
      ].sort(),
    );
  });

  test('every type of every input topic appears, loans carry plausible terms', () => {
    const events = eventsFor({ ...CLEAN, merchants: 400 }, 150);
    const types = new Set(events.map((e) => `${e.topic} ${e.value.type}`));
    for (const t of [
      'marketplace.orders.v1 PLACED',
      'marketplace.orders.v1 FULFILLED',
      'marketplace.orders.v1 CANCELLED',
      'marketplace.sales.v1 CAPTURED',
      'marketplace.sales.v1 REFUNDED',
      'marketplace.sales.v1 CHARGEBACK',
      'marketplace.payouts.v1 SCHEDULED',
      'marketplace.payouts.v1 SETTLED',
      'marketplace.payouts.v1 FAILED',
      'lending.loans.v1 FUNDED',
      'lending.loans.v1 PAUSED',
      'lending.loans.v1 RESUMED',
      'lending.loans.v1 WRITTEN_OFF',
    ]) {
      expect(types).toContain(t);
    }
    const funded = events.flatMap((e) =>
      e.topic === TOPICS.loanEvents && e.value.type === 'FUNDED' ? [e] : [],
    );
    for (const f of funded) {
      const v = f.value;
      expect(v.holdback_rate_bps).toBeGreaterThanOrEqual(500);
      expect(v.holdback_rate_bps).toBeLessThanOrEqual(2000);
      expect(v.fee_minor! / v.principal_minor!).toBeGreaterThanOrEqual(0.079);
      expect(v.fee_minor! / v.principal_minor!).toBeLessThanOrEqual(0.15);
      expect(v.period_days).toBe(30);
      // Funded only with 45 days of history.
      expect(f.time - START).toBeGreaterThanOrEqual(45 * DAY_MS);
    }
    // Some merchants, not all: a lender is selective.
    const borrowers = new Set(funded.map((f) => f.key));
    expect(borrowers.size).toBeGreaterThan(40);
    expect(borrowers.size).toBeLessThan(300);
  });
});

describe('shape of the marketplace', () => {
  test('sales are skewed: the top 10% of merchants carry most of the captured volume', () => {
    const events = eventsFor({ ...CLEAN, merchants: 500 }, 90);
    const captured = new Map<string, number>();
    for (const e of events) {
      if (e.topic === TOPICS.sales && e.value.type === 'CAPTURED') {
        captured.set(e.key, (captured.get(e.key) ?? 0) + e.value.amount_minor);
      }
    }
    const volumes = [...captured.values()].sort((a, b) => b - a);
    const total = volumes.reduce((a, b) => a + b, 0);
    const top = volumes.slice(0, 50).reduce((a, b) => a + b, 0);
    expect(top / total).toBeGreaterThan(0.5);
    // Many small: the median merchant sells well under the mean.
    expect(volumes[Math.floor(volumes.length / 2)]!).toBeLessThan(total / volumes.length / 2);
  });

  test('some merchants have bad refund rates', () => {
    const events = eventsFor({ ...CLEAN, merchants: 300 }, 90);
    const by = new Map<string, { captured: number; refunded: number }>();
    for (const e of events) {
      if (e.topic !== TOPICS.sales) continue;
      const s = by.get(e.key) ?? { captured: 0, refunded: 0 };
      if (e.value.type === 'CAPTURED') s.captured += e.value.amount_minor;
      else s.refunded += e.value.amount_minor;
      by.set(e.key, s);
    }
    const ratios = [...by.values()].filter((s) => s.captured > 100_000).map((s) => s.refunded / s.captured);
    const bad = ratios.filter((r) => r > 0.12).length / ratios.length;
    expect(bad).toBeGreaterThan(0.05);
    expect(bad).toBeLessThan(0.3);
  });

  test('payout gross = net captured (captures - refunds - chargebacks) since the last payout, plus failed payouts; withheld as instructed', () => {
    const events = eventsFor({ ...CLEAN, failRate: 0.1, mismatchRate: 0.05 }, 120);
    const pending = new Map<string, number>();
    const scheduled = new Map<string, { gross: number; instructed: number }>();
    let payouts = 0;
    let mismatched = 0;
    for (const e of events) {
      const p = pending.get(e.key) ?? 0;
      if (e.topic === TOPICS.sales) {
        pending.set(e.key, p + (e.value.type === 'CAPTURED' ? 1 : -1) * e.value.amount_minor);
      } else if (e.topic === TOPICS.payouts) {
        const v = e.value;
        if (v.type === 'SCHEDULED') {
          payouts++;
          expect(v.gross_amount_minor).toBe(p);
          expect(v.gross_amount_minor).toBeGreaterThan(0);
          pending.set(e.key, 0);
          scheduled.set(v.payout_id, { gross: v.gross_amount_minor, instructed: e.note.instructedMinor });
          expect(e.note.instructedMinor).toBeLessThanOrEqual(v.gross_amount_minor);
        } else {
          const s = scheduled.get(v.payout_id)!;
          expect(s).toBeDefined();
          expect(v.gross_amount_minor).toBe(s.gross);
          if (v.type === 'FAILED') {
            pending.set(e.key, p + v.gross_amount_minor);
            expect(v.withheld_minor).toBeNull();
          } else if (e.note.mismatch) {
            mismatched++;
            expect(v.withheld_minor).not.toBe(s.instructed);
            expect(v.withheld_minor).toBeGreaterThanOrEqual(0);
          } else {
            expect(v.withheld_minor).toBe(s.instructed);
          }
          scheduled.delete(v.payout_id);
        }
      }
    }
    expect(payouts).toBeGreaterThan(3000);
    expect(mismatched).toBeGreaterThan(0);
  });

  test('payout failures, late settlements and mismatches come at about the configured rates', () => {
    const config = { ...CLEAN, merchants: 300, failRate: 0.05, lateSettlementRate: 0.1, mismatchRate: 0.03 };
    const events = eventsFor(config, 150);
    const payouts = events.flatMap((e) => (e.topic === TOPICS.payouts ? [e] : []));
    const scheduledAt = new Map<string, number>();
    let settled = 0;
    let failed = 0;
    let late = 0;
    let mismatched = 0;
    for (const e of payouts) {
      if (e.value.type === 'SCHEDULED') {
        scheduledAt.set(e.value.payout_id, e.time);
        continue;
      }
      const lag = e.time - scheduledAt.get(e.value.payout_id)!;
      if (e.value.type === 'FAILED') {
        failed++;
        expect(lag).toBeLessThanOrEqual(48 * 3_600_000);
        continue;
      }
      settled++;
      if (e.note.mismatch) mismatched++;
      if (e.note.late) {
        late++;
        expect(lag).toBeGreaterThanOrEqual(2 * 3_600_000 + config.lateSettlementDelayMs);
      } else {
        expect(lag).toBeLessThan(20 * 3_600_000);
      }
    }
    const ended = settled + failed;
    expect(ended).toBeGreaterThan(5000);
    expect(failed / ended).toBeGreaterThan(0.05 * 0.7);
    expect(failed / ended).toBeLessThan(0.05 * 1.3);
    expect(late / settled).toBeGreaterThan(0.1 * 0.85);
    expect(late / settled).toBeLessThan(0.1 * 1.15);
    expect(mismatched / settled).toBeGreaterThan(0.03 * 0.8);
    expect(mismatched / settled).toBeLessThan(0.03 * 1.2);
  });

  test('merchants join over time, some decline and some go quiet', () => {
    const m = new Marketplace({ ...CLEAN, merchants: 1000 });
    const p = m.profiles;
    expect(p.filter((x) => x.joinedAt > START).length / 1000).toBeGreaterThan(0.2);
    expect(p.filter((x) => x.segment === 'declining').length / 1000).toBeGreaterThan(0.1);
    expect(p.filter((x) => x.quietAt < Infinity).length / 1000).toBeGreaterThan(0.04);
    const events = eventsFor({ ...CLEAN, merchants: 1000 }, 130);
    const lastOrder = new Map<string, number>();
    for (const e of events)
      if (e.topic === TOPICS.orders && e.value.type === 'PLACED') lastOrder.set(e.key, e.time);
    for (const x of p.filter((q) => q.quietAt < START + 120 * DAY_MS)) {
      expect(lastOrder.get(x.id) ?? 0).toBeLessThan(x.quietAt);
    }
  });

  test('all four input topics are produced, keyed by merchant', () => {
    const events: SimEvent[] = eventsFor(CLEAN, 90);
    expect(new Set(events.map((e) => e.topic))).toEqual(new Set(INPUT_TOPICS));
  });
});
