package dev.holdback.peer;

import java.util.HashMap;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.IntFunction;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericRecord;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.LogAndContinueExceptionHandler;
import org.apache.kafka.streams.processor.TimestampExtractor;
import org.apache.kafka.streams.state.Stores;

/**
 * The repayment peer: `holdback run repayment`'s work for the benchmark's workload as one Kafka
 * Streams topology (README.md).
 *
 * <pre>
 * java -jar repayment-peer.jar --bootstrap H:P --registry URL --input-prefix IN --output-prefix OUT
 *      --application-id ID --threads N [--state-dir DIR]
 * </pre>
 */
public final class Main {
  static final String LOANS_IN = "lending.loans.v1";
  static final String PAYOUTS_IN = "marketplace.payouts.v1";
  static final String DEDUCTIONS_OUT = "holdback.deductions.v1";
  static final String LOAN_STATES_OUT = "holdback.loans.v1";

  /**
   * Orders a task's input by the event's occurred_at, not the Kafka timestamp, as Holdback does
   * (docs/contract.md, "Time order"). Kafka Streams hands the extractor the deserialized record.
   */
  public static final class OccurredAt implements TimestampExtractor {
    @Override
    public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
      if (record.value() instanceof GenericRecord r && r.get("occurred_at") instanceof Long t) return t;
      return record.timestamp();
    }
  }

  /**
   * Both inputs into one processor (so Kafka Streams co-partitions them in one task), its two
   * persistent (RocksDB) stores, and the two outputs. The stores are cached, as the DSL's are by
   * default: a key's changelog record is written once per commit, as Holdback rewrites a merchant's
   * state once per commit. writerSchemas: the schema of an input's schema id.
   */
  static Topology topology(String in, String out, IntFunction<Schema> writerSchemas, int deductionId, int loanStateId) {
    Schema deduction = Avro.localSchema("Deduction");
    Schema loanState = Avro.localSchema("LoanState");
    Topology topology = new Topology();
    topology.addSource("loan-events", Serdes.String().deserializer(),
        new Avro.Reader(Avro.localSchema("LoanEvent"), writerSchemas), in + LOANS_IN);
    topology.addSource("payouts", Serdes.String().deserializer(),
        new Avro.Reader(Avro.localSchema("PayoutEvent"), writerSchemas), in + PAYOUTS_IN);
    topology.addProcessor("repayment", () -> new RepaymentProcessor(deduction, loanState), "loan-events", "payouts");
    topology.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(RepaymentProcessor.MERCHANTS),
        Serdes.String(), MerchantState.SERDE).withCachingEnabled(), "repayment");
    topology.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(RepaymentProcessor.PAYOUTS),
        Serdes.String(), MerchantState.Payout.SERDE).withCachingEnabled(), "repayment");
    topology.addSink(RepaymentProcessor.DEDUCTIONS_SINK, out + DEDUCTIONS_OUT, Serdes.String().serializer(),
        new Avro.Writer(deduction, deductionId), "repayment");
    topology.addSink(RepaymentProcessor.LOAN_STATES_SINK, out + LOAN_STATES_OUT, Serdes.String().serializer(),
        new Avro.Writer(loanState, loanStateId), "repayment");
    return topology;
  }

  public static void main(String[] argv) throws Exception {
    Map<String, String> args = parse(argv);
    String bootstrap = required(args, "bootstrap");
    String registryUrl = required(args, "registry");
    String in = args.getOrDefault("input-prefix", "");
    String out = args.getOrDefault("output-prefix", "");
    String applicationId = required(args, "application-id");
    int threads = Integer.parseInt(args.getOrDefault("threads", "1"));

    Avro.Registry registry = new Avro.Registry(registryUrl);
    int deductionId = registry.latestId(DEDUCTIONS_OUT + "-value");
    int loanStateId = registry.latestId(LOAN_STATES_OUT + "-value");

    Topology topology = topology(in, out, registry::schemaById, deductionId, loanStateId);

    Properties props = new Properties();
    props.put(StreamsConfig.APPLICATION_ID_CONFIG, applicationId);
    props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
    props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
    props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, threads);
    props.put(StreamsConfig.DEFAULT_TIMESTAMP_EXTRACTOR_CLASS_CONFIG, OccurredAt.class);
    // An undecodable record is skipped (Holdback sends it to its DLQ; the peer has none).
    props.put(StreamsConfig.DESERIALIZATION_EXCEPTION_HANDLER_CLASS_CONFIG, LogAndContinueExceptionHandler.class);
    // No global stores here; set so that Kafka Streams does not warn about its future default (its
    // stream threads' assignors still do, once each at start-up).
    props.put(StreamsConfig.PROCESSING_EXCEPTION_HANDLER_GLOBAL_ENABLED_CONFIG, true);
    if (args.containsKey("state-dir")) props.put(StreamsConfig.STATE_DIR_CONFIG, args.get("state-dir"));

    KafkaStreams streams = new KafkaStreams(topology, props);
    CountDownLatch stopped = new CountDownLatch(1);
    AtomicBoolean announced = new AtomicBoolean();
    streams.setStateListener((now, before) -> {
      if (now == KafkaStreams.State.RUNNING && announced.compareAndSet(false, true)) {
        System.out.println("{\"started\":" + System.currentTimeMillis()
            + ",\"applicationId\":\"" + applicationId + "\",\"threads\":" + threads
            + ",\"schemaIds\":{\"deductions\":" + deductionId + ",\"loanStates\":" + loanStateId + "}}");
        System.out.flush();
      }
      if (now == KafkaStreams.State.ERROR || now == KafkaStreams.State.NOT_RUNNING) stopped.countDown();
    });
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      streams.close();
      stopped.countDown();
    }, "shutdown"));
    streams.start();
    stopped.await();
    streams.close();
    if (streams.state() == KafkaStreams.State.ERROR) System.exit(1);
  }

  private static Map<String, String> parse(String[] argv) {
    Map<String, String> args = new HashMap<>();
    for (int i = 0; i < argv.length; i++) {
      String a = argv[i];
      if (!a.startsWith("--")) throw new IllegalArgumentException("unexpected argument: " + a);
      int eq = a.indexOf('=');
      if (eq > 0) args.put(a.substring(2, eq), a.substring(eq + 1));
      else if (i + 1 < argv.length) args.put(a.substring(2), argv[++i]);
      else throw new IllegalArgumentException(a + " needs a value");
    }
    return args;
  }

  private static String required(Map<String, String> args, String name) {
    String v = args.get(name);
    if (v == null || v.isEmpty()) {
      System.err.println("usage: java -jar repayment-peer.jar --bootstrap H:P --registry URL --input-prefix IN"
          + " --output-prefix OUT --application-id ID --threads N [--state-dir DIR]");
      System.err.println("missing --" + name);
      System.exit(2);
    }
    return v;
  }
}
