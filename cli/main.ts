/**
 * `holdback`: one CLI for the stack, the schemas, the processors and the tools around them.
 * Each command lives in cli/commands/<name>.ts as a commander command (cli/program.ts: the one
 * parser, the errors, the exit codes: 0 success, 1 runtime failure, 2 usage or configuration
 * error). A command's module is loaded only when it is run or its help is asked for, so that
 * `holdback --help` and each command start without loading the others.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { redact, redactValue } from '../connectors/secrets';
import { REPO_ROOT } from '../stack/paths';
import { rootProgram, runProgram, type CommandModule, type HoldbackCommand } from './program';

/** Every command: its one-line summary (`holdback --help`) and its module, loaded when needed. */
export const COMMANDS: Readonly<Record<string, { summary: string; load: () => Promise<CommandModule> }>> = {
  stack: {
    summary: 'run the real Kafka, schema registry, ClickHouse, Prometheus and Alertmanager locally',
    load: async () => (await import('./commands/stack')).command,
  },
  schemas: {
    summary: 'register the contract schemas in the schema registry, or check them against it',
    load: async () => (await import('./commands/schemas')).command,
  },
  run: {
    summary: 'run a processor on Kafka with exactly-once effects',
    load: async () => (await import('./commands/run')).command,
  },
  rebuild: {
    summary: "rebuild a processor's lost state from its inputs and check it against what was published",
    load: async () => (await import('./commands/rebuild')).command,
  },
  dlq: {
    summary: 'inspect and replay dead letters, or skip the record a stopped partition is stuck on',
    load: async () => (await import('./commands/dlq')).command,
  },
  policy: {
    summary: 'simulate a candidate eligibility policy on the history in Kafka',
    load: async () => (await import('./commands/policy')).command,
  },
  clickhouse: {
    summary: 'ClickHouse analytics: migrate, run the exactly-once sink, status',
    load: async () => (await import('./commands/clickhouse')).command,
  },
  simulate: {
    summary: 'produce a seeded synthetic marketplace to the input topics',
    load: async () => (await import('./commands/simulate')).command,
  },
  demo: {
    summary: 'stream simulated marketplace traffic through the whole pipeline and summarise it',
    load: async () => (await import('./commands/demo')).command,
  },
};

/** Holdback's version: package.json's. */
export function version(): string {
  return (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
}

const EXIT_CODES = `
Exit codes: 0 success; 1 a runtime failure (a service unreachable, an operation or a check that
failed); 2 a usage or configuration error (an unknown command or option, a bad option value or
argument, a bad setting in the environment or a file it names), which names what and why.
Run \`holdback <command> --help\` for a command's subcommands and options.`;

/**
 * The whole program: the commands named in `load` (every one with 'all') with their subcommands
 * and options; the others as their name and summary only, enough for `holdback --help`.
 */
export async function buildProgram(load: 'all' | readonly string[] = 'all'): Promise<HoldbackCommand> {
  const program = rootProgram()
    .description('Streaming risk and repayment engine for embedded lending (README.md).')
    .version(version(), '-v, --version', 'print the version and exit')
    .addHelpText('after', EXIT_CODES);
  program.helpCommand('help [command]', "print a command's help and exit");
  for (const [name, c] of Object.entries(COMMANDS)) {
    if (load === 'all' || load.includes(name)) {
      program.addCommand((await c.load()).create().summary(c.summary));
    } else {
      program
        .command(name)
        .summary(c.summary)
        .action(() => {
          throw new Error(`holdback ${name} is not loaded`);
        });
    }
  }
  return program;
}

let redacting = false;

export async function main(argv: string[]): Promise<number> {
  // bin/holdback calls this directly: the backstop is installed here, before any command runs.
  if (!redacting) {
    redacting = true;
    redactOutput(process.stdout);
    redactOutput(process.stderr);
  }
  // Only the command named (or whose help is asked for: `holdback help stack`) is loaded.
  const named = argv[0] === 'help' ? argv[1] : argv[0];
  const load = named !== undefined && Object.hasOwn(COMMANDS, named) ? [named] : [];
  return runProgram(await buildProgram(load), argv);
}

/**
 * The backstop of "secrets never leave": whatever a command or a library prints goes through
 * `redact`, which masks every secret this process loaded (connectors/secrets.ts).
 */
function redactOutput(stream: NodeJS.WriteStream): void {
  const write = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
  stream.write = ((chunk: unknown, ...rest: unknown[]) =>
    write(typeof chunk === 'string' ? redact(chunk) : chunk, ...rest)) as typeof stream.write;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      console.error(`holdback: ${redactValue(err)}`);
      if (process.env['HOLDBACK_DEBUG'])
        console.error(redact(err instanceof Error ? (err.stack ?? err.message) : String(err)));
      process.exitCode = 1;
    },
  );
}
