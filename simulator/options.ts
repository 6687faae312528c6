/**
 * Options of `holdback simulate` and `simulate()`: one schema with documented defaults that
 * rejects unknown keys; a bad value names the option and the reason. Pure: `now` is a parameter.
 */
import { z } from 'zod';
import { describeOptionIssue, kebab, readFlags } from '../connectors/flags';
import { MIN_TIMESTAMP_MS } from '../schemas/validate';
import { DAY_MS } from './marketplace';

export class SimulateOptionError extends Error {
  override readonly name = 'SimulateOptionError';
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: DAY_MS };

/** `90m`, `36h`, `1.5d`, `500ms`; a bare number is seconds. Undefined when it is not a duration. */
export function parseDurationMs(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?|\.\d+)?(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m || (m[1] === undefined && m[2] === undefined) || text.trim() === '') return undefined;
  const n = m[1] === undefined ? 1 : Number(m[1]);
  return Math.round(n * UNITS[m[2] ?? 's']!);
}

const rate = (what: string) =>
  z.coerce
    .number({ error: `expected a number for ${what}` })
    .min(0, 'must be between 0 and 1')
    .max(1, 'must be between 0 and 1');

const duration = (min: number, max: number) =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    const ms = typeof v === 'number' ? v * 1000 : parseDurationMs(v);
    if (ms === undefined || !Number.isFinite(ms)) {
      ctx.addIssue({
        code: 'custom',
        message: 'expected a duration such as 90s, 30m, 36h or 2d (a bare number is seconds)',
      });
      return z.NEVER;
    }
    if (ms < min || ms > max) {
      ctx.addIssue({ code: 'custom', message: `must be between ${min} ms and ${max / DAY_MS} days` });
      return z.NEVER;
    }
    return Math.round(ms);
  });

/**
 * `--speed`: simulated time per wall time, as a multiplier (`86400`: a day per second) or as
 * `<simulated>/<wall>` durations (`1d/0.5s`, `2d/s`, `1h/1m`).
 */
export function parseSpeed(v: number | string): number | undefined {
  if (typeof v === 'number') return v;
  const parts = v.split('/');
  if (parts.length === 1) return v.trim() === '' ? undefined : Number(v);
  if (parts.length !== 2) return undefined;
  const sim = parseDurationMs(parts[0]!);
  const wall = parseDurationMs(parts[1]!);
  return sim === undefined || wall === undefined || wall === 0 ? undefined : sim / wall;
}

export const SIMULATE_OPTIONS = z
  .object({
    /** Merchants on the simulated platform. */
    merchants: z.coerce.number().int().min(1).max(1_000_000).default(500),
    /** Records produced per second at most (a token bucket; duplicates and malformed records count). */
    rate: z.coerce.number().min(0.1).max(10_000_000).default(10_000),
    /** Stop after this much wall time (seconds, or 90s, 10m...). */
    duration: duration(1, 30 * DAY_MS).optional(),
    /** Stop after this many records. Without --duration or --events: stop when the simulated clock reaches now. */
    events: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
    /** Seed of every random draw: the same seed and options give the same records. */
    seed: z.coerce.number().int().min(0).max(0xffff_ffff).default(1),
    /** Simulated time per wall time: a multiplier, or 1d/0.5s. Capped at now: once caught up, the clock runs at wall speed. */
    speed: z
      .union([z.number(), z.string()])
      .transform((v, ctx) => {
        const s = parseSpeed(v);
        if (s === undefined || !Number.isFinite(s) || s < 0.001 || s > 1e9) {
          ctx.addIssue({
            code: 'custom',
            message: 'expected a multiplier (0.001..1e9) or <simulated>/<wall> such as 1d/0.5s',
          });
          return z.NEVER;
        }
        return s;
      })
      .default((2 * DAY_MS) / 1000),
    /** Simulated start: an ISO 8601 time, or how long before now (120d; then at that day's 00:00 UTC). */
    start: z.union([z.number(), z.string()]).default('120d'),
    /** Prepended to every topic (tests, parallel simulations). */
    topicPrefix: z
      .string()
      .regex(/^[A-Za-z0-9._-]{0,100}$/, 'letters, digits, ., _ and - only, at most 100')
      .default(''),
    /** Share of events sent twice (same event_id and bytes). */
    duplicateRate: rate('--duplicate-rate').default(0),
    /** Share of order and sale events held back behind the next 1..4 records. */
    reorderRate: rate('--reorder-rate').default(0),
    /** Malformed records injected per event (not Avro, truncated Avro, or breaking a contract rule). */
    malformedRate: rate('--malformed-rate').default(0),
    /** Mean share of payouts that FAIL instead of settling. */
    failRate: rate('--fail-rate').default(0.02),
    /** Share of settling payouts whose SETTLED is delayed by --late-settlement-delay. */
    lateSettlementRate: rate('--late-settlement-rate').default(0),
    /** Extra delay of a late SETTLED (normal settlement: 2-20 h after SCHEDULED). */
    lateSettlementDelay: duration(1000, 60 * DAY_MS).default(36 * 3_600_000),
    /** Share of SETTLED whose withheld_minor differs from what the repayment rules withhold. */
    mismatchRate: rate('--mismatch-rate').default(0),
    /** Print the final summary as JSON. */
    json: z.union([z.boolean(), z.stringbool()]).default(false),
  })
  .strict();

export type SimulateInput = z.input<typeof SIMULATE_OPTIONS>;

export interface SimulateOptions {
  readonly merchants: number;
  readonly rate: number;
  readonly durationMs: number | undefined;
  readonly events: number | undefined;
  readonly seed: number;
  /** Simulated ms per wall ms. */
  readonly speed: number;
  readonly startMs: number;
  readonly topicPrefix: string;
  readonly duplicateRate: number;
  readonly reorderRate: number;
  readonly malformedRate: number;
  readonly failRate: number;
  readonly lateSettlementRate: number;
  readonly lateSettlementDelayMs: number;
  readonly mismatchRate: number;
  readonly json: boolean;
}

/** Validates options (from the CLI or a caller) and resolves the defaults that depend on `now`. */
export function resolveOptions(input: SimulateInput, now: number): SimulateOptions {
  const parsed = SIMULATE_OPTIONS.safeParse(input);
  if (!parsed.success) {
    throw new SimulateOptionError(describeOptionIssue(parsed.error, input as Record<string, unknown>));
  }
  const o = parsed.data;
  return {
    merchants: o.merchants,
    rate: o.rate,
    durationMs: o.duration,
    events: o.events,
    seed: o.seed,
    speed: o.speed,
    startMs: resolveStart(o.start, now),
    topicPrefix: o.topicPrefix,
    duplicateRate: o.duplicateRate,
    reorderRate: o.reorderRate,
    malformedRate: o.malformedRate,
    failRate: o.failRate,
    lateSettlementRate: o.lateSettlementRate,
    lateSettlementDelayMs: o.lateSettlementDelay,
    mismatchRate: o.mismatchRate,
    json: o.json,
  };
}

function resolveStart(v: number | string, now: number): number {
  let ms: number;
  if (typeof v === 'number') ms = v;
  else {
    const before = /^\d/.test(v) && !v.includes('-') && !v.includes(':') ? parseDurationMs(v) : undefined;
    ms = before !== undefined ? Math.floor((now - before) / DAY_MS) * DAY_MS : Date.parse(v);
  }
  if (!Number.isFinite(ms)) {
    throw new SimulateOptionError(
      `bad option --start=${String(v)}: expected an ISO 8601 time (2025-01-01, 2025-01-01T00:00:00Z) or a duration before now (120d)`,
    );
  }
  if (ms < MIN_TIMESTAMP_MS || ms > now) {
    throw new SimulateOptionError(`bad option --start=${String(v)}: must be between 2000-01-01 and now`);
  }
  return ms;
}

const FLAGS = new Set(['json']);

/** `--name value`, `--name=value` and `--json` into SimulateInput; anything else is an error naming it. */
export function parseSimulateArgs(args: readonly string[]): SimulateInput {
  return readFlags(args, {
    known: new Set(Object.keys(SIMULATE_OPTIONS.shape)),
    booleans: FLAGS,
    error: (m) => new SimulateOptionError(m),
  }) as SimulateInput;
}

/** One line per option with its default, for --help. */
export function describeOptions(): string {
  const docs: Record<string, string> = {
    merchants: 'merchants on the platform',
    rate: 'records per second at most',
    duration: 'stop after this wall time (20s, 5m)',
    events: 'stop after this many records',
    seed: 'random seed',
    speed: 'simulated per wall time: multiplier or 1d/0.5s',
    start: 'simulated start: ISO time or duration before now',
    topicPrefix: 'prefix of every topic',
    duplicateRate: 'share of events sent twice',
    reorderRate: 'share of order/sale events moved 1-4 records later',
    malformedRate: 'malformed records per event',
    failRate: 'mean share of payouts that FAIL',
    lateSettlementRate: 'share of settling payouts settled late',
    lateSettlementDelay: 'extra delay of a late SETTLED',
    mismatchRate: 'share of SETTLED with a wrong withheld_minor',
    json: 'print the summary as JSON',
  };
  return Object.entries(SIMULATE_OPTIONS.shape)
    .map(([k, v]) => {
      const def = (v as z.ZodType).safeParse(undefined);
      const shownDefault =
        k === 'lateSettlementDelay'
          ? '36h'
          : k === 'speed'
            ? '2d/1s'
            : def.success && def.data !== undefined
              ? String(def.data)
              : undefined;
      const flag = `  --${kebab(k)}${FLAGS.has(k) ? '' : ' X'}`;
      return `${flag.padEnd(30)}${docs[k] ?? ''}${shownDefault !== undefined ? ` (default ${shownDefault})` : ''}`;
    })
    .join('\n');
}
