/**
 * Reachability of each real service, by the same protocol checks `holdback stack up` waits on
 * (stack/components.ts), not just an open port.
 */
import { loadEndpoints } from '../../connectors/endpoints';
import { COMPONENTS } from '../../stack/components';

const NAMES: Record<string, string> = {
  kafka: 'Kafka',
  registry: 'the schema registry',
  clickhouse: 'ClickHouse',
  prometheus: 'Prometheus',
  alertmanager: 'Alertmanager',
};

/** Returns a description of every service that is down; empty when all are up. */
export async function checkServices(): Promise<string[]> {
  const e = loadEndpoints();
  const healthy = await Promise.all(COMPONENTS.map((c) => c.healthy(e)));
  return COMPONENTS.filter((_, i) => !healthy[i]).map(
    (c) => `${NAMES[c.name] ?? c.name} is not answering at ${c.address(e)}`,
  );
}
