/**
 * One merchant's eligibility state: a binary record of STATE_BYTES bytes (plus 12 per remembered
 * event id), held as a one-byte (Latin-1) JavaScript string. A string of n Latin-1 characters is one flat heap object
 * of 16 + n bytes, with no backing store, embedder fields or ArrayBuffer behind it (a Uint8Array
 * per merchant costs about 470 bytes of overhead more: README.md, "Why a string"). Strings are
 * immutable, so a step cannot change the state it was given: it copies the record into its own
 * scratch buffer (StateView.load), edits it there and makes a new string (StateView.store).
 *
 * The layout (little-endian; README.md has the table and the approximations):
 *
 *   0  u8      layout version (1)
 *   1  u8      flags (FLAG_*)
 *   2  u8      last emitted grade (bits 0-2)
 *   3  3 bytes currency (ASCII), when FLAG_CURRENCY
 *   6  u16     events in another currency (saturating)
 *   8  u16     today: the merchant clock, days since 2000-01-01
 *  10  u16     first day seen (tenure)
 *  12  u48     last emitted limit_minor
 *  18  u16     tag of the policy version that made the last emitted decision
 *  20  u16     decline reasons of the last emitted decision (bit i: ELIGIBILITY_REASONS[i])
 *  22  30 x i32 daily net sales (captures - refunds - chargebacks), slot = day % 30
 * 142  9 x u32  captures per 10-day block, slot = block % 9
 * 178  9 x u32  refunds per block
 * 214  9 x u32  chargebacks per block
 * 250  9 x u16  orders placed per block
 * 268  9 x u16  orders cancelled per block
 * 286  9 x u8   payouts failed per block
 * 295  3 x 11  loan slots: u32 hash of loan_id, u48 balance, u8 status | LOAN_* bits
 * 328  u32     forgotten through: the latest event time whose id was forgotten (0 = none),
 *              seconds since 2000-01-01 (rounded up)
 * 332          end of the fixed part (STATE_BYTES)
 * 332  n x 12  the event ids remembered (the de-duplication window, README.md): u32 event time
 *              (seconds, rounded up), then the first 8 bytes of the SHA-256 of source and
 *              event_id; a layout 1 id (a 32-bit hash) has 0 there and its hash after it
 *
 * Layout 1 (issue 6) kept the last 8 event ids as 32-bit hashes in 32 bytes at 328; a state of
 * that layout is converted on restore (eligibilityStateSerde.decode).
 */
import { InvariantViolation, type StateSerde } from '../api';

/** The fixed part of a state; each remembered event id adds DEDUP_SLOT_BYTES. */
export const STATE_BYTES = 332;
export const LAYOUT_VERSION = 2;
export const DEDUP_SLOT_BYTES = 12;
/** Layout 1: a fixed 360 bytes, the last 8 event ids as 32-bit hashes at 328. */
const V1_BYTES = 360;
const V1_IDS = 8;

export const DAY_MS = 86_400_000;
/** Day 0 of the merchant clock: 2000-01-01T00:00Z, the earliest timestamp the contract allows. */
export const EPOCH_MS = 946_684_800_000;
/** The last day a u16 day number holds (2179-06-06). */
export const MAX_DAY = 0xffff;

export const DAILY_DAYS = 30;
export const BLOCK_DAYS = 10;
export const BLOCKS = 9;
export const LOAN_SLOTS = 3;
/** The most event ids a window may be configured to hold (48 kB): bounds a state's size. */
export const MAX_DEDUP_EVENTS = 4096;

export const FLAG_CURRENCY = 1;
export const FLAG_DECIDED = 2;
export const FLAG_ELIGIBLE = 4;
export const FLAG_LOAN_OVERFLOW = 8;
export const FLAG_WRITE_OFF = 16;
export const FLAG_SATURATED = 32;
/** Some remembered ids are layout 1's 32-bit hashes (a state restored from layout 1). */
export const FLAG_LEGACY_IDS = 64;

/** Loan slot status byte: bits 0-2 the LoanStatus index, then these bits. */
export const LOAN_REFILL_REACHED = 8;
export const LOAN_REFILL_SIGNALLED = 16;
export const LOAN_FOREIGN = 32;
export const LOAN_USED = 128;
export const LOAN_STATUS_MASK = 7;

const O_VERSION = 0;
const O_FLAGS = 1;
const O_GRADE = 2;
const O_CURRENCY = 3;
const O_OTHER_CCY = 6;
const O_TODAY = 8;
const O_FIRST_DAY = 10;
const O_LAST_LIMIT = 12;
const O_POLICY_TAG = 18;
const O_REASONS = 20;
const O_DAILY = 22;
const O_CAPTURES = O_DAILY + 4 * DAILY_DAYS; // 142
const O_REFUNDS = O_CAPTURES + 4 * BLOCKS; // 178
const O_CHARGEBACKS = O_REFUNDS + 4 * BLOCKS; // 214
const O_ORDERS = O_CHARGEBACKS + 4 * BLOCKS; // 250
const O_CANCELS = O_ORDERS + 2 * BLOCKS; // 268
const O_FAILURES = O_CANCELS + 2 * BLOCKS; // 286
const O_LOANS = O_FAILURES + BLOCKS; // 295
const LOAN_BYTES = 11;
const O_FORGOTTEN = O_LOANS + LOAN_BYTES * LOAN_SLOTS; // 328
const O_IDS = O_FORGOTTEN + 4; // 332
/** Where layout 1 kept its 8 event-id hashes. */
const V1_O_IDS = O_FORGOTTEN;
if (O_IDS !== STATE_BYTES) throw new Error('eligibility state layout is inconsistent');
const MAX_STATE_BYTES = STATE_BYTES + DEDUP_SLOT_BYTES * (MAX_DEDUP_EVENTS + 1);

const I32_MAX = 0x7fffffff;
const U32_MAX = 0xffffffff;
const U16_MAX = 0xffff;
const U8_MAX = 0xff;
const U48_MAX = 2 ** 48 - 1;

/** The state as the runtime holds it: STATE_BYTES + 12n Latin-1 characters, one byte each. */
export type EligibilityState = string & { readonly __eligibilityState: true };

export type BlockCounter = 'captures' | 'refunds' | 'chargebacks' | 'orders' | 'cancels' | 'failures';
const BLOCK_COUNTERS: Record<BlockCounter, { offset: number; width: 1 | 2 | 4; max: number }> = {
  captures: { offset: O_CAPTURES, width: 4, max: U32_MAX },
  refunds: { offset: O_REFUNDS, width: 4, max: U32_MAX },
  chargebacks: { offset: O_CHARGEBACKS, width: 4, max: U32_MAX },
  orders: { offset: O_ORDERS, width: 2, max: U16_MAX },
  cancels: { offset: O_CANCELS, width: 2, max: U16_MAX },
  failures: { offset: O_FAILURES, width: 1, max: U8_MAX },
};

export interface LoanSlot {
  readonly hash: number;
  readonly balanceMinor: number;
  /** Status byte: LoanStatus index | LOAN_* bits. */
  readonly bits: number;
}

/** Floor of a positive or negative quotient, for day and block numbers. */
const floorBy = (n: number, d: number): number => Math.floor(n / d);
const mod = (n: number, m: number): number => ((n % m) + m) % m;

/**
 * A scratch copy of one state that a step reads and edits. One per processor instance: a step
 * loads the state it was given, edits, and stores a new string; nothing survives between steps.
 */
export class StateView {
  private readonly bytes: Buffer;
  private readonly dv: DataView;

  /** Event ids remembered in the scratch copy. */
  private ids = 0;

  constructor() {
    const ab = new ArrayBuffer(MAX_STATE_BYTES);
    this.bytes = Buffer.from(ab);
    this.dv = new DataView(ab);
  }

  /** Copies `s` in; throws InvariantViolation if it is not a state of this layout. */
  load(s: EligibilityState): this {
    const ids = (s.length - STATE_BYTES) / DEDUP_SLOT_BYTES;
    if (!Number.isInteger(ids) || ids < 0 || ids > MAX_DEDUP_EVENTS) {
      throw new InvariantViolation(
        `eligibility state of ${s.length} characters, not ${STATE_BYTES} + ${DEDUP_SLOT_BYTES}n`,
      );
    }
    this.bytes.write(s, 0, s.length, 'latin1');
    this.ids = ids;
    if (this.bytes[O_VERSION] !== LAYOUT_VERSION) {
      throw new InvariantViolation(
        `eligibility state layout ${this.bytes[O_VERSION]}, not ${LAYOUT_VERSION}`,
      );
    }
    return this;
  }

  /** A new, empty state whose clock and tenure start on `day`. */
  init(day: number): this {
    this.bytes.fill(0, 0, STATE_BYTES);
    this.ids = 0;
    this.bytes[O_VERSION] = LAYOUT_VERSION;
    this.dv.setUint16(O_TODAY, day, true);
    this.dv.setUint16(O_FIRST_DAY, day, true);
    return this;
  }

  store(): EligibilityState {
    return this.bytes.toString('latin1', 0, STATE_BYTES + DEDUP_SLOT_BYTES * this.ids) as EligibilityState;
  }

  // ---- header ----

  hasFlag(f: number): boolean {
    return (this.bytes[O_FLAGS]! & f) !== 0;
  }

  setFlag(f: number, on: boolean): void {
    this.bytes[O_FLAGS] = on ? this.bytes[O_FLAGS]! | f : this.bytes[O_FLAGS]! & ~f;
  }

  get currency(): string | null {
    if (!this.hasFlag(FLAG_CURRENCY)) return null;
    return this.bytes.toString('latin1', O_CURRENCY, O_CURRENCY + 3);
  }

  /** Sets the merchant's currency: three ASCII letters (the codec guarantees ISO 4217). */
  setCurrency(code: string): void {
    if (!/^[A-Z]{3}$/.test(code)) throw new InvariantViolation(`currency '${code}' is not three letters`);
    this.bytes.write(code, O_CURRENCY, 3, 'latin1');
    this.setFlag(FLAG_CURRENCY, true);
  }

  get otherCurrencyEvents(): number {
    return this.dv.getUint16(O_OTHER_CCY, true);
  }

  countOtherCurrency(): void {
    const n = this.otherCurrencyEvents;
    if (n < U16_MAX) this.dv.setUint16(O_OTHER_CCY, n + 1, true);
  }

  get today(): number {
    return this.dv.getUint16(O_TODAY, true);
  }

  get firstDay(): number {
    return this.dv.getUint16(O_FIRST_DAY, true);
  }

  noteDay(day: number): void {
    if (day < this.firstDay) this.dv.setUint16(O_FIRST_DAY, day, true);
  }

  get lastGrade(): number {
    return this.bytes[O_GRADE]! & 7;
  }

  get lastLimit(): number {
    return this.getU48(O_LAST_LIMIT);
  }

  get policyTag(): number {
    return this.dv.getUint16(O_POLICY_TAG, true);
  }

  /** Bit mask of the reasons of the last emitted decision, declined ones only (0 when eligible). */
  get lastDeclineMask(): number {
    return this.dv.getUint16(O_REASONS, true);
  }

  /** Records the decision just emitted: what the next one is compared with. */
  recordDecision(
    eligible: boolean,
    grade: number,
    limitMinor: number,
    policyTag: number,
    declineMask: number,
  ): void {
    this.dv.setUint16(O_REASONS, declineMask, true);
    this.setFlag(FLAG_DECIDED, true);
    this.setFlag(FLAG_ELIGIBLE, eligible);
    this.bytes[O_GRADE] = (this.bytes[O_GRADE]! & ~7) | grade;
    this.setU48(O_LAST_LIMIT, Math.min(limitMinor, U48_MAX));
    this.dv.setUint16(O_POLICY_TAG, policyTag, true);
  }

  // ---- the clock and the windows ----

  /**
   * Moves the merchant clock forward to `day` (never back): the daily slots and blocks that the
   * move passes are cleared, so each window holds only its own days.
   */
  advanceTo(day: number): void {
    const today = this.today;
    if (day <= today) return;
    for (let d = today + 1; d <= Math.min(day, today + DAILY_DAYS); d++) {
      this.dv.setInt32(O_DAILY + 4 * mod(d, DAILY_DAYS), 0, true);
    }
    const from = floorBy(today, BLOCK_DAYS);
    const to = floorBy(day, BLOCK_DAYS);
    for (let b = from + 1; b <= Math.min(to, from + BLOCKS); b++) this.clearBlock(mod(b, BLOCKS));
    this.dv.setUint16(O_TODAY, day, true);
  }

  private clearBlock(slot: number): void {
    for (const c of Object.values(BLOCK_COUNTERS)) {
      for (let i = 0; i < c.width; i++) this.bytes[c.offset + slot * c.width + i] = 0;
    }
  }

  /** True when `day` (not after today) is inside the daily window: the last 30 days. */
  inDailyWindow(day: number): boolean {
    return day <= this.today && day > this.today - DAILY_DAYS;
  }

  /** True when `day` (not after today) is inside a kept block: the current one and the 8 before. */
  inBlockWindow(day: number): boolean {
    return day <= this.today && floorBy(day, BLOCK_DAYS) > floorBy(this.today, BLOCK_DAYS) - BLOCKS;
  }

  daily(day: number): number {
    return this.dv.getInt32(O_DAILY + 4 * mod(day, DAILY_DAYS), true);
  }

  /** Adds to a day's net sales, saturating at +-(2^31 - 1) (and flags the state saturated). */
  addDaily(day: number, deltaMinor: number): void {
    const o = O_DAILY + 4 * mod(day, DAILY_DAYS);
    const v = this.dv.getInt32(o, true) + deltaMinor;
    if (v > I32_MAX || v < -I32_MAX) this.setFlag(FLAG_SATURATED, true);
    this.dv.setInt32(o, Math.max(-I32_MAX, Math.min(I32_MAX, v)), true);
  }

  captures(block: number): number {
    return this.dv.getUint32(O_CAPTURES + 4 * mod(block, BLOCKS), true);
  }

  refunds(block: number): number {
    return this.dv.getUint32(O_REFUNDS + 4 * mod(block, BLOCKS), true);
  }

  chargebacks(block: number): number {
    return this.dv.getUint32(O_CHARGEBACKS + 4 * mod(block, BLOCKS), true);
  }

  /** A counter of block number `block` (an absolute block number: day / 10). */
  block(counter: BlockCounter, block: number): number {
    const c = BLOCK_COUNTERS[counter];
    const o = c.offset + c.width * mod(block, BLOCKS);
    return c.width === 4
      ? this.dv.getUint32(o, true)
      : c.width === 2
        ? this.dv.getUint16(o, true)
        : this.bytes[o]!;
  }

  /** Adds to a block counter, saturating at its width's maximum (and flags the state saturated). */
  addBlock(counter: BlockCounter, block: number, delta: number): void {
    const c = BLOCK_COUNTERS[counter];
    const o = c.offset + c.width * mod(block, BLOCKS);
    let v = this.block(counter, block) + delta;
    if (v > c.max) {
      v = c.max;
      this.setFlag(FLAG_SATURATED, true);
    }
    if (c.width === 4) this.dv.setUint32(o, v, true);
    else if (c.width === 2) this.dv.setUint16(o, v, true);
    else this.bytes[o] = v;
  }

  /** True when every block counter is 0: no window holds anything, so the clock alone changes nothing. */
  windowsEmpty(): boolean {
    for (let i = O_CAPTURES; i < O_LOANS; i++) if (this.bytes[i] !== 0) return false;
    return true;
  }

  // ---- loans ----

  loan(i: number): LoanSlot {
    const o = O_LOANS + LOAN_BYTES * i;
    return { hash: this.dv.getUint32(o, true), balanceMinor: this.getU48(o + 4), bits: this.bytes[o + 10]! };
  }

  setLoan(i: number, slot: LoanSlot): void {
    const o = O_LOANS + LOAN_BYTES * i;
    this.dv.setUint32(o, slot.hash, true);
    this.setU48(o + 4, Math.min(slot.balanceMinor, U48_MAX));
    this.bytes[o + 10] = slot.bits;
  }

  // ---- de-duplication: the event ids remembered ----

  /** The latest event time whose id was forgotten (seconds): an unknown event at or before it may be a re-send. */
  get forgottenThrough(): number {
    return this.dv.getUint32(O_FORGOTTEN, true);
  }

  /**
   * The newest event time remembered (seconds; 0 with none). Not stored: the newest id is never
   * forgotten (the horizon is measured from it, and the cap forgets the oldest first).
   */
  get newest(): number {
    let newest = 0;
    for (let i = 0; i < this.ids; i++) newest = Math.max(newest, this.idTime(i));
    return newest;
  }

  get rememberedIds(): number {
    return this.ids;
  }

  /**
   * True when the event id is remembered: `hi`/`lo` are the first 8 bytes of its SHA-256;
   * `legacy()` its layout 1 hash, asked for only while layout 1 ids are held.
   */
  remembers(hi: number, lo: number, legacy: () => number): boolean {
    const old = this.hasFlag(FLAG_LEGACY_IDS) ? legacy() : -1;
    for (let i = 0, o = O_IDS; i < this.ids; i++, o += DEDUP_SLOT_BYTES) {
      const h = this.dv.getUint32(o + 4, true);
      const l = this.dv.getUint32(o + 8, true);
      if ((h === hi && l === lo) || (h === 0 && l === old)) return true;
    }
    return false;
  }

  /**
   * Remembers an event id at `sec`, then forgets the ids more than `horizonSec` older than the
   * newest, and the oldest beyond `maxIds`: each forgotten time raises forgottenThrough, so an
   * unknown event at or before it is known to be possibly a re-send.
   */
  remember(hi: number, lo: number, sec: number, horizonSec: number, maxIds: number): void {
    this.writeId(this.ids++, sec, hi, lo);
    const newest = this.newest; // this one included
    let forgotten = this.forgottenThrough;
    let kept = 0;
    for (let i = 0; i < this.ids; i++) {
      const t = this.idTime(i);
      if (t + horizonSec < newest) forgotten = Math.max(forgotten, t);
      else this.copyId(i, kept++);
    }
    this.ids = kept;
    while (this.ids > maxIds) {
      let oldest = 0;
      for (let i = 1; i < this.ids; i++) if (this.idTime(i) < this.idTime(oldest)) oldest = i;
      forgotten = Math.max(forgotten, this.idTime(oldest));
      this.copyId(this.ids - 1, oldest);
      this.ids--;
    }
    this.dv.setUint32(O_FORGOTTEN, forgotten, true);
    if (this.hasFlag(FLAG_LEGACY_IDS)) {
      let legacy = false;
      for (let i = 0; i < this.ids && !legacy; i++)
        legacy = this.dv.getUint32(O_IDS + DEDUP_SLOT_BYTES * i + 4, true) === 0;
      if (!legacy) this.setFlag(FLAG_LEGACY_IDS, false);
    }
  }

  private idTime(i: number): number {
    return this.dv.getUint32(O_IDS + DEDUP_SLOT_BYTES * i, true);
  }

  private writeId(i: number, sec: number, hi: number, lo: number): void {
    const o = O_IDS + DEDUP_SLOT_BYTES * i;
    this.dv.setUint32(o, sec, true);
    this.dv.setUint32(o + 4, hi, true);
    this.dv.setUint32(o + 8, lo, true);
  }

  private copyId(from: number, to: number): void {
    if (from !== to)
      this.bytes.copy(
        this.bytes,
        O_IDS + DEDUP_SLOT_BYTES * to,
        O_IDS + DEDUP_SLOT_BYTES * from,
        O_IDS + DEDUP_SLOT_BYTES * (from + 1),
      );
  }

  // ---- helpers ----

  private getU48(o: number): number {
    return this.dv.getUint32(o, true) + this.dv.getUint16(o + 4, true) * 2 ** 32;
  }

  private setU48(o: number, v: number): void {
    this.dv.setUint32(o, v % 2 ** 32, true);
    this.dv.setUint16(o + 4, Math.floor(v / 2 ** 32), true);
  }
}

/** Reads the clock of a state without a scratch copy (timerAt runs after every step). */
export function todayOf(s: EligibilityState): number {
  return s.charCodeAt(O_TODAY) | (s.charCodeAt(O_TODAY + 1) << 8);
}

/** True when no block counter of the state is set (see StateView.windowsEmpty). */
export function windowsEmptyOf(s: EligibilityState): boolean {
  for (let i = O_CAPTURES; i < O_LOANS; i++) if (s.charCodeAt(i) !== 0) return false;
  return true;
}

/** The day number of a timestamp: whole days since 2000-01-01T00:00Z. */
export function dayOf(ms: number): number {
  return floorBy(ms - EPOCH_MS, DAY_MS);
}

/** The first instant of a day number. */
export function startOfDay(day: number): number {
  return EPOCH_MS + day * DAY_MS;
}

/** 32-bit FNV-1a of a string's UTF-16 code units, mixed with a seed; never 0 (0 marks an empty slot). */
export function hash32(seed: number, s: string): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h >>>= 0;
  return h === 0 ? 1 : h;
}

/** An event time in whole seconds since 2000-01-01, rounded up (so a forgotten time is never too early). */
export function secondsOf(ms: number): number {
  return Math.min(U32_MAX, Math.max(0, Math.ceil((ms - EPOCH_MS) / 1000)));
}

/**
 * The changelog format is the layout itself: encode is a Latin-1 copy of the string, decode
 * checks length and layout version and copies back. A record of another size or version stops
 * the restore loudly. A layout 1 record (issue 6) is converted: its 8 event-id hashes are kept,
 * as remembered at the end of its merchant's day (the latest they can be), so a re-send of one
 * is still recognised.
 */
export const eligibilityStateSerde: StateSerde<EligibilityState> = {
  encode: (s) => Buffer.from(s, 'latin1'),
  decode(bytes) {
    if (bytes[O_VERSION] === 1 && bytes.length === V1_BYTES) return fromLayout1(bytes);
    const ids = (bytes.length - STATE_BYTES) / DEDUP_SLOT_BYTES;
    if (!Number.isInteger(ids) || ids < 0 || ids > MAX_DEDUP_EVENTS) {
      throw new Error(
        `eligibility state: ${bytes.length} bytes, the layout has ${STATE_BYTES} + ${DEDUP_SLOT_BYTES}n`,
      );
    }
    if (bytes[O_VERSION] !== LAYOUT_VERSION) {
      throw new Error(`eligibility state: unsupported layout version ${bytes[O_VERSION]}`);
    }
    return bytes.toString('latin1') as EligibilityState;
  },
};

function fromLayout1(v1: Buffer): EligibilityState {
  const hashes: number[] = [];
  for (let i = 0; i < V1_IDS; i++) {
    const h = v1.readUInt32LE(V1_O_IDS + 4 * i);
    if (h !== 0) hashes.push(h);
  }
  const out = Buffer.alloc(STATE_BYTES + DEDUP_SLOT_BYTES * hashes.length);
  v1.copy(out, 0, 0, V1_O_IDS);
  out[O_VERSION] = LAYOUT_VERSION;
  out[O_GRADE] = v1[O_GRADE]! & 7; // bits 3-5 were layout 1's ring position
  const endOfDay = secondsOf(EPOCH_MS + (out.readUInt16LE(O_TODAY) + 1) * DAY_MS);
  hashes.forEach((h, i) => {
    const o = O_IDS + DEDUP_SLOT_BYTES * i;
    out.writeUInt32LE(endOfDay, o);
    out.writeUInt32LE(h, o + 8);
  });
  if (hashes.length > 0) out[O_FLAGS] = out[O_FLAGS]! | FLAG_LEGACY_IDS;
  return out.toString('latin1') as EligibilityState;
}
