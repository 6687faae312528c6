/**
 * docker-compose.yml runs the same stack from official images. No Docker engine runs here, so
 * this validates the file with Debian's docker-compose (offline) and checks that it publishes the
 * ports the local stack uses and mounts files that exist.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { loadEndpoints } from '../../connectors/endpoints';
import { REPO_ROOT } from '../../stack/paths';

interface Service {
  image: string;
  ports?: string[];
  volumes?: string[];
  command?: string[];
  network_mode?: string;
}

const file = join(REPO_ROOT, 'docker-compose.yml');
const compose = parse(readFileSync(file, 'utf8')) as { services: Record<string, Service> };
const e = loadEndpoints({});

function published(service: string): number[] {
  return (compose.services[service]?.ports ?? []).map((p) => Number(p.split(':').at(-2)));
}

test('docker-compose config -q accepts the file', () => {
  // Throws (failing the test) with docker-compose's own message when the file is invalid.
  execFileSync('docker-compose', ['-f', file, 'config', '-q'], { stdio: 'pipe' });
});

test('it publishes the same ports as the local stack', () => {
  expect(published('kafka')).toEqual([e.kafkaPort]);
  expect(published('schema-registry')).toEqual([e.registryPort]);
  expect(published('clickhouse')).toEqual([e.clickhouseHttpPort, e.clickhouseTcpPort]);
  // On the host's network (they must reach Holdback's processes on 127.0.0.1): no published
  // ports, but the same listen addresses.
  for (const [service, port] of [
    ['prometheus', e.prometheusPort],
    ['alertmanager', e.alertmanagerPort],
  ] as const) {
    expect(compose.services[service]?.network_mode).toBe('host');
    expect(compose.services[service]?.command).toContain(`--web.listen-address=127.0.0.1:${port}`);
  }
});

test("Prometheus discovers Holdback's processes from the same target files as the local stack", () => {
  const prom = compose.services['prometheus']!;
  expect(prom.volumes).toContain('./.holdback/run/prometheus/targets:/etc/prometheus/targets:ro');
  const config = parse(readFileSync(join(REPO_ROOT, 'dashboards/prometheus/prometheus.yml'), 'utf8')) as {
    scrape_configs: Array<{ job_name: string; file_sd_configs?: Array<{ files: string[] }> }>;
  };
  const job = config.scrape_configs.find((j) => j.job_name === 'holdback');
  expect(job?.file_sd_configs?.[0]?.files).toEqual(['/etc/prometheus/targets/*.json']);
});

test('its cluster profile is the three-node cluster of `holdback stack up --brokers=3`', () => {
  const env = join(REPO_ROOT, 'compose', 'cluster.env');
  const text = execFileSync('docker-compose', ['--env-file', env, '-f', file, 'config'], {
    encoding: 'utf8',
  });
  const cluster = parse(text) as {
    services: Record<string, Service & { environment: Record<string, string | number> }>;
  };
  const three = loadEndpoints({ HOLDBACK_KAFKA_BROKERS: '3' });
  const nodes = ['kafka', 'kafka-2', 'kafka-3'].map((n) => cluster.services[n]!);
  expect(nodes.map((n) => Number(n.ports?.[0]?.split(':').at(-2)))).toEqual(
    three.kafkaNodes.map((n) => n.port),
  );
  for (const [i, n] of nodes.entries()) {
    expect(Number(n.environment['KAFKA_NODE_ID'])).toBe(i + 1);
    expect(n.environment['KAFKA_CONTROLLER_QUORUM_VOTERS']).toBe(
      '1@kafka:19093,2@kafka-2:19093,3@kafka-3:19093',
    );
    expect(String(n.environment['KAFKA_DEFAULT_REPLICATION_FACTOR'])).toBe('3');
    expect(String(n.environment['KAFKA_MIN_INSYNC_REPLICAS'])).toBe('2');
  }
  // Without the env file, node 1 runs alone and the other two are not started.
  const single = parse(execFileSync('docker-compose', ['-f', file, 'config'], { encoding: 'utf8' })) as {
    services: Record<string, { environment: Record<string, string | number>; profiles?: string[] }>;
  };
  expect(single.services['kafka']?.profiles).toBeUndefined();
  expect(single.services['kafka-2']?.profiles).toEqual(['cluster']);
  expect(single.services['kafka-3']?.profiles).toEqual(['cluster']);
  expect(single.services['kafka']?.environment['KAFKA_CONTROLLER_QUORUM_VOTERS']).toBe('1@kafka:19093');
  expect(String(single.services['kafka']?.environment['KAFKA_MIN_INSYNC_REPLICAS'])).toBe('1');
});

test('it runs the Kafka version the local stack downloads', () => {
  expect(compose.services['kafka']?.image).toBe(`apache/kafka:${e.kafkaVersion}`);
});

test('every file or folder it mounts from the repo exists', () => {
  const mounts = Object.values(compose.services)
    .flatMap((s) => s.volumes ?? [])
    // .holdback/ is this machine's runtime state, created on use (Docker creates it if missing).
    .filter((v) => v.startsWith('./') && !v.startsWith('./.holdback/'))
    .map((v) => v.split(':')[0]!);
  expect(mounts.length).toBeGreaterThan(0);
  for (const m of mounts) expect([m, existsSync(join(REPO_ROOT, m))]).toEqual([m, true]);
});

test('Prometheus loads the same rule files as the local stack, and alerts go to the same Alertmanager config', () => {
  const prom = compose.services['prometheus']!;
  expect(prom.volumes).toContain('./dashboards/prometheus/rules:/etc/prometheus/rules:ro');
  const config = parse(readFileSync(join(REPO_ROOT, 'dashboards/prometheus/prometheus.yml'), 'utf8')) as {
    rule_files: string[];
  };
  expect(config.rule_files).toEqual(['/etc/prometheus/rules/*.yml']);
  expect(compose.services['alertmanager']?.volumes).toContain(
    './dashboards/alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro',
  );
});
