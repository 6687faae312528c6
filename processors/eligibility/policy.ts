/**
 * The eligibility policy: a JSON document, validated once at start-up. Every key is required
 * unless marked optional, unknown keys are refused, and an error names the file, the key path and
 * the reason (`policies/x.json: grades.B.limitMultipleBps: must be <= 100000`). Amounts are
 * minor units of the merchant's currency, rates basis points (10000 = 100%). README.md lists
 * every key and what it does.
 *
 * Pure: it parses text it is given. Reading the file is the caller's (cli/, or processors/index.ts
 * with the reader it is handed); the default policy is imported at build time.
 */
import { z } from 'zod';
import defaultPolicyJson from '../../policies/default.json';
import { RiskGradeValues, type RiskGrade } from '../../schemas/generated/types';

/** The contract's ceiling for an amount (schemas/validate.ts): keeps every product below 2^53. */
const MAX_MINOR = 10 ** 13;
const bps = (max = 10_000) => z.int().min(0).max(max);
const minor = (min = 0) => z.int().min(min).max(MAX_MINOR);
const days = () => z.int().min(0).max(3650);

/** Requirements a grade band may set; a merchant meets a band when it meets every one set. */
const REQUIREMENTS = {
  minTenureDays: days().optional(),
  minAvgMonthlyNetSalesMinor: minor().optional(),
  maxRefundRateBps: bps().optional(),
  maxChargebackRateBps: bps().optional(),
  maxCancellationRateBps: bps().optional(),
  minTrendBps: z.int().min(-10_000).max(1_000_000).optional(),
  maxVolatilityBps: bps(1_000_000).optional(),
  maxPayoutFailures90d: z.int().min(0).max(255).optional(),
};
export type BandRequirement = keyof typeof REQUIREMENTS;
export const BAND_REQUIREMENTS = Object.keys(REQUIREMENTS) as BandRequirement[];

const band = z.strictObject({
  /** Limit as a multiple of average monthly net sales, in basis points (15000 = 1.5 months). */
  limitMultipleBps: z.int().min(0).max(100_000),
  ...REQUIREMENTS,
});

const POLICY = z.strictObject({
  /** Carried by every decision as policy_version. */
  version: z.string().regex(/^[A-Za-z0-9._:-]{1,64}$/, 'must be 1..64 characters of A-Z a-z 0-9 . _ : -'),
  description: z.string().max(1000).optional(),
  /** Knock-out rules: failing any one declines (each has its reason code). */
  eligibility: z.strictObject({
    minTenureDays: days(),
    minAvgMonthlyNetSalesMinor: minor(),
    maxRefundRateBps: bps(),
    maxChargebackRateBps: bps(),
    maxCancellationRateBps: bps(),
    minTrendBps: z.int().min(-10_000).max(1_000_000),
    maxVolatilityBps: bps(1_000_000),
    maxPayoutFailures90d: z.int().min(0).max(255),
    declineAfterWriteOff: z.boolean(),
  }),
  /** The grade bands, best first: a merchant gets the best band whose requirements it meets. */
  grades: z.strictObject({ A: band, B: band, C: band, D: band, E: band }),
  limits: z.strictObject({
    /** Cap on any limit. */
    maxLimitMinor: minor(1),
    /** Smallest limit worth offering: below it the merchant is not eligible. */
    minOfferMinor: minor(),
    /** Limits are rounded down to a multiple of this. */
    roundingStepMinor: minor(1),
  }),
  loans: z.strictObject({
    /** Grades a BEHIND loan costs (0 = none). */
    behindGradePenalty: z.int().min(0).max(4),
    /** Share of principal + fee collected at which an ACTIVE loan signals refill. */
    refillShareRepaidBps: z.int().min(1).max(10_000).default(7500),
  }),
  emission: z.strictObject({
    /** A limit move is material from this share of the last emitted limit... */
    minLimitChangeBps: bps(),
    /** ...and at least this amount. */
    minLimitChangeMinor: minor(),
  }),
});

export type EligibilityPolicy = z.output<typeof POLICY>;
export type GradeBand = EligibilityPolicy['grades'][RiskGrade];

/** Rules across keys, checked once every key is valid on its own: [key path, reason]. */
function crossChecks(p: EligibilityPolicy): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const key of BAND_REQUIREMENTS) {
    if (p.grades.E[key] !== undefined) {
      out.push([
        `grades.E.${key}`,
        'the lowest band takes every merchant the better bands do not, so it cannot have requirements',
      ]);
    }
  }
  for (let i = 1; i < RiskGradeValues.length; i++) {
    const g = RiskGradeValues[i]!;
    const better = RiskGradeValues[i - 1]!;
    if (p.grades[g].limitMultipleBps > p.grades[better].limitMultipleBps) {
      out.push([
        `grades.${g}.limitMultipleBps`,
        `must not exceed grades.${better}.limitMultipleBps (${p.grades[better].limitMultipleBps}): a worse grade cannot get a larger multiple`,
      ]);
    }
  }
  if (p.limits.minOfferMinor > p.limits.maxLimitMinor) {
    out.push(['limits.minOfferMinor', `must not exceed limits.maxLimitMinor (${p.limits.maxLimitMinor})`]);
  }
  return out;
}

function pathOf(path: ReadonlyArray<PropertyKey>): string {
  return path.map((k) => (typeof k === 'number' ? `[${k}]` : String(k))).join('.');
}

function valueAt(root: unknown, path: ReadonlyArray<PropertyKey>): unknown {
  let v = root;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

/** One line per problem: `<key path>: <reason>`. */
function describe(issue: z.core.$ZodIssue, raw: unknown): string[] {
  const at = pathOf(issue.path);
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => `${at ? `${at}.` : ''}${k}: unknown key`);
  }
  if (issue.code === 'invalid_type' && valueAt(raw, issue.path) === undefined) {
    return [`${at}: required key is missing`];
  }
  const got = valueAt(raw, issue.path);
  const shown = got === undefined || typeof got === 'object' ? '' : ` (got ${JSON.stringify(got)})`;
  return [
    `${at || '(root)'}: ${issue.message.replace(/^Too (big|small): expected number to be /, 'must be ')}${shown}`,
  ];
}

/**
 * Parses and validates a policy. `json` is the file's text (or an already parsed value);
 * `sourceName` names it in errors. Throws an Error listing every problem, one per line.
 */
export function parsePolicy(json: string | unknown, sourceName: string): EligibilityPolicy {
  let raw: unknown = json;
  if (typeof json === 'string') {
    try {
      raw = JSON.parse(json);
    } catch (e) {
      throw new Error(`${sourceName}: not valid JSON: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  const parsed = POLICY.safeParse(raw);
  const lines = parsed.success
    ? crossChecks(parsed.data).map(([path, why]) => `${path}: ${why}`)
    : parsed.error.issues.flatMap((i) => describe(i, raw));
  if (parsed.success && lines.length === 0) return parsed.data;
  throw new Error(`${sourceName}: invalid eligibility policy: ${lines.join('; ')}`);
}

/** policies/default.json, validated when this module loads. */
export const DEFAULT_POLICY: EligibilityPolicy = parsePolicy(defaultPolicyJson, 'policies/default.json');
