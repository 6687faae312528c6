/**
 * The verifier of the exactly-once tests: compares what a read_committed consumer sees on the
 * output topics with a clean run of the same processor over the same inputs (the broker-free
 * TestDriver), and checks the money invariants of reliability.md on the way.
 */
import type { Deduction, LoanState, PayoutDecision } from '../../schemas/generated/types';

/**
 * LoanState fields that are as of the step's ctx.now: under --clock=wall they depend on when the
 * step ran (the projection is made at max(event time, now): docs/contract.md, "the merchant clock").
 */
const AS_OF_NOW = ['updated_at', 'projected_period_collected_minor'];

export interface Outputs {
  deductions: Deduction[];
  loanStates: LoanState[];
  /** Compared when both sides have them: one answer per SCHEDULED event, never lost or doubled. */
  decisions?: PayoutDecision[];
}

/** Fields that carry the wall clock of the run that decided them: not comparable across runs. */
function stable<T extends object>(r: T, clockFields: readonly string[]): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...(r as Record<string, unknown>) };
  for (const f of clockFields) delete copy[f];
  return copy;
}

/** The latest state of each loan (highest version). */
export function latestLoanStates(states: readonly LoanState[]): Map<string, LoanState> {
  const latest = new Map<string, LoanState>();
  for (const s of states) {
    const prev = latest.get(s.loan_id);
    if (!prev || s.version > prev.version) latest.set(s.loan_id, s);
  }
  return latest;
}

/** Every problem found; empty when the actual outputs are exactly the expected ones. */
export function verifyRepayment(actual: Outputs, expected: Outputs): string[] {
  const problems: string[] = [];
  // One deduction per id: duplicates are the first anomaly to look for.
  const seen = new Map<string, Deduction>();
  for (const d of actual.deductions) {
    const first = seen.get(d.deduction_id);
    // Both decision times: equal, the one decision was written twice; apart, it was made twice.
    if (first)
      problems.push(
        `duplicate deduction ${d.deduction_id} (decided_at ${first.decided_at} and ${d.decided_at})`,
      );
    seen.set(d.deduction_id, d);
    if (d.amount_minor <= 0) problems.push(`non-positive deduction ${d.deduction_id}: ${d.amount_minor}`);
    if (
      d.type === 'WITHHOLD' &&
      d.amount_minor > Math.floor((d.gross_amount_minor * d.holdback_rate_bps) / 10_000)
    ) {
      problems.push(`withholding above the rate: ${d.deduction_id}`);
    }
  }
  const want = new Map(expected.deductions.map((d) => [d.deduction_id, d]));
  for (const [id, d] of want) {
    const got = seen.get(id);
    if (!got) problems.push(`lost deduction ${id}`);
    else if (JSON.stringify(stable(got, ['decided_at'])) !== JSON.stringify(stable(d, ['decided_at']))) {
      problems.push(`deduction ${id} differs: got ${JSON.stringify(got)}, want ${JSON.stringify(d)}`);
    }
  }
  for (const id of seen.keys()) if (!want.has(id)) problems.push(`unexpected deduction ${id}`);
  // Reversals never exceed what was withheld for the payout and loan.
  const withheld = new Map<string, number>();
  for (const d of actual.deductions) {
    const k = `${d.payout_id}/${d.loan_id}`;
    withheld.set(k, (withheld.get(k) ?? 0) + (d.type === 'WITHHOLD' ? d.amount_minor : -d.amount_minor));
    if ((withheld.get(k) ?? 0) < 0) problems.push(`reversal above the withholding for ${k}`);
  }
  // Loan states: the latest of each equals the clean run's, and the ledger balances.
  const got = latestLoanStates(actual.loanStates);
  const exp = latestLoanStates(expected.loanStates);
  for (const [id, s] of exp) {
    const g = got.get(id);
    if (!g) problems.push(`no state for loan ${id}`);
    else if (JSON.stringify(stable(g, AS_OF_NOW)) !== JSON.stringify(stable(s, AS_OF_NOW))) {
      problems.push(`loan ${id} differs: got ${JSON.stringify(g)}, want ${JSON.stringify(s)}`);
    }
  }
  for (const [id, s] of got) {
    if (!exp.has(id)) problems.push(`unexpected loan ${id}`);
    if (s.collected_minor + s.balance_minor !== s.principal_minor + s.fee_minor)
      problems.push(`loan ${id} does not balance`);
    if (s.balance_minor < 0) problems.push(`loan ${id} over-collected`);
  }
  if (actual.decisions && expected.decisions)
    problems.push(...verifyDecisions(actual.decisions, expected.decisions));
  return problems;
}

/**
 * Payout decisions: the same multiset as the clean run's (decided_at aside). Counted, not keyed by
 * decision_id: a SCHEDULED event re-sent twice is answered ALREADY_DECIDED twice under one id.
 */
function verifyDecisions(actual: readonly PayoutDecision[], expected: readonly PayoutDecision[]): string[] {
  const count = (ds: readonly PayoutDecision[]): Map<string, number> => {
    const n = new Map<string, number>();
    for (const d of ds) {
      const k = JSON.stringify(stable(d, ['decided_at']));
      n.set(k, (n.get(k) ?? 0) + 1);
    }
    return n;
  };
  const got = count(actual);
  const want = count(expected);
  const problems: string[] = [];
  for (const [k, n] of want) {
    const g = got.get(k) ?? 0;
    if (g < n) problems.push(`lost payout decision (${n - g} of ${n}) ${k}`);
    if (g > n) problems.push(`duplicate payout decision (${g} for ${n}) ${k}`);
  }
  for (const [k, g] of got) if (!want.has(k)) problems.push(`unexpected payout decision (${g}) ${k}`);
  return problems;
}
