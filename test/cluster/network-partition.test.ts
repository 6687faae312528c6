/**
 * A network partition on the three-node cluster (issue 14), on both transports: two repayment
 * instances share the tasks; one reaches the brokers only through Toxiproxy (the brokers'
 * PROXIED listener, HOLDBACK_KAFKA_PROXIED_PORT in test/cluster/cluster.env), the other
 * directly. The proxied one is cut off for 25 s mid-traffic (all its bytes dropped, its
 * connections left open), then healed. The other must take its tasks over and go on; the cut one
 * must be fenced if it writes late, and rejoin once healed. The scenario's verifier then checks
 * exact equality with a clean run, the money invariants, every input offset decided or
 * dead-lettered, and one owner at a time per partition.
 */
import { endpoints } from '../harness/kafka';
import { scenario, TRANSPORTS } from '../harness/eos-scenario';
import { logTail, waitFor, type ProcessorProcess } from '../harness/processes';
import { proxyKafkaNodes, Toxiproxy } from '../harness/toxiproxy';

jest.setTimeout(360_000);

const CUT_MS = 25_000;

let proxy: Toxiproxy;
let names: string[];

beforeAll(async () => {
  proxy = await Toxiproxy.start();
  names = await proxyKafkaNodes(proxy, endpoints);
});

afterAll(async () => {
  await proxy?.stop();
});

/** The partitions `p` was last assigned (its latest "assignment" log line), if that was at or after `since`. */
function assigned(p: ProcessorProcess, since = 0): number[] | undefined {
  const lines = logTail(p, 100_000)
    .split('\n')
    .filter((l) => l.includes('"msg":"assignment"'));
  const last = lines[lines.length - 1];
  if (!last) return undefined;
  const j = JSON.parse(last) as { t: string; partitions: number[] };
  return Date.parse(j.t) >= since ? j.partitions : undefined;
}

test.each(TRANSPORTS)(
  'an instance cut from every broker for 25 s, then healed: its tasks move and come back (%s)',
  async (transport) => {
    await scenario(
      'partition',
      41,
      async (s) => {
        const direct = s.spawn('direct');
        // Its client bootstraps from the proxies' ports, and the brokers' PROXIED listener
        // advertises those ports, so every connection it makes goes through a proxy.
        const cutOff = s.spawn('proxied', [], {
          HOLDBACK_KAFKA_PORT: String(endpoints.kafkaNodes[0]!.proxied!.advertised),
          HOLDBACK_KAFKA_PROXIED_PORT: undefined,
        });
        await waitFor(
          'the two instances to share the tasks',
          async () => assigned(direct)?.length === 2 && assigned(cutOff)?.length === 2,
          120_000,
          500,
        );
        await waitFor('25% progress', async () => (await s.progress()) >= 0.25, 120_000);
        const cutAt = Date.now();
        for (const n of names) await proxy.cut(n);
        try {
          // The direct instance takes every task over once the cut one's session expires.
          await waitFor(
            'the direct instance to hold all four tasks',
            async () => assigned(direct, cutAt)?.length === 4,
            60_000,
            500,
          );
          const before = await s.progress();
          await waitFor('progress during the cut', async () => (await s.progress()) > before, 60_000, 1000);
          await new Promise((r) => setTimeout(r, CUT_MS - 15_000));
        } finally {
          for (const n of names) await proxy.heal(n);
        }
        const healedAt = Date.now();
        // Healed: it rejoins and gets tasks again.
        await waitFor(
          'the healed instance to hold tasks again',
          async () =>
            (assigned(cutOff, healedAt)?.length ?? 0) > 0 && assigned(direct, healedAt)?.length === 2,
          180_000,
          1000,
        );
        return [direct, cutOff];
      },
      { transport },
    );
  },
);
