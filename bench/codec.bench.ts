/**
 * Codec throughput on one core: decode (header, cached resolver, Avro, every validation rule and
 * the key check) and encode (rules, Avro into the reused buffer, framing, copy out) of realistic
 * PayoutEvents with their schema cached, each for a few seconds after a warm-up, next to plain
 * avsc as the ceiling. Prints the figures and writes them to bench/results/codec.json.
 *
 *   npx tsx bench/codec.bench.ts [seconds per case, default 3]
 *
 * A benchmark reports, it does not fail: the machine is noisy (docs: performance.md).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as avro from 'avsc';
import { Codec, StaticSchemaSource } from '../connectors/codec';
import { RECORD_SCHEMAS, schemaText } from '../schemas/contract';
import type { PayoutEvent } from '../schemas/generated/types';
import { TOPICS } from '../schemas/topics';
import { machine } from './machine';

const SECONDS = Number(process.argv[2] ?? 3);
const GOAL_DECODES_PER_SEC = 400_000;
const NOW = Date.UTC(2026, 10, 22, 12);
const V1 = 1;
const V2 = 2;

const v2Schema = {
  ...RECORD_SCHEMAS.PayoutEvent,
  fields: [
    ...RECORD_SCHEMAS.PayoutEvent.fields,
    { name: 'channel', type: ['null', 'string'], default: null },
  ],
};
const codec = new Codec({
  source: new StaticSchemaSource(
    new Map([
      [V1, schemaText('PayoutEvent')],
      [V2, JSON.stringify(v2Schema)],
    ]),
  ),
  schemaIds: { [TOPICS.payouts]: V1 },
});

/** 1024 distinct payouts, shaped like a platform's: UUID-like ids, amounts of a few hundred euros. */
const TYPES = ['SCHEDULED', 'SETTLED', 'FAILED'] as const;
const CURRENCIES = ['EUR', 'USD', 'GBP', 'SEK'];
const payouts: PayoutEvent[] = Array.from({ length: 1024 }, (_, i) => {
  const hex = (n: number) => (n * 2654435761 + i * 40503).toString(16).padStart(8, '0').slice(-8);
  const type = TYPES[i % 3]!;
  const gross = 10_000 + ((i * 7919) % 900_000);
  return {
    event_id: `${hex(1)}-${hex(2).slice(0, 4)}-4${hex(3).slice(0, 3)}-8${hex(4).slice(0, 3)}-${hex(5)}${hex(6).slice(0, 4)}`,
    merchant_id: `mer_${(i * 7877) % 100_000}`.padEnd(14, '0'),
    payout_id: `po_2026112${i % 10}_${hex(7)}`,
    type,
    gross_amount_minor: gross,
    withheld_minor: type === 'SETTLED' ? Math.floor((gross * 1000) / 10000) : null,
    currency: CURRENCIES[i % CURRENCIES.length]!,
    occurred_at: NOW - i * 1_000,
  };
});
const keys = payouts.map((p) => Buffer.from(p.merchant_id));
const v1Values = payouts.map((p) => codec.encode(TOPICS.payouts, p));
const v2Type = avro.Type.forSchema(v2Schema as unknown as avro.Schema);
const v2Values = payouts.map((p) => {
  const body = v2Type.toBuffer({ ...p, channel: 'api' });
  const header = Buffer.alloc(5);
  header.writeInt32BE(V2, 1);
  return Buffer.concat([header, body]);
});
const plainType = avro.Type.forSchema(RECORD_SCHEMAS.PayoutEvent as unknown as avro.Schema);
const plainBodies = v1Values.map((v) => v.subarray(5));
const scratch = Buffer.alloc(1024);

/** Fetches v2 once (the async path), then checks that every sample decodes on the cached path. */
async function warmUp(): Promise<void> {
  await codec.decode(TOPICS.payouts, keys[0]!, v2Values[0]!, NOW);
  for (const values of [v1Values, v2Values]) {
    values.forEach((value, i) => {
      const r = codec.tryDecodeCached(TOPICS.payouts, keys[i]!, value, NOW);
      if (!r?.ok) throw new Error(`sample ${i} does not decode: ${JSON.stringify(r)}`);
    });
  }
}

interface Figure {
  readonly opsPerSec: number;
  readonly ops: number;
  readonly seconds: number;
}

/** Runs `op(i)` in batches until `seconds` have passed; returns ops/s. */
function measure(name: string, op: (i: number) => unknown): Figure {
  const run = (seconds: number): Figure => {
    const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
    const start = process.hrtime.bigint();
    let ops = 0;
    let now = start;
    while (now < deadline) {
      for (let i = 0; i < 10_000; i++) op((ops + i) & 1023);
      ops += 10_000;
      now = process.hrtime.bigint();
    }
    const elapsed = Number(now - start) / 1e9;
    return { opsPerSec: Math.round(ops / elapsed), ops, seconds: Number(elapsed.toFixed(2)) };
  };
  run(Math.min(1, SECONDS / 3));
  const figure = run(SECONDS);
  console.log(`${name.padEnd(44)} ${figure.opsPerSec.toLocaleString('en-US').padStart(11)} records/s`);
  return figure;
}

let sink = 0;

async function main(): Promise<void> {
  await warmUp();
  const results = {
    decode: measure('decode (v1, cached, validated, key checked)', (i) => {
      const r = codec.tryDecodeCached(TOPICS.payouts, keys[i]!, v1Values[i]!, NOW);
      if (r?.ok) sink += r.value.gross_amount_minor;
    }),
    decodeResolved: measure('decode (v2 writer resolved to v1 reader)', (i) => {
      const r = codec.tryDecodeCached(TOPICS.payouts, keys[i]!, v2Values[i]!, NOW);
      if (r?.ok) sink += r.value.gross_amount_minor;
    }),
    encode: measure('encode (validated, framed, copied out)', (i) => {
      sink += codec.encode(TOPICS.payouts, payouts[i]!).length;
    }),
    avscFromBuffer: measure('reference: avsc fromBuffer, no checks', (i) => {
      sink += (plainType.fromBuffer(plainBodies[i]!) as PayoutEvent).gross_amount_minor;
    }),
    avscEncode: measure('reference: avsc encode into a buffer', (i) => {
      sink += plainType.encode(payouts[i]!, scratch, 0);
    }),
  };
  if (sink === 0) console.log('(no work done?)');

  const report = {
    benchmark: 'codec',
    date: new Date().toISOString(),
    machine: machine(),
    record: 'PayoutEvent',
    averageBytes: Math.round(v1Values.reduce((n, v) => n + v.length, 0) / v1Values.length),
    secondsPerCase: SECONDS,
    recordsPerSecond: Object.fromEntries(Object.entries(results).map(([k, f]) => [k, f.opsPerSec])),
    details: results,
    goal: { decodePerSec: GOAL_DECODES_PER_SEC, met: results.decode.opsPerSec >= GOAL_DECODES_PER_SEC },
  };
  const dir = join(__dirname, 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'codec.json'), `${JSON.stringify(report, null, 2)}\n`);
  console.log(
    `decode goal ${GOAL_DECODES_PER_SEC.toLocaleString('en-US')}/s: ${report.goal.met ? 'met' : 'NOT met'}; wrote bench/results/codec.json`,
  );
}

void main();
