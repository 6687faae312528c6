/** The contract's golden JSON fixtures (schemas/fixtures/*.v1.json) as plain records. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TOPIC_SPECS, type TopicName } from '../../../schemas/topics';
import { REPO_ROOT } from '../../../stack/paths';

/** Avro JSON wraps union values ({"long": 5}); records here are plain. */
function unwrap(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(unwrap);
  if (v !== null && typeof v === 'object') {
    const entries = Object.entries(v as Record<string, unknown>);
    if (
      entries.length === 1 &&
      /^(int|long|string|boolean|bytes|double|float|holdback\.v1\.\w+)$/.test(entries[0]![0])
    ) {
      return unwrap(entries[0]![1]);
    }
    return Object.fromEntries(entries.map(([k, x]) => [k, unwrap(x)]));
  }
  return v;
}

export function fromAvroJson(topic: TopicName): Record<string, unknown> {
  const record = TOPIC_SPECS.find((t) => t.name === topic)!.record;
  const text = readFileSync(join(REPO_ROOT, 'schemas', 'fixtures', `${record}.v1.json`), 'utf8');
  return unwrap(JSON.parse(text)) as Record<string, unknown>;
}
