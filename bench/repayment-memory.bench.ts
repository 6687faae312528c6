/**
 * Repayment memory per merchant and per remembered payout, and the processor-side drain rate of a
 * payout backlog, no I/O (issue 13). Each phase runs in its own child process (so RSS is not
 * polluted by the phase before), with `--expose-gc`, through the runtime's Task exactly as the
 * Kafka runtime drives it (Task.accept with now = the record's time, Task.drain every 5000
 * records, as a commit does):
 *
 *   merchants  N merchants, each with one FUNDED loan that never pays off; GC forced; heap and RSS
 *              growth per merchant.
 *   backlog    the same merchants, then P payouts (SCHEDULED, then SETTLED 12 hours later with the
 *              withheld_minor that was withheld) in time order over 20 days, inside the 35-day
 *              de-duplication horizon so that every payout stays remembered. Records/s through
 *              accept + drain, heap and RSS growth per remembered payout (after GC, over the
 *              merchants alone), entries held, changelog bytes written per record, and the encoded
 *              size of one payout entry as the floor: bytes held in memory per payout vs its bytes.
 *   before     the same backlog through the processor and Task of commit 759007a, the last before
 *              issue 13, whose merchant state keeps every payout inside itself (a git worktree
 *              of that commit in a temp dir, removed at the end). It stops at a time limit and
 *              reports the point reached when the whole backlog would take too long.
 *
 *   npx tsx --expose-gc bench/repayment-memory.bench.ts [merchants, default 2000] [payouts, default 1000000]
 *
 * Prints a table, before and after side by side, and saves bench/results/repayment-memory.json
 * (repayment-memory-<merchants>.json for any other number of merchants than the default).
 * A report, not a test: nothing fails on a slow machine.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getHeapStatistics } from 'node:v8';
import type { InputRecord, OutputRecord, Processor } from '../processors/api';
import { createRepaymentProcessor, repaymentStateSerde, type PayoutRecord } from '../processors/repayment';
import { payoutRecordSerde } from '../processors/repayment/state';
import { entryChangelogKey } from '../runtime/entries';
import { Task, type Decoded, type SourceRecord } from '../runtime/task';
import { TimerQueue } from '../runtime/timers';
import type { LoanEvent, PayoutEvent, PayoutSettlement } from '../schemas/generated/types';
import { TOPICS } from '../schemas/topics';
import { machine } from './machine';

// The parent is called with [merchants] [payouts]; each child with <phase> <merchants> <payouts> [tree].
const ARGS = process.argv.slice(2);
const PHASE_NAMES = ['merchants', 'backlog', 'before'];
const IS_CHILD = PHASE_NAMES.includes(ARGS[0] ?? '');
const MERCHANTS = Number((IS_CHILD ? ARGS[1] : ARGS[0]) ?? 2000);
const PAYOUTS = Number((IS_CHILD ? ARGS[2] : ARGS[1]) ?? 1_000_000);
/** The commit before issue 13: payouts inside the merchant state. */
const BEFORE_COMMIT = '759007a';
const REPO = join(__dirname, '..');

const DAY = 86_400_000;
const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 9, 1); // every loan is funded here
const T_PAYOUTS = T0 + HOUR; // the first payout
const SPAN = 20 * DAY; // SCHEDULEDs spread over 20 days: all inside the 35-day horizon
const SETTLE_LAG = 12 * HOUR;
const BPS = 100;
const DEDUP_HORIZON = 35 * DAY; // the default (processors/repayment/config.ts)
const COMMIT_EVERY = 5000;
/** The "after" phase is expected to finish; the safety limit only keeps a slow machine bounded. */
const AFTER_LIMIT_MS = 240_000;
/** The "before" phase at 1M payouts takes far longer than this; it reports the point reached. */
const BEFORE_LIMIT_MS = 120_000;

const gc = (globalThis as { gc?: () => void }).gc;

function collect(): NodeJS.MemoryUsage {
  for (let i = 0; i < 4; i++) gc!();
  return process.memoryUsage();
}

/** Peak RSS of this process so far, in MB. */
const maxRssMb = (): number => Math.round(process.resourceUsage().maxRSS / 1024);

const keyOf = (i: number): string => `m-${String(i).padStart(6, '0')}`;
const payoutIdOf = (j: number): string => `po-${String(j).padStart(8, '0')}`;
const grossOf = (j: number): number => 100_000 + ((j * 7919) % 400_000);
/** What the processor withholds: floor(gross * bps / 10000), the balance being far larger. */
const withheldOf = (j: number): number => Math.floor((grossOf(j) * BPS) / 10_000);

/** What both the current Task and 759007a's have, as this benchmark drives them. */
interface TaskLike {
  accept(src: SourceRecord, decoded: Decoded, now: number): string;
  tickDue(now: number): number;
  drain(): {
    readonly outputs: readonly OutputRecord[];
    readonly changelog: ReadonlyArray<{ key: string; value: Buffer | null }>;
  };
  readonly size: number;
  keys(): IterableIterator<string>;
}

/** Feeds records to a task with their own offsets per topic, draining every COMMIT_EVERY records. */
class Driver {
  private readonly offsets = new Map<string, number>();
  private sinceDrain = 0;
  accepted = 0;
  rejected = 0;
  drains = 0;
  changelogRecords = 0;
  changelogKeyBytes = 0;
  changelogValueBytes = 0;
  outputs = 0;
  settlementMismatches = 0;
  private lastNow = 0;

  constructor(private readonly task: TaskLike) {}

  feed(record: InputRecord): void {
    const offset = this.offsets.get(record.topic) ?? 0;
    this.offsets.set(record.topic, offset + 1);
    const src: SourceRecord = {
      topic: record.topic,
      partition: 0,
      offset,
      key: null,
      value: null,
      timestamp: record.timestamp,
    };
    if (this.task.accept(src, { ok: true, record }, record.timestamp) === 'rejected') this.rejected++;
    this.accepted++;
    this.lastNow = record.timestamp;
    if (++this.sinceDrain >= COMMIT_EVERY) this.drain();
  }

  /** A commit: timers due, then the changelog encoded (counted) and the flush dropped. */
  drain(): void {
    this.task.tickDue(this.lastNow);
    const flush = this.task.drain();
    for (const c of flush.changelog) {
      this.changelogRecords++;
      this.changelogKeyBytes += Buffer.byteLength(c.key, 'utf8');
      this.changelogValueBytes += c.value?.length ?? 0;
    }
    for (const o of flush.outputs) {
      this.outputs++;
      if (o.topic === TOPICS.settlements && (o.value as PayoutSettlement).mismatch_minor !== 0)
        this.settlementMismatches++;
    }
    this.sinceDrain = 0;
    this.drains++;
  }
}

function fundedRecord(i: number): InputRecord {
  const m = keyOf(i);
  const value: LoanEvent = {
    event_id: `f-${m}`,
    loan_id: `${m}-loan`,
    merchant_id: m,
    type: 'FUNDED',
    occurred_at: T0,
    principal_minor: 100_000_000_000, // never paid off by this backlog
    fee_minor: 1_000_000,
    holdback_rate_bps: BPS,
    minimum_payment_minor: 0,
    period_days: 30,
    currency: 'EUR',
  };
  return { topic: TOPICS.loanEvents, key: m, value, timestamp: T0 };
}

function payoutRecord(j: number, type: 'SCHEDULED' | 'SETTLED'): InputRecord {
  const m = keyOf(j % MERCHANTS);
  const scheduledAt = T_PAYOUTS + Math.floor((j * SPAN) / PAYOUTS);
  const at = type === 'SCHEDULED' ? scheduledAt : scheduledAt + SETTLE_LAG;
  const value: PayoutEvent = {
    event_id: `${type === 'SCHEDULED' ? 's' : 't'}-${j}`,
    merchant_id: m,
    payout_id: payoutIdOf(j),
    type,
    gross_amount_minor: grossOf(j),
    withheld_minor: type === 'SETTLED' ? withheldOf(j) : null,
    currency: 'EUR',
    occurred_at: at,
  };
  return { topic: TOPICS.payouts, key: m, value, timestamp: at };
}

/** The backlog in time order: SCHEDULED of payout j and SETTLED 12 hours later, merged (generated, not held). */
function* backlog(): Generator<InputRecord> {
  let s = 0; // next SCHEDULED
  let t = 0; // next SETTLED
  const scheduledAt = (j: number): number => T_PAYOUTS + Math.floor((j * SPAN) / PAYOUTS);
  while (t < PAYOUTS) {
    if (s < PAYOUTS && scheduledAt(s) <= scheduledAt(t) + SETTLE_LAG) yield payoutRecord(s++, 'SCHEDULED');
    else yield payoutRecord(t++, 'SETTLED');
  }
}

function fundMerchants(driver: Driver): void {
  for (let i = 0; i < MERCHANTS; i++) driver.feed(fundedRecord(i));
  driver.drain();
}

const perUnit = (before: NodeJS.MemoryUsage, after: NodeJS.MemoryUsage, n: number) => ({
  heapUsedBytes: n > 0 ? Math.round((after.heapUsed - before.heapUsed) / n) : null,
  rssBytes: n > 0 ? Math.round((after.rss - before.rss) / n) : null,
  externalBytes: n > 0 ? Math.round((after.external - before.external) / n) : null,
});

function phaseMerchants(): unknown {
  const before = collect();
  const task = new Task(createRepaymentProcessor(), 0);
  const driver = new Driver(task);
  fundMerchants(driver);
  const after = collect();
  return {
    merchants: task.size,
    rejected: driver.rejected,
    stateBytes: repaymentStateSerde.encode(task.get(keyOf(0))!).length,
    changelogBytesPerMerchant: Math.round(
      (driver.changelogKeyBytes + driver.changelogValueBytes) / Math.max(1, task.size),
    ),
    ...perUnit(before, after, task.size),
  };
}

/** Runs the backlog through a task whose merchants are funded; memory over the funded merchants alone. */
function runBacklog(task: TaskLike, limitMs: number, remembered: () => number) {
  const driver = new Driver(task);
  fundMerchants(driver);
  const base = collect();
  const fundingRecords = driver.accepted;
  const bytesBefore = driver.changelogKeyBytes + driver.changelogValueBytes;
  const recordsBefore = driver.changelogRecords;
  const deadline = Date.now() + limitMs;
  let complete = true;
  const t0 = process.hrtime.bigint();
  for (const record of backlog()) {
    driver.feed(record);
    if (driver.accepted % COMMIT_EVERY === 0 && Date.now() > deadline) {
      complete = false;
      break;
    }
  }
  driver.drain();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const peakRssMb = maxRssMb();
  const end = collect();
  const heapStats = getHeapStatistics();
  const records = driver.accepted - fundingRecords;
  const held = remembered();
  const changelogBytes = driver.changelogKeyBytes + driver.changelogValueBytes - bytesBefore;
  return {
    driver,
    base,
    end,
    summary: {
      complete,
      limitSeconds: limitMs / 1000,
      records,
      recordsOfBacklog: 2 * PAYOUTS,
      seconds: Number(seconds.toFixed(2)),
      recordsPerSecond: Math.round(records / seconds),
      rejected: driver.rejected,
      settlementMismatches: driver.settlementMismatches,
      outputs: driver.outputs,
      rememberedPayouts: held,
      perRememberedPayout: perUnit(base, end, held),
      peakRssMb,
      heapUsedMbAtEnd: Math.round(end.heapUsed / 2 ** 20),
      // What RSS holds beside the live heap: pages V8 keeps committed, and its malloc'd memory.
      heapCommittedMbAtEnd: Math.round(heapStats.total_physical_size / 2 ** 20),
      v8MallocedMbAtEnd: Math.round(heapStats.malloced_memory / 2 ** 20),
      rssMbAtEnd: Math.round(end.rss / 2 ** 20),
      changelogRecords: driver.changelogRecords - recordsBefore,
      changelogBytes,
      changelogBytesPerRecord: Math.round(changelogBytes / Math.max(1, records)),
    },
  };
}

function phaseBacklog(): unknown {
  const p = createRepaymentProcessor();
  const task = new Task(p, 0);
  const run = runBacklog(task, AFTER_LIMIT_MS, () => task.entryCount);
  // One payout's entry: its serde bytes (the floor) and its whole changelog record (key, expiry header).
  const key = keyOf(0);
  const [id, sample] = task.entriesOf(key).entries().next().value as [string, PayoutRecord];
  const entryBytes = payoutRecordSerde.encode(sample).length;
  const entryChangelogBytes = Buffer.byteLength(entryChangelogKey(key, id), 'utf8') + 9 + entryBytes;
  const heapPerPayout = run.summary.perRememberedPayout.heapUsedBytes ?? 0;

  // Control: the same records decoded into one Map<string, PayoutRecord> (fresh ids, objects and
  // withholdings): what holding them decoded would cost, the layout runtime/entries.ts avoids.
  const baseControl = collect();
  const copies = new Map<string, PayoutRecord>();
  for (const k of task.keys()) {
    for (const [pid, r] of task.entriesOf(k)) {
      copies.set(payoutIdOf(Number(pid.slice(3))), {
        ...r,
        withholdings: r.withholdings.map((w) => ({ ...w })),
      });
    }
  }
  const endControl = collect();
  const recordsOnly = perUnit(baseControl, endControl, copies.size).heapUsedBytes ?? 0;
  // Control: one expiry time per payout in a TimerQueue (ids shared, not counted): what a heap
  // of expiries would cost, against the flat sorted arrays runtime/entries.ts keeps.
  const expiry = new TimerQueue();
  for (const [pid, r] of copies) expiry.set(pid, r.lastEventAt + DEDUP_HORIZON);
  const endExpiry = collect();
  const expiryOnly = perUnit(endControl, endExpiry, expiry.size).heapUsedBytes ?? 0;
  copies.clear();

  return {
    merchants: task.size,
    entryCount: task.entryCount,
    ...run.summary,
    payoutEntryBytes: entryBytes,
    payoutEntryChangelogBytes: entryChangelogBytes,
    heapBytesPerPayoutOverEncoded: Number((heapPerPayout / entryBytes).toFixed(1)),
    control: {
      decodedRecordsInOneMapHeapBytesPerPayout: recordsOnly,
      timerQueueOfExpiriesHeapBytesPerPayout: expiryOnly,
    },
    merchantStateBytesAtEnd: repaymentStateSerde.encode(task.get(key)!).length,
  };
}

/** 759007a's state: the payouts inside it. */
interface BeforeState {
  payouts: Map<string, unknown>;
}

async function phaseBefore(tree: string): Promise<unknown> {
  const repayment = (await import(join(tree, 'processors/repayment/index.ts'))) as {
    createRepaymentProcessor: () => Processor<BeforeState>;
    repaymentStateSerde: { encode(s: BeforeState): Buffer };
  };
  const runtime = (await import(join(tree, 'runtime/task.ts'))) as {
    Task: new (
      p: Processor<BeforeState>,
      partition: number,
    ) => TaskLike & {
      get(key: string): BeforeState | undefined;
    };
  };
  const task = new runtime.Task(repayment.createRepaymentProcessor(), 0);
  const remembered = (): number => {
    let n = 0;
    for (const k of task.keys()) n += task.get(k)?.payouts.size ?? 0;
    return n;
  };
  const run = runBacklog(task, BEFORE_LIMIT_MS, remembered);
  const state = task.get(keyOf(0))!;
  const stateBytes = repayment.repaymentStateSerde.encode(state).length;
  return {
    commit: BEFORE_COMMIT,
    merchants: task.size,
    ...run.summary,
    merchantStateBytesAtEnd: stateBytes,
    merchantStatePayoutsAtEnd: state.payouts.size,
    stateBytesPerPayout: Number((stateBytes / Math.max(1, state.payouts.size)).toFixed(1)),
  };
}

async function child(phase: string): Promise<void> {
  if (!gc) throw new Error('run with --expose-gc (npx tsx --expose-gc bench/repayment-memory.bench.ts)');
  const out =
    phase === 'merchants'
      ? phaseMerchants()
      : phase === 'backlog'
        ? phaseBacklog()
        : await phaseBefore(ARGS[3]!);
  process.stdout.write(JSON.stringify(out));
}

function runChild(phase: string, extra: string[] = []): Record<string, unknown> {
  console.log(`phase ${phase}...`);
  const t0 = Date.now();
  const out = execFileSync(
    process.execPath,
    [...process.execArgv, __filename, phase, String(MERCHANTS), String(PAYOUTS), ...extra],
    { encoding: 'utf8', maxBuffer: 1 << 20, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const result = JSON.parse(out) as Record<string, unknown>;
  console.log(`  (${((Date.now() - t0) / 1000).toFixed(1)} s) ${JSON.stringify(result)}`);
  return result;
}

/** A worktree of the commit before issue 13 in a temp dir, with this tree's node_modules; removed by the caller. */
function beforeTree(): { tree: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `holdback-${BEFORE_COMMIT}-`));
  const tree = join(dir, 'tree');
  const remove = (): void => {
    try {
      execFileSync('git', ['-C', REPO, 'worktree', 'remove', '--force', tree], { stdio: 'ignore' });
    } catch {
      // not added, or already gone: prune below
    }
    rmSync(dir, { recursive: true, force: true });
    execFileSync('git', ['-C', REPO, 'worktree', 'prune'], { stdio: 'ignore' });
  };
  try {
    execFileSync('git', ['-C', REPO, 'worktree', 'add', '--detach', tree, BEFORE_COMMIT], {
      stdio: 'ignore',
    });
    symlinkSync(realpathSync(join(REPO, 'node_modules')), join(tree, 'node_modules'));
  } catch (e) {
    remove();
    throw e;
  }
  return { tree, remove };
}

type Row = Record<string, string | number | null | undefined>;

function table(
  merchants: Record<string, unknown>,
  after: Record<string, unknown>,
  before: Record<string, unknown> | undefined,
) {
  const mem = (r: Record<string, unknown> | undefined) =>
    (r?.['perRememberedPayout'] ?? {}) as Record<string, number | null>;
  const control = (after['control'] ?? {}) as Record<string, number>;
  const rows: Record<string, Row> = {};
  const row = (name: string, b: unknown, a: unknown): void => {
    rows[name] = { before: b as Row[string], after: a as Row[string] };
  };
  row('complete', before?.['complete'], after['complete']);
  row('records (of 2 per payout)', before?.['records'], after['records']);
  row('seconds', before?.['seconds'], after['seconds']);
  row('records/s (accept + drain)', before?.['recordsPerSecond'], after['recordsPerSecond']);
  row('remembered payouts', before?.['rememberedPayouts'], after['rememberedPayouts']);
  row('heap bytes / payout', mem(before)['heapUsedBytes'], mem(after)['heapUsedBytes']);
  row('  control: held decoded instead', 'n/a', control['decodedRecordsInOneMapHeapBytesPerPayout']);
  row('  control: expiries in a TimerQueue', 'n/a', control['timerQueueOfExpiriesHeapBytesPerPayout']);
  row('RSS bytes / payout', mem(before)['rssBytes'], mem(after)['rssBytes']);
  row('encoded bytes / payout', before?.['stateBytesPerPayout'], after['payoutEntryBytes']);
  row('peak RSS MB', before?.['peakRssMb'], after['peakRssMb']);
  row('heap MB at end (after GC)', before?.['heapUsedMbAtEnd'], after['heapUsedMbAtEnd']);
  row('heap committed MB at end', before?.['heapCommittedMbAtEnd'], after['heapCommittedMbAtEnd']);
  row('RSS MB at end (after GC)', before?.['rssMbAtEnd'], after['rssMbAtEnd']);
  row('changelog bytes / record', before?.['changelogBytesPerRecord'], after['changelogBytesPerRecord']);
  row('changelog MB written', mb(before?.['changelogBytes']), mb(after['changelogBytes']));
  row('merchant state bytes at end', before?.['merchantStateBytesAtEnd'], after['merchantStateBytesAtEnd']);
  row('heap bytes / merchant (funded)', 'n/a', merchants['heapUsedBytes']);
  row('RSS bytes / merchant (funded)', 'n/a', merchants['rssBytes']);
  return rows;
}

const mb = (bytes: unknown): number | undefined =>
  typeof bytes === 'number' ? Math.round(bytes / 2 ** 20) : undefined;

function main(): void {
  if (!gc) throw new Error('run with --expose-gc (npx tsx --expose-gc bench/repayment-memory.bench.ts)');
  const started = Date.now();
  const merchants = runChild('merchants');
  const after = runChild('backlog');
  let before: Record<string, unknown> | undefined;
  let beforeError: string | undefined;
  const { tree, remove } = beforeTree();
  try {
    before = runChild('before', [tree]);
  } catch (e) {
    // Reported, not fatal: the before/after is a reference, the figures of this tree stand alone.
    beforeError = e instanceof Error ? e.message : String(e);
    console.log(`  phase before failed: ${beforeError}`);
  } finally {
    remove();
  }
  const rows = table(merchants, after, before);
  console.table(rows);
  if (before && before['complete'] === false) {
    console.log(
      `before (${BEFORE_COMMIT}) stopped at its ${BEFORE_LIMIT_MS / 1000} s limit after ${String(before['records'])} ` +
        `of ${2 * PAYOUTS} records: its rate and memory are at that point (${String(before['rememberedPayouts'])} payouts remembered)`,
    );
  }
  if (after['complete'] === false)
    console.log(`after stopped at its ${AFTER_LIMIT_MS / 1000} s limit: figures are at that point`);
  const report = {
    benchmark: 'repayment-memory',
    date: new Date().toISOString(),
    machine: machine(),
    merchants: MERCHANTS,
    payouts: PAYOUTS,
    backlog: {
      spanDays: SPAN / DAY,
      settleLagHours: SETTLE_LAG / HOUR,
      holdbackRateBps: BPS,
      commitEveryRecords: COMMIT_EVERY,
    },
    runSeconds: Math.round((Date.now() - started) / 1000),
    phases: { merchants, after, before: before ?? { error: beforeError } },
    table: rows,
  };
  const dir = join(__dirname, 'results');
  mkdirSync(dir, { recursive: true });
  const file = MERCHANTS === 2000 ? 'repayment-memory.json' : `repayment-memory-${MERCHANTS}.json`;
  writeFileSync(join(dir, file), `${JSON.stringify(report, null, 2)}\n`);
  console.log(`saved bench/results/${file} (${report.runSeconds} s)`);
}

if (IS_CHILD) {
  child(ARGS[0]!).catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main();
}
