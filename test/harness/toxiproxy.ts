/**
 * Toxiproxy (Shopify's TCP fault proxy, the Go module github.com/Shopify/toxiproxy/v2), run as a
 * real process for the network-partition test. `npm test` installs it (scripts/test.sh:
 * `go install`) into .holdback/cache/go/bin. A proxy forwards one port to another; `cut` adds a
 * `timeout` toxic with timeout 0 in both directions, which holds every connection open and
 * drops all its data, as a partitioned network does (no reset, no refusal); `heal` removes it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Endpoints } from '../../connectors/endpoints';
import { REPO_ROOT } from '../../stack/paths';
import { waitFor } from './processes';

export const TOXIPROXY_BIN = join(REPO_ROOT, '.holdback', 'cache', 'go', 'bin', 'toxiproxy-server');
/** The API port of the test's Toxiproxy (beside the stack's ports, below the cluster's). */
export const TOXIPROXY_PORT = 28474;

export class Toxiproxy {
  private constructor(
    private readonly child: ChildProcess,
    private readonly api: string,
  ) {}

  static async start(port = TOXIPROXY_PORT): Promise<Toxiproxy> {
    if (!existsSync(TOXIPROXY_BIN)) {
      throw new Error(
        `Toxiproxy is not installed at ${TOXIPROXY_BIN}: \`npm test\` installs it, or run ` +
          'GOPATH=$PWD/.holdback/cache/go go install github.com/Shopify/toxiproxy/v2/cmd/server@v2.5.0 ' +
          '&& mv .holdback/cache/go/bin/server .holdback/cache/go/bin/toxiproxy-server',
      );
    }
    const child = spawn(TOXIPROXY_BIN, ['-host', '127.0.0.1', '-port', String(port)], { stdio: 'ignore' });
    const t = new Toxiproxy(child, `http://127.0.0.1:${port}`);
    await waitFor(
      'Toxiproxy to answer',
      async () => (await fetch(`${t.api}/version`).catch(() => undefined))?.ok === true,
      15_000,
      100,
    );
    return t;
  }

  private async call(method: string, path: string, body?: unknown): Promise<void> {
    const r = await fetch(`${this.api}${path}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!r.ok) throw new Error(`Toxiproxy ${method} ${path}: ${r.status} ${await r.text()}`);
  }

  /** A proxy listening on `listen` (host:port) and forwarding to `upstream`. */
  async create(name: string, listen: string, upstream: string): Promise<void> {
    await this.call('POST', '/proxies', { name, listen, upstream, enabled: true });
  }

  /** Partitions the proxy's network: every byte either way is dropped; connections stay open. */
  async cut(name: string): Promise<void> {
    for (const stream of ['upstream', 'downstream'] as const)
      await this.toxic(name, `cut-${stream}`, 'timeout', stream, { timeout: 0 });
  }

  async heal(name: string): Promise<void> {
    for (const stream of ['upstream', 'downstream']) await this.removeToxic(name, `cut-${stream}`);
  }

  /**
   * Adds toxic `name` to a proxy (Toxiproxy's own types, e.g. `latency` with `{ latency: ms }`
   * or `reset_peer` with `{ timeout: 0 }`); `removeToxic` takes it away.
   */
  async toxic(
    proxy: string,
    name: string,
    type: string,
    stream: 'upstream' | 'downstream',
    attributes: Record<string, number>,
  ): Promise<void> {
    await this.call('POST', `/proxies/${proxy}/toxics`, { name, type, stream, toxicity: 1, attributes });
  }

  async removeToxic(proxy: string, name: string): Promise<void> {
    await this.call('DELETE', `/proxies/${proxy}/toxics/${name}`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return;
    const exited = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGTERM');
    await exited;
  }
}

/**
 * A proxy `kafka-<id>` in front of each Kafka node's proxied listener (HOLDBACK_KAFKA_PROXIED_PORT,
 * test/cluster/cluster.env): a client bootstrapping from a proxied port reaches every broker only
 * through these. Returns the proxies' names, node 1 first.
 */
export async function proxyKafkaNodes(t: Toxiproxy, e: Endpoints): Promise<string[]> {
  if (!e.kafkaNodes[0]?.proxied) {
    throw new Error(
      'the brokers have no proxied listener: start the cluster with HOLDBACK_KAFKA_PROXIED_PORT set, ' +
        'as test/cluster/cluster.env does (restart it if it was started without)',
    );
  }
  const names: string[] = [];
  for (const n of e.kafkaNodes) {
    const name = `kafka-${n.id}`;
    await t.create(name, `${e.host}:${n.proxied!.advertised}`, `${e.host}:${n.proxied!.listen}`);
    names.push(name);
  }
  return names;
}
