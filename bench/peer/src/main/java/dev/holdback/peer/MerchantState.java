package dev.holdback.peer;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;

/**
 * A merchant's state, the value of the "merchants" store (key merchant_id): the merchant clock,
 * the loan event_ids already decided, and the loans. What Holdback's RepaymentState holds, less
 * what only SETTLED/FAILED, metrics or clean-up use (open payouts, verdict details, rememberUntil).
 */
final class MerchantState {
  private static final byte VERSION = 1;

  /** Event time, now and ticks move it; never goes back (processor.ts clockFor). */
  long clock;
  /** Every loan event_id decided for the merchant, applied or rejected: a redelivery changes nothing. */
  final Set<String> loanEvents = new LinkedHashSet<>();
  final Map<String, Loan> loans = new LinkedHashMap<>();

  /** Oldest funding first; loan_id breaks ties (processor.ts loansByFunding). */
  List<Loan> loansByFunding() {
    List<Loan> list = new ArrayList<>(loans.values());
    list.sort(Comparator.<Loan>comparingLong(l -> l.fundedAt).thenComparing(l -> l.loanId));
    return list;
  }

  /** Copies of the loans, to tell after a step which of them changed. */
  Map<String, Loan> copyOfLoans() {
    Map<String, Loan> copy = new LinkedHashMap<>();
    for (Loan l : loans.values()) copy.put(l.loanId, l.clone());
    return copy;
  }

  static final Serde<MerchantState> SERDE =
      Serdes.serdeFrom((topic, s) -> s == null ? null : s.encode(), (topic, b) -> b == null ? null : decode(b));

  private byte[] encode() {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream(128 + 160 * loans.size());
    try (DataOutputStream out = new DataOutputStream(bytes)) {
      out.writeByte(VERSION);
      out.writeLong(clock);
      out.writeInt(loanEvents.size());
      for (String id : loanEvents) out.writeUTF(id);
      out.writeInt(loans.size());
      for (Loan l : loans.values()) writeLoan(out, l);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return bytes.toByteArray();
  }

  private static MerchantState decode(byte[] b) {
    try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(b))) {
      byte v = in.readByte();
      if (v != VERSION) throw new IllegalStateException("merchant state: unknown version " + v);
      MerchantState s = new MerchantState();
      s.clock = in.readLong();
      for (int n = in.readInt(); n > 0; n--) s.loanEvents.add(in.readUTF());
      for (int n = in.readInt(); n > 0; n--) {
        Loan l = readLoan(in);
        s.loans.put(l.loanId, l);
      }
      return s;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void writeLoan(DataOutputStream out, Loan l) throws IOException {
    out.writeUTF(l.loanId);
    out.writeUTF(l.merchantId);
    out.writeUTF(l.currency);
    out.writeLong(l.principalMinor);
    out.writeLong(l.feeMinor);
    out.writeInt(l.holdbackRateBps);
    out.writeLong(l.minimumPaymentMinor);
    out.writeInt(l.periodDays);
    out.writeLong(l.fundedAt);
    out.writeByte(l.status.ordinal());
    out.writeByte(l.closure == null ? -1 : l.closure.ordinal());
    out.writeLong(l.collectedMinor);
    out.writeInt(l.periodIndex);
    out.writeLong(l.periodEndsAt);
    out.writeLong(l.periodRequiredMinor);
    out.writeLong(l.periodCollectedMinor);
    out.writeInt(l.missedPeriods);
    out.writeLong(l.clockStoppedAt == null ? -1 : l.clockStoppedAt);
    out.writeByte(l.pace == null ? -1 : l.pace.ordinal());
    out.writeLong(l.version);
    out.writeLong(l.updatedAt);
  }

  private static Loan readLoan(DataInputStream in) throws IOException {
    Loan l = new Loan();
    l.loanId = in.readUTF();
    l.merchantId = in.readUTF();
    l.currency = in.readUTF();
    l.principalMinor = in.readLong();
    l.feeMinor = in.readLong();
    l.holdbackRateBps = in.readInt();
    l.minimumPaymentMinor = in.readLong();
    l.periodDays = in.readInt();
    l.fundedAt = in.readLong();
    l.status = Loan.Status.values()[in.readByte()];
    byte closure = in.readByte();
    l.closure = closure < 0 ? null : Loan.Closure.values()[closure];
    l.collectedMinor = in.readLong();
    l.periodIndex = in.readInt();
    l.periodEndsAt = in.readLong();
    l.periodRequiredMinor = in.readLong();
    l.periodCollectedMinor = in.readLong();
    l.missedPeriods = in.readInt();
    long stopped = in.readLong();
    l.clockStoppedAt = stopped < 0 ? null : stopped;
    byte pace = in.readByte();
    l.pace = pace < 0 ? null : Loan.Pace.values()[pace];
    l.version = in.readLong();
    l.updatedAt = in.readLong();
    return l;
  }

  /**
   * What is remembered of one payout, the value of the "payouts" store (key: merchant and
   * payout_id, as Holdback keeps a payout's record as an entry of its merchant). Only SCHEDULED is
   * implemented, so a record always has its scheduledAt.
   */
  record Payout(long grossMinor, long scheduledAt, long lastEventAt, int withholdings, long withheldMinor) {
    /** Withholdings that no SETTLED or FAILED has concluded: remembered until one arrives. */
    boolean isOpen() {
      return withholdings > 0;
    }

    static final Serde<Payout> SERDE = Serdes.serdeFrom(
        (topic, p) -> {
          if (p == null) return null;
          java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(1 + 8 + 8 + 8 + 4 + 8);
          b.put(VERSION).putLong(p.grossMinor).putLong(p.scheduledAt).putLong(p.lastEventAt);
          return b.putInt(p.withholdings).putLong(p.withheldMinor).array();
        },
        (topic, bytes) -> {
          if (bytes == null) return null;
          java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(bytes);
          byte v = b.get();
          if (v != VERSION) throw new IllegalStateException("payout record: unknown version " + v);
          return new Payout(b.getLong(), b.getLong(), b.getLong(), b.getInt(), b.getLong());
        });
  }

  /** A payout's key in the payouts store: the merchant's, then the payout_id (runtime/entries.ts keeps them apart alike). */
  static String payoutKey(String merchantId, String payoutId) {
    return merchantId.length() + ":" + merchantId + payoutId;
  }
}
