/** Shared set-up for the simulator's unit tests: a seeded stream and a codec with fixed schema ids. */
import { Codec, StaticSchemaSource } from '../../../connectors/codec';
import { schemaText } from '../../../schemas/contract';
import type { RecordName } from '../../../schemas/generated/types';
import { TOPIC_SPECS, type TopicName } from '../../../schemas/topics';
import { FaultInjector, type FaultConfig, type SimRecord } from '../../../simulator/faults';
import { DAY_MS, Marketplace, type MarketplaceConfig, type SimEvent } from '../../../simulator/marketplace';

export const START = Date.UTC(2025, 0, 1);
/** A "now" after every simulated time the tests reach (decoding refuses timestamps past now + 1 day). */
export const NOW = START + 400 * DAY_MS;

export const CLEAN: MarketplaceConfig = {
  seed: 42,
  merchants: 200,
  startMs: START,
  failRate: 0.02,
  lateSettlementRate: 0,
  lateSettlementDelayMs: 36 * 3_600_000,
  mismatchRate: 0,
};

export const NO_FAULTS: Omit<FaultConfig, 'seed'> = { duplicateRate: 0, reorderRate: 0, malformedRate: 0 };

/** Clean events up to `days` of simulated time. */
export function eventsFor(config: MarketplaceConfig, days: number): SimEvent[] {
  const m = new Marketplace(config);
  const end = config.startMs + days * DAY_MS;
  const out: SimEvent[] = [];
  for (let e = m.next(); e.time < end; e = m.next()) out.push(e);
  return out;
}

/** The first `n` records of the faulty stream. */
export function recordsFor(
  config: MarketplaceConfig,
  faults: Omit<FaultConfig, 'seed'>,
  n: number,
): SimRecord[] {
  const m = new Marketplace(config);
  const f = new FaultInjector(() => m.next(), { seed: config.seed, ...faults });
  return Array.from({ length: n }, () => f.next());
}

export const SCHEMA_IDS = Object.fromEntries(TOPIC_SPECS.map((t, i) => [t.name, 100 + i])) as Record<
  TopicName,
  number
>;

export function staticCodec(): Codec {
  const source = new StaticSchemaSource(
    new Map(TOPIC_SPECS.map((t) => [SCHEMA_IDS[t.name], schemaText(t.record as RecordName)])),
  );
  return new Codec({ source, schemaIds: SCHEMA_IDS });
}
