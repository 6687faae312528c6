/**
 * Reachability of each real service, by the same protocol checks `holdback stack up` waits on
 * (stack/components.ts), not just an open port.
 */
import { loadEndpoints } from '../../connectors/endpoints';
import { components } from '../../stack/components';

const NAMES: Record<string, string> = {
  kafka: 'Kafka',
  'kafka-2': 'Kafka node 2',
  'kafka-3': 'Kafka node 3',
  registry: 'the schema registry',
  clickhouse: 'ClickHouse',
  prometheus: 'Prometheus',
  alertmanager: 'Alertmanager',
};

/** Returns a description of every service that is down; empty when all are up. */
export async function checkServices(): Promise<string[]> {
  const e = loadEndpoints();
  const all = components(e);
  const healthy = await Promise.all(all.map((c) => c.healthy(e)));
  return all
    .filter((_, i) => !healthy[i])
    .map((c) => `${NAMES[c.name] ?? c.name} is not answering at ${c.address(e)}`);
}
