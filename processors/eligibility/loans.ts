/**
 * A merchant's loans, as far as eligibility needs them: up to LOAN_SLOTS slots, each the 32-bit
 * hash of a loan_id, its balance and status, and its refill bits. holdback.loans.v1 (LoanState,
 * from the repayment processor) is authoritative for balance and status; lending.loans.v1 only
 * opens a loan's exposure on FUNDED (before its first LoanState arrives) and closes it on a
 * terminal event. Closed loans keep their slot until a new loan needs it, so a late FUNDED of a
 * closed loan does not open it again.
 */
import { LoanStatusValues, type LoanStatus } from '../../schemas/generated/types';
import {
  FLAG_LOAN_OVERFLOW,
  FLAG_WRITE_OFF,
  LOAN_FOREIGN,
  LOAN_REFILL_REACHED,
  LOAN_REFILL_SIGNALLED,
  LOAN_SLOTS,
  LOAN_STATUS_MASK,
  LOAN_USED,
  type StateView,
} from './state';

export const STATUS = Object.fromEntries(LoanStatusValues.map((s, i) => [s, i])) as Record<
  LoanStatus,
  number
>;

/** True for a loan that still owes: not PAID_OFF, not WRITTEN_OFF. */
export function isOpen(bits: number): boolean {
  const s = bits & LOAN_STATUS_MASK;
  return s !== STATUS.PAID_OFF && s !== STATUS.WRITTEN_OFF;
}

export interface LoanUpdate {
  readonly hash: number;
  readonly status: LoanStatus;
  readonly balanceMinor: number;
  /** In another currency than the merchant's: not part of the exposure feature. */
  readonly foreign: boolean;
  /** On a LoanState: the loan passed the refill share; null when the input says nothing about it. */
  readonly refillReached: boolean | null;
}

function findSlot(v: StateView, hash: number): number {
  for (let i = 0; i < LOAN_SLOTS; i++) {
    const s = v.loan(i);
    if ((s.bits & LOAN_USED) !== 0 && s.hash === hash) return i;
  }
  return -1;
}

/** A free slot, else the slot of a closed loan, else -1 (every slot holds an open loan). */
function freeSlot(v: StateView): number {
  let closed = -1;
  for (let i = 0; i < LOAN_SLOTS; i++) {
    const bits = v.loan(i).bits;
    if ((bits & LOAN_USED) === 0) return i;
    if (closed < 0 && !isOpen(bits)) closed = i;
  }
  return closed;
}

/**
 * Applies what an input says about one loan. `onlyIfNew`: a FUNDED, which opens a loan not yet
 * known and changes nothing for a known one (its LoanState may have come first).
 */
export function updateLoan(v: StateView, u: LoanUpdate, onlyIfNew = false): void {
  if (u.status === 'WRITTEN_OFF') v.setFlag(FLAG_WRITE_OFF, true);
  let i = findSlot(v, u.hash);
  if (i >= 0 && onlyIfNew) return;
  const open = u.status !== 'PAID_OFF' && u.status !== 'WRITTEN_OFF';
  if (i < 0) {
    if (!open) return; // a closed loan never seen: nothing to track
    i = freeSlot(v);
    if (i < 0) {
      v.setFlag(FLAG_LOAN_OVERFLOW, true);
      return;
    }
    // A loan not tracked before is now: whatever overflowed may have been this one.
    v.setFlag(FLAG_LOAN_OVERFLOW, false);
    v.setLoan(i, { hash: 0, balanceMinor: 0, bits: 0 });
  }
  const old = v.loan(i).bits;
  let bits = LOAN_USED | STATUS[u.status] | (u.foreign ? LOAN_FOREIGN : 0);
  if (old & LOAN_REFILL_SIGNALLED) bits |= LOAN_REFILL_SIGNALLED;
  const reached = u.refillReached ?? (old & LOAN_REFILL_REACHED) !== 0;
  if (reached && open) bits |= LOAN_REFILL_REACHED;
  v.setLoan(i, { hash: u.hash, balanceMinor: open ? u.balanceMinor : 0, bits });
}

/** Updates the status of a known loan only (PAID_OFF_EXTERNALLY, WRITTEN_OFF on lending.loans.v1). */
export function closeLoan(v: StateView, hash: number, status: 'PAID_OFF' | 'WRITTEN_OFF'): void {
  if (status === 'WRITTEN_OFF') v.setFlag(FLAG_WRITE_OFF, true);
  const i = findSlot(v, hash);
  if (i < 0) return;
  const old = v.loan(i);
  v.setLoan(i, {
    hash,
    balanceMinor: 0,
    bits: LOAN_USED | STATUS[status] | (old.bits & LOAN_REFILL_SIGNALLED),
  });
}

/** Slots whose loan reached the refill share and has not signalled it yet. */
export function pendingRefills(v: StateView): number[] {
  const out: number[] = [];
  for (let i = 0; i < LOAN_SLOTS; i++) {
    const bits = v.loan(i).bits;
    if (
      (bits & LOAN_USED) !== 0 &&
      (bits & LOAN_REFILL_REACHED) !== 0 &&
      (bits & LOAN_REFILL_SIGNALLED) === 0
    )
      out.push(i);
  }
  return out;
}

export function markRefillSignalled(v: StateView, slot: number): void {
  const s = v.loan(slot);
  v.setLoan(slot, { ...s, bits: s.bits | LOAN_REFILL_SIGNALLED });
}
