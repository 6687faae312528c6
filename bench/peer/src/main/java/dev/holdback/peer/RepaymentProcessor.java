package dev.holdback.peer;

import static dev.holdback.peer.Loan.isMinor;
import static dev.holdback.peer.Loan.lng;
import static dev.holdback.peer.Loan.str;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericRecord;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Holdback's repayment step (processors/repayment/processor.ts) for FUNDED loan events and
 * SCHEDULED payouts: de-duplication, checks, the merchant clock, withholding, and one LoanState
 * per loan that changed. Records come in per task in occurred_at order (Main.OccurredAt).
 */
final class RepaymentProcessor implements Processor<String, GenericRecord, String, GenericRecord> {
  static final String MERCHANTS = "merchants";
  static final String PAYOUTS = "payouts";
  static final String DEDUCTIONS_SINK = "deductions";
  static final String LOAN_STATES_SINK = "loan-states";

  private static final Logger log = LoggerFactory.getLogger(RepaymentProcessor.class);

  /** The repayment config's defaults (processors/repayment/config.ts). */
  static final long DEDUP_HORIZON_MS = 35 * Loan.DAY_MS;
  static final long FUTURE_TOLERANCE_MS = Loan.DAY_MS;
  /** 9999-12-31T23:59:59.999Z: later timestamps are malformed. */
  static final long MAX_TIMESTAMP = 253_402_300_799_999L;
  /** schemas/validate.ts MAX_ID_LENGTH; processors/ids.ts fitId. */
  static final int MAX_ID_LENGTH = 256;
  private static final int HASH_CHARS = 64;

  private final Schema deductionSchema;
  private final Schema loanStateSchema;
  private ProcessorContext<String, GenericRecord> ctx;
  private KeyValueStore<String, MerchantState> merchants;
  private KeyValueStore<String, MerchantState.Payout> payouts;

  RepaymentProcessor(Schema deductionSchema, Schema loanStateSchema) {
    this.deductionSchema = deductionSchema;
    this.loanStateSchema = loanStateSchema;
  }

  @Override
  public void init(ProcessorContext<String, GenericRecord> context) {
    this.ctx = context;
    this.merchants = context.getStateStore(MERCHANTS);
    this.payouts = context.getStateStore(PAYOUTS);
  }

  @Override
  public void process(Record<String, GenericRecord> record) {
    long now = System.currentTimeMillis(); // Holdback's ctx.now with --clock=wall
    String key = record.key();
    GenericRecord value = record.value();
    if (key == null || value == null) {
      reject(key, "UNSUPPORTED", "null key or value");
      return;
    }
    String merchantId = str(value, "merchant_id");
    if (!key.equals(merchantId)) {
      reject(key, "MERCHANT_MISMATCH", "merchant_id '" + merchantId + "' differs from key '" + key + "'");
      return;
    }
    switch (value.getSchema().getName()) {
      case "PayoutEvent" -> payout(key, value, now);
      case "LoanEvent" -> loanEvent(key, value, now);
      default -> reject(key, "UNSUPPORTED", "record " + value.getSchema().getName());
    }
  }

  private static boolean validTime(Long t) {
    return isMinor(t) && t <= MAX_TIMESTAMP;
  }

  /** When the event happened, at most FUTURE_TOLERANCE_MS past now (processor.ts eventTimeOf). */
  private static long eventTime(Long occurredAt, long now) {
    return validTime(occurredAt) ? Math.min(occurredAt, now + FUTURE_TOLERANCE_MS) : 0;
  }

  /** The time a record is applied at (processor.ts clockFor). */
  private static long clockFor(MerchantState s, Long occurredAt, long now) {
    return Math.max(s.clock, Math.max(now, eventTime(occurredAt, now)));
  }

  // ---- payouts ------------------------------------------------------------------------------

  private void payout(String key, GenericRecord e, long now) {
    String type = str(e, "type");
    if (!"SCHEDULED".equals(type)) {
      reject(key, "UNSUPPORTED", "the peer implements SCHEDULED payouts only, not " + type);
      return;
    }
    MerchantState s = merchants.get(key);
    if (s == null) s = new MerchantState();
    Long occurredAt = lng(e, "occurred_at");
    String payoutId = str(e, "payout_id");
    String payoutKey = MerchantState.payoutKey(key, payoutId);
    long clock = clockFor(s, occurredAt, now);

    // One payout, one decision: a SCHEDULED of a payout still remembered withholds nothing.
    MerchantState.Payout seen = payouts.get(payoutKey);
    boolean remembered = seen != null && (seen.isOpen() || clock - seen.lastEventAt() <= DEDUP_HORIZON_MS);
    if (remembered) return;

    String problem = payoutProblem(e);
    if (problem != null) {
      reject(key, "INVALID_PAYOUT", problem);
      return;
    }
    if (clock - occurredAt > DEDUP_HORIZON_MS) {
      reject(key, "BEYOND_DEDUP_HORIZON", "SCHEDULED of payout " + payoutId + ", past the horizon");
      return;
    }

    long at = eventTime(occurredAt, now);
    Map<String, Loan> before = beginStep(s, clock);
    List<GenericRecord> deductions = new ArrayList<>();
    long gross = lng(e, "gross_amount_minor");
    String currency = str(e, "currency");
    long withheld = 0;
    int withholdings = 0;
    // Each running loan in the payout's currency, oldest funding first, takes
    // min(floor(gross * bps / 10000), balance, gross - already withheld from this payout).
    for (Loan loan : s.loansByFunding()) {
      if (!loan.currency.equals(currency) || !loan.isRunning()) continue;
      long amount = Math.min(Math.min(Loan.shareOfBps(gross, loan.holdbackRateBps), loan.balance()), gross - withheld);
      if (amount <= 0) continue;
      loan.collect(amount, at);
      withheld += amount;
      withholdings++;
      deductions.add(deduction(e, loan, amount, gross, now));
    }
    payouts.put(payoutKey, new MerchantState.Payout(gross, occurredAt, occurredAt, withholdings, withheld));
    List<GenericRecord> loanStates = endStep(s, before, now);
    merchants.put(key, s);
    for (GenericRecord d : deductions) ctx.forward(new Record<>(key, d, now), DEDUCTIONS_SINK);
    for (GenericRecord l : loanStates) ctx.forward(new Record<>(str(l, "loan_id"), l, now), LOAN_STATES_SINK);
  }

  private static String payoutProblem(GenericRecord e) {
    if (!isMinor(lng(e, "gross_amount_minor"))) return "gross_amount_minor must be a non-negative integer";
    Long withheld = lng(e, "withheld_minor");
    if (withheld != null && !isMinor(withheld)) return "withheld_minor must be null or a non-negative integer";
    if (!Loan.CURRENCY.matcher(str(e, "currency")).matches()) return "currency must be an ISO 4217 code";
    if (!validTime(lng(e, "occurred_at"))) return "occurred_at out of range";
    return null;
  }

  private GenericRecord deduction(GenericRecord e, Loan loan, long amount, long gross, long now) {
    GenericData.Record d = new GenericData.Record(deductionSchema);
    d.put("deduction_id", deductionId(str(e, "payout_id"), loan.loanId, "WITHHOLD"));
    d.put("type", Loan.symbol(deductionSchema, "type", DeductionType.WITHHOLD));
    d.put("payout_id", str(e, "payout_id"));
    d.put("loan_id", loan.loanId);
    d.put("merchant_id", loan.merchantId);
    d.put("amount_minor", amount);
    d.put("gross_amount_minor", gross);
    d.put("holdback_rate_bps", loan.holdbackRateBps);
    d.put("balance_after_minor", loan.balance());
    d.put("currency", loan.currency);
    d.put("source_event_id", str(e, "event_id"));
    d.put("occurred_at", lng(e, "occurred_at"));
    d.put("decided_at", now);
    return d;
  }

  enum DeductionType { WITHHOLD, REVERSAL }

  /**
   * {@code <payout_id>:<loan_id>:<type>} with '%' and ':' escaped inside the ids, shortened to
   * its first 191 characters, '#' and its SHA-256 when longer than 256 (processor.ts deductionId, ids.ts fitId).
   */
  static String deductionId(String payoutId, String loanId, String type) {
    String id = esc(payoutId) + ":" + esc(loanId) + ":" + type;
    if (id.length() <= MAX_ID_LENGTH) return id;
    try {
      byte[] digest = MessageDigest.getInstance("SHA-256").digest(id.getBytes(StandardCharsets.UTF_8));
      return id.substring(0, MAX_ID_LENGTH - HASH_CHARS - 1) + "#" + HexFormat.of().formatHex(digest);
    } catch (NoSuchAlgorithmException ex) {
      throw new IllegalStateException(ex);
    }
  }

  private static String esc(String id) {
    return id.replace("%", "%25").replace(":", "%3A");
  }

  // ---- loan events --------------------------------------------------------------------------

  private void loanEvent(String key, GenericRecord e, long now) {
    MerchantState s = merchants.get(key);
    if (s == null) s = new MerchantState();
    String eventId = str(e, "event_id");
    if (s.loanEvents.contains(eventId)) return; // decided before: a redelivery changes nothing
    String type = str(e, "type");
    if (!"FUNDED".equals(type)) {
      reject(key, "UNSUPPORTED", "the peer implements FUNDED loan events only, not " + type);
      return;
    }
    Long occurredAt = lng(e, "occurred_at");
    String loanId = str(e, "loan_id");
    String code = null;
    String problem = null;
    if (!validTime(occurredAt)) {
      code = "INVALID_LOAN_EVENT";
      problem = "occurred_at out of range";
    } else if ((problem = Loan.termsProblem(e)) != null) {
      code = "INVALID_LOAN_EVENT";
    } else if (s.loans.containsKey(loanId)) {
      code = "DUPLICATE_LOAN";
      problem = "loan " + loanId + " is already funded";
    }
    s.loanEvents.add(eventId); // remembered, applied or not
    if (code != null) {
      merchants.put(key, s);
      reject(key, code, problem);
      return;
    }
    Map<String, Loan> before = beginStep(s, clockFor(s, occurredAt, now));
    s.loans.put(loanId, Loan.fund(e, now));
    List<GenericRecord> loanStates = endStep(s, before, now);
    merchants.put(key, s);
    for (GenericRecord l : loanStates) ctx.forward(new Record<>(str(l, "loan_id"), l, now), LOAN_STATES_SINK);
  }

  // ---- one step (processor.ts runStep) ----------------------------------------------------------

  /** Moves the merchant clock, closing due periods before the event applies; returns the loans as they were. */
  private static Map<String, Loan> beginStep(MerchantState s, long clockTo) {
    Map<String, Loan> before = s.copyOfLoans();
    s.clock = Math.max(s.clock, clockTo);
    for (Loan loan : s.loans.values()) loan.closeDuePeriods(s.clock);
    return before;
  }

  /** Reassesses pace; a LoanState (version + 1, updated_at = now) for every loan that changed. */
  private List<GenericRecord> endStep(MerchantState s, Map<String, Loan> before, long now) {
    List<GenericRecord> out = new ArrayList<>();
    for (Loan loan : s.loansByFunding()) {
      loan.closeDuePeriods(s.clock); // a late FUNDED catches up at once
      loan.pace = loan.assessPace(s.clock).pace();
      Loan old = before.get(loan.loanId);
      if (old != null && old.sameAs(loan)) continue;
      loan.version += 1;
      loan.updatedAt = now;
      out.add(loan.toLoanState(loanStateSchema, s.clock));
    }
    return out;
  }

  /** Holdback sends a rejected record to its DLQ; the peer writes no DLQ and only logs it. */
  private void reject(String key, String code, String detail) {
    log.warn("rejected {} (key {}, {}): {}", code, key, ctx.recordMetadata().map(m -> m.topic() + "/" + m.partition() + "@" + m.offset()).orElse("?"), detail);
  }
}
