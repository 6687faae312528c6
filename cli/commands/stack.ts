/** `holdback stack up | down | status | logs`: the local stack of real services. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { z } from 'zod';
import { KAFKA_MAX_NODES, KAFKA_VERSIONS, loadEndpoints, type Endpoints } from '../../connectors/endpoints';
import { componentNames, recordedCluster } from '../../stack/components';
import { securePaths } from '../../stack/secure';
import { down, formatStatus, logFile, status, up } from '../../stack/stack';
import { commandModule, HoldbackCommand, usageError } from '../program';

const CLUSTER_OPTIONS = z
  .object({
    brokers: z.coerce.number().int().min(1).max(KAFKA_MAX_NODES).optional(),
    secure: z.boolean().default(false),
  })
  .strict();
const CLUSTER_SPEC = {
  help: {
    brokers:
      `Kafka nodes, 1..${KAFKA_MAX_NODES} (HOLDBACK_KAFKA_BROKERS); default the size of the cluster ` +
      'already formatted here (.holdback/run/kafka/cluster.json), else 1',
    secure:
      'the secured stack: Kafka on SASL_SSL and mTLS, the registry and ClickHouse on HTTPS with ' +
      'passwords (HOLDBACK_STACK_SECURE; stack/secure.ts)',
  },
  switches: new Set(['secure'] as const),
};

const ENVIRONMENT = `
components: ${componentNames().join(', ')}
ports and host: HOLDBACK_KAFKA_PORT, HOLDBACK_REGISTRY_PORT, ... (docs/stack.md);
HOLDBACK_KAFKA_VERSION=${KAFKA_VERSIONS.join('|')} picks the Kafka release;
HOLDBACK_HOME moves the downloads and the state (default .holdback/).`;

/**
 * The stack's settings: --brokers=N, then the environment, then the size of the cluster already
 * formatted here, so that `status`, `up` and `logs` after `up --brokers=3` mean that cluster.
 */
function stackEndpoints(o: { brokers?: number | undefined; secure: boolean }): Endpoints {
  const env = { ...process.env };
  if (o.secure) env['HOLDBACK_STACK_SECURE'] = 'true';
  if (o.brokers !== undefined) env['HOLDBACK_KAFKA_BROKERS'] = String(o.brokers);
  // The size, not the release: an older release's data is upgraded to the default in place.
  const recorded = recordedCluster();
  if (recorded) env['HOLDBACK_KAFKA_BROKERS'] ??= String(recorded.nodes);
  // Secure or plain likewise, so that `status` after `up --secure` checks the secure services.
  if (recorded?.secure) env['HOLDBACK_STACK_SECURE'] ??= 'true';
  return loadEndpoints(env);
}

/** Component names as given: each must name a component (a usage error otherwise). */
function components(names: readonly string[]): string[] {
  const all = componentNames();
  for (const n of names)
    if (!all.includes(n)) usageError(`unknown component '${n}': one of ${all.join(', ')}`);
  return [...names];
}

const log = (line: string): void => console.log(`[stack] ${line}`);

function create(): HoldbackCommand {
  const stack = new HoldbackCommand('stack').description(
    'The local stack on 127.0.0.1: Kafka, the schema registry, ClickHouse, Prometheus and Alertmanager, ' +
      'installed under .holdback/ (HOLDBACK_HOME) and run as plain processes.',
  );
  stack.operandNoun = 'subcommand';
  stack.addHelpText('after', ENVIRONMENT);

  const upCmd = stack
    .command('up')
    .summary('install (once) and start the stack, or the components named; waits until healthy')
    .description(
      'Installs (once) and starts the local stack, or only the components named, and waits until ' +
        'each is healthy. Components already running and healthy are left alone.',
    )
    .argument('[component...]', 'components to start (default all)');
  const upOptions = upCmd.schemaOptions(CLUSTER_OPTIONS, CLUSTER_SPEC);
  upCmd.runs(async (cmd) => {
    const names = components(cmd.args);
    const e = stackEndpoints(upOptions(cmd));
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
  });
  upCmd.addHelpText('after', ENVIRONMENT);

  const downCmd = stack
    .command('down')
    .summary('stop what up started (by PID), or the components named')
    .description(
      'Stops what `holdback stack up` started (by PID), or only the components named; `kafka` is the whole cluster.',
    )
    .argument('[component...]', 'components to stop (default all)');
  const downOptions = downCmd.schemaOptions(z.object({ purge: z.boolean().default(false) }).strict(), {
    help: { purge: 'also delete their data (.holdback/run/<component>)' },
    switches: new Set(['purge'] as const),
  });
  downCmd.runs(async (cmd) => {
    const names = components(cmd.args);
    await down(names, downOptions(cmd).purge, log);
    return 0;
  });

  const statusCmd = stack
    .command('status')
    .summary('what runs where; exits 1 unless every component is healthy')
    .description('What runs where. Exits 0 when every component is healthy, 1 otherwise.');
  const statusOptions = statusCmd.schemaOptions(CLUSTER_OPTIONS, CLUSTER_SPEC);
  statusCmd.runs(async (cmd) => {
    const rows = await status(stackEndpoints(statusOptions(cmd)));
    console.log(formatStatus(rows));
    return rows.every((r) => r.healthy) ? 0 : 1;
  });

  const logsCmd = stack
    .command('logs')
    .summary("show a component's log")
    .description("Shows the end of a component's log (tail); exits 1 when it has none yet.")
    .argument('<component>', `one of ${componentNames().join(', ')}`);
  const logsOptions = logsCmd.schemaOptions(
    z
      .object({
        follow: z.boolean().default(false),
        lines: z.coerce.number().int().min(0).max(1_000_000).default(100),
      })
      .strict(),
    {
      help: { follow: 'keep printing what is appended (tail -F)', lines: 'how many lines from the end' },
      switches: new Set(['follow'] as const),
      short: { follow: '-f', lines: '-n' },
    },
  );
  logsCmd.runs(async (cmd) => {
    const [name] = components(cmd.args);
    const o = logsOptions(cmd);
    const file = logFile(name!);
    if (!existsSync(file)) {
      console.error(`no log yet at ${file}: has ${name} been started?`);
      return 1;
    }
    const child = spawn('tail', ['-n', String(o.lines), ...(o.follow ? ['-F'] : []), file], {
      stdio: 'inherit',
    });
    return new Promise((resolve) => child.on('close', (code) => resolve(code ?? 0)));
  });
  return stack;
}

export const command = commandModule(create);
