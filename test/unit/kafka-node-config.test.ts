/** The broker settings `holdback stack up` writes for one node and for a three-node cluster. */
import { loadEndpoints } from '../../connectors/endpoints';
import { serverProperties } from '../../stack/components';

function props(brokers: number, node: number): Map<string, string> {
  const e = loadEndpoints({ HOLDBACK_KAFKA_BROKERS: String(brokers) });
  const text = serverProperties(e, e.kafkaNodes[node - 1]!, '/data');
  return new Map(
    text
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
}

test('one node replicates nothing: factor 1 and min ISR 1, or transactions never start', () => {
  const p = props(1, 1);
  expect(p.get('controller.quorum.voters')).toBe('1@127.0.0.1:19093');
  for (const k of ['offsets.topic.replication.factor', 'transaction.state.log.replication.factor'])
    expect(p.get(k)).toBe('1');
  expect(p.get('min.insync.replicas')).toBe('1');
});

test('each node of three is a voter on its own ports, with factor 3, min ISR 2 and no unclean election', () => {
  for (const node of [1, 2, 3]) {
    const p = props(3, node);
    expect(p.get('node.id')).toBe(String(node));
    expect(p.get('controller.quorum.voters')).toBe('1@127.0.0.1:19093,2@127.0.0.1:19193,3@127.0.0.1:19293');
    expect(p.get('listeners')).toBe(
      `PLAINTEXT://127.0.0.1:${19092 + 100 * (node - 1)},CONTROLLER://127.0.0.1:${19093 + 100 * (node - 1)}`,
    );
    expect(p.get('offsets.topic.replication.factor')).toBe('3');
    expect(p.get('transaction.state.log.replication.factor')).toBe('3');
    expect(p.get('default.replication.factor')).toBe('3');
    expect(p.get('transaction.state.log.min.isr')).toBe('2');
    expect(p.get('min.insync.replicas')).toBe('2');
    expect(p.get('unclean.leader.election.enable')).toBe('false');
  }
});

test('HOLDBACK_KAFKA_PROXIED_PORT adds a listener per node, bound one port up and advertised at the proxy port', () => {
  const e = loadEndpoints({ HOLDBACK_KAFKA_BROKERS: '3', HOLDBACK_KAFKA_PROXIED_PORT: '29592' });
  expect(e.kafkaNodes.map((n) => n.proxied)).toEqual([
    { advertised: 29592, listen: 29593 },
    { advertised: 29692, listen: 29693 },
    { advertised: 29792, listen: 29793 },
  ]);
  const text = serverProperties(e, e.kafkaNodes[1]!, '/data');
  expect(text).toContain(
    'listeners=PLAINTEXT://127.0.0.1:19192,CONTROLLER://127.0.0.1:19193,PROXIED://127.0.0.1:29693',
  );
  expect(text).toContain('advertised.listeners=PLAINTEXT://127.0.0.1:19192,PROXIED://127.0.0.1:29692');
  expect(text).toContain(
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,PROXIED:PLAINTEXT',
  );
  // Without it, nothing changes.
  expect(serverProperties(loadEndpoints({}), loadEndpoints({}).kafkaNodes[0]!, '/d')).not.toContain(
    'PROXIED',
  );
  // A proxied port that lands on another service's is refused.
  expect(() => loadEndpoints({ HOLDBACK_KAFKA_PROXIED_PORT: '19092' })).toThrow(/share a port/);
});
