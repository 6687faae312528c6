/**
 * `holdback simulate [options]`: a seeded synthetic marketplace producing the contract's input
 * topics at a chosen rate (simulator/README.md). A bad or unknown option exits 2 naming it;
 * Ctrl-C stops after the batch in flight and still prints the summary.
 */
import { RegistryUnavailableError } from '../../connectors/codec';
import { describeOptions, parseSimulateArgs, SimulateOptionError } from '../../simulator/options';
import { simulate, type SimulationProgress, type SimulationSummary } from '../../simulator/producer';
import type { Command } from '../main';

const HELP = `usage: holdback simulate [options]

Produces a synthetic marketplace (orders, sales, payouts, loans) to the contract's input topics,
keyed by merchant_id. The same seed and options (with an explicit --start) give the same records.
Without --duration or --events it stops when the simulated clock reaches now.

options:
${describeOptions()}

examples:
  holdback simulate --merchants 200 --rate 5000                 # 120 days of history, then stop
  holdback simulate --duration 60s --duplicate-rate 0.01 --malformed-rate 0.001
  holdback simulate --start 2025-01-01 --seed 7 --events 100000 --json
  holdback simulate --late-settlement-rate 0.05 --late-settlement-delay 36h --mismatch-rate 0.01

Kafka and the schema registry: HOLDBACK_KAFKA_BOOTSTRAP_SERVERS, HOLDBACK_REGISTRY_URL and their
security settings (docs/deploy.md); by default the local stack's.`;

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

export const command: Command = {
  summary: 'produce a seeded synthetic marketplace to the input topics',
  async run(args) {
    if (args.includes('--help') || args.includes('-h')) {
      console.log(HELP);
      return 0;
    }
    const controller = new AbortController();
    const stop = (): void => controller.abort();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const tty = process.stderr.isTTY === true;
    let lastLine = 0;
    try {
      const input = parseSimulateArgs(args);
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
      if (e instanceof SimulateOptionError) {
        console.error(`holdback simulate: ${e.message}\nRun \`holdback simulate --help\` for the options.`);
        return 2;
      }
      if (e instanceof RegistryUnavailableError) {
        console.error(`holdback simulate: ${e.message}\nIs the stack up? (holdback stack status)`);
        return 1;
      }
      throw e;
    } finally {
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
    }
  },
};
