package holdback.example;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * Holdback producer example in Java (kafka-clients, the platform's own client, and Apache Avro).
 *
 * <p>Produces one FUNDED loan and three SCHEDULED payouts for one merchant, in the contract's wire
 * format (docs/contract.md), then reads the deductions {@code holdback run repayment} wrote for them
 * and checks each amount and balance. Exits 0 when every deduction is as the contract says, 1
 * otherwise (with the reason), 2 on bad arguments.
 *
 * <pre>
 * java -jar target/holdback-example.jar --run-id demo1
 * java -jar target/holdback-example.jar --bootstrap-servers 127.0.0.1:19092 \
 *     --registry-url http://127.0.0.1:18081/apis/ccompat/v7 --topic-prefix "" --run-id demo1
 * </pre>
 *
 * See examples/README.md for what each setting means.
 */
public final class ProduceAndRead {
  // The contract's topics (docs/contract.md). A prefix is prepended to each topic name, not to the
  // subjects: values are registered under `<contract topic>-value` whatever the prefix, as Holdback
  // itself looks them up.
  static final String LOANS = "lending.loans.v1";
  static final String PAYOUTS = "marketplace.payouts.v1";
  static final String DEDUCTIONS = "holdback.deductions.v1";

  // The loan and payouts every example produces; the deductions follow from docs/contract.md:
  // each payout withholds floor(gross * rate_bps / 10000), capped by the balance.
  static final long PRINCIPAL = 100_000, FEE = 10_000;
  static final int RATE_BPS = 1000;
  static final long[] GROSS = {250_000, 120_000, 99_999};

  static final ObjectMapper JSON = new ObjectMapper();

  public static void main(String[] argv) throws Exception {
    // The Kafka client's own log: warnings and errors only, to stderr (slf4j-simple).
    System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "warn");
    Map<String, String> args = parseArgs(argv);
    String bootstrap = args.get("bootstrap-servers");
    String prefix = args.get("topic-prefix");
    String runId = args.get("run-id");
    double timeoutSeconds = Double.parseDouble(args.get("timeout"));
    long deadline = System.nanoTime() + (long) (timeoutSeconds * 1e9);
    Registry registry = new Registry(args.get("registry-url"));

    String merchant = runId + "-merchant";
    String loanId = runId + "-loan";
    List<String> payoutIds = new ArrayList<>();
    for (int i = 0; i < GROSS.length; i++) payoutIds.add(runId + "-payout-" + (i + 1));

    Properties p = new Properties();
    p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    // Exactly once into the log: no duplicates on retry, nothing reordered, acks from all in-sync
    // replicas.
    p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
    p.put(ProducerConfig.ACKS_CONFIG, "all");
    // Holdback co-partitions the inputs by merchant_id: a merchant's loans and payouts must land
    // in the same partition number of every input topic, and that partition must be the one
    // Holdback's own producers pick. That is this client's default partitioner, which is the
    // reference: with partitioner.class unset and keys not ignored, a keyed record goes to
    // murmur2(key) % partitions (Kafka 4 removed the DefaultPartitioner class; this is it).
    p.put(ProducerConfig.PARTITIONER_IGNORE_KEYS_CONFIG, false);
    // The key is the merchant_id as UTF-8 bytes (no key schema); the value is already framed.
    p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
    p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, ByteArraySerializer.class.getName());

    // Holdback registers the schemas (`holdback schemas register`); a producer only uses them:
    // never register from here, take the subject's latest version as the writer schema.
    Registry.Latest loanSchema = registry.latest(LOANS + "-value");
    Registry.Latest payoutSchema = registry.latest(PAYOUTS + "-value");

    long fundedAt = System.currentTimeMillis() - 3_600_000; // an hour ago; payouts a minute apart after it
    Map<String, Object> loan = new LinkedHashMap<>();
    loan.put("event_id", loanId + "-funded");
    loan.put("loan_id", loanId);
    loan.put("merchant_id", merchant);
    loan.put("type", "FUNDED");
    loan.put("occurred_at", fundedAt);
    loan.put("principal_minor", PRINCIPAL);
    loan.put("fee_minor", FEE);
    loan.put("holdback_rate_bps", RATE_BPS);
    loan.put("minimum_payment_minor", 0L);
    loan.put("period_days", 30);
    loan.put("currency", "USD");

    Set<Integer> partitions = new HashSet<>();
    try (KafkaProducer<String, byte[]> producer = new KafkaProducer<>(p)) {
      List<Future<RecordMetadata>> sent = new ArrayList<>();
      sent.add(producer.send(new ProducerRecord<>(prefix + LOANS, merchant, encode(loanSchema, loan))));
      for (int i = 0; i < GROSS.length; i++) {
        Map<String, Object> payout = new LinkedHashMap<>();
        payout.put("event_id", payoutIds.get(i) + "-scheduled");
        payout.put("merchant_id", merchant);
        payout.put("payout_id", payoutIds.get(i));
        payout.put("type", "SCHEDULED");
        payout.put("gross_amount_minor", GROSS[i]);
        payout.put("withheld_minor", null);
        payout.put("currency", "USD");
        payout.put("occurred_at", fundedAt + (i + 1) * 60_000L);
        sent.add(producer.send(new ProducerRecord<>(prefix + PAYOUTS, merchant, encode(payoutSchema, payout))));
      }
      for (Future<RecordMetadata> f : sent) {
        RecordMetadata m;
        try {
          m = f.get(Math.max(1, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (ExecutionException | TimeoutException e) {
          throw fail("produce failed (is Kafka up at " + bootstrap + "?): " + e);
        }
        partitions.add(m.partition());
        System.out.printf("produced %s partition %d offset %d%n", m.topic(), m.partition(), m.offset());
      }
    }
    if (partitions.size() != 1) throw fail("the merchant's records went to several partitions: " + partitions);
    int partition = partitions.iterator().next();

    // Deductions are written in transactions: read only committed ones. Every partition from the
    // start, without a consumer group (nothing to commit), keeping this merchant's records.
    String topic = prefix + DEDUCTIONS;
    Properties c = new Properties();
    c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
    c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
    c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
    c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
    c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, ByteArrayDeserializer.class.getName());
    Map<String, GenericRecord> seen = new LinkedHashMap<>();
    Map<String, Integer> seenPartition = new HashMap<>();
    try (KafkaConsumer<String, byte[]> consumer = new KafkaConsumer<>(c)) {
      List<PartitionInfo> infos = consumer.partitionsFor(topic, Duration.ofSeconds(10));
      if (infos == null || infos.isEmpty()) throw fail("no topic " + topic);
      List<TopicPartition> tps = new ArrayList<>();
      for (PartitionInfo i : infos) tps.add(new TopicPartition(topic, i.partition()));
      consumer.assign(tps);
      consumer.seekToBeginning(tps);
      while (seen.size() < payoutIds.size() && System.nanoTime() < deadline) {
        for (ConsumerRecord<String, byte[]> r : consumer.poll(Duration.ofMillis(500))) {
          if (!merchant.equals(r.key())) continue;
          GenericRecord d = registry.decode(r.value());
          String payoutId = d.get("payout_id").toString();
          System.out.printf(
              "read deduction %s %s amount %s balance after %s (partition %d)%n",
              d.get("type"), payoutId, d.get("amount_minor"), d.get("balance_after_minor"), r.partition());
          if (seen.containsKey(payoutId)) throw fail("a second deduction for " + payoutId + ": " + d);
          seen.put(payoutId, d);
          seenPartition.put(payoutId, r.partition());
        }
      }
    }
    if (seen.size() < payoutIds.size()) {
      throw fail(
          String.format(
              "timed out after %s s with %d of %d deductions on %s: is `holdback run repayment` running"
                  + " with this --topic-prefix? Or did the records go to the DLQ (`holdback dlq inspect`)?",
              args.get("timeout"), seen.size(), payoutIds.size(), topic));
    }

    long balance = PRINCIPAL + FEE;
    List<Map<String, Object>> result = new ArrayList<>();
    for (int i = 0; i < GROSS.length; i++) {
      String id = payoutIds.get(i);
      long amount = Math.min(GROSS[i] * RATE_BPS / 10_000, balance);
      balance -= amount;
      GenericRecord d = seen.get(id);
      List<Object> got =
          List.of(
              d.get("type").toString(),
              d.get("loan_id").toString(),
              d.get("amount_minor"),
              d.get("balance_after_minor"),
              d.get("gross_amount_minor"));
      List<Object> want = List.of("WITHHOLD", loanId, amount, balance, GROSS[i]);
      if (!got.equals(want)) {
        throw fail(id + ": got (type, loan, amount, balance_after, gross) " + got + ", expected " + want);
      }
      Map<String, Object> r = new LinkedHashMap<>();
      r.put("payout_id", id);
      r.put("amount_minor", amount);
      r.put("balance_after_minor", balance);
      r.put("partition", seenPartition.get(id));
      result.add(r);
    }
    System.out.println("OK: one WITHHOLD per payout, amounts and balances as the contract says");
    Map<String, Object> out = new LinkedHashMap<>();
    out.put("merchant_id", merchant);
    out.put("partition", partition);
    out.put("deductions", result);
    System.out.println("RESULT " + JSON.writeValueAsString(out));
    System.exit(0);
  }

  /**
   * The Confluent wire format: magic byte 0, the writer schema's id (4 bytes, big-endian), then
   * the Avro binary body. A field the map leaves out takes its default from the schema.
   */
  static byte[] encode(Registry.Latest writer, Map<String, Object> fields) throws IOException {
    GenericData.Record record = new GenericData.Record(writer.schema);
    for (Schema.Field f : writer.schema.getFields()) {
      Object v = fields.containsKey(f.name()) ? fields.get(f.name()) : GenericData.get().getDefaultValue(f);
      if (v instanceof String s && f.schema().getType() == Schema.Type.ENUM) {
        v = new GenericData.EnumSymbol(f.schema(), s);
      }
      record.put(f.name(), v);
    }
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    out.write(0);
    out.write(ByteBuffer.allocate(4).putInt(writer.id).array());
    BinaryEncoder encoder = EncoderFactory.get().binaryEncoder(out, null);
    new GenericDatumWriter<GenericRecord>(writer.schema).write(record, encoder);
    encoder.flush();
    return out.toByteArray();
  }

  /** The registry's Confluent-compatible REST API: latest version of a subject, schema by id. */
  static final class Registry {
    record Latest(int id, Schema schema) {}

    private final String url;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private final Map<Integer, Schema> byId = new HashMap<>();

    Registry(String url) {
      this.url = url.replaceAll("/+$", "");
    }

    Latest latest(String subject) throws Exception {
      JsonNode body =
          get("/subjects/" + URLEncoder.encode(subject, StandardCharsets.UTF_8) + "/versions/latest");
      return new Latest(body.get("id").asInt(), new Schema.Parser().parse(body.get("schema").asText()));
    }

    /** A framed value: the header's id names the writer schema, fetched once per id. */
    GenericRecord decode(byte[] value) throws Exception {
      if (value == null || value.length < 5 || value[0] != 0) {
        throw fail("a deduction not in the Confluent wire format");
      }
      int id = ByteBuffer.wrap(value, 1, 4).getInt();
      Schema writer = byId.get(id);
      if (writer == null) {
        writer = new Schema.Parser().parse(get("/schemas/ids/" + id).get("schema").asText());
        byId.put(id, writer);
      }
      return new GenericDatumReader<GenericRecord>(writer)
          .read(null, DecoderFactory.get().binaryDecoder(value, 5, value.length - 5, null));
    }

    private JsonNode get(String path) throws Exception {
      HttpResponse<String> r;
      try {
        r =
            http.send(
                HttpRequest.newBuilder(URI.create(url + path)).timeout(Duration.ofSeconds(10)).GET().build(),
                HttpResponse.BodyHandlers.ofString());
      } catch (IOException e) {
        throw fail("registry at " + url + ": " + e);
      }
      if (r.statusCode() != 200) throw fail("registry GET " + url + path + ": " + r.statusCode() + " " + r.body());
      return JSON.readTree(r.body());
    }
  }

  static Map<String, String> parseArgs(String[] argv) {
    Map<String, String> args = new HashMap<>();
    args.put("bootstrap-servers", env("BOOTSTRAP_SERVERS", "127.0.0.1:19092"));
    args.put("registry-url", env("SCHEMA_REGISTRY_URL", "http://127.0.0.1:18081/apis/ccompat/v7"));
    args.put("topic-prefix", env("TOPIC_PREFIX", ""));
    args.put("run-id", env("RUN_ID", "java-" + UUID.randomUUID().toString().substring(0, 12)));
    args.put("timeout", env("TIMEOUT_SECONDS", "60"));
    for (int i = 0; i < argv.length; i++) {
      String a = argv[i];
      String name, value;
      if (a.startsWith("--") && a.contains("=")) {
        name = a.substring(2, a.indexOf('='));
        value = a.substring(a.indexOf('=') + 1);
      } else if (a.startsWith("--") && i + 1 < argv.length) {
        name = a.substring(2);
        value = argv[++i];
      } else {
        name = a;
        value = null;
      }
      if (value == null || !args.containsKey(name)) {
        System.err.println(
            "usage: java -jar holdback-example.jar [--bootstrap-servers H:P] [--registry-url URL]"
                + " [--topic-prefix P] [--run-id ID] [--timeout SECONDS]; bad argument: " + a);
        System.exit(2);
      }
      args.put(name, value);
    }
    try {
      Double.parseDouble(args.get("timeout"));
    } catch (NumberFormatException e) {
      System.err.println("--timeout: not a number: " + args.get("timeout"));
      System.exit(2);
    }
    return args;
  }

  static String env(String name, String fallback) {
    String v = System.getenv(name);
    return v != null ? v : fallback;
  }

  /** Prints the reason and exits 1; declared to return an exception so callers can `throw fail(...)`. */
  static RuntimeException fail(String message) {
    System.err.println("FAIL: " + message);
    System.exit(1);
    return new IllegalStateException(message);
  }
}
