/**
 * `holdback simulate` on the real stack: a few thousand records with every fault injected go to
 * per-run topics; reading them back, every event and duplicate decodes, every malformed record is
 * refused with its reason, the counts match the summary, a merchant's records share one
 * partition on all four topics, timestamps are the simulated times and never in the future, and a
 * second run with the same options writes the same bytes.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { readToEnd } from '../../connectors/kafka-read';
import type { Codec } from '../../connectors/codec';
import { REPO_ROOT } from '../../stack/paths';
import { INPUT_TOPICS, type InputTopic } from '../../simulator/marketplace';
import { simulate, type SimulationSummary } from '../../simulator/producer';
import type { SimulateInput } from '../../simulator/options';
import { createTopics, deleteTopics, kafkaClient, registeredCodec } from '../harness/kafka';

jest.setTimeout(180_000);

const run = `sim-${Date.now().toString(36)}`;
const prefixes = [`${run}.a.`, `${run}.b.`, `${run}.cli.`];

interface Read {
  topic: InputTopic;
  partition: number;
  offset: number;
  key: string;
  timestamp: number;
  value: Buffer;
  decoded: { ok: true; value: Record<string, unknown> } | { ok: false; reasonCode: string };
}

async function readBack(prefix: string, codec: Codec): Promise<Read[]> {
  const out: Read[] = [];
  for (const topic of INPUT_TOPICS) {
    await readToEnd(kafkaClient(), {
      topic: prefix + topic,
      groupId: `${prefix}${topic}-reader`,
      onMessage: (partition, m) => {
        const r = codec.tryDecodeCached(topic, m.key, m.value, Date.now());
        if (!r) throw new Error('schema not cached');
        out.push({
          topic,
          partition,
          offset: Number(m.offset),
          key: m.key!.toString(),
          timestamp: Number(m.timestamp),
          value: m.value!,
          decoded: r.ok
            ? { ok: true, value: r.value as unknown as Record<string, unknown> }
            : { ok: false, reasonCode: r.reasonCode },
        });
      },
    });
  }
  // Kafka orders records within a partition only: sort by where they are.
  return out.sort(
    (a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition || a.offset - b.offset,
  );
}

const options = (topicPrefix: string): SimulateInput => ({
  topicPrefix,
  // About 90 simulated days (loans are funded after 45), well before now: the run is not held back by the wall clock.
  merchants: 30,
  events: 6000,
  rate: 50_000,
  seed: 7,
  speed: '60d/s',
  start: new Date(Date.now() - 100 * 86_400_000).toISOString().slice(0, 10),
  duplicateRate: 0.03,
  reorderRate: 0.05,
  malformedRate: 0.01,
  failRate: 0.1,
  lateSettlementRate: 0.2,
  lateSettlementDelay: '36h',
  mismatchRate: 0.05,
});

let codec: Codec;
beforeAll(async () => {
  codec = await registeredCodec();
  // Only the first prefix here: the others are created later, by createTopics after the first run
  // (back-to-back creations fail in createTopics' waitForLeaders on this broker), and by simulate itself.
  await createTopics(prefixes[0]!);
});
afterAll(async () => {
  await deleteTopics(`${run}.`);
});

test('simulate produces what its summary says, decodable, co-partitioned and deterministic', async () => {
  const progress: number[] = [];
  const summary: SimulationSummary = await simulate(options(prefixes[0]!), {
    onProgress: (p) => progress.push(p.produced),
    progressIntervalMs: 50,
  });
  expect(summary.stoppedBy).toBe('events');
  expect(summary.produced).toBe(6000);
  expect(progress[progress.length - 1]).toBe(6000);

  const records = await readBack(prefixes[0]!, codec);
  expect(records.length).toBe(6000);
  const ok = records.filter((r) => r.decoded.ok);
  const refused = records.filter((r) => !r.decoded.ok);
  expect(refused.length).toBe(summary.malformed.total);
  expect(summary.malformed.total).toBeGreaterThan(10);
  const reasons = new Set(refused.map((r) => (r.decoded.ok ? '' : r.decoded.reasonCode)));
  for (const reason of reasons) {
    expect([
      'BAD_MAGIC_BYTE',
      'MALFORMED_AVRO',
      'NEGATIVE_AMOUNT',
      'UNKNOWN_CURRENCY',
      'TIMESTAMP_OUT_OF_RANGE',
      'KEY_MISMATCH',
    ]).toContain(reason);
  }

  // Counts per topic and type: first sends plus duplicates (same event_id).
  const firstSends = new Map<string, Read>();
  let duplicates = 0;
  for (const r of ok) {
    const k = `${r.topic}/${String(r.decoded.ok && r.decoded.value['event_id'])}`;
    if (firstSends.has(k)) {
      duplicates++;
      expect(r.value.equals(firstSends.get(k)!.value)).toBe(true);
    } else firstSends.set(k, r);
  }
  expect(duplicates).toBe(summary.duplicates);
  expect(duplicates).toBeGreaterThan(50);
  for (const topic of INPUT_TOPICS) {
    const byType: Record<string, number> = {};
    for (const r of firstSends.values()) {
      if (r.topic === topic && r.decoded.ok)
        byType[String(r.decoded.value['type'])] = (byType[String(r.decoded.value['type'])] ?? 0) + 1;
    }
    expect(byType).toEqual(summary.topics[topic].byType);
  }
  expect(summary.topics['lending.loans.v1'].byType['FUNDED'] ?? 0).toBe(summary.loansFunded);
  expect(summary.loansFunded).toBeGreaterThan(0);
  expect(summary.payouts.settled).toBeGreaterThan(0);

  // Keys, partitions, timestamps.
  const partitionOf = new Map<string, number>();
  const now = Date.now();
  for (const r of ok) {
    if (!r.decoded.ok) continue;
    expect(r.key).toBe(r.decoded.value['merchant_id']);
    expect(r.timestamp).toBe(r.decoded.value['occurred_at']);
    expect(r.timestamp).toBeLessThanOrEqual(now);
    const p = partitionOf.get(r.key);
    if (p === undefined) partitionOf.set(r.key, r.partition);
    else expect(r.partition).toBe(p);
  }
  expect(new Set(partitionOf.values()).size).toBeGreaterThan(1);

  // Same options, another prefix: the same records, in the same order, on the same partitions.
  await createTopics(prefixes[1]!);
  const again = await simulate(options(prefixes[1]!));
  expect({
    ...again,
    wallSeconds: 0,
    recordsPerSec: 0,
    topicPrefix: '',
    options: { ...again.options, topicPrefix: '' },
  }).toEqual({
    ...summary,
    wallSeconds: 0,
    recordsPerSec: 0,
    topicPrefix: '',
    options: { ...summary.options, topicPrefix: '' },
  });
  const layout = (rs: Read[]) =>
    rs.map(
      (r) => `${r.topic}/${r.partition}@${r.offset} ${r.key} ${r.timestamp} ${r.value.toString('base64')}`,
    );
  expect(layout(await readBack(prefixes[1]!, codec))).toEqual(layout(records));
});

test('the CLI creates missing input topics, prints a JSON summary, and exits 2 naming a bad option', () => {
  const bin = join(REPO_ROOT, 'bin', 'holdback');
  const out = execFileSync(
    process.execPath,
    [
      bin,
      'simulate',
      `--topic-prefix=${prefixes[2]}`,
      '--merchants',
      '20',
      '--events',
      '500',
      '--rate',
      '20000',
      '--json',
    ],
    { encoding: 'utf8' },
  );
  const summary = JSON.parse(out) as SimulationSummary;
  expect(summary.produced).toBe(500);
  expect(summary.stoppedBy).toBe('events');

  const bad = spawnSync(process.execPath, [bin, 'simulate', '--merchants', '0'], { encoding: 'utf8' });
  expect(bad.status).toBe(2);
  expect(bad.stderr).toContain('bad option --merchants=0');
  const unknown = spawnSync(process.execPath, [bin, 'simulate', '--colour', 'red'], { encoding: 'utf8' });
  expect(unknown.status).toBe(2);
  expect(unknown.stderr).toContain('unknown option --colour');
});
