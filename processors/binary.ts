/**
 * A small, strict binary writer and reader for processor state in changelog topics: unsigned
 * LEB128 varints for the non-negative safe integers state is made of (timestamps, minor units,
 * counters), length-prefixed UTF-8 strings, and one-byte enum indexes. Varints are done with
 * arithmetic, not 32-bit bitwise operators, so every value up to 2^53 - 1 round-trips.
 *
 * A value that cannot be written (negative, fractional, unsafe) is a broken invariant, and bytes
 * that do not read back cleanly (truncated, trailing, out of range) throw: a changelog record is
 * either restored exactly or the restore stops loudly.
 */
import { InvariantViolation } from './api';

export class BinaryWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initialBytes = 256) {
    this.buf = Buffer.allocUnsafe(initialBytes);
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  byte(v: number): this {
    this.room(1);
    this.buf[this.pos++] = v;
    return this;
  }

  /** A non-negative safe integer as an unsigned LEB128 varint (1 byte below 128, 7 for a timestamp). */
  uint(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0)
      throw new InvariantViolation(`cannot write ${v} as an unsigned varint`);
    this.room(8);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    this.buf[this.pos++] = v;
    return this;
  }

  /** null as 0, a value as value + 1. */
  nullableUint(v: number | null): this {
    return this.uint(v === null ? 0 : v + 1);
  }

  string(v: string): this {
    const n = Buffer.byteLength(v, 'utf8');
    this.uint(n);
    this.room(n);
    this.pos += this.buf.write(v, this.pos, 'utf8');
    return this;
  }

  /** One byte: the index of `v` in `values`, or 0 for null when the enum is nullable (then index + 1). */
  enumOf<T extends string>(values: readonly T[], v: T | null, nullable = false): this {
    const i = v === null ? -1 : values.indexOf(v);
    if (v !== null && i < 0) throw new InvariantViolation(`'${v}' is not one of ${values.join(', ')}`);
    if (v === null && !nullable) throw new InvariantViolation(`null for a non-nullable enum`);
    return this.byte(nullable ? i + 1 : i);
  }

  /** Starts over, keeping the buffer: a serde can reuse one writer (encoding is synchronous). */
  reset(): this {
    this.pos = 0;
    return this;
  }

  /** The bytes written, copied into a buffer of exactly that size. */
  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

export class BinaryReader {
  private pos = 0;

  constructor(
    private readonly buf: Buffer,
    private readonly what: string,
  ) {}

  private fail(why: string): never {
    throw new Error(`${this.what}: ${why} at byte ${this.pos} of ${this.buf.length}`);
  }

  byte(): number {
    if (this.pos >= this.buf.length) this.fail('truncated');
    return this.buf[this.pos++]!;
  }

  uint(): number {
    let v = 0;
    let scale = 1;
    for (;;) {
      const b = this.byte();
      v += (b & 0x7f) * scale;
      if (b < 0x80) break;
      scale *= 0x80;
      if (scale > 2 ** 56) this.fail('varint too long');
    }
    if (!Number.isSafeInteger(v)) this.fail('varint beyond 2^53 - 1');
    return v;
  }

  nullableUint(): number | null {
    const v = this.uint();
    return v === 0 ? null : v - 1;
  }

  string(): string {
    const n = this.uint();
    if (n > this.buf.length - this.pos) this.fail(`string of ${n} bytes`);
    const s = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  enumOf<T extends string>(values: readonly T[], nullable: true): T | null;
  enumOf<T extends string>(values: readonly T[], nullable?: false): T;
  enumOf<T extends string>(values: readonly T[], nullable = false): T | null {
    const b = this.byte();
    if (nullable && b === 0) return null;
    const v = values[nullable ? b - 1 : b];
    if (v === undefined) this.fail(`enum index ${b}`);
    return v;
  }

  /** Throws unless every byte was read. */
  end(): void {
    if (this.pos !== this.buf.length) this.fail('trailing bytes');
  }
}
