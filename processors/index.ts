/** The processors `holdback run <name>` can run, by name. Each is pure; the runtime supplies I/O. */
import type { Processor } from './api';
import {
  createEligibilityProcessor,
  DEFAULT_DEDUP,
  DEFAULT_POLICY,
  parsePolicy,
  type DedupWindow,
} from './eligibility';
import { createRepaymentProcessor } from './repayment';

export interface ProcessorOptions {
  /** eligibility: the policy file (JSON); policies/default.json when absent. */
  policyPath?: string;
  /**
   * Reads a file's text. Processors do no I/O, so whoever passes `policyPath` passes the reader
   * too (the CLI gives `fs.readFileSync`).
   */
  readFile?: (path: string) => string;
  /** repayment: the de-duplication horizon in days (default 35). */
  dedupHorizonDays?: number;
  /** eligibility: its de-duplication window, minutes of event time (default 60). */
  dedupWindowMinutes?: number;
  /** eligibility: at most this many event ids remembered per merchant (default 256). */
  dedupWindowEvents?: number;
}

function dedupWindow(o: ProcessorOptions): DedupWindow {
  return {
    horizonMinutes: o.dedupWindowMinutes ?? DEFAULT_DEDUP.horizonMinutes,
    maxEvents: o.dedupWindowEvents ?? DEFAULT_DEDUP.maxEvents,
  };
}

export const PROCESSORS: Readonly<
  Record<string, (options?: ProcessorOptions) => Processor<unknown, unknown>>
> = {
  repayment: (o = {}) =>
    createRepaymentProcessor(
      o.dedupHorizonDays === undefined ? {} : { dedupHorizonMs: o.dedupHorizonDays * 86_400_000 },
    ) as Processor<unknown, unknown>,
  eligibility: (o = {}) => {
    if (o.policyPath === undefined)
      return createEligibilityProcessor(DEFAULT_POLICY, dedupWindow(o)) as Processor<unknown, unknown>;
    if (!o.readFile) throw new Error('eligibility: a policyPath needs a readFile (processors do no I/O)');
    let text: string;
    try {
      text = o.readFile(o.policyPath);
    } catch (e) {
      throw new Error(
        `${o.policyPath}: cannot read the policy: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    return createEligibilityProcessor(parsePolicy(text, o.policyPath), dedupWindow(o)) as Processor<
      unknown,
      unknown
    >;
  },
};
