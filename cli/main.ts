/**
 * `holdback`: one CLI for the stack, the schemas, the processors and the tools around them.
 * Each subcommand lives in cli/commands/<name>.ts and exports `run(args) => exit code`.
 */
import { redact, redactValue } from '../connectors/secrets';

export interface Command {
  readonly summary: string;
  run(args: string[]): Promise<number>;
}

const COMMANDS: Record<string, () => Promise<Command>> = {
  stack: async () => (await import('./commands/stack')).command,
  schemas: async () => (await import('./commands/schemas')).command,
  run: async () => (await import('./commands/run')).command,
  rebuild: async () => (await import('./commands/rebuild')).command,
  dlq: async () => (await import('./commands/dlq')).command,
  policy: async () => (await import('./commands/policy')).command,
  clickhouse: async () => (await import('./commands/clickhouse')).command,
  simulate: async () => (await import('./commands/simulate')).command,
  demo: async () => (await import('./commands/demo')).command,
};

function usage(): string {
  const lines = ['usage: holdback <command> [args]', '', 'commands:'];
  for (const name of Object.keys(COMMANDS)) lines.push(`  ${name}`);
  lines.push('', 'Run `holdback <command> --help` for more.');
  return lines.join('\n');
}

let redacting = false;

export async function main(argv: string[]): Promise<number> {
  // bin/holdback calls this directly: the backstop is installed here, before any command runs.
  if (!redacting) {
    redacting = true;
    redactOutput(process.stdout);
    redactOutput(process.stderr);
  }
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name ? 0 : 2;
  }
  const load = COMMANDS[name];
  if (!load) {
    console.error(`holdback: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  const command = await load();
  return command.run(rest);
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
