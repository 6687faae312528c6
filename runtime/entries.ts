/**
 * A task's entries (processors/api.ts, EntryStore): many small records per state key, each its own
 * changelog record, so that remembering more under a key never makes its state, or the bytes
 * written when it changes, larger. Kafka Streams would give such records their own store; here they
 * share the task's changelog under keys that cannot collide with a state key (those never start
 * with NUL): NUL, 'e', the key's length, ':', the key, the entry id.
 *
 * Expiry is per key and on the processor's clock for that key: a step reports how far its clock
 * has moved (StepResult.expireEntriesBefore) and the key's entries that expired before it are
 * dropped, earliest first, from a heap, so nothing scans a key's entries.
 */
import type { EntryChange, EntryStore, StateSerde } from '../processors/api';
import { TimerQueue } from './timers';

const PREFIX = '\u0000e';
const NO_EXPIRY = 0;
const EXPIRES = 1;

export function entryChangelogKey(key: string, id: string): string {
  return `${PREFIX}${key.length}:${key}${id}`;
}

/** The state key and entry id of an entry's changelog key, or undefined for any other key. */
export function parseEntryChangelogKey(k: string): { key: string; id: string } | undefined {
  if (!k.startsWith(PREFIX)) return undefined;
  const colon = k.indexOf(':', PREFIX.length);
  const length = Number(k.slice(PREFIX.length, colon));
  if (colon < 0 || !Number.isSafeInteger(length))
    throw new Error(`changelog: malformed entry key ${JSON.stringify(k)}`);
  const start = colon + 1;
  return { key: k.slice(start, start + length), id: k.slice(start + length) };
}

interface KeyEntries<E> {
  readonly values: Map<string, E>;
  /** Entries with an expiry, by id (TimerQueue: one time per id, popped earliest first). */
  expiry?: TimerQueue;
}

const EMPTY: EntryStore<never> = { get: () => undefined };

export class Entries<E> {
  private readonly byKey = new Map<string, KeyEntries<E>>();
  private count = 0;
  /** Changelog keys written or deleted since the last drain. */
  private dirty = new Map<string, { key: string; id: string }>();

  constructor(private readonly serde: StateSerde<E>) {}

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
    return k ? { get: (id) => k.values.get(id) } : (EMPTY as EntryStore<E>);
  }

  get(key: string, id: string): E | undefined {
    return this.byKey.get(key)?.values.get(id);
  }

  /** The key's entries (tests and tools). */
  of(key: string): ReadonlyMap<string, E> {
    return this.byKey.get(key)?.values ?? new Map<string, E>();
  }

  apply(key: string, changes: readonly EntryChange<E>[] | undefined, expireBefore: number | undefined): void {
    for (const c of changes ?? []) {
      this.set(key, c.id, c.value, c.expiresAt);
      this.dirty.set(entryChangelogKey(key, c.id), { key, id: c.id });
    }
    if (expireBefore === undefined) return;
    const k = this.byKey.get(key);
    if (!k?.expiry) return;
    for (const id of k.expiry.popDue(expireBefore - 1)) {
      this.remove(key, k, id);
      this.dirty.set(entryChangelogKey(key, id), { key, id });
    }
  }

  /** One changelog record, from a restore. */
  restore(key: string, id: string, bytes: Buffer | null): void {
    if (bytes === null) {
      this.set(key, id, undefined, undefined);
      return;
    }
    const expires = bytes[0] === EXPIRES;
    const expiresAt = expires ? bytes.readDoubleBE(1) : undefined;
    this.set(key, id, this.serde.decode(bytes.subarray(expires ? 9 : 1)), expiresAt);
  }

  /** The changelog records of every entry changed since the last drain (null: deleted). */
  drain(): Array<{ key: string; value: Buffer | null }> {
    const out: Array<{ key: string; value: Buffer | null }> = [];
    for (const [changelogKey, { key, id }] of this.dirty) {
      const k = this.byKey.get(key);
      const value = k?.values.get(id);
      out.push({
        key: changelogKey,
        value: value === undefined ? null : this.encode(value, k!.expiry?.get(id)),
      });
    }
    this.dirty = new Map();
    return out;
  }

  private encode(value: E, expiresAt: number | undefined): Buffer {
    const body = this.serde.encode(value);
    const head = Buffer.alloc(expiresAt === undefined ? 1 : 9);
    head[0] = expiresAt === undefined ? NO_EXPIRY : EXPIRES;
    if (expiresAt !== undefined) head.writeDoubleBE(expiresAt, 1);
    return Buffer.concat([head, body]);
  }

  private set(key: string, id: string, value: E | undefined, expiresAt: number | undefined): void {
    let k = this.byKey.get(key);
    if (value === undefined) {
      if (k) this.remove(key, k, id);
      return;
    }
    if (!k) this.byKey.set(key, (k = { values: new Map() }));
    if (!k.values.has(id)) this.count++;
    k.values.set(id, value);
    if (expiresAt !== undefined) (k.expiry ??= new TimerQueue()).set(id, expiresAt);
    else k.expiry?.delete(id);
  }

  private remove(key: string, k: KeyEntries<E>, id: string): void {
    if (!k.values.delete(id)) return;
    this.count--;
    k.expiry?.delete(id);
    if (k.values.size === 0) this.byKey.delete(key);
  }
}
