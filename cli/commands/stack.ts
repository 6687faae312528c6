/** `holdback stack up | down | status | logs [component...]`. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import {
  ConfigError,
  KAFKA_MAX_NODES,
  KAFKA_VERSIONS,
  loadEndpoints,
  type Endpoints,
} from '../../connectors/endpoints';
import { componentNames, recordedCluster } from '../../stack/components';
import { securePaths } from '../../stack/secure';
import { down, formatStatus, logFile, status, up } from '../../stack/stack';
import type { Command } from '../main';

const HELP = `usage: holdback stack <up|down|status|logs> [component...]

  up [--brokers=N] [--secure] [component...]
                           install (once) and start the local stack on 127.0.0.1; waits until healthy.
                           --brokers=3 runs a three-node Kafka cluster (HOLDBACK_KAFKA_BROKERS);
                           --secure runs it secured: Kafka on SASL_SSL and mTLS, the registry and
                           ClickHouse on HTTPS with passwords (HOLDBACK_STACK_SECURE; stack/secure.ts);
                           HOLDBACK_KAFKA_VERSION=${KAFKA_VERSIONS.join('|')} picks the release
  down [--purge] [comp...] stop what up started (by PID); --purge also deletes its data
  status                   what runs where; exits 1 unless every component is healthy
  logs <component> [-f] [-n N]   show a component's log

components: ${componentNames().join(', ')}
ports and host: HOLDBACK_KAFKA_PORT, HOLDBACK_REGISTRY_PORT, ... (docs/stack.md)
Without --brokers or HOLDBACK_KAFKA_BROKERS, the stack keeps the size of the cluster it has (.holdback/run/kafka/cluster.json).`;

/**
 * The stack's settings: --brokers=N, then the environment, then the size of the cluster already
 * formatted here, so that `status`, `up` and `logs` after `up --brokers=3` mean that cluster.
 */
function stackEndpoints(flags: string[]): Endpoints {
  const env = { ...process.env };
  if (flags.includes('--secure')) env['HOLDBACK_STACK_SECURE'] = 'true';
  const unknown = flags.find((f) => !f.startsWith('--brokers') && f !== '--secure');
  if (unknown !== undefined)
    throw new ConfigError(`unknown flag ${unknown}: up and status take --brokers=N, --secure`);
  const brokers = flags.find((f) => f.startsWith('--brokers'));
  if (brokers !== undefined) {
    const m = /^--brokers=(\d+)$/.exec(brokers);
    if (!m) throw new ConfigError(`bad flag ${brokers}: expected --brokers=<1..${KAFKA_MAX_NODES}>`);
    env['HOLDBACK_KAFKA_BROKERS'] = m[1];
  }
  // The size, not the release: an older release's data is upgraded to the default in place.
  const recorded = recordedCluster();
  if (recorded) env['HOLDBACK_KAFKA_BROKERS'] ??= String(recorded.nodes);
  // Secure or plain likewise, so that `status` after `up --secure` checks the secure services.
  if (recorded?.secure) env['HOLDBACK_STACK_SECURE'] ??= 'true';
  return loadEndpoints(env);
}

const log = (line: string): void => console.log(`[stack] ${line}`);

export const command: Command = {
  summary: 'run the real Kafka, schema registry, ClickHouse, Prometheus and Alertmanager locally',
  async run(args) {
    const [verb, ...rest] = args;
    const flags = rest.filter((a) => a.startsWith('-'));
    const names = rest.filter((a, i) => !a.startsWith('-') && !(rest[i - 1] === '-n'));
    switch (verb) {
      case 'up': {
        const e = stackEndpoints(flags);
        const t0 = Date.now();
        await up(e, names, log);
        log(`up in ${((Date.now() - t0) / 1000).toFixed(1)}s`);
        console.log(formatStatus(await status(e)));
        if (e.secure)
          console.log(
            `\nsecured: TLS with a private CA, SCRAM and OAUTHBEARER on Kafka, passwords on the registry and ClickHouse.\n` +
              `clients reach it with: set -a; . ${securePaths().clientEnv}; set +a   (docs/deploy.md)`,
          );
        return 0;
      }
      case 'down':
        await down(names, flags.includes('--purge'), log);
        return 0;
      case 'status': {
        const rows = await status(stackEndpoints(flags));
        console.log(formatStatus(rows));
        return rows.every((r) => r.healthy) ? 0 : 1;
      }
      case 'logs': {
        const name = names[0];
        if (!name || !componentNames().includes(name)) {
          console.error(`holdback stack logs <${componentNames().join('|')}> [-f] [-n N]`);
          return 2;
        }
        const file = logFile(name);
        if (!existsSync(file)) {
          console.error(`no log yet at ${file}: has ${name} been started?`);
          return 1;
        }
        const n = rest[rest.indexOf('-n') + 1] ?? '100';
        const child = spawn(
          'tail',
          ['-n', rest.includes('-n') ? n : '100', ...(flags.includes('-f') ? ['-F'] : []), file],
          {
            stdio: 'inherit',
          },
        );
        return new Promise((resolve) => child.on('close', (code) => resolve(code ?? 0)));
      }
      case undefined:
      case '--help':
      case 'help':
        console.log(HELP);
        return verb ? 0 : 2;
      default:
        console.error(`holdback stack: unknown verb '${verb}'\n${HELP}`);
        return 2;
    }
  },
};
