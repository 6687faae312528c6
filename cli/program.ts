/**
 * The one command-line parser of `holdback`: commander, with each command's zod schema behind it
 * for the values (connectors/flags.ts). Here: Holdback's commander command (its errors and exit
 * codes), the action wrapper every command uses, and running a parsed program to an exit code.
 *
 * Exit codes, the same for every command:
 *   0  success;
 *   1  a runtime failure: the command ran and failed (a service unreachable or refusing, an
 *      operation or a check that failed); trying again later may succeed;
 *   2  a usage or configuration error: an unknown command, subcommand or option, a missing or bad
 *      option value or argument, or a bad setting read at start-up (the environment, or a file an
 *      option or a setting names: a policy, a CA, a secret file; a ConfigError). Nothing was done;
 *      it fails the same way until the invocation or its configuration is fixed. The message
 *      names the option, setting or file and the reason.
 * `--help`/`-h` on any command prints its help and does nothing else (exit 0).
 */
import { Command, CommanderError } from 'commander';
import type { z } from 'zod';
import { ConfigError } from '../connectors/endpoints';
import {
  OptionError,
  rawOptions,
  schemaOptions,
  validateOptions,
  type OptionSpec,
} from '../connectors/flags';

export const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** The exit code each program's action returned, by the program's root command. */
const exitCodes = new WeakMap<Command, number>();

function rootOf(cmd: Command): Command {
  let c = cmd;
  while (c.parent) c = c.parent;
  return c;
}

/** `holdback stack up`: the words that name a command. */
export function commandPath(cmd: Command): string {
  const names: string[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** A command of `holdback`: commander's, with Holdback's error messages and exit code 2. */
export class HoldbackCommand extends Command {
  /** What an operand naming no subcommand is called in its error: "unknown processor 'x'". */
  operandNoun = 'command';

  override createCommand(name?: string): HoldbackCommand {
    return new HoldbackCommand(name);
  }

  /**
   * Every error of the command line goes through here (commander's own and Holdback's):
   * `holdback <command>: <what and why>`, then where the help is; exit code 2.
   */
  override error(message: string, errorOptions?: { code?: string; exitCode?: number }): never {
    const code = errorOptions?.code ?? 'holdback.usage';
    const path = commandPath(this);
    const hint = code === 'holdback.config' ? '' : `\n(see \`${path} --help\`)`;
    return super.error(`${path}: ${this.explain(message, code)}${hint}`, { code, exitCode: EXIT.usage });
  }

  /** Commander's messages in the shape of Holdback's option errors. */
  private explain(message: string, code: string): string {
    const m = message.replace(/^error: /, '');
    switch (code) {
      case 'commander.unknownOption': {
        const x = /^unknown option '([^']*)'([\s\S]*)$/.exec(m);
        return x ? `unknown option ${x[1]!.split('=')[0]}${x[2]}` : m;
      }
      case 'commander.unknownCommand': {
        const x = /^unknown command '([^']*)'([\s\S]*)$/.exec(m);
        return x ? `unknown ${this.operandNoun} '${x[1]}'${x[2]}` : m;
      }
      case 'commander.optionMissingArgument': {
        const flag = /--[\w-]+/.exec(m)?.[0] ?? /'(-\w)/.exec(m)?.[1];
        return flag ? `option ${flag} needs a value` : m;
      }
      case 'commander.excessArguments':
        return `unexpected argument '${this.args[this.registeredArguments.length] ?? this.args.at(-1)}'`;
      case 'commander.missingArgument': {
        const x = /'([^']*)'/.exec(m);
        return x ? `missing argument <${x[1]}>` : m;
      }
      default:
        return m;
    }
  }

  /**
   * Adds the options of a zod schema (one help line each; `spec`) and returns the reader of their
   * validated values: call it in the action.
   */
  schemaOptions<S extends z.ZodObject>(
    schema: S,
    spec: OptionSpec<Extract<keyof S['shape'], string>>,
  ): (cmd: Command) => z.infer<S> {
    for (const option of schemaOptions(schema, spec, (m) => this.error(m))) this.addOption(option);
    return (cmd) => validateOptions(schema, rawOptions(cmd.opts(), schema, spec));
  }

  /**
   * The command's action: `run` returns the exit code. An OptionError or ConfigError it throws is
   * a usage or configuration error (exit 2, the message on stderr); anything else thrown is a
   * runtime failure (bin/holdback prints it and exits 1).
   */
  runs(run: (cmd: HoldbackCommand) => Promise<number>): this {
    return this.action(async (...args: unknown[]) => {
      const cmd = args[args.length - 1] as HoldbackCommand;
      let code: number;
      try {
        code = await run(cmd);
      } catch (e) {
        if (e instanceof OptionError) cmd.error(e.message);
        if (e instanceof ConfigError) cmd.error(e.message, { code: 'holdback.config' });
        throw e;
      }
      exitCodes.set(rootOf(cmd), code);
    });
  }
}

/** Throws a usage error (exit 2) from an action, e.g. for a bad positional argument. */
export function usageError(message: string): never {
  throw new OptionError(message);
}

/** The same behaviour on every command of the tree: errors thrown, not exits; help on stdout. */
function finish(cmd: Command): void {
  cmd
    .exitOverride()
    .configureOutput({
      writeOut: (s) => process.stdout.write(s),
      writeErr: (s) => process.stderr.write(s),
    })
    .helpOption('-h, --help', 'print this help and exit (does nothing else)')
    .configureHelp({
      // Subcommands as `up [component...]`, not `up [options] [component...]`.
      subcommandTerm: (c) =>
        [
          c.name(),
          ...c.registeredArguments.map((a) => {
            const n = `${a.name()}${a.variadic ? '...' : ''}`;
            return a.required ? `<${n}>` : `[${n}]`;
          }),
          ...(c.commands.length > 0 ? [`<${(c as HoldbackCommand).operandNoun ?? 'command'}>`] : []),
        ].join(' '),
    });
  if (cmd.parent) cmd.helpCommand(false);
  for (const sub of cmd.commands) finish(sub);
}

/** The root of a `holdback` program; commands are added to it. */
export function rootProgram(): HoldbackCommand {
  return new HoldbackCommand('holdback');
}

/** Parses `argv` (after `holdback`) with `program` and runs the chosen action: its exit code. */
export async function runProgram(program: HoldbackCommand, argv: readonly string[]): Promise<number> {
  finish(program);
  exitCodes.delete(program);
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (e) {
    // --help and --version end the parse with exit code 0; every other commander error is usage.
    if (e instanceof CommanderError) return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    throw e;
  }
  return exitCodes.get(program) ?? EXIT.ok;
}

/** What each cli/commands/<name>.ts exports. */
export interface CommandModule {
  /** The command with its subcommands, options and actions; nothing runs until it is parsed. */
  create(): HoldbackCommand;
  /** `holdback <name> ...args` on this command alone: its exit code. */
  run(args: readonly string[]): Promise<number>;
}

export function commandModule(create: () => HoldbackCommand): CommandModule {
  return {
    create,
    run: (args) => {
      const cmd = create();
      return runProgram(rootProgram().addCommand(cmd), [cmd.name(), ...args]);
    },
  };
}
