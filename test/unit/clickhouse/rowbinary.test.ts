/**
 * RowBinary encoding, byte for byte against ClickHouse's format: little-endian integers, LEB128
 * lengths, a 0/1 byte before a Nullable value, a count before an Array. (The round trip through
 * a real server is test/integration/clickhouse-rowbinary.test.ts.)
 */
import {
  BinaryWriter,
  encodeRows,
  encoderOf,
  tableLayout,
  UnsupportedColumnType,
  type DescribedColumn,
} from '../../../connectors/clickhouse/rowbinary';

function encode(type: string, v: unknown): string {
  const w = new BinaryWriter(4);
  encoderOf(type)(w, v as never, 'c');
  return w.bytes().toString('hex');
}

test("integers are little-endian, two's complement, of their width", () => {
  expect(encode('UInt8', 1)).toBe('01');
  expect(encode('Int32', -2)).toBe('feffffff');
  expect(encode('Int64', 1)).toBe('0100000000000000');
  expect(encode('Int64', -1)).toBe('ffffffffffffffff');
  expect(encode('Int64', 2 ** 32)).toBe('0000000001000000');
  expect(encode('Int64', Number.MAX_SAFE_INTEGER)).toBe('ffffffffffff1f00');
  expect(encode('Int64', -Number.MAX_SAFE_INTEGER)).toBe('010000000000e0ff');
  expect(encode('UInt64', 300)).toBe('2c01000000000000');
});

test('strings are a LEB128 byte length and UTF-8, whatever their length', () => {
  expect(encode('String', '')).toBe('00');
  expect(encode('String', 'ab')).toBe('026162');
  expect(encode('String', 'é')).toBe('02c3a9');
  const long = 'x'.repeat(200);
  expect(encode('String', long)).toBe(`c801${'78'.repeat(200)}`);
  // 50 three-byte characters: 150 bytes, so the length takes two bytes and the text moves.
  const wide = '€'.repeat(50);
  expect(encode('String', wide)).toBe(`9601${'e282ac'.repeat(50)}`);
  expect(encode('String', "a\tb\n'\\")).toBe('06610962' + '0a275c');
  // ASCII up to 127 characters is copied byte by byte; a non-ASCII character part way falls back.
  expect(encode('String', 'y'.repeat(127))).toBe(`7f${'79'.repeat(127)}`);
  expect(encode('String', 'y'.repeat(128))).toBe(`8001${'79'.repeat(128)}`);
  expect(encode('String', 'abc€')).toBe('06616263e282ac');
  expect(encode('String', `${'a'.repeat(100)}€`)).toBe(`67${'61'.repeat(100)}e282ac`);
});

test('a long string far beyond the initial buffer grows it', () => {
  const s = 'ä'.repeat(100_000);
  const hex = encode('String', s);
  // 200,000 bytes: LEB128 c09a0c
  expect(hex.slice(0, 6)).toBe('c09a0c');
  expect(hex.length).toBe(6 + 400_000 * 1);
});

test('Nullable is a flag byte; Array is a count then the items', () => {
  expect(encode('Nullable(Int32)', null)).toBe('01');
  expect(encode('Nullable(Int32)', 7)).toBe('0007000000');
  expect(encode('Nullable(String)', 'a')).toBe('000161');
  expect(encode('Array(String)', [])).toBe('00');
  expect(encode('Array(String)', ['a', 'bc'])).toBe('0201610262' + '63');
  expect(encode('Array(Int64)', [1, -1])).toBe('02' + '0100000000000000' + 'ffffffffffffffff');
  expect(encode('Float64', 0.5)).toBe('000000000000e03f');
});

test('a value that does not fit its column throws, naming the column', () => {
  expect(() => encode('Int64', 1.5)).toThrow('column c (Int64) cannot hold 1.5');
  expect(() => encode('Int64', 2 ** 53)).toThrow(/cannot hold/);
  expect(() => encode('Int32', 2 ** 31)).toThrow(/cannot hold/);
  expect(() => encode('UInt8', -1)).toThrow(/cannot hold/);
  expect(() => encode('String', null)).toThrow('column c (String) cannot hold null');
  expect(() => encode('Int32', '1')).toThrow(/cannot hold "1"/);
  expect(() => encode('Array(String)', 'a')).toThrow(/cannot hold/);
});

test('a type the sink does not encode stops the layout, naming the column', () => {
  const described: DescribedColumn[] = [{ name: 'at', type: 'DateTime64(3)', default_type: '' }];
  expect(() => tableLayout('t', described)).toThrow(UnsupportedColumnType);
  expect(() => tableLayout('t', described)).toThrow(
    'column t.at: type DateTime64(3) is not one the sink encodes',
  );
});

const described: DescribedColumn[] = [
  { name: '_offset', type: 'Int64', default_type: '' },
  { name: 'id', type: 'String', default_type: '' },
  { name: '_inserted_at', type: 'DateTime', default_type: 'MATERIALIZED' },
  { name: 'note', type: 'Nullable(String)', default_type: '' },
];

test('columns with a default are left to the server; rows are encoded in the table order', () => {
  const layout = tableLayout('t', described);
  expect(layout.columns).toEqual(['_offset', 'id', 'note']);
  const body = encodeRows(layout, [
    { id: 'a', note: null, _offset: 1 },
    { id: 'b', note: 'n', _offset: 2 },
  ]);
  expect(body.toString('hex')).toBe(
    '0100000000000000' + '0161' + '01' + '0200000000000000' + '0162' + '00016e',
  );
});

test('rows that do not match the table stop the insert, naming what is missing or extra', () => {
  const layout = tableLayout('t', described);
  expect(() => encodeRows(layout, [{ id: 'a', _offset: 1 }])).toThrow(
    'rows of t do not match its columns in ClickHouse; missing: note (is a migration missing?)',
  );
  expect(() => encodeRows(layout, [{ id: 'a', _offset: 1, note: null, more: 1 }])).toThrow(
    /not in the table: more/,
  );
});
