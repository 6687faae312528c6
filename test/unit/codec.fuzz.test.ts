/**
 * Property tests of the codec with fast-check: no byte string makes decoding throw or hang, only
 * results with a documented reason code; and valid records survive encode then decode unchanged.
 */
import fc from 'fast-check';
import { ISO_4217_CURRENCIES } from '../../schemas/iso4217';
import { DLQ_REASON_CODES } from '../../schemas/reason-codes';
import { TOPICS, TOPIC_SPECS, type TopicName } from '../../schemas/topics';
import { DAY_MS, IDS, NOW, decision, forge, frame, funded, makeCodec, payout, sale } from './codec-samples';

const TOPIC_NAMES = TOPIC_SPECS.map((s) => s.name);
const RUNS = 2_000;

function expectResult(result: unknown): void {
  expect(result).toBeDefined();
  const r = result as { ok: boolean; reasonCode?: string; detail?: string };
  if (!r.ok) {
    expect(Object.keys(DLQ_REASON_CODES)).toContain(r.reasonCode);
    expect(r.detail).toEqual(expect.any(String));
  }
}

const bytes = (maxLength: number) => fc.uint8Array({ maxLength }).map((a) => Buffer.from(a));
const key = fc.option(bytes(40), { nil: null });
const topic = fc.constantFrom<TopicName>(...TOPIC_NAMES);

test('any byte string decodes to a result, never an exception', async () => {
  const codec = makeCodec();
  await fc.assert(
    fc.asyncProperty(topic, key, bytes(300), async (t, k, value) => {
      expectResult(await codec.decode(t, k, value, NOW));
    }),
    { numRuns: RUNS },
  );
});

test('any body behind a known schema id decodes synchronously to a result', () => {
  const codec = makeCodec();
  const ids = [IDS.PayoutEvent, IDS.SaleEvent, IDS.LoanEvent, IDS.EligibilityDecision];
  fc.assert(
    fc.property(topic, fc.constantFrom(...ids), bytes(400), (t, id, body) => {
      expectResult(codec.tryDecodeCached(t, Buffer.from('mer-42'), frame(id, body), NOW));
    }),
    { numRuns: RUNS * 2 },
  );
});

test('valid records with bytes overwritten, cut or inserted decode to a result', async () => {
  const codec = makeCodec();
  const originals: Array<[TopicName, Buffer]> = [
    [TOPICS.payouts, forge('PayoutEvent', payout)],
    [TOPICS.sales, forge('SaleEvent', sale)],
    [TOPICS.loanEvents, forge('LoanEvent', funded)],
    [TOPICS.eligibility, forge('EligibilityDecision', decision)],
  ];
  const edit = fc.record({
    at: fc.nat(),
    kind: fc.constantFrom('overwrite', 'cut', 'insert'),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 6 }),
  });
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...originals),
      fc.array(edit, { minLength: 1, maxLength: 4 }),
      async ([t, original], edits) => {
        let value = Buffer.from(original);
        for (const e of edits) {
          const at = e.at % (value.length + 1);
          if (e.kind === 'overwrite') value.set(e.bytes.subarray(0, value.length - at), at);
          else if (e.kind === 'cut')
            value = Buffer.concat([value.subarray(0, at), value.subarray(at + e.bytes.length)]);
          else value = Buffer.concat([value.subarray(0, at), Buffer.from(e.bytes), value.subarray(at)]);
        }
        // An edit may hit the schema id: then the schema is fetched (and usually unknown).
        expectResult(await codec.decode(t, Buffer.from('mer-42'), value, NOW));
      },
    ),
    { numRuns: RUNS * 2 },
  );
});

test('valid payouts survive encode then decode unchanged', () => {
  const codec = makeCodec();
  const id = fc.stringMatching(/^[A-Za-z0-9._:-]{1,64}$/);
  const amount = fc.bigInt({ min: 0n, max: 10n ** 13n }).map(Number);
  const validPayout = fc.record({
    event_id: id,
    merchant_id: id,
    payout_id: fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 200 }),
    type: fc.constantFrom('SCHEDULED' as const, 'SETTLED' as const, 'FAILED' as const),
    gross_amount_minor: amount,
    withheld_minor: fc.option(amount, { nil: null }),
    currency: fc.constantFrom(...ISO_4217_CURRENCIES),
    occurred_at: fc.bigInt({ min: BigInt(Date.UTC(2000, 0, 1)), max: BigInt(NOW + DAY_MS) }).map(Number),
  });
  fc.assert(
    fc.property(validPayout, (p) => {
      const bytes = codec.encode(TOPICS.payouts, p);
      expect(codec.tryDecodeCached(TOPICS.payouts, p.merchant_id, bytes, NOW)).toEqual({
        ok: true,
        value: p,
        schemaId: IDS.PayoutEvent,
      });
    }),
    { numRuns: RUNS },
  );
});
