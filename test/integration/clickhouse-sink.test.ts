/**
 * The ClickHouse sink on the real Kafka and ClickHouse: a seeded workload over all ten topics
 * goes in; every table holds exactly the distinct accepted records with their exact values (a
 * PayoutDecision produced by hand is checked column by column, Kafka position included);
 * every aggregate equals a recount from the raw tables and the workload's own expectation; a
 * restarted sink resumes from ClickHouse (not from Kafka's committed offsets) and adds only
 * what is new. Unique topic prefix and database, both dropped afterwards.
 */
import { createClient, type ClickHouseClient } from '@clickhouse/client';
import type { Codec } from '../../connectors/codec';
import { SinkMetrics } from '../../connectors/clickhouse/metrics';
import { keyPartitioner } from '../../connectors/kafka-send';
import { migrate } from '../../connectors/clickhouse/migrate';
import { ClickHouseSink } from '../../connectors/clickhouse/sink';
import type { PayoutDecision } from '../../schemas/generated/types';
import { TOPICS } from '../../schemas/topics';
import {
  createTopics,
  deleteTopics,
  endpoints,
  kafkaClient,
  produce,
  registeredCodec,
} from '../harness/kafka';
import { waitFor } from '../harness/processes';
import { aggregateChecks, duplicatePositions, rowsOf, tableCounts } from '../unit/clickhouse/verify';
import { clickhouseWorkload } from '../unit/clickhouse/workload';

jest.setTimeout(180_000);

const RUN = `${process.pid}_${Date.now().toString(36)}`;
const prefix = `chsink-${RUN}.`;
const database = `hbt_sink_${RUN}`;
let client: ClickHouseClient;
let codec: Codec;

const quiet = {
  info: () => undefined,
  warn: () => undefined,
  error: (m: string, f?: object) => console.error(m, f),
};

function newSink(): ClickHouseSink {
  return new ClickHouseSink({
    kafka: { clientId: `chsink-${RUN}`, brokers: endpoints.kafkaBrokers },
    groupId: `chsink-${RUN}`,
    topicPrefix: prefix,
    clickhouse: { url: endpoints.clickhouseUrl, database, username: 'default', password: '' },
    database,
    codec,
    limits: { maxRows: 700, maxAgeMs: 300 },
    insertTimeoutMs: 10_000,
    sessionTimeoutMs: 10_000,
    metrics: new SinkMetrics(),
    log: quiet,
  });
}

/** The partition a key's records go to, and the offset of the last record there. */
async function lastPosition(topic: string, key: string): Promise<{ partition: number; lastOffset: number }> {
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    const [metadata] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
    const partition = keyPartitioner(metadata!.partitions.length)(topic, key);
    const offsets = await admin.fetchTopicOffsets(topic);
    return { partition, lastOffset: Number(offsets.find((o) => o.partition === partition)!.high) - 1 };
  } finally {
    await admin.disconnect();
  }
}

beforeAll(async () => {
  client = createClient({ url: endpoints.clickhouseUrl });
  codec = await registeredCodec();
  await createTopics(prefix);
  await migrate(client, database);
});

afterAll(async () => {
  await client.command({ query: `DROP DATABASE IF EXISTS ${database}` });
  await client.close();
  await deleteTopics(prefix);
  const admin = kafkaClient().admin();
  await admin.connect();
  await admin.deleteGroups([`chsink-${RUN}`]).catch(() => undefined);
  await admin.disconnect();
});

test('events in, rows out with exact values; aggregates equal a recount; a restart adds only what is new', async () => {
  const now = Date.now();
  const first = clickhouseWorkload({
    seed: 11,
    merchants: 60,
    payoutsPerMerchant: 8,
    idPrefix: `a${RUN}-`,
    now,
  });
  // Two decisions made by hand, after the workload, with what is most likely to be mangled: several
  // deduction ids in the processor's order (not sorted), the largest money, a non-ASCII id, and
  // times whose milliseconds the DateTime columns drop.
  const handMade: PayoutDecision[] = [
    {
      decision_id: `h${RUN}-pd-1`,
      payout_id: `h${RUN}-p-1`,
      merchant_id: `h${RUN}-m`,
      currency: 'EUR',
      // The contract's largest amount (10^13 minor units), far beyond 32 bits.
      gross_amount_minor: 10_000_000_000_000,
      withheld_minor: 9_999_999_999_999,
      reason_code: 'WITHHELD',
      deduction_ids: [`h${RUN}-d-loan-z`, `h${RUN}-d-loan-a`, `h${RUN}-d-é€`],
      source_event_id: `h${RUN}-e-1`,
      occurred_at: now - 3_600_000 - 123,
      decided_at: now - 3_599_000 + 999,
    },
    {
      decision_id: `h${RUN}-pd-2`,
      payout_id: `h${RUN}-p-2`,
      merchant_id: `h${RUN}-m`,
      currency: 'JPY',
      gross_amount_minor: 3,
      withheld_minor: 0,
      reason_code: 'SHARE_ROUNDS_TO_ZERO',
      deduction_ids: [],
      source_event_id: `h${RUN}-e-2`,
      occurred_at: now - 7_200_000,
      decided_at: now - 7_100_000,
    },
  ];
  await produce(prefix, codec, [
    ...first.records,
    ...handMade.map((value) => ({ topic: TOPICS.payoutDecisions, key: value.merchant_id, value })),
  ]);
  first.expected.rows['payout_decisions']! += handMade.length;
  for (const v of handMade) {
    const hour = `${new Date(v.occurred_at).toISOString().slice(0, 13).replace('T', ' ')}:00:00`;
    const k = `${hour}|${v.reason_code}|${v.currency}`;
    const [n, gross, withheld] = first.expected.payoutDecisionsHourly.get(k) ?? [0, 0, 0];
    first.expected.payoutDecisionsHourly.set(k, [
      n + 1,
      gross + v.gross_amount_minor,
      withheld + v.withheld_minor,
    ]);
  }

  let sink = newSink();
  await sink.start();
  try {
    await waitFor(
      'the first workload in ClickHouse',
      async () => JSON.stringify(await tableCounts(client, database)) === JSON.stringify(first.expected.rows),
      90_000,
      500,
    );
  } finally {
    await sink.stop();
  }

  // Exact values: one record of each kind, as produced.
  const deduction = first.records.find((r) => r.topic === TOPICS.deductions)!.value as unknown as Record<
    string,
    unknown
  >;
  const [row] = await rowsOf<Record<string, unknown>>(
    client,
    `SELECT deduction_id, type, payout_id, loan_id, merchant_id, amount_minor, gross_amount_minor, holdback_rate_bps,
       balance_after_minor, currency, source_event_id, occurred_at_ms, decided_at_ms, toString(occurred_at) AS occurred_at_text
     FROM ${database}.deductions WHERE deduction_id = '${String(deduction['deduction_id'])}'`,
  );
  expect(row).toEqual({
    deduction_id: deduction['deduction_id'],
    type: deduction['type'],
    payout_id: deduction['payout_id'],
    loan_id: deduction['loan_id'],
    merchant_id: deduction['merchant_id'],
    // Int64 comes back as a string: no precision lost on the way.
    amount_minor: String(deduction['amount_minor']),
    gross_amount_minor: String(deduction['gross_amount_minor']),
    holdback_rate_bps: 500,
    balance_after_minor: String(deduction['balance_after_minor']),
    currency: deduction['currency'],
    source_event_id: deduction['source_event_id'],
    occurred_at_ms: String(deduction['occurred_at']),
    decided_at_ms: String(deduction['decided_at']),
    occurred_at_text: new Date(deduction['occurred_at'] as number)
      .toISOString()
      .slice(0, 19)
      .replace('T', ' '),
  });
  const decision = first.records.find((r) => r.topic === TOPICS.eligibility)!.value as unknown as Record<
    string,
    unknown
  >;
  const [d] = await rowsOf<Record<string, unknown>>(
    client,
    `SELECT eligible, grade, limit_minor, reasons, feature_names, feature_values
     FROM ${database}.eligibility_decisions WHERE decision_id = '${String(decision['decision_id'])}'`,
  );
  const features = decision['features'] as Record<string, number>;
  expect(d).toEqual({
    eligible: decision['eligible'] ? 1 : 0,
    grade: decision['grade'],
    limit_minor: String(decision['limit_minor']),
    reasons: decision['reasons'],
    feature_names: Object.keys(features).sort(),
    feature_values: Object.keys(features)
      .sort()
      .map((k) => String(features[k])),
  });
  // A PayoutDecision, every column as produced; its Kafka position is the record's own.
  const handRows = await rowsOf<Record<string, unknown>>(
    client,
    `SELECT _topic, _partition, _offset, _timestamp_ms, decision_id, payout_id, merchant_id, currency,
       gross_amount_minor, withheld_minor, reason_code, deduction_ids, source_event_id, occurred_at_ms,
       decided_at_ms, toString(occurred_at) AS occurred_at_text, toString(decided_at) AS decided_at_text,
       _inserted_at > toDateTime(0) AS inserted
     FROM ${database}.payout_decisions WHERE merchant_id = 'h${RUN}-m' ORDER BY decision_id`,
  );
  const { partition, lastOffset } = await lastPosition(prefix + TOPICS.payoutDecisions, `h${RUN}-m`);
  const text = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');
  expect(handRows).toEqual(
    handMade.map((v, i) => ({
      _topic: TOPICS.payoutDecisions,
      _partition: partition,
      // The two were produced last, in order, to the merchant's partition.
      _offset: String(lastOffset - (handMade.length - 1 - i)),
      _timestamp_ms: expect.stringMatching(/^\d{13}$/),
      decision_id: v.decision_id,
      payout_id: v.payout_id,
      merchant_id: v.merchant_id,
      currency: v.currency,
      gross_amount_minor: String(v.gross_amount_minor),
      withheld_minor: String(v.withheld_minor),
      reason_code: v.reason_code,
      deduction_ids: v.deduction_ids,
      source_event_id: v.source_event_id,
      occurred_at_ms: String(v.occurred_at),
      decided_at_ms: String(v.decided_at),
      occurred_at_text: text(v.occurred_at),
      decided_at_text: text(v.decided_at),
      inserted: 1,
    })),
  );
  // And one of the workload's, through the same path.
  const workloadDecision = first.records.find((r) => r.topic === TOPICS.payoutDecisions)!
    .value as PayoutDecision;
  const [wd] = await rowsOf<Record<string, unknown>>(
    client,
    `SELECT withheld_minor, reason_code, deduction_ids FROM ${database}.payout_decisions
     WHERE decision_id = '${workloadDecision.decision_id}'`,
  );
  expect(wd).toEqual({
    withheld_minor: String(workloadDecision.withheld_minor),
    reason_code: workloadDecision.reason_code,
    deduction_ids: workloadDecision.deduction_ids,
  });

  const settlement = first.records.find(
    (r) => r.topic === TOPICS.settlements && (r.value as { mismatch_minor: number }).mismatch_minor !== 0,
  )!.value as unknown as Record<string, unknown>;
  const mismatches = await rowsOf<{ payout_id: string; mismatch_minor: string }>(
    client,
    `SELECT payout_id, mismatch_minor FROM ${database}.reconciliation_mismatches WHERE payout_id = '${String(settlement['payout_id'])}'`,
  );
  expect(mismatches).toEqual([
    { payout_id: settlement['payout_id'], mismatch_minor: String(settlement['mismatch_minor']) },
  ]);

  for (const c of await aggregateChecks(client, database, first.expected)) {
    expect({ name: c.name, rows: c.fromView }).toEqual({ name: c.name, rows: c.recount });
    expect({ name: c.name, rows: c.fromView }).toEqual({ name: c.name, rows: c.expected });
  }

  // Restart: Kafka's committed offsets are moved back to the beginning; the sink must resume
  // from ClickHouse anyway and add only the second workload.
  const admin = kafkaClient().admin();
  await admin.connect();
  try {
    for (const t of Object.values(TOPICS))
      await admin.resetOffsets({ groupId: `chsink-${RUN}`, topic: prefix + t, earliest: true });
  } finally {
    await admin.disconnect();
  }
  const second = clickhouseWorkload({
    seed: 12,
    merchants: 30,
    payoutsPerMerchant: 6,
    idPrefix: `b${RUN}-`,
    now,
  });
  await produce(prefix, codec, second.records);
  const want: Record<string, number> = {};
  for (const [k, v] of Object.entries(first.expected.rows)) want[k] = v + second.expected.rows[k]!;
  sink = newSink();
  await sink.start();
  try {
    await waitFor(
      'the second workload in ClickHouse',
      async () => JSON.stringify(await tableCounts(client, database)) === JSON.stringify(want),
      90_000,
      500,
    );
    // Settle: nothing more arrives (a re-read of the first workload would add rows now).
    await new Promise((r) => setTimeout(r, 2000));
  } finally {
    await sink.stop();
  }
  expect(await tableCounts(client, database)).toEqual(want);
  expect(await duplicatePositions(client, database)).toEqual({
    deductions: 0,
    loan_states: 0,
    settlements: 0,
    payout_decisions: 0,
    eligibility_decisions: 0,
    dead_letters: 0,
  });
  for (const c of await aggregateChecks(client, database))
    expect({ name: c.name, rows: c.fromView }).toEqual({ name: c.name, rows: c.recount });
});
