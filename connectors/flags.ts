/**
 * Command-line options, read one way by every command: commander parses them, the command's zod
 * schema validates them. `--name=value` and `--name value` both work; a boolean option is given
 * bare (`--json`; the schema's stringbool ones also take `--name=false`). Names are kebab-case on
 * the command line and camelCase in the schema. Every mistake stops with the option's name and the
 * reason (`unknown option --foo`, `option --x needs a value`, `option --x given twice`,
 * `missing option --x: ...`, `bad option --x=v: ...`), never a silent default.
 *
 * The CLI (cli/program.ts) puts these options on its commander commands; readFlags and parseFlags
 * parse a bare argument list the same way, for callers outside the CLI (tests, benchmarks).
 */
import { Command, Option } from 'commander';
import { z } from 'zod';
import { ConfigError } from './endpoints';

export const camel = (flag: string): string => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
export const kebab = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** A mistake in the options given: a usage error (the CLI exits 2 and points at --help). */
export class OptionError extends ConfigError {}

/** How each option of a schema appears on the command line and in --help. */
export interface OptionSpec<K extends string = string> {
  /** One line of help per option: every key of the schema needs one. */
  readonly help: Readonly<Record<K, string>>;
  /** Boolean options: given bare they mean true; `--name=true|false` and `--name false` work too. */
  readonly booleans?: ReadonlySet<K>;
  /** Plain switches (no value at all): for commands with positional arguments after them. */
  readonly switches?: ReadonlySet<K>;
  /** Short aliases, e.g. `{ lines: '-n' }`. */
  readonly short?: Readonly<Partial<Record<K, string>>>;
  /** The value's name in --help (`--policy <file>`); derived from the schema when absent. */
  readonly placeholder?: Readonly<Partial<Record<K, string>>>;
  /** Accepted but not listed in --help (e.g. only to say it belongs to another command). */
  readonly hidden?: ReadonlySet<K>;
}

export interface FlagRules {
  /** camelCase names the command knows; anything else is an unknown option. */
  readonly known: ReadonlySet<string>;
  /** Options given without a value (their value is 'true'). */
  readonly booleans?: ReadonlySet<string>;
  /** The error to throw (OptionError, a ConfigError, unless the command has its own). */
  readonly error?: (message: string) => Error;
}

/** The zod type under .optional() / .default() wrappers. */
function inner(t: z.ZodType): z.ZodType {
  let cur = t;
  for (let i = 0; i < 10; i++) {
    if (cur instanceof z.ZodOptional || cur instanceof z.ZodDefault || cur instanceof z.ZodNullable)
      cur = cur.unwrap() as z.ZodType;
    else break;
  }
  return cur;
}

/** Choices of an enum option, or undefined. */
function choicesOf(t: z.ZodType): string[] | undefined {
  const base = inner(t);
  return base instanceof z.ZodEnum ? (base.options as string[]) : undefined;
}

function placeholderOf(key: string, t: z.ZodType): string {
  const base = inner(t);
  const choices = choicesOf(t);
  // Short choice lists in the term (`--clock <wall|stream>`); longer ones in the help line.
  if (choices) return choices.join('|').length <= 14 ? choices.join('|') : 'choice';
  if (/Ms$/.test(key)) return 'ms';
  if (base instanceof z.ZodNumber) return 'n';
  return 'value';
}

/** The default a schema field shows in --help, or 'required' when it has none and must be given. */
function defaultOf(t: z.ZodType): { required: boolean; value?: string } {
  const r = t.safeParse(undefined);
  if (!r.success) return { required: true };
  return r.data === undefined || r.data === '' || r.data === false
    ? { required: false }
    : { required: false, value: String(r.data) };
}

/**
 * The commander options of a schema, one per key, each with its help line (plus its default, or
 * "required"). `fail` is called with the message of a repeated option.
 */
export function schemaOptions<S extends z.ZodObject>(
  schema: S,
  spec: OptionSpec<Extract<keyof S['shape'], string>>,
  fail: (message: string) => never,
): Option[] {
  const shape = schema.shape as Record<string, z.ZodType>;
  return Object.entries(shape).map(([key, type]) => {
    const k = key as Extract<keyof S['shape'], string>;
    const flag = `--${kebab(key)}`;
    const short = spec.short?.[k];
    const names = short ? `${short}, ${flag}` : flag;
    const line: string | undefined = spec.help[k];
    if (line === undefined || line.trim() === '') throw new Error(`option ${flag} has no help line`);
    let help = line;
    const choices = choicesOf(type);
    const placeholder = spec.placeholder?.[k] ?? placeholderOf(key, type);
    if (choices && placeholder !== choices.join('|') && !choices.every((c) => line.includes(c)))
      help += ` (one of ${choices.join(', ')})`;
    const d = defaultOf(type);
    if (d.required) help += ' (required)';
    else if (d.value !== undefined && !/\bdefault\b/.test(help)) help += ` (default ${d.value})`;
    const once = (value: string, previous: unknown): string => {
      if (previous !== undefined) fail(`option ${flag} given twice`);
      return value;
    };
    let option: Option;
    if (spec.switches?.has(k)) option = new Option(names, help);
    else if (spec.booleans?.has(k)) {
      // Bare: true (commander's value for an optional option given without one).
      option = new Option(`${names} [true|false]`, help).argParser(once);
    } else {
      option = new Option(`${names} <${placeholder}>`, help).argParser(once);
      // Shown as <value>, parsed as optional: `--a --b` is "--a needs a value", not a = '--b'.
      option.required = false;
      option.optional = true;
    }
    if (spec.hidden?.has(k)) option.hideHelp();
    return option;
  });
}

/**
 * The raw values commander read for a schema's options (strings; true for switches; 'true' for
 * booleans given bare), or an OptionError for a value option given without its value.
 */
export function rawOptions(
  values: Record<string, unknown>,
  schema: z.ZodObject,
  spec: Pick<OptionSpec, 'booleans' | 'switches'> = {},
): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(schema.shape)) {
    const v = values[key];
    if (v === undefined) continue;
    if (v === true && spec.booleans?.has(key)) raw[key] = 'true';
    else if (v === true && !spec.switches?.has(key))
      throw new OptionError(`option --${kebab(key)} needs a value`);
    else raw[key] = v;
  }
  return raw;
}

/** A zod failure of option values as one line naming the option: `bad option --name=value: why`. */
export function describeOptionIssue(error: z.ZodError, raw: Record<string, unknown>): string {
  const issue = error.issues[0]!;
  if (issue.code === 'unrecognized_keys')
    return `unknown option ${issue.keys.map((k) => `--${kebab(k)}`).join(', ')}`;
  const key = issue.path[0] === undefined ? '?' : String(issue.path[0]);
  if (raw[key] === undefined) return `missing option --${kebab(key)}: ${issue.message}`;
  return `bad option --${kebab(key)}=${String(raw[key])}: ${issue.message}`;
}

/** The schema applied to raw option values: typed options or an OptionError naming the option. */
export function validateOptions<S extends z.ZodObject>(schema: S, raw: Record<string, unknown>): z.infer<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new OptionError(describeOptionIssue(parsed.error, raw));
  return parsed.data;
}

class Stop extends Error {
  constructor(readonly error: Error) {
    super(error.message);
  }
}

/**
 * Arguments to raw string values by camelCase name, checking names, repeats and missing values:
 * commander with options made from `known`, outside any CLI command.
 */
export function readFlags(args: readonly string[], rules: FlagRules): Record<string, string> {
  const fail = rules.error ?? ((m: string) => new OptionError(m));
  const known = [...rules.known];
  const help = Object.fromEntries(known.map((k) => [k, k]));
  const shape = Object.fromEntries(known.map((k) => [k, z.string().optional()]));
  const booleans = new Set([...(rules.booleans ?? [])].filter((b) => rules.known.has(b)));
  const cmd = new Command()
    .helpOption(false)
    .exitOverride()
    .configureOutput({ writeOut: () => undefined, writeErr: () => undefined, outputError: () => undefined });
  for (const option of schemaOptions(z.object(shape), { help, booleans }, (m) => {
    throw new Stop(fail(m));
  }))
    cmd.addOption(option);
  let parsed: { operands: string[]; unknown: string[] };
  try {
    parsed = cmd.parseOptions([...args]);
  } catch (e) {
    if (e instanceof Stop) throw e.error;
    throw e;
  }
  const first = parsed.unknown[0];
  if (first !== undefined) {
    if (first.startsWith('-')) throw fail(`unknown option ${first.split('=')[0]}`);
    throw fail(`unexpected argument '${first}'`);
  }
  if (parsed.operands[0] !== undefined) throw fail(`unexpected argument '${parsed.operands[0]}'`);
  const raw: Record<string, string> = {};
  for (const [key, value] of Object.entries(cmd.opts())) {
    if (value === undefined) continue;
    if (value === true && !booleans.has(key)) throw fail(`option --${kebab(key)} needs a value`);
    raw[key] = String(value);
  }
  return raw;
}

/** readFlags, then the schema: typed options or an OptionError (a ConfigError) naming the option. */
export function parseFlags<S extends z.ZodObject>(
  schema: S,
  args: readonly string[],
  booleans: ReadonlySet<string> = new Set(),
): z.infer<S> {
  const raw = readFlags(args, { known: new Set(Object.keys(schema.shape)), booleans });
  return validateOptions(schema, raw);
}
