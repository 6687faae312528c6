package dev.holdback.peer;

import java.math.BigInteger;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;

/**
 * One loan, with the parts of Holdback's processors/repayment/loan.ts the workload reaches:
 * terms, balance, collecting, the minimum-payment period clock and pace, and the LoanState view.
 * Mutable: the processor works on its own copy of a merchant's state.
 */
final class Loan implements Cloneable {
  enum Status { ACTIVE, BEHIND, DELINQUENT, PAUSED, PAID_OFF, WRITTEN_OFF }

  enum Closure { COLLECTED, PAID_OFF_EXTERNALLY, WRITTEN_OFF }

  enum Pace { ON_PACE, AT_RISK }

  static final long DAY_MS = 86_400_000L;
  static final long BPS_DENOMINATOR = 10_000L;
  /** schemas/validate.ts: MAX_AMOUNT_MINOR, MAX_PERIOD_DAYS. */
  static final long MAX_AMOUNT_MINOR = 10_000_000_000_000L;
  static final int MAX_PERIOD_DAYS = 366;
  /** A JavaScript safe integer: what Holdback's isMinor accepts. */
  static final long MAX_SAFE_INTEGER = 9_007_199_254_740_991L;
  /** Pace is judged once this share of the period has run (repayment config paceWarmupBps, default). */
  static final long PACE_WARMUP_BPS = 2500;
  /** loan.ts CURRENCY. */
  static final java.util.regex.Pattern CURRENCY = java.util.regex.Pattern.compile("[A-Z]{3}");

  String loanId;
  String merchantId;
  String currency;
  long principalMinor;
  long feeMinor;
  int holdbackRateBps;
  long minimumPaymentMinor;
  int periodDays;
  long fundedAt;
  Status status;
  Closure closure; // null while open
  long collectedMinor;
  int periodIndex;
  long periodEndsAt;
  long periodRequiredMinor;
  long periodCollectedMinor;
  int missedPeriods;
  Long clockStoppedAt; // null while the period clock runs
  Pace pace; // null: not judged
  long version;
  long updatedAt;

  static boolean isMinor(Long x) {
    return x != null && x >= 0 && x <= MAX_SAFE_INTEGER;
  }

  /** floor(a * b / divisor) for non-negative a, b, exact past 2^63 (processors/money.ts mulDivFloor). */
  static long mulDivFloor(long a, long b, long divisor) {
    long hi = Math.multiplyHigh(a, b);
    long lo = a * b;
    if (hi == 0 && lo >= 0) return lo / divisor;
    return BigInteger.valueOf(a).multiply(BigInteger.valueOf(b)).divide(BigInteger.valueOf(divisor)).longValueExact();
  }

  /** min(floor(a * b / divisor), cap), exact (money.ts mulDivFloorCapped). */
  static long mulDivFloorCapped(long a, long b, long divisor, long cap) {
    if (Math.multiplyHigh(a, b) == 0 && a * b >= 0) return Math.min(a * b / divisor, cap);
    BigInteger q = BigInteger.valueOf(a).multiply(BigInteger.valueOf(b)).divide(BigInteger.valueOf(divisor));
    return q.compareTo(BigInteger.valueOf(cap)) > 0 ? cap : q.longValue();
  }

  /** floor(amount * bps / 10000) (money.ts shareOfBps). */
  static long shareOfBps(long amountMinor, int bps) {
    return mulDivFloor(amountMinor, bps, BPS_DENOMINATOR);
  }

  static String str(GenericRecord r, String field) {
    Object v = r.get(field);
    return v == null ? null : v.toString();
  }

  static Long lng(GenericRecord r, String field) {
    Object v = r.get(field);
    return v == null ? null : ((Number) v).longValue();
  }

  /** Why a FUNDED's terms cannot open a loan, or null when they can (loan.ts termsProblem). */
  static String termsProblem(GenericRecord e) {
    Long p = lng(e, "principal_minor");
    Long f = lng(e, "fee_minor");
    Long bps = lng(e, "holdback_rate_bps");
    Long min = lng(e, "minimum_payment_minor");
    Long days = lng(e, "period_days");
    String currency = str(e, "currency");
    if (!isMinor(p) || p == 0) return "principal_minor must be a positive integer";
    if (!isMinor(f)) return "fee_minor must be a non-negative integer";
    if (p + f > MAX_AMOUNT_MINOR) return "principal_minor + fee_minor exceeds " + MAX_AMOUNT_MINOR;
    if (!isMinor(bps) || bps < 1 || bps > BPS_DENOMINATOR) return "holdback_rate_bps must be 1..10000";
    if (!isMinor(min)) return "minimum_payment_minor must be a non-negative integer";
    if (!isMinor(days) || days < 1 || days > MAX_PERIOD_DAYS) return "period_days must be 1.." + MAX_PERIOD_DAYS;
    if (currency == null || !CURRENCY.matcher(currency).matches()) return "currency must be an ISO 4217 code";
    return null;
  }

  /** Opens a loan from a FUNDED whose terms passed termsProblem; period 0 starts at occurred_at. */
  static Loan fund(GenericRecord e, long now) {
    Loan l = new Loan();
    l.loanId = str(e, "loan_id");
    l.merchantId = str(e, "merchant_id");
    l.currency = str(e, "currency");
    l.principalMinor = lng(e, "principal_minor");
    l.feeMinor = lng(e, "fee_minor");
    l.holdbackRateBps = lng(e, "holdback_rate_bps").intValue();
    l.minimumPaymentMinor = lng(e, "minimum_payment_minor");
    l.periodDays = lng(e, "period_days").intValue();
    l.fundedAt = lng(e, "occurred_at");
    l.status = Status.ACTIVE;
    l.periodEndsAt = l.fundedAt + l.periodDays * DAY_MS;
    l.periodRequiredMinor = Math.min(l.minimumPaymentMinor, l.principalMinor + l.feeMinor);
    l.version = 0; // the step that emits it first makes it 1
    l.updatedAt = now;
    return l;
  }

  long balance() {
    return principalMinor + feeMinor - collectedMinor;
  }

  long periodMs() {
    return periodDays * DAY_MS;
  }

  /** Withheld from and running the period clock. */
  boolean isRunning() {
    return status == Status.ACTIVE || status == Status.BEHIND || status == Status.DELINQUENT;
  }

  static Status statusForMissed(int missed) {
    return missed == 0 ? Status.ACTIVE : missed == 1 ? Status.BEHIND : Status.DELINQUENT;
  }

  /** Closes every period whose end the clock has reached (loan.ts closeDuePeriods). */
  void closeDuePeriods(long clock) {
    while (isRunning() && periodEndsAt <= clock) {
      boolean missed = periodCollectedMinor < periodRequiredMinor;
      missedPeriods = missed ? missedPeriods + 1 : 0;
      status = statusForMissed(missedPeriods);
      periodIndex += 1;
      periodEndsAt += periodMs();
      periodRequiredMinor = Math.min(minimumPaymentMinor, balance());
      periodCollectedMinor = 0;
    }
  }

  /** A withholding; at balance 0 the loan is PAID_OFF by collection and its clock stops (loan.ts collect). */
  void collect(long amountMinor, long at) {
    if (!(amountMinor > 0 && amountMinor <= balance())) {
      throw new IllegalStateException("loan " + loanId + ": withholding " + amountMinor + " with balance " + balance());
    }
    collectedMinor += amountMinor;
    periodCollectedMinor += amountMinor;
    if (balance() == 0) {
      if (clockStoppedAt == null) clockStoppedAt = Math.max(at, periodEndsAt - periodMs());
      status = Status.PAID_OFF;
      closure = Closure.COLLECTED;
    }
  }

  record Assessment(Pace pace, Long projectedMinor) {}

  /** Pace and the projected period collection (loan.ts assessPace, without the timer's recheck). */
  Assessment assessPace(long clock) {
    if (!isRunning()) return new Assessment(null, null);
    long length = periodMs();
    long start = periodEndsAt - length;
    long elapsed = clock - start;
    long collected = periodCollectedMinor;
    long required = periodRequiredMinor;
    Long projected = elapsed > 0 ? mulDivFloorCapped(collected, length, elapsed, MAX_AMOUNT_MINOR) : null;
    if (required == 0) return new Assessment(null, projected);
    if (collected >= required) return new Assessment(Pace.ON_PACE, projected);
    long judgedFrom = Math.max(1, mulDivFloor(length, PACE_WARMUP_BPS, BPS_DENOMINATOR));
    if (elapsed < judgedFrom || projected == null) return new Assessment(null, projected);
    return new Assessment(projected < required ? Pace.AT_RISK : Pace.ON_PACE, projected);
  }

  /** Whether the two differ in nothing a LoanState reports but its time stamps (loan.ts sameLoan). */
  boolean sameAs(Loan o) {
    return status == o.status
        && closure == o.closure
        && collectedMinor == o.collectedMinor
        && periodIndex == o.periodIndex
        && periodRequiredMinor == o.periodRequiredMinor
        && periodCollectedMinor == o.periodCollectedMinor
        && missedPeriods == o.missedPeriods
        && periodEndsAt == o.periodEndsAt
        && java.util.Objects.equals(clockStoppedAt, o.clockStoppedAt)
        && pace == o.pace;
  }

  /** The public LoanState (loan.ts toLoanState). */
  GenericRecord toLoanState(Schema schema, long clock) {
    boolean running = isRunning();
    GenericData.Record r = new GenericData.Record(schema);
    r.put("loan_id", loanId);
    r.put("merchant_id", merchantId);
    r.put("status", symbol(schema, "status", status));
    r.put("principal_minor", principalMinor);
    r.put("fee_minor", feeMinor);
    r.put("collected_minor", collectedMinor);
    r.put("balance_minor", balance());
    r.put("period_index", periodIndex);
    r.put("period_required_minor", periodRequiredMinor);
    r.put("period_collected_minor", periodCollectedMinor);
    r.put("missed_periods", missedPeriods);
    r.put("currency", currency);
    r.put("updated_at", updatedAt);
    r.put("version", version);
    r.put("holdback_rate_bps", holdbackRateBps);
    r.put("minimum_payment_minor", minimumPaymentMinor);
    r.put("period_days", periodDays);
    r.put("funded_at", fundedAt);
    r.put("period_ends_at", running ? periodEndsAt : null);
    r.put("pace", symbol(schema, "pace", pace));
    r.put("projected_period_collected_minor", running ? assessPace(clock).projectedMinor() : null);
    r.put("closure", symbol(schema, "closure", closure));
    return r;
  }

  /** An enum value for a field that is an enum or a union of null and an enum. */
  static GenericData.EnumSymbol symbol(Schema record, String field, Enum<?> value) {
    if (value == null) return null;
    Schema s = record.getField(field).schema();
    if (s.getType() == Schema.Type.UNION) {
      s = s.getTypes().stream().filter(t -> t.getType() == Schema.Type.ENUM).findFirst().orElseThrow();
    }
    return new GenericData.EnumSymbol(s, value.name());
  }

  @Override
  public Loan clone() {
    try {
      return (Loan) super.clone(); // every field is a primitive or immutable
    } catch (CloneNotSupportedException e) {
      throw new AssertionError(e);
    }
  }
}
