/**
 * Seeded differential test of the repayment processor (issue 13), in the spirit of TigerBeetle's
 * auditor: random histories run through the runtime's TestDriver and, step by step, through the
 * independent reference model (reference-model.ts). Every call of the processor (records and
 * every tick, explicit or fired by a timer) is compared with the model: rejection code,
 * deductions (id, type, amount, balance after), settlements and the loans' reported states. The
 * outputs are also checked on their own: a deduction_id is emitted at most once per merchant,
 * withheld minus reversed per payout never exceeds its gross, a reversal is exactly what was
 * withheld, collected + balance == principal + fee, no negative balance, versions grow by one, a
 * redelivered rejected loan event has the same detail, every output passes the codec's field
 * rules (what the Kafka runtime runs before producing it), no valid record throws, and no timer
 * fires late (after the driver's clock moved, a tick then would change nothing).
 *
 * The generator (seeded mulberry32, one history per seed): 1 to 3 merchants; FUNDED (some near
 * the 10^13 ceiling, some malformed, some for a loan that exists), PAUSED, RESUMED,
 * PAID_OFF_EXTERNALLY, WRITTEN_OFF; SCHEDULED, SETTLED (with and without withheld_minor), FAILED,
 * for new payouts, payouts never scheduled here and malformed ones; exact redeliveries shortly
 * after and after a jump beyond the horizon (57 days, or H plus a few days); retries under a new
 * event_id; late events (up to two days, and about H), events skewed within the future tolerance
 * and beyond it; records under another merchant's key; explicit ticks, timers fired by moving the
 * clock (or not: setClock), driver restarts from the changelog; per seed a horizon (often 2-10
 * days), a tolerance (1 day, 1 hour, 0, 2 days), a pace warm-up (25%, 0, 50%), and a state
 * encode/decode after every step or not; at the end the clock runs up to 10 days on. Each payout
 * keeps one gross and its SCHEDULED one occurred_at, the earliest of its events, as a real payout
 * does (so that no rule lets a correct processor withhold a payout twice). A second describe block
 * pins the model's reading of each rule on small hand-written examples, also run against the
 * processor.
 *
 * Runs:
 *   npx jest --ci --selectProjects unit -- test/unit/repayment/differential.test.ts
 *     (DIFF_SEEDS seeds from DIFF_FIRST_SEED, default 300 from 1)
 *   DIFF_SEEDS=20000 npx jest --ci --selectProjects unit -- test/unit/repayment/differential.test.ts
 *     (a long run; scripts/differential.sh 20000 splits it over the machine's cores)
 *   DIFF_SEED=1234 npx jest --ci --selectProjects unit -- test/unit/repayment/differential.test.ts
 *     (one seed, with its whole trace printed)
 * A failure prints, per kind of disagreement, how many seeds showed it, the seeds, and a shrunk
 * sequence of steps that still shows it, with the command that reruns its seed.
 */
import { isDeepStrictEqual } from 'node:util';
import type { OutputRecord } from '../../../processors/api';
import { createRepaymentProcessor } from '../../../processors/repayment';
import { TestDriver } from '../../../runtime/test-driver';
import type { LoanEvent, PayoutEvent, PayoutType, RecordName } from '../../../schemas/generated/types';
import { TOPICS, TOPIC_SPECS } from '../../../schemas/topics';
import { MIN_TIMESTAMP_MS, recordChecker } from '../../../schemas/validate';
import { DAY, T0, day, funded as fund, loanEvent, payout } from './fixtures';
import { decisionOf, ReferenceMerchant, type RefConfig } from './reference-model';

const HOUR = 3_600_000;
const CEILING = 10 ** 13;
/** Defaults of the rules (docs/contract.md), written here, not read from the processor. */
const DEFAULT_HORIZON = 35 * DAY;
const DEFAULT_TOLERANCE = DAY;
const DEFAULT_WARMUP = 2500;

// ---------------------------------------------------------------------------------------------
// The processor under test, behind one adapter: the only place its configuration keys are named.

interface SeedConfig {
  /** undefined: the processor's default. */
  readonly horizonMs?: number;
  readonly toleranceMs?: number;
  readonly warmupBps?: number;
  /** Encode and decode the state after every step. */
  readonly roundTrip: boolean;
}

function processorFor(c: SeedConfig) {
  return createRepaymentProcessor({
    ...(c.horizonMs !== undefined && { dedupHorizonMs: c.horizonMs }),
    ...(c.toleranceMs !== undefined && { futureToleranceMs: c.toleranceMs }),
    ...(c.warmupBps !== undefined && { paceWarmupBps: c.warmupBps }),
  });
}

function modelConfig(c: SeedConfig): RefConfig {
  return {
    horizonMs: c.horizonMs ?? DEFAULT_HORIZON,
    futureToleranceMs: c.toleranceMs ?? DEFAULT_TOLERANCE,
    paceWarmupBps: c.warmupBps ?? DEFAULT_WARMUP,
  };
}

const newDriver = (c: SeedConfig) =>
  new TestDriver(processorFor(c), { startAt: T0, roundTripState: c.roundTrip, checkPurity: true });
type Driver = ReturnType<typeof newDriver>;

// ---------------------------------------------------------------------------------------------
// Histories.

type Input = LoanEvent | PayoutEvent;

type Op =
  /** The driver's clock goes to `now` (setTime: due timers fire on the way; else setClock), then the record is piped under `key`. */
  | { k: 'event'; key: string; event: Input; now: number; timers: boolean; why: string }
  /** The key is ticked at `now`, due or not. */
  | { k: 'tick'; key: string; now: number }
  /** The clock moves to `now`, firing due timers. */
  | { k: 'wall'; now: number }
  /** Every task is rebuilt from its changelog. */
  | { k: 'restart' };

interface Scenario {
  readonly seed: number;
  readonly config: SeedConfig;
  readonly ops: readonly Op[];
}

/** mulberry32: small, fast, and the same on every platform. */
class Rng {
  private a: number;
  constructor(seed: number) {
    this.a = seed >>> 0;
  }
  next(): number {
    this.a = (this.a + 0x6d2b79f5) >>> 0;
    let t = this.a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
  /** One of the keys, each with its weight. */
  weighted<K extends string>(weights: Readonly<Record<K, number>>): K {
    const entries = Object.entries(weights) as Array<[K, number]>;
    let x = this.next() * entries.reduce((s, [, w]) => s + w, 0);
    for (const [k, w] of entries) if ((x -= w) < 0) return k;
    return entries[entries.length - 1]![0];
  }
}

interface PayoutGen {
  id: string;
  gross: number;
  currency: string;
  /** Its SCHEDULED's occurred_at: no event of the payout is earlier. */
  t0: number;
  scheduled: boolean;
}

interface MerchantGen {
  key: string;
  loans: string[];
  payouts: PayoutGen[];
  sent: Input[];
}

const ACTIONS = {
  fund: 10,
  status: 10,
  schedule: 16,
  settle: 8,
  fail: 6,
  scheduleLate: 3,
  redeliver: 9,
  retry: 5,
  malformed: 2,
  tick: 5,
  wall: 5,
  restart: 3,
  jump: 3,
  misroute: 2,
  ceiling: 2,
} as const;

function generate(seed: number): Scenario {
  const r = new Rng(seed);
  const config: SeedConfig = {
    horizonMs: r.pick([
      undefined,
      undefined,
      undefined,
      57 * DAY,
      ...[2, 3, 4, 5, 6, 7, 10].map((d) => d * DAY),
    ]),
    toleranceMs: r.pick([undefined, undefined, 0, HOUR, 2 * DAY]),
    warmupBps: r.pick([undefined, undefined, 0, 5000]),
    roundTrip: r.chance(0.5),
  };
  const { horizonMs: H, futureToleranceMs: tol } = modelConfig(config);
  const merchants: MerchantGen[] = Array.from({ length: r.int(1, 3) }, (_, i) => ({
    key: `M${i}`,
    loans: [],
    payouts: [],
    sent: [],
  }));
  const ops: Op[] = [];
  let now = T0;
  let n = 0;
  const nextId = (m: MerchantGen): string => `${m.key}-e${n++}`;

  const gap = (): number => {
    switch (r.weighted({ none: 2, minutes: 4, day: 8, days: 4 })) {
      case 'none':
        return 0;
      case 'minutes':
        return r.int(1, HOUR);
      case 'day':
        return r.int(1, DAY);
      default:
        return r.int(DAY, 5 * DAY);
    }
  };
  /** An occurred_at around `now`: on time, late (up to 2 days, or about H), or skewed ahead. */
  const occ = (): number => {
    switch (r.weighted({ onTime: 55, late: 25, horizon: 7, skew: 8, beyond: 5 })) {
      case 'onTime':
        return now;
      case 'late':
        return now - r.int(1, 2 * DAY);
      case 'horizon':
        return now - H + r.int(-DAY, DAY);
      case 'skew':
        return now + r.int(0, tol);
      default:
        return now + tol + r.int(1, 2 * DAY);
    }
  };
  const amount = (small: number): number =>
    r.chance(0.8) ? r.int(0, small) : CEILING - r.pick([0, 1, r.int(0, 10_000)]);
  const currency = (): string => (r.chance(0.8) ? 'EUR' : 'USD');

  const push = (m: MerchantGen, event: Input, why: string, key = m.key): void => {
    if (key === m.key) m.sent.push(event);
    ops.push({ k: 'event', key, event, now, timers: r.chance(0.75), why });
  };
  const funded = (m: MerchantGen, loanId: string, at: number, terms: Partial<LoanEvent> = {}): LoanEvent => ({
    event_id: nextId(m),
    loan_id: loanId,
    merchant_id: m.key,
    type: 'FUNDED',
    occurred_at: at,
    principal_minor: r.chance(0.85) ? r.int(1, 20_000) : CEILING - 500 - r.pick([0, r.int(0, 1000)]),
    // Rarely a fee at the ceiling too: each amount is valid, their sum is beyond 10^13.
    fee_minor: r.chance(0.98) ? r.int(0, 500) : CEILING - r.int(0, 1000),
    holdback_rate_bps: r.chance(0.6) ? r.int(1, 10_000) : r.pick([1, 2500, 9999, 10_000]),
    minimum_payment_minor: r.pick([
      0,
      0,
      0,
      0,
      r.int(1, 1500),
      r.int(1, 1500),
      r.int(1, 1500),
      CEILING - r.int(0, 1000),
    ]),
    period_days: r.pick([1, 1, 2, 3, 3, 30, 30, 366, r.int(1, 366)]),
    currency: currency(),
    ...terms,
  });
  const statusEvent = (m: MerchantGen, type: LoanEvent['type'], loanId: string): LoanEvent => ({
    event_id: nextId(m),
    loan_id: loanId,
    merchant_id: m.key,
    type,
    occurred_at: occ(),
    principal_minor: null,
    fee_minor: null,
    holdback_rate_bps: null,
    minimum_payment_minor: null,
    period_days: null,
    currency: null,
  });
  const payoutEvent = (
    m: MerchantGen,
    p: PayoutGen,
    type: PayoutType,
    at: number,
    over: Partial<PayoutEvent> = {},
  ): PayoutEvent => ({
    event_id: nextId(m),
    merchant_id: m.key,
    payout_id: p.id,
    type,
    gross_amount_minor: p.gross,
    withheld_minor:
      type === 'SETTLED' && r.chance(0.7) ? (r.chance(0.8) ? r.int(0, 3000) : amount(3000)) : null,
    currency: p.currency,
    occurred_at: at,
    ...over,
  });
  const newPayout = (m: MerchantGen, at: number): PayoutGen => {
    const p = { id: `${m.key}-P${m.payouts.length}`, gross: amount(20_000), currency: currency(), t0: at };
    const g = { ...p, scheduled: false };
    m.payouts.push(g);
    return g;
  };
  const loanId = (m: MerchantGen): string =>
    m.loans.length > 0 && r.chance(0.9) ? r.pick(m.loans) : `${m.key}-L${m.loans.length + r.int(0, 1)}`;
  const sentEvent = (m: MerchantGen): Input | undefined =>
    m.sent.length === 0
      ? undefined
      : r.chance(0.5)
        ? m.sent[m.sent.length - 1 - r.int(0, Math.min(4, m.sent.length - 1))]
        : r.pick(m.sent);

  const steps = r.int(15, 70);
  for (let s = 0; s < steps; s++) {
    now += gap();
    const m = r.pick(merchants);
    const action = m.sent.length === 0 && r.chance(0.7) ? 'fund' : r.weighted(ACTIONS);
    switch (action) {
      case 'fund': {
        const id = m.loans.length === 0 || r.chance(0.85) ? `${m.key}-L${m.loans.length}` : r.pick(m.loans);
        const malformed = r.chance(0.05)
          ? r.pick<Partial<LoanEvent>>([
              { holdback_rate_bps: 0 },
              { period_days: 0 },
              { principal_minor: 0 },
              { currency: 'eur' },
            ])
          : {};
        if (!m.loans.includes(id) && Object.keys(malformed).length === 0) m.loans.push(id);
        push(m, funded(m, id, occ(), malformed), Object.keys(malformed).length > 0 ? 'malformed' : 'fund');
        break;
      }
      case 'status': {
        const type = r.weighted({ PAUSED: 35, RESUMED: 35, PAID_OFF_EXTERNALLY: 15, WRITTEN_OFF: 15 });
        push(m, statusEvent(m, type, loanId(m)), 'status');
        break;
      }
      case 'schedule': {
        const p = newPayout(m, occ());
        p.scheduled = true;
        push(m, payoutEvent(m, p, 'SCHEDULED', p.t0), 'schedule');
        break;
      }
      case 'settle':
      case 'fail': {
        const known = m.payouts.length > 0 && r.chance(0.85);
        const p = known ? r.pick(m.payouts) : newPayout(m, occ());
        const type = action === 'settle' ? 'SETTLED' : 'FAILED';
        push(m, payoutEvent(m, p, type, Math.max(p.t0, occ())), known ? action : `${action}-unknown`);
        break;
      }
      case 'scheduleLate': {
        const p = m.payouts.find((q) => !q.scheduled);
        if (!p) break;
        p.scheduled = true;
        push(m, payoutEvent(m, p, 'SCHEDULED', p.t0), 'schedule-late');
        break;
      }
      case 'redeliver': {
        const e = sentEvent(m);
        if (e) push(m, { ...e }, 'redeliver');
        break;
      }
      case 'retry': {
        const e = sentEvent(m);
        if (e) push(m, { ...e, event_id: `${e.event_id}-retry${n++}` }, 'retry');
        break;
      }
      case 'malformed': {
        const known = m.payouts.length > 0 && r.chance(0.5);
        const p = known ? r.pick(m.payouts) : newPayout(m, occ());
        const type = r.pick<PayoutType>(['SCHEDULED', 'SETTLED', 'FAILED']);
        const bad = r.pick<Partial<PayoutEvent>>([
          { gross_amount_minor: -5 },
          { currency: 'eur' },
          { withheld_minor: -1 },
        ]);
        push(m, payoutEvent(m, p, type, Math.max(p.t0, occ()), bad), 'malformed');
        break;
      }
      case 'tick':
        ops.push({ k: 'tick', key: m.key, now });
        break;
      case 'wall':
        ops.push({ k: 'wall', now });
        break;
      case 'restart':
        ops.push({ k: 'restart' });
        break;
      case 'jump': {
        now += r.chance(0.5) ? 57 * DAY : H + r.int(1, 3 * DAY);
        if (r.chance(0.5)) ops.push({ k: 'wall', now });
        const e = sentEvent(m);
        if (e) push(m, { ...e }, 'redeliver-far');
        break;
      }
      case 'misroute': {
        const other = r.pick([...merchants.filter((x) => x !== m).map((x) => x.key), 'MX']);
        const e = sentEvent(m);
        if (e) push(m, { ...e }, 'misroute', other);
        break;
      }
      case 'ceiling': {
        // Funded with a 30-day (or a year's) period, then 1 ms later a payout at the ceiling.
        const id = `${m.key}-L${m.loans.length}`;
        m.loans.push(id);
        const fee = r.int(0, 1000);
        const principal = CEILING - fee - r.pick([0, r.int(0, 1000)]);
        const cur = currency();
        const loan = funded(m, id, now, {
          principal_minor: principal,
          fee_minor: fee,
          holdback_rate_bps: r.pick([9999, 10_000, r.int(5000, 10_000)]),
          minimum_payment_minor: r.pick([CEILING, principal, r.int(1, CEILING)]),
          period_days: r.pick([30, 366]),
          currency: cur,
        });
        push(m, loan, 'ceiling');
        now += 1;
        const p = newPayout(m, now);
        p.scheduled = true;
        p.gross = CEILING - r.pick([0, 0, r.int(0, 1000)]);
        p.currency = cur;
        push(m, payoutEvent(m, p, 'SCHEDULED', now), 'ceiling');
        break;
      }
    }
  }
  // Then the clock runs on, so that the last timers fire too.
  ops.push({ k: 'wall', now: now + r.int(0, 10 * DAY) });
  return { seed, config, ops };
}

// ---------------------------------------------------------------------------------------------
// Running one history against the processor and the model.

interface Finding {
  /** What kind of disagreement: findings of one signature are one bug (probably). */
  readonly signature: string;
  readonly op: number;
  readonly message: string;
  /** Hard: the run stopped there; soft (output encoding): the run went on. */
  readonly hard: boolean;
}

const RECORD_OF = new Map(TOPIC_SPECS.map((s) => [s.name as string, s.record as RecordName]));
/** The codec's bounds when it encodes an output: timestamps checked against the lower bound only. */
const ENCODE_BOUNDS = { minMs: MIN_TIMESTAMP_MS, maxMs: Number.POSITIVE_INFINITY };

/** Checks of the outputs alone, over a whole history (rule 5), and that each would encode (rule 6). */
class OutputAudit {
  private readonly ids = new Set<string>();
  private readonly withheld = new Map<string, number>();
  private readonly net = new Map<string, number>();
  private readonly versions = new Map<string, number>();

  /** Violations of one step's outputs: [signature, message]. */
  check(outputs: readonly OutputRecord[]): Array<[string, string, boolean]> {
    const found: Array<[string, string, boolean]> = [];
    const fail = (sig: string, msg: string, hard = true): void => void found.push([sig, msg, hard]);
    for (const o of outputs) {
      const record = RECORD_OF.get(o.topic);
      const bad = record && recordChecker(record)(o.value as never, ENCODE_BOUNDS);
      if (bad) {
        const field = bad.detail.split(/[ :]/)[0];
        fail(
          `output does not encode: ${bad.reasonCode} ${field}`,
          `${bad.detail} in ${JSON.stringify(o.value)}`,
          false,
        );
      }
      if (o.topic === TOPICS.deductions) {
        const d = o.value;
        const id = `${d.merchant_id}/${d.deduction_id}`;
        if (this.ids.has(id)) fail('deduction_id emitted twice', id);
        this.ids.add(id);
        const pair = `${d.merchant_id}/${d.payout_id}/${d.loan_id}`;
        const payout = `${d.merchant_id}/${d.payout_id}`;
        if (!(Number.isSafeInteger(d.amount_minor) && d.amount_minor > 0))
          fail('deduction amount not positive', id);
        if (d.balance_after_minor < 0) fail('negative balance', id);
        if (d.type === 'WITHHOLD') {
          this.withheld.set(pair, d.amount_minor);
          const net = (this.net.get(payout) ?? 0) + d.amount_minor;
          this.net.set(payout, net);
          if (net > d.gross_amount_minor)
            fail('withheld - reversed > gross', `${payout}: ${net} > ${d.gross_amount_minor}`);
        } else {
          if (this.withheld.get(pair) !== d.amount_minor)
            fail(
              'reversal differs from its withholding',
              `${id}: ${d.amount_minor} vs ${this.withheld.get(pair)}`,
            );
          this.net.set(payout, (this.net.get(payout) ?? 0) - d.amount_minor);
        }
      } else if (o.topic === TOPICS.loanStates) {
        const l = o.value;
        if (l.collected_minor + l.balance_minor !== l.principal_minor + l.fee_minor)
          fail('collected + balance != principal + fee', JSON.stringify(l));
        if (l.balance_minor < 0 || l.collected_minor < 0) fail('negative balance', JSON.stringify(l));
        const key = `${l.merchant_id}/${l.loan_id}`;
        if (l.version !== (this.versions.get(key) ?? 0) + 1)
          fail('version does not grow by one', `${key} v${l.version} after v${this.versions.get(key) ?? 0}`);
        this.versions.set(key, l.version);
      }
    }
    return found;
  }
}

const FIELDS = ['rejection', 'deductions', 'settlements', 'changed'] as const;

function describeInput(e: Input): string {
  if ('payout_id' in e) {
    const w = e.withheld_minor === null ? '' : ` withheld=${e.withheld_minor}`;
    return `${e.type} ${e.payout_id} gross=${e.gross_amount_minor}${w} ${e.currency} occ=${at(e.occurred_at)} (${e.event_id})`;
  }
  const terms =
    e.type === 'FUNDED'
      ? ` principal=${e.principal_minor} fee=${e.fee_minor} bps=${e.holdback_rate_bps} min=${e.minimum_payment_minor} days=${e.period_days} ${e.currency}`
      : '';
  return `${e.type} ${e.loan_id}${terms} occ=${at(e.occurred_at)} (${e.event_id})`;
}

/** T0-relative time, exact to the millisecond: d3+04:05:06.007. */
function at(t: number): string {
  const ms = t - T0;
  const sign = ms < 0 ? '-' : '';
  const a = Math.abs(ms);
  const d = Math.floor(a / DAY);
  const rest = a - d * DAY;
  if (rest === 0) return `${sign}d${d}`;
  const iso = new Date(rest)
    .toISOString()
    .slice(11, 23)
    .replace(/(\.000)?$/, '');
  return `${sign}d${d}+${iso}`;
}

function describeOp(op: Op): string {
  switch (op.k) {
    case 'event': {
      const misrouted = op.key !== op.event.merchant_id ? ` under key ${op.key}` : '';
      return `${op.timers ? 'setTime' : 'setClock'}(${at(op.now)}); ${op.event.merchant_id} <- ${describeInput(op.event)}${misrouted} [${op.why}]`;
    }
    case 'tick':
      return `setClock(${at(op.now)}); tick ${op.key}`;
    case 'wall':
      return `setTime(${at(op.now)})`;
    case 'restart':
      return 'restart (state restored from the changelog)';
  }
}

const show = (x: unknown): string => JSON.stringify(x);

/**
 * Runs the ops; returns what disagreed. `trace` logs every processor call. A hard finding ends the
 * run (the model and the processor have parted); soft ones are collected and the run goes on.
 */
function execute(
  sc: Scenario,
  ops: readonly Op[],
  trace = false,
  counts = new Map<string, number>(),
): Finding[] {
  const findings: Finding[] = [];
  const cfg = modelConfig(sc.config);
  const models = new Map<string, ReferenceMerchant>();
  const model = (key: string): ReferenceMerchant => {
    let m = models.get(key);
    if (!m) models.set(key, (m = new ReferenceMerchant(cfg, counts)));
    return m;
  };
  const audit = new OutputAudit();
  const details = new Map<string, string>();
  const seenSoft = new Set<string>();
  let driver: Driver;
  let i = 0;
  const hard = (signature: string, message: string): Finding[] => {
    findings.push({ signature, op: i, message, hard: true });
    return findings;
  };
  /** Compares every processor call since step index `from` with the model; a hard finding, if any. */
  const mirror = (from: number, op: Op): string | undefined => {
    for (const s of driver.steps.slice(from)) {
      const m = model(s.key);
      const event = op.k === 'event' ? op.event : undefined;
      const want = s.kind === 'tick' ? m.tick(s.now) : m.process(event!, s.now, s.key);
      const got = decisionOf(s.result);
      const what =
        s.kind === 'tick'
          ? `tick of ${s.key} at ${at(s.now)}`
          : `${event!.type} [${op.k === 'event' ? op.why : ''}]`;
      if (trace) console.log(`  ${s.kind} ${s.key} @${at(s.now)} got ${show(got)}`);
      for (const f of FIELDS) {
        if (isDeepStrictEqual(got[f], want[f])) continue;
        const sig =
          f === 'rejection'
            ? `${what.replace(/ at .*/, '')}: rejection ${want.rejection ?? 'none'} expected, got ${got.rejection ?? 'none'}`
            : `${what.replace(/ at .*/, '')}: ${f} differ`;
        return `${sig}\n${FIELDS.map((g) => `      ${g}: model ${show(want[g])}\n      ${' '.repeat(g.length)}  processor ${show(got[g])}`).join('\n')}`;
      }
      for (const [sig, msg, isHard] of audit.check(s.result.outputs)) {
        if (isHard) return `${sig}\n      ${msg}`;
        if (!seenSoft.has(sig)) {
          seenSoft.add(sig);
          findings.push({ signature: sig, op: i, message: msg, hard: false });
        }
      }
      const rej = s.result.rejection;
      if (event && rej && rej.reasonCode !== 'MERCHANT_MISMATCH' && !('payout_id' in event)) {
        const id = `${s.key}\u0000${event.event_id}`;
        const first = details.get(id);
        if (first === undefined) details.set(id, rej.detail);
        else if (first !== rej.detail)
          return `redelivered rejected loan event: detail differs\n      first ${show(first)}\n      now   ${show(rej.detail)}`;
      }
    }
    return undefined;
  };
  /** After the clock moved with timers firing, a tick at that time must change nothing. */
  const probe = (now: number): string | undefined => {
    for (const [key, m] of models) {
      const due = m.dueAt(now);
      if (due.length > 0) return `timer late: ${key} at ${at(now)}\n      a tick would change ${show(due)}`;
    }
    return undefined;
  };
  const split = (text: string): [string, string] => {
    const nl = text.indexOf('\n');
    return nl < 0 ? [text, ''] : [text.slice(0, nl), text.slice(nl + 1)];
  };
  try {
    driver = newDriver(sc.config);
    for (i = 0; i < ops.length; i++) {
      const op = ops[i]!;
      if (trace) console.log(`#${i} ${describeOp(op)}`);
      let n = driver.steps.length;
      let bad: string | undefined;
      switch (op.k) {
        case 'event': {
          if (op.timers) driver.setTime(Math.max(driver.now, op.now));
          else driver.setClock(op.now);
          bad = mirror(n, { k: 'wall', now: op.now }) ?? (op.timers ? probe(driver.now) : undefined);
          if (bad) break;
          n = driver.steps.length;
          if ('payout_id' in op.event) driver.pipe(TOPICS.payouts, op.event, { key: op.key });
          else driver.pipe(TOPICS.loanEvents, op.event, { key: op.key });
          if (driver.steps.length !== n + 1) bad = `the record was not handed to the processor once`;
          else bad = mirror(n, op);
          break;
        }
        case 'tick':
          driver.setClock(op.now);
          driver.tick(op.key);
          bad = mirror(n, op);
          break;
        case 'wall':
          driver.setTime(Math.max(driver.now, op.now));
          bad = mirror(n, op) ?? probe(driver.now);
          break;
        case 'restart':
          driver.restart();
          break;
      }
      if (bad) return hard(...split(bad));
    }
  } catch (e) {
    const message = e instanceof Error ? (e.stack ?? e.message) : String(e);
    const first = message.split('\n')[0]!.replace(/\d+/g, 'N');
    return hard(`threw: ${first}`, message.split('\n').slice(0, 6).join('\n      '));
  }
  return findings;
}

/** Removes ops while the signature still shows (ddmin-like, bounded). */
function shrink(sc: Scenario, signature: string, budget = 1500): Op[] {
  let ops = [...sc.ops];
  const shows = (candidate: Op[]): boolean => {
    budget--;
    return execute(sc, candidate).some((f) => f.signature === signature);
  };
  // Nothing after the first op that shows it is needed.
  const first = execute(sc, ops).find((f) => f.signature === signature);
  if (first) ops = ops.slice(0, first.op + 1);
  for (let chunk = Math.max(1, ops.length >> 1); chunk >= 1 && budget > 0; chunk >>= 1) {
    for (let start = 0; start < ops.length && budget > 0;) {
      const candidate = [...ops.slice(0, start), ...ops.slice(start + chunk)];
      if (candidate.length > 0 && shows(candidate)) ops = candidate;
      else start += chunk;
    }
  }
  return ops;
}

const RUN_ONE = 'npx jest --ci --selectProjects unit -- test/unit/repayment/differential.test.ts';

function report(sc: Scenario, signature: string): string {
  const ops = shrink(sc, signature);
  const finding = execute(sc, ops).find((f) => f.signature === signature);
  const cfg = modelConfig(sc.config);
  const lines = ops.map((op, i) => `    #${i} ${describeOp(op)}`);
  return [
    `  seed ${sc.seed} (rerun: DIFF_SEED=${sc.seed} ${RUN_ONE})`,
    `  config: horizon ${cfg.horizonMs / DAY}d${sc.config.horizonMs === undefined ? ' (default)' : ''}, tolerance ${cfg.futureToleranceMs / HOUR}h, warm-up ${cfg.paceWarmupBps} bps, state round-trip ${sc.config.roundTrip}`,
    `  shrunk from ${sc.ops.length} to ${ops.length} steps; the last one disagrees:`,
    ...lines,
    `      ${finding?.message ?? '(did not show again after shrinking)'}`,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------

const env = process.env;
const ONE = env['DIFF_SEED'] !== undefined ? Number(env['DIFF_SEED']) : undefined;
const SEEDS = ONE !== undefined ? 1 : Number(env['DIFF_SEEDS'] ?? 300);
const FIRST = ONE ?? Number(env['DIFF_FIRST_SEED'] ?? 1);

describe('repayment: differential test against the reference model', () => {
  it(
    `agrees with the model over ${SEEDS} seeded histories (seeds ${FIRST}..${FIRST + SEEDS - 1})`,
    () => {
      const bySignature = new Map<string, { seeds: number[]; scenario: Scenario }>();
      const counts = new Map<string, number>();
      const started = Date.now();
      let steps = 0;
      for (let seed = FIRST; seed < FIRST + SEEDS; seed++) {
        const sc = generate(seed);
        steps += sc.ops.length;
        if (ONE !== undefined) {
          console.log(`seed ${seed}: ${show(sc.config)}`);
        }
        for (const f of execute(sc, sc.ops, ONE !== undefined, counts)) {
          const entry = bySignature.get(f.signature) ?? { seeds: [], scenario: sc };
          entry.seeds.push(seed);
          // Shrink from the shortest history that shows it.
          if (sc.ops.length < entry.scenario.ops.length) entry.scenario = sc;
          bySignature.set(f.signature, entry);
        }
      }
      const took = Date.now() - started;
      if (env['DIFF_STATS'] !== undefined || ONE !== undefined) {
        const rows = [...counts]
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([k, v]) => `  ${String(v).padStart(8)}  ${k}`);
        console.log(
          `${SEEDS} seeds, ${steps} steps, ${took} ms; the rules in play (model's count):\n${rows.join('\n')}`,
        );
      }
      if (bySignature.size === 0) return;
      const failing = new Set([...bySignature.values()].flatMap((e) => e.seeds)).size;
      const sections = [...bySignature]
        .sort((a, b) => b[1].seeds.length - a[1].seeds.length)
        .map(([signature, { seeds, scenario }]) =>
          [
            `\n== ${signature}`,
            `  in ${seeds.length} seed(s): ${seeds.slice(0, 12).join(', ')}${seeds.length > 12 ? ', ...' : ''}`,
            report(scenario, signature),
          ].join('\n'),
        );
      throw new Error(
        `${failing} of ${SEEDS} seeds (${steps} steps, ${took} ms) disagree with the reference model, ` +
          `${bySignature.size} kind(s) of disagreement:${sections.join('\n')}`,
      );
    },
    60_000 + SEEDS * 200,
  );
});

/**
 * The rules on small examples: what the model decides for each record (its rejection, or `-` when
 * accepted, and what it emits), and that the processor agrees. Events are processed with setClock:
 * no timer fires unless a row ticks.
 */
describe('repayment: the reference model on examples of each rule', () => {
  type Row = [now: number, input: Input | 'tick', want: string];
  const M = { merchant: 'M0' };
  function expectRows(config: SeedConfig, rows: Row[]): void {
    const model = new ReferenceMerchant(modelConfig(config));
    const ops: Op[] = rows.map(([now, input]) =>
      input === 'tick'
        ? { k: 'tick', key: 'M0', now }
        : { k: 'event', key: 'M0', event: input, now, timers: false, why: 'example' },
    );
    const got = rows.map(([now, input]) => {
      const d = input === 'tick' ? model.tick(now) : model.process(input, now);
      const out = [
        ...d.deductions.map(([id, , amount, bal]) => `${id} ${amount} bal=${bal}`),
        ...d.settlements.map(([id, status, instructed]) => `${status} ${id} instructed=${instructed}`),
        ...d.changed.map(
          (v) =>
            `${v.loan_id} ${v.status} p${v.period_index} ${v.period_collected}/${v.period_required}${v.pace ? ` ${v.pace}` : ''}`,
        ),
      ];
      return d.rejection ?? (out.join(', ') || '-');
    });
    expect(got).toEqual(rows.map(([, , want]) => want));
    expect(execute({ seed: 0, config, ops }, ops)).toEqual([]);
  }

  it('rule 1: a rejected loan event stays rejected when redelivered, whatever happened since', () => {
    const resumed = loanEvent('RESUMED', 'L1', day(1), { ...M, eventId: 'e21' });
    expectRows({ roundTrip: true }, [
      [day(0), fund('L1', day(0), {}, { ...M, eventId: 'e1' }), 'L1 ACTIVE p0 0/0'],
      [day(1), resumed, 'INVALID_TRANSITION'],
      [day(2), loanEvent('PAUSED', 'L1', day(2), { ...M, eventId: 'e24' }), 'L1 PAUSED p0 0/0'],
      [day(3), resumed, 'INVALID_TRANSITION'], // not judged again: the loan stays PAUSED
      [day(4), fund('L1', day(0), {}, { ...M, eventId: 'e1' }), '-'],
    ]);
  });

  it('rule 2: ctx.now moves the clock, so a late record closes the periods due first', () => {
    const terms = { minimum: 100, periodDays: 1 };
    expectRows({ roundTrip: false }, [
      [day(0), fund('L1', day(0), terms, M), 'L1 ACTIVE p0 0/100'],
      // no timer ran at d1; the payout happened at d0.5 but arrives at d1.5: period 0 is missed
      [
        day(1.5),
        payout('SCHEDULED', 'P1', 5000, day(0.5), M),
        'P1:L1:WITHHOLD 500 bal=10500, L1 BEHIND p1 500/100 ON_PACE',
      ],
      // 2 days past ctx.now is beyond the 1-day tolerance: the clock stops at d2.6, before d3
      [day(1.6), payout('SCHEDULED', 'P2', 9, day(3.6), M), 'L1 ACTIVE p2 0/100 AT_RISK'],
    ]);
  });

  it('rules 3 and 4: a payout is forgotten H after its last event, unless it is withheld and open', () => {
    expectRows({ horizonMs: 5 * DAY, roundTrip: true }, [
      [day(0), fund('L1', day(0), {}, M), 'L1 ACTIVE p0 0/0'],
      [
        day(1),
        payout('SCHEDULED', 'P1', 1000, day(1), M),
        'P1:L1:WITHHOLD 100 bal=10900, L1 ACTIVE p0 100/0',
      ],
      [day(1), payout('SETTLED', 'P1', 1000, day(1), M), 'SETTLED P1 instructed=100'],
      [
        day(2),
        payout('SCHEDULED', 'P2', 1000, day(2), M),
        'P2:L1:WITHHOLD 100 bal=10800, L1 ACTIVE p0 200/0',
      ],
      // 57 days later: P1 is forgotten (settled), P2 is not (withheld, neither settled nor failed)
      [day(59), payout('SCHEDULED', 'P1', 1000, day(1), M), 'BEYOND_DEDUP_HORIZON'],
      [day(59), payout('SCHEDULED', 'P2', 1000, day(2), { ...M, eventId: 'retry' }), '-'],
      [
        day(59),
        payout('FAILED', 'P2', 1000, day(58), M),
        'P2:L1:REVERSAL 100 bal=10900, FAILED P2 instructed=100, L1 ACTIVE p1 0/0',
      ],
      [day(59), payout('FAILED', 'P9', 1000, day(55), M), 'FAILED P9 instructed=0'], // new, inside H
      [day(59), payout('FAILED', 'P8', 1000, day(53), M), 'BEYOND_DEDUP_HORIZON'],
    ]);
  });

  it('rule 6: amounts at the ceiling, a payout 1 ms into a 30-day period, and an exact pace', () => {
    const big = { principal: 10 ** 13 - 1, fee: 1, bps: 10_000, minimum: 10 ** 13, periodDays: 30 };
    const got = 9_999_990_000_000; // 10^13 * (1 - 2592 ms / 30 days): exact at 30 days - 2592 ms
    expectRows({ warmupBps: 0, roundTrip: true }, [
      [day(0), fund('L1', day(0), big, M), 'L1 ACTIVE p0 0/10000000000000'],
      [
        day(0) + 1,
        payout('SCHEDULED', 'P1', got, day(0) + 1, M),
        'P1:L1:WITHHOLD 9999990000000 bal=10000000, L1 ACTIVE p0 9999990000000/10000000000000 ON_PACE',
      ],
      // floor(got * 30 days / elapsed) is exactly 10^13 there (in doubles, got * 30 days is not exact)
      [day(30) - 2592, 'tick', '-'],
      [day(30) - 2591, 'tick', 'L1 ACTIVE p0 9999990000000/10000000000000 AT_RISK'],
    ]);
  });
});
