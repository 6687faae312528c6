/**
 * Eligibility state memory and step throughput, no I/O. Each phase runs in its own child process
 * (so RSS is not polluted by the phase before), with `--expose-gc`:
 *
 *   map      1,000,000 merchants' states built by the processor (a few realistic events each) in
 *            a Map<string, S> keyed "m-000123", exactly as runtime/task.ts holds them; GC forced;
 *            heap and RSS growth per merchant.
 *   task     the same through the runtime's Task (its state Map plus its timer queue: the daily
 *            timer is one entry per merchant), i.e. what a runtime instance really holds.
 *   u8       control: the same bytes held as one Uint8Array per merchant, the representation the
 *            issue suggested, to show why the state is a Latin-1 string.
 *   process  events/s of processor.process() over realistic events (sales, orders, payouts, loan
 *            states) for 100,000 merchants with full 90-day histories, state read from and written
 *            back to the Map as Task does; and events/s through Task.accept (timers included).
 *
 *   npx tsx --expose-gc bench/eligibility-memory.bench.ts [merchants, default 1000000] [seconds, default 20]
 *
 * Prints and saves bench/results/eligibility-memory.json. A report, not a test: nothing fails on
 * a slow machine.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { InputRecord, Processor } from '../processors/api';
import {
  createEligibilityProcessor,
  DEFAULT_POLICY,
  STATE_BYTES,
  type EligibilityState,
} from '../processors/eligibility';
import { Task } from '../runtime/task';
import type { LoanState, OrderEvent, PayoutEvent, SaleEvent } from '../schemas/generated/types';
import { TOPICS } from '../schemas/topics';
import { machine } from './machine';

// The parent is called with [merchants] [seconds]; each child with <phase> <merchants> <seconds>.
const ARGS = process.argv.slice(2);
const IS_CHILD = ['map', 'task', 'u8', 'process'].includes(ARGS[0] ?? '');
const MERCHANTS = Number((IS_CHILD ? ARGS[1] : ARGS[0]) ?? 1_000_000);
const SECONDS = Number((IS_CHILD ? ARGS[2] : ARGS[1]) ?? 20);
const DAY = 86_400_000;
const T_END = Date.UTC(2026, 10, 1);

const gc = (globalThis as { gc?: () => void }).gc;

function collect(): NodeJS.MemoryUsage {
  for (let i = 0; i < 4; i++) gc!();
  return process.memoryUsage();
}

const keyOf = (i: number): string => `m-${String(i).padStart(6, '0')}`;

/** A tiny deterministic generator (xorshift32), so every run sees the same events. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

let seq = 0;
function saleRecord(m: string, at: number, type: SaleEvent['type'], amount: number): InputRecord {
  const value: SaleEvent = {
    event_id: `e${seq++}`,
    merchant_id: m,
    sale_id: `s${seq}`,
    order_id: null,
    type,
    amount_minor: amount,
    currency: 'EUR',
    occurred_at: at,
  };
  return { topic: TOPICS.sales, key: m, value, timestamp: at };
}

function orderRecord(m: string, at: number, type: OrderEvent['type']): InputRecord {
  const value: OrderEvent = {
    event_id: `e${seq++}`,
    merchant_id: m,
    order_id: `o${seq}`,
    type,
    amount_minor: 4_500,
    currency: 'EUR',
    occurred_at: at,
  };
  return { topic: TOPICS.orders, key: m, value, timestamp: at };
}

function payoutRecord(m: string, at: number, type: PayoutEvent['type']): InputRecord {
  const value: PayoutEvent = {
    event_id: `e${seq++}`,
    merchant_id: m,
    payout_id: `p${seq}`,
    type,
    gross_amount_minor: 250_000,
    withheld_minor: null,
    currency: 'EUR',
    occurred_at: at,
  };
  return { topic: TOPICS.payouts, key: m, value, timestamp: at };
}

function loanStateRecord(m: string, at: number, collected: number): InputRecord {
  const value: LoanState = {
    loan_id: `${m}-loan`,
    merchant_id: m,
    status: 'ACTIVE',
    principal_minor: 1_000_000,
    fee_minor: 100_000,
    collected_minor: collected,
    balance_minor: 1_100_000 - collected,
    period_index: 0,
    period_required_minor: 0,
    period_collected_minor: 0,
    missed_periods: 0,
    currency: 'EUR',
    updated_at: at,
    version: seq++,
    holdback_rate_bps: 1000,
    minimum_payment_minor: 0,
    period_days: 30,
    funded_at: at - 10 * DAY,
    period_ends_at: null,
    pace: null,
    projected_period_collected_minor: null,
    closure: null,
  };
  return { topic: TOPICS.loanStates, key: m, value, timestamp: at };
}

/** One realistic event for merchant m at `at`: mostly captures, some orders, refunds, payouts, loan states. */
function eventFor(r: () => number, m: string, at: number): InputRecord {
  const x = r();
  if (x < 0.55) return saleRecord(m, at, 'CAPTURED', 1_000 + Math.floor(r() * 20_000));
  if (x < 0.6)
    return saleRecord(m, at, r() < 0.9 ? 'REFUNDED' : 'CHARGEBACK', 1_000 + Math.floor(r() * 5_000));
  if (x < 0.9) return orderRecord(m, at, r() < 0.9 ? 'PLACED' : 'CANCELLED');
  if (x < 0.98) return payoutRecord(m, at, r() < 0.97 ? 'SCHEDULED' : 'FAILED');
  return loanStateRecord(m, at, Math.floor(r() * 1_100_000));
}

/** A merchant's state after a few events spread over the last 90 days (every part of the record in use). */
function buildState(p: Processor<EligibilityState>, r: () => number, m: string): EligibilityState {
  let s: EligibilityState | undefined;
  for (let k = 0; k < 4; k++) {
    const at = T_END - Math.floor((3 - k) * 25 * DAY + r() * DAY);
    s = p.process(s, eventFor(r, m, at), { now: at }).state ?? s;
  }
  return s!;
}

function perMerchant(before: NodeJS.MemoryUsage, after: NodeJS.MemoryUsage, n: number) {
  return {
    heapUsedBytes: Math.round((after.heapUsed - before.heapUsed) / n),
    rssBytes: Math.round((after.rss - before.rss) / n),
    externalBytes: Math.round((after.external - before.external) / n),
  };
}

function phaseMap(): unknown {
  const p = createEligibilityProcessor(DEFAULT_POLICY);
  const r = rng(42);
  const before = collect();
  const t0 = process.hrtime.bigint();
  const state = new Map<string, EligibilityState>();
  for (let i = 0; i < MERCHANTS; i++) state.set(keyOf(i), buildState(p, r, keyOf(i)));
  const buildMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const after = collect();
  const lengths = new Set<number>();
  for (const s of state.values()) lengths.add(s.length);
  return {
    merchants: state.size,
    stateBytes: [...lengths],
    buildMs: Math.round(buildMs),
    ...perMerchant(before, after, state.size),
  };
}

function phaseTask(): unknown {
  const p = createEligibilityProcessor(DEFAULT_POLICY);
  const r = rng(42);
  const before = collect();
  const task = new Task(p, 0);
  let offset = 0;
  for (let i = 0; i < MERCHANTS; i++) {
    const m = keyOf(i);
    for (let k = 0; k < 4; k++) {
      const at = T_END - Math.floor((3 - k) * 25 * DAY + r() * DAY);
      const rec = eventFor(r, m, at);
      task.accept(
        { topic: rec.topic, partition: 0, offset: offset++, key: null, value: null, timestamp: at },
        { ok: true, record: rec },
        at,
      );
    }
    if (i % 5000 === 4999) task.drain(); // a commit: the changelog encoding is dropped
  }
  task.drain();
  const after = collect();
  return { merchants: task.size, ...perMerchant(before, after, task.size) };
}

function phaseU8(): unknown {
  const p = createEligibilityProcessor(DEFAULT_POLICY);
  const r = rng(42);
  const before = collect();
  const state = new Map<string, Uint8Array>();
  for (let i = 0; i < MERCHANTS; i++) {
    const s = buildState(p, r, keyOf(i));
    state.set(keyOf(i), new Uint8Array(Buffer.from(s, 'latin1')));
  }
  const after = collect();
  return { merchants: state.size, ...perMerchant(before, after, state.size) };
}

function phaseProcess(): unknown {
  const n = Math.min(MERCHANTS, 100_000);
  const p = createEligibilityProcessor(DEFAULT_POLICY);
  const r = rng(7);
  // Full histories: 90 days of a few events a day for every merchant, built before timing.
  const state = new Map<string, EligibilityState>();
  for (let i = 0; i < n; i++) {
    const m = keyOf(i);
    let s: EligibilityState | undefined;
    for (let d = 90; d >= 1; d -= 3) {
      const at = T_END - d * DAY;
      s = p.process(s, eventFor(r, m, at), { now: at }).state ?? s;
    }
    state.set(m, s!);
  }
  // The timed stream: events of random merchants, time moving forward a little per event.
  const STREAM = 400_000;
  const events: InputRecord[] = [];
  for (let k = 0; k < STREAM; k++) events.push(eventFor(r, keyOf(Math.floor(r() * n)), T_END + k * 50));
  let processed = 0;
  let decisions = 0;
  const deadline = Date.now() + (SECONDS * 1000) / 2;
  const t0 = process.hrtime.bigint();
  while (Date.now() < deadline) {
    for (const e of events) {
      const step = p.process(state.get(e.key), e, { now: e.timestamp });
      if (step.state !== undefined) state.set(e.key, step.state);
      p.timerAt!(step.state!);
      decisions += step.outputs.length;
      processed++;
    }
  }
  const processSec = Number(process.hrtime.bigint() - t0) / 1e9;

  const task = new Task(p, 0);
  for (const [k, s] of state) task.restore(k, p.stateSerde.encode(s));
  let offset = 0;
  let viaTask = 0;
  const deadline2 = Date.now() + (SECONDS * 1000) / 2;
  const t1 = process.hrtime.bigint();
  while (Date.now() < deadline2) {
    for (const e of events) {
      task.accept(
        { topic: e.topic, partition: 0, offset: offset++, key: null, value: null, timestamp: e.timestamp },
        { ok: true, record: e },
        e.timestamp,
      );
      viaTask++;
      if (viaTask % 5000 === 0) task.drain(); // includes encoding the changed states for the changelog
    }
  }
  const taskSec = Number(process.hrtime.bigint() - t1) / 1e9;
  return {
    merchants: n,
    process: {
      events: processed,
      seconds: Number(processSec.toFixed(2)),
      eventsPerSecond: Math.round(processed / processSec),
      decisionsPerEvent: Number((decisions / processed).toFixed(4)),
    },
    taskAccept: {
      events: viaTask,
      seconds: Number(taskSec.toFixed(2)),
      eventsPerSecond: Math.round(viaTask / taskSec),
    },
  };
}

const PHASES: Record<string, () => unknown> = {
  map: phaseMap,
  task: phaseTask,
  u8: phaseU8,
  process: phaseProcess,
};

function main(): void {
  const phase = process.argv[2];
  if (phase && PHASES[phase]) {
    if (!gc) throw new Error('run with --expose-gc (npx tsx --expose-gc bench/eligibility-memory.bench.ts)');
    process.stdout.write(JSON.stringify(PHASES[phase]!()));
    return;
  }
  if (!gc) throw new Error('run with --expose-gc (npx tsx --expose-gc bench/eligibility-memory.bench.ts)');
  const results: Record<string, unknown> = {};
  for (const name of Object.keys(PHASES)) {
    console.log(`phase ${name}...`);
    const out = execFileSync(
      process.execPath,
      [...process.execArgv, __filename, name, String(MERCHANTS), String(SECONDS)],
      {
        encoding: 'utf8',
        maxBuffer: 1 << 20,
      },
    );
    results[name] = JSON.parse(out);
    console.log(`  ${JSON.stringify(results[name])}`);
  }
  const report = {
    benchmark: 'eligibility-memory',
    date: new Date().toISOString(),
    machine: machine(),
    stateBytes: STATE_BYTES,
    goalBytesPerMerchant: 500,
    policy: DEFAULT_POLICY.version,
    ...results,
  };
  const dir = join(__dirname, 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'eligibility-memory.json'), `${JSON.stringify(report, null, 2)}\n`);
  console.log(JSON.stringify(report, null, 2));
}

main();
