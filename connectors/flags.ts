/**
 * Command-line options, read one way by every command (`holdback run`, `clickhouse`, `simulate`):
 * `--name=value`, `--name value`, or a bare `--flag` for the options declared boolean. Names are
 * kebab-case on the command line and camelCase in the zod schema that validates the values. Every
 * mistake stops with the option's name and the reason, never a silent default.
 */
import type { z } from 'zod';
import { ConfigError } from './endpoints';

export const camel = (flag: string): string => flag.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
export const kebab = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export interface FlagRules {
  /** camelCase names the command knows; anything else is an unknown option. */
  readonly known: ReadonlySet<string>;
  /** Options given without a value (their value is 'true'). */
  readonly booleans?: ReadonlySet<string>;
  /** The error to throw (ConfigError unless the command has its own). */
  readonly error?: (message: string) => Error;
}

/** Arguments to raw string values by camelCase name, checking names, repeats and missing values. */
export function readFlags(args: readonly string[], rules: FlagRules): Record<string, string> {
  const fail = rules.error ?? ((m: string) => new ConfigError(m));
  const raw: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith('--') || a === '--') throw fail(`unexpected argument '${a}'`);
    const eq = a.indexOf('=');
    const name = camel(eq > 0 ? a.slice(2, eq) : a.slice(2));
    if (!rules.known.has(name)) throw fail(`unknown option ${eq > 0 ? a.slice(0, eq) : a}`);
    if (raw[name] !== undefined) throw fail(`option --${kebab(name)} given twice`);
    if (eq > 0) raw[name] = a.slice(eq + 1);
    else if (rules.booleans?.has(name)) raw[name] = 'true';
    else {
      const value = args[i + 1];
      if (value === undefined || (value.startsWith('--') && value.length > 2)) {
        throw fail(`option --${kebab(name)} needs a value`);
      }
      raw[name] = value;
      i++;
    }
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

/** readFlags, then the schema: typed options or a ConfigError naming the option. */
export function parseFlags<S extends z.ZodObject>(
  schema: S,
  args: readonly string[],
  booleans: ReadonlySet<string> = new Set(),
): z.infer<S> {
  const raw = readFlags(args, { known: new Set(Object.keys(schema.shape)), booleans });
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new ConfigError(describeOptionIssue(parsed.error, raw));
  return parsed.data;
}
