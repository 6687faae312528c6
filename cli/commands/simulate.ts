/**
 * `holdback simulate [options]`: a seeded synthetic marketplace producing the contract's input
 * topics at a chosen rate (simulator/README.md). A bad or unknown option exits 2 naming it;
 * Ctrl-C stops after the batch in flight and still prints the summary.
 */
import { RegistryUnavailableError } from '../../connectors/codec';
import { OptionError, rawOptions, schemaOptions } from '../../connectors/flags';
import { SIMULATE_OPTIONS, SimulateOptionError, type SimulateInput } from '../../simulator/options';
import { simulate, type SimulationProgress, type SimulationSummary } from '../../simulator/producer';
import { commandModule, HoldbackCommand } from '../program';

const EXAMPLES = `
Examples:
  holdback simulate --merchants 200 --rate 5000                 # 120 days of history, then stop
  holdback simulate --duration 60s --duplicate-rate 0.01 --malformed-rate 0.001
  holdback simulate --start 2025-01-01 --seed 7 --events 100000 --json
  holdback simulate --late-settlement-rate 0.05 --late-settlement-delay 36h --mismatch-rate 0.01

Kafka and the schema registry: HOLDBACK_KAFKA_BOOTSTRAP_SERVERS, HOLDBACK_REGISTRY_URL and their
security settings (docs/deploy.md); by default the local stack's.`;

/** One help line per option of SIMULATE_OPTIONS. */
const OPTION_HELP = {
  merchants: 'merchants on the simulated platform',
  rate: 'records produced per second at most (duplicates and malformed records count)',
  duration: 'stop after this much wall time (seconds, or 90s, 10m, 2h)',
  events: 'stop after this many records',
  seed: 'seed of every random draw: the same seed and options give the same records',
  speed: 'simulated time per wall time: a multiplier, or 1d/0.5s (default 2d/1s); capped at now',
  start: 'simulated start: an ISO 8601 time, or how long before now (120d: that day at 00:00 UTC)',
  topicPrefix: 'prepended to every topic (tests, parallel simulations)',
  duplicateRate: 'share of events sent twice (same event_id and bytes)',
  reorderRate: 'share of order and sale events held back behind the next 1..4 records',
  malformedRate: 'malformed records injected per event',
  failRate: 'mean share of payouts that FAIL instead of settling',
  lateSettlementRate: 'share of settling payouts whose SETTLED comes late',
  lateSettlementDelay: 'extra delay of a late SETTLED (default 36h)',
  mismatchRate: 'share of SETTLED whose withheld_minor differs from what the rules withhold',
  json: 'print the final summary as JSON',
};

function fmt(n: number): string {
  return n.toLocaleString('en-US');
}

function progressLine(p: SimulationProgress): string {
  const topics = Object.entries(p.byTopic)
    .map(([t, n]) => `${t.split('.')[1]} ${fmt(n)}`)
    .join(', ');
  const sim = p.simulatedAt > 0 ? new Date(p.simulatedAt).toISOString().slice(0, 16) : '-';
  return `simulate: ${fmt(p.produced)} records, ${fmt(p.recordsPerSec)}/s (${topics}) sim ${sim}Z`;
}

function printSummary(s: SimulationSummary): void {
  const lines = [
    `produced ${fmt(s.produced)} records in ${s.wallSeconds.toFixed(1)} s (${fmt(s.recordsPerSec)}/s), stopped by ${s.stoppedBy}`,
    `simulated ${s.simulatedFrom} .. ${s.simulatedUntil}, seed ${s.seed}, ${fmt(s.merchants)} merchants${s.topicPrefix ? `, topic prefix ${s.topicPrefix}` : ''}`,
  ];
  for (const [topic, c] of Object.entries(s.topics)) {
    const types = Object.entries(c.byType)
      .map(([t, n]) => `${t} ${fmt(n)}`)
      .join(', ');
    lines.push(`  ${topic.padEnd(24)} ${fmt(c.records).padStart(10)}  ${types}`);
  }
  lines.push(
    `loans funded ${fmt(s.loansFunded)}; payouts scheduled ${fmt(s.payouts.scheduled)}, settled ${fmt(s.payouts.settled)}, failed ${fmt(s.payouts.failed)}, mismatched ${fmt(s.payouts.mismatched)}`,
    `injected: duplicates ${fmt(s.duplicates)}, reordered ${fmt(s.reordered)}, malformed ${fmt(s.malformed.total)}` +
      Object.entries(s.malformed.byKind)
        .map(([k, n]) => ` ${k} ${fmt(n)}`)
        .join(','),
  );
  const { settled, pending } = s.delayedSettlements;
  if (settled.length + pending.length > 0) {
    const show = (ids: readonly string[]) =>
      ids.slice(0, 20).join(' ') +
      (ids.length > 20 ? ` ... (${ids.length - 20} more, --json lists all)` : '');
    lines.push(`delayed settlements produced (${settled.length}): ${show(settled)}`);
    if (pending.length > 0)
      lines.push(`delayed settlements still to come (${pending.length}): ${show(pending)}`);
  }
  console.log(lines.join('\n'));
}

function create(): HoldbackCommand {
  const cmd = new HoldbackCommand('simulate').description(
    "Produces a synthetic marketplace (orders, sales, payouts, loans) to the contract's input topics, " +
      'keyed by merchant_id. The same seed and options (with an explicit --start) give the same records. ' +
      'Without --duration or --events it stops when the simulated clock reaches now. Ctrl-C stops after ' +
      'the batch in flight and still prints the summary.',
  );
  // The simulator checks the values itself (resolveOptions: some depend on now): the command
  // passes them on as given, and its schema gives the options, their defaults and help.
  const spec = {
    help: OPTION_HELP,
    booleans: new Set(['json'] as const),
    placeholder: {
      duration: 'duration',
      speed: 'speed',
      start: 'time',
      topicPrefix: 'prefix',
      lateSettlementDelay: 'duration',
    },
  };
  for (const o of schemaOptions(SIMULATE_OPTIONS, spec, (m) => cmd.error(m))) cmd.addOption(o);
  return cmd
    .addHelpText('after', EXAMPLES)
    .runs(async (c) => run(rawOptions(c.opts(), SIMULATE_OPTIONS, spec) as SimulateInput));
}

export const command = commandModule(create);

async function run(input: SimulateInput): Promise<number> {
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const tty = process.stderr.isTTY === true;
  let lastLine = 0;
  try {
    const summary = await simulate(input, {
      signal: controller.signal,
      onProgress: (p) => {
        if (tty) process.stderr.write(`\r\x1b[K${progressLine(p)}`);
        else if (p.elapsedMs - lastLine >= 5000) {
          lastLine = p.elapsedMs;
          process.stderr.write(`${progressLine(p)}\n`);
        }
      },
    });
    if (tty) process.stderr.write('\n');
    if (summary.options.json) console.log(JSON.stringify(summary, null, 2));
    else printSummary(summary);
    return 0;
  } catch (e) {
    if (tty) process.stderr.write('\n');
    // A bad option value (checked by the simulator against its schema): a usage error.
    if (e instanceof SimulateOptionError) throw new OptionError(e.message);
    if (e instanceof RegistryUnavailableError) {
      console.error(`holdback simulate: ${e.message}\nIs the stack up? (holdback stack status)`);
      return 1;
    }
    throw e;
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
  }
}
