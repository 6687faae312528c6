/**
 * A task's entries (processors/api.ts, EntryStore): many small records per state key, each its own
 * changelog record, so that remembering more under a key never makes its state, or the bytes
 * written when it changes, larger. Kafka Streams would give such records their own store; here they
 * share the task's changelog under keys that cannot collide with a state key (those never start
 * with NUL): NUL, 'e', the key's length, ':', the key, the entry id.
 *
 * Memory: an entry is held as its changelog bytes in a one-byte (Latin-1) string, about 16 bytes
 * more than its encoding, and decoded when a step reads it; a decoded record costs several times
 * that (bench/repayment-memory.bench.ts). Expiry is per key and on the processor's clock for that
 * key: a step reports how far its clock has moved (StepResult.expireEntriesBefore) and the key's
 * entries that expired before it are dropped, earliest first, from a sorted index of two flat
 * arrays, so nothing scans a key's entries.
 */
import type { EntryChange, EntryStore, StateSerde } from '../processors/api';

const PREFIX = '\u0000e';
const NO_EXPIRY = 0;
const EXPIRES = 1;
/** Flag byte, then the expiry as a float64 (timestamps are safe integers). */
const HEAD_BYTES = 9;

export function entryChangelogKey(key: string, id: string): string {
  return `${PREFIX}${key.length}:${key}${id}`;
}

/** The state key and entry id of an entry's changelog key, or undefined for any other key. */
export function parseEntryChangelogKey(k: string): { key: string; id: string } | undefined {
  if (!k.startsWith(PREFIX)) return undefined;
  const colon = k.indexOf(':', PREFIX.length);
  const length = Number(k.slice(PREFIX.length, colon));
  if (colon < 0 || !Number.isSafeInteger(length)) {
    throw new Error(`changelog: malformed entry key ${JSON.stringify(k)}`);
  }
  const start = colon + 1;
  return { key: k.slice(start, start + length), id: k.slice(start + length) };
}

/** An entry's expiry from its held form (undefined: none). */
function expiryOf(held: string): number | undefined {
  if (held.charCodeAt(0) !== EXPIRES) return undefined;
  return Buffer.from(held.slice(1, HEAD_BYTES), 'latin1').readDoubleBE(0);
}

interface KeyEntries {
  /** id -> the entry's changelog bytes as a Latin-1 string (flag, expiry, serde bytes). */
  readonly held: Map<string, string>;
  /** Expiries in ascending order with their ids, from `head` on; stale pairs are skipped. */
  at: number[];
  ids: string[];
  head: number;
}

const EMPTY: EntryStore<never> = { get: () => undefined };

export class Entries<E> {
  private readonly byKey = new Map<string, KeyEntries>();
  private count = 0;
  /** Changelog keys written or deleted since the last drain. */
  private dirty = new Map<string, { key: string; id: string }>();

  constructor(
    private readonly serde: StateSerde<E>,
    /** Told of every entry an expiry drops (a write or a delete is the caller's own change). */
    private readonly onExpire?: (key: string, id: string) => void,
  ) {}

  get size(): number {
    return this.count;
  }

  /** Entries changed since the last drain. */
  get pending(): number {
    return this.dirty.size;
  }

  /** The read-only view a step of `key` gets. */
  view(key: string): EntryStore<E> {
    const k = this.byKey.get(key);
    if (!k) return EMPTY as EntryStore<E>;
    return {
      get: (id) => {
        const held = k.held.get(id);
        return held === undefined ? undefined : this.decode(held);
      },
    };
  }

  /** The key's entries, decoded (tests and tools). */
  of(key: string): ReadonlyMap<string, E> {
    const out = new Map<string, E>();
    for (const [id, held] of this.byKey.get(key)?.held ?? []) out.set(id, this.decode(held));
    return out;
  }

  apply(key: string, changes: readonly EntryChange<E>[] | undefined, expireBefore: number | undefined): void {
    for (const c of changes ?? []) {
      this.set(key, c.id, c.value === undefined ? undefined : this.encode(c.value, c.expiresAt));
      this.dirty.set(entryChangelogKey(key, c.id), { key, id: c.id });
    }
    if (expireBefore !== undefined) this.expire(key, expireBefore);
  }

  /** One changelog record, from a restore; the entry decoded (undefined: deleted). */
  restore(key: string, id: string, bytes: Buffer | null): E | undefined {
    if (bytes === null) {
      this.set(key, id, undefined);
      return undefined;
    }
    const held = bytes.toString('latin1');
    const value = this.decode(held); // a bad record is refused now, not at use
    this.set(key, id, held);
    return value;
  }

  /** The changelog records of every entry changed since the last drain (null: deleted). */
  drain(): Array<{ key: string; value: Buffer | null }> {
    const out: Array<{ key: string; value: Buffer | null }> = [];
    for (const [changelogKey, { key, id }] of this.dirty) {
      const held = this.byKey.get(key)?.held.get(id);
      out.push({ key: changelogKey, value: held === undefined ? null : Buffer.from(held, 'latin1') });
    }
    this.dirty = new Map();
    return out;
  }

  private encode(value: E, expiresAt: number | undefined): string {
    const body = this.serde.encode(value);
    const head = Buffer.alloc(expiresAt === undefined ? 1 : HEAD_BYTES);
    head[0] = expiresAt === undefined ? NO_EXPIRY : EXPIRES;
    if (expiresAt !== undefined) head.writeDoubleBE(expiresAt, 1);
    return head.toString('latin1') + body.toString('latin1');
  }

  private decode(held: string): E {
    const skip = held.charCodeAt(0) === EXPIRES ? HEAD_BYTES : 1;
    return this.serde.decode(Buffer.from(held.slice(skip), 'latin1'));
  }

  private set(key: string, id: string, held: string | undefined): void {
    let k = this.byKey.get(key);
    if (held === undefined) {
      if (k) this.remove(key, k, id);
      return;
    }
    if (!k) this.byKey.set(key, (k = { held: new Map(), at: [], ids: [], head: 0 }));
    if (!k.held.has(id)) this.count++;
    k.held.set(id, held);
    const at = expiryOf(held);
    if (at !== undefined) index(k, at, id);
  }

  /** Drops the key's entries whose expiry is before `before`, earliest first. */
  private expire(key: string, before: number): void {
    const k = this.byKey.get(key);
    if (!k) return;
    while (k.head < k.at.length && k.at[k.head]! < before) {
      const at = k.at[k.head]!;
      const id = k.ids[k.head]!;
      k.head++;
      const held = k.held.get(id);
      // A pair is stale when the entry was rewritten with another expiry, or deleted.
      if (held === undefined || expiryOf(held) !== at) continue;
      this.remove(key, k, id);
      this.dirty.set(entryChangelogKey(key, id), { key, id });
      this.onExpire?.(key, id);
      if (!this.byKey.has(key)) return;
    }
    if (k.head > 64 && k.head * 2 > k.at.length) {
      k.at = k.at.slice(k.head);
      k.ids = k.ids.slice(k.head);
      k.head = 0;
    }
  }

  private remove(key: string, k: KeyEntries, id: string): void {
    if (!k.held.delete(id)) return;
    this.count--;
    if (k.held.size === 0) this.byKey.delete(key);
  }
}

/** Adds (at, id) to the key's expiry index: appended when in order (the usual case), else inserted. */
function index(k: KeyEntries, at: number, id: string): void {
  const n = k.at.length;
  if (n === k.head || k.at[n - 1]! <= at) {
    k.at.push(at);
    k.ids.push(id);
    return;
  }
  let lo = k.head;
  let hi = n;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (k.at[mid]! <= at) lo = mid + 1;
    else hi = mid;
  }
  k.at.splice(lo, 0, at);
  k.ids.splice(lo, 0, id);
}
