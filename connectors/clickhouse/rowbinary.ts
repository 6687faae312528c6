/**
 * The sink's rows in ClickHouse's RowBinary format, column by column in the order and with the
 * types the server itself reports (`DESCRIBE TABLE`), so the encoding cannot drift from a
 * migration. Written here rather than taken from @clickhouse/client, whose insert() only streams
 * JSON and text formats row by row: one buffer per INSERT with no field names and no escaping
 * is what lets the sink keep up with a backlog (docs/performance.md, "ClickHouse sink").
 *
 * Only the types the raw tables use are supported; any other stops start-up naming the column.
 * A value that does not fit its column (a missing non-Nullable value, a fraction or an unsafe
 * integer in an integer column) throws: rows come from rows.ts, so that is a bug, not bad input.
 */
import type { Row } from './rows';

type Value = Row[string] | undefined;

/** Writes one value of a column type; `w` grows as needed. */
type Encode = (w: BinaryWriter, v: Value, column: string) => void;

export interface DescribedColumn {
  readonly name: string;
  readonly type: string;
  /** '' for an ordinary column; DEFAULT, MATERIALIZED and ALIAS columns are left to the server. */
  readonly default_type: string;
}

export interface TableLayout {
  readonly table: string;
  /** The columns an INSERT lists, in this order. */
  readonly columns: readonly string[];
  readonly encoders: readonly Encode[];
}

export class UnsupportedColumnType extends Error {
  override readonly name = 'UnsupportedColumnType';
}

/** A growable buffer of little-endian values. */
export class BinaryWriter {
  private buf: Buffer;
  pos = 0;

  constructor(initial = 1 << 16) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  varUInt(v: number): void {
    this.ensure(10);
    while (v >= 0x80) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
  }

  string(s: string): void {
    const n = s.length;
    // Most strings here are short ASCII ids: copied byte by byte, a Buffer.write costs more.
    if (n < 0x80) {
      this.ensure(n + 1);
      const buf = this.buf;
      let pos = this.pos + 1;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[pos++] = c;
      }
      if (i === n) {
        buf[this.pos] = n;
        this.pos = pos;
        return;
      }
    }
    // Otherwise reserve the worst case (3 bytes per UTF-16 unit) and assume a one-byte length
    // prefix; move the bytes when the length needs more.
    const max = n * 3;
    this.ensure(max + 10);
    const start = this.pos;
    const written = this.buf.write(s, start + 1, 'utf8');
    if (written < 0x80) {
      this.buf[start] = written;
      this.pos = start + 1 + written;
      return;
    }
    let prefix = 0;
    for (let v = written; v >= 0x80; v = Math.floor(v / 128)) prefix++;
    this.buf.copy(this.buf, start + 1 + prefix, start + 1, start + 1 + written);
    this.pos = start;
    this.varUInt(written);
    this.pos += written;
  }

  int(v: number, bytes: 1 | 2 | 4, signed: boolean): void {
    this.ensure(bytes);
    if (signed) this.buf.writeIntLE(v, this.pos, bytes);
    else this.buf.writeUIntLE(v, this.pos, bytes);
    this.pos += bytes;
  }

  /** A 64-bit integer from a safe JavaScript integer (|v| <= 2^53 - 1), two's complement. */
  int64(v: number): void {
    this.ensure(8);
    const buf = this.buf;
    const p = this.pos;
    const lo = v >>> 0;
    const hi = Math.floor(v / 4294967296) >>> 0;
    buf[p] = lo;
    buf[p + 1] = lo >>> 8;
    buf[p + 2] = lo >>> 16;
    buf[p + 3] = lo >>> 24;
    buf[p + 4] = hi;
    buf[p + 5] = hi >>> 8;
    buf[p + 6] = hi >>> 16;
    buf[p + 7] = hi >>> 24;
    this.pos = p + 8;
  }

  float64(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  float32(v: number): void {
    this.ensure(4);
    this.buf.writeFloatLE(v, this.pos);
    this.pos += 4;
  }

  /** The bytes written so far (a view, valid until the next write). */
  bytes(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
}

function mismatch(column: string, type: string, v: Value): Error {
  const shown = typeof v === 'string' ? `"${v.slice(0, 40)}"` : JSON.stringify(v);
  return new TypeError(`column ${column} (${type}) cannot hold ${shown}`);
}

const INTEGERS: Record<string, { bytes: 1 | 2 | 4 | 8; signed: boolean }> = {
  Int8: { bytes: 1, signed: true },
  Int16: { bytes: 2, signed: true },
  Int32: { bytes: 4, signed: true },
  Int64: { bytes: 8, signed: true },
  UInt8: { bytes: 1, signed: false },
  UInt16: { bytes: 2, signed: false },
  UInt32: { bytes: 4, signed: false },
  UInt64: { bytes: 8, signed: false },
};

/** The encoder of a ClickHouse type name as DESCRIBE prints it. */
export function encoderOf(type: string): Encode {
  const inner = /^(Nullable|Array)\((.*)\)$/.exec(type);
  if (inner) {
    const of = encoderOf(inner[2]!);
    if (inner[1] === 'Nullable')
      return (w, v, column) => {
        if (v === null || v === undefined) return w.u8(1);
        w.u8(0);
        of(w, v, column);
      };
    return (w, v, column) => {
      if (!Array.isArray(v)) throw mismatch(column, type, v);
      w.varUInt(v.length);
      for (const item of v as Value[]) of(w, item, column);
    };
  }
  if (type === 'String')
    return (w, v, column) => {
      if (typeof v !== 'string') throw mismatch(column, type, v);
      w.string(v);
    };
  if (type === 'Float64' || type === 'Float32')
    return (w, v, column) => {
      if (typeof v !== 'number') throw mismatch(column, type, v);
      if (type === 'Float64') w.float64(v);
      else w.float32(v);
    };
  const int = INTEGERS[type];
  if (int) {
    const min = int.signed ? -(2 ** (int.bytes * 8 - 1)) : 0;
    const max = int.bytes === 8 ? Number.MAX_SAFE_INTEGER : 2 ** (int.bytes * 8 - (int.signed ? 1 : 0)) - 1;
    return (w, v, column) => {
      if (
        typeof v !== 'number' ||
        !Number.isSafeInteger(v) ||
        v < Math.max(min, Number.MIN_SAFE_INTEGER) ||
        v > max
      )
        throw mismatch(column, type, v);
      if (int.bytes === 8) w.int64(v);
      else w.int(v, int.bytes, int.signed);
    };
  }
  throw new UnsupportedColumnType(`type ${type} is not one the sink encodes`);
}

/** A table's insert layout from its DESCRIBE TABLE rows. */
export function tableLayout(table: string, described: readonly DescribedColumn[]): TableLayout {
  const insertable = described.filter((c) => c.default_type === '');
  const encoders = insertable.map((c) => {
    try {
      return encoderOf(c.type);
    } catch (e) {
      if (e instanceof UnsupportedColumnType)
        throw new UnsupportedColumnType(`column ${table}.${c.name}: ${e.message}`);
      throw e;
    }
  });
  return { table, columns: insertable.map((c) => c.name), encoders };
}

/**
 * Checks that rows of this table carry exactly the layout's columns (rows.ts against the
 * migrations): a column the row lacks or a field the table lacks would otherwise be lost or
 * defaulted silently.
 */
export function checkRowShape(layout: TableLayout, row: Row): void {
  const have = new Set(Object.keys(row));
  const missing = layout.columns.filter((c) => !have.has(c));
  const extra = [...have].filter((k) => !layout.columns.includes(k));
  if (missing.length || extra.length)
    throw new Error(
      `rows of ${layout.table} do not match its columns in ClickHouse` +
        (missing.length ? `; missing: ${missing.join(', ')}` : '') +
        (extra.length ? `; not in the table: ${extra.join(', ')}` : '') +
        ' (is a migration missing?)',
    );
}

/** The rows as one RowBinary body, in the layout's column order. */
export function encodeRows(layout: TableLayout, rows: readonly Row[]): Buffer {
  if (rows.length > 0) checkRowShape(layout, rows[0]!);
  const w = new BinaryWriter(Math.max(1 << 16, rows.length * 128));
  const { columns, encoders } = layout;
  const n = columns.length;
  for (const row of rows) {
    for (let i = 0; i < n; i++) {
      const column = columns[i]!;
      encoders[i]!(w, row[column], column);
    }
  }
  return w.bytes();
}
