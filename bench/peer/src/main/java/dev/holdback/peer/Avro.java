package dev.holdback.peer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URLEncoder;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.IntFunction;
import org.apache.avro.Schema;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.BinaryEncoder;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.kafka.common.errors.SerializationException;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serializer;

/**
 * Avro in Confluent's wire format (byte 0 = 0, bytes 1-4 = the schema id, big-endian, then Avro
 * binary), written by hand since Confluent's serdes are not on Maven Central, and the few calls of
 * the registry's Confluent-compatible API it needs.
 */
final class Avro {
  private Avro() {}

  private static final byte MAGIC = 0;

  /** The contract's schema, from the jar (the pom copies it from the repository's schemas/). */
  static Schema localSchema(String name) {
    try (InputStream in = Avro.class.getResourceAsStream("/schemas/" + name + ".avsc")) {
      if (in == null) throw new IllegalStateException("no schemas/" + name + ".avsc in the jar");
      return new Schema.Parser().parse(in);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  /** The registry's Confluent-compatible API (GET only). */
  static final class Registry {
    private final String baseUrl;
    private final HttpClient http = HttpClient.newBuilder().connectTimeout(Duration.ofSeconds(5)).build();
    private final ObjectMapper json = new ObjectMapper();

    Registry(String baseUrl) {
      this.baseUrl = baseUrl.replaceAll("/+$", "");
    }

    /** The id of the subject's latest version: what the outputs are written with. */
    int latestId(String subject) {
      String path = "/subjects/" + URLEncoder.encode(subject, StandardCharsets.UTF_8) + "/versions/latest";
      return get(path).get("id").asInt();
    }

    /** The schema registered under an id: the writer schema of an input record. */
    Schema schemaById(int id) {
      return new Schema.Parser().parse(get("/schemas/ids/" + id).get("schema").asText());
    }

    private JsonNode get(String path) {
      try {
        HttpRequest req = HttpRequest.newBuilder(URI.create(baseUrl + path))
            .timeout(Duration.ofSeconds(10))
            .header("Accept", "application/vnd.schemaregistry.v1+json, application/json")
            .GET()
            .build();
        HttpResponse<String> res = http.send(req, HttpResponse.BodyHandlers.ofString());
        if (res.statusCode() != 200) {
          throw new IllegalStateException("registry GET " + path + ": HTTP " + res.statusCode() + " " + res.body());
        }
        return json.readTree(res.body());
      } catch (IOException e) {
        throw new IllegalStateException("registry GET " + path + ": " + e, e);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("registry GET " + path + ": interrupted", e);
      }
    }
  }

  /**
   * Reads a record written with any registered schema (fetched by its id once) into the local
   * schema. Shared by the stream threads: the readers are thread-safe, the cache is concurrent.
   */
  static final class Reader implements Deserializer<GenericRecord> {
    private final Schema readerSchema;
    private final IntFunction<Schema> writerSchemas;
    private final Map<Integer, GenericDatumReader<GenericRecord>> byId = new ConcurrentHashMap<>();

    /** writerSchemas: the schema of an id, Registry::schemaById. */
    Reader(Schema readerSchema, IntFunction<Schema> writerSchemas) {
      this.readerSchema = readerSchema;
      this.writerSchemas = writerSchemas;
    }

    @Override
    public GenericRecord deserialize(String topic, byte[] data) {
      if (data == null) return null;
      if (data.length < 5 || data[0] != MAGIC) {
        throw new SerializationException(topic + ": not Confluent's wire format (magic byte " + (data.length > 0 ? data[0] : "none") + ")");
      }
      int id = ByteBuffer.wrap(data, 1, 4).getInt();
      GenericDatumReader<GenericRecord> reader =
          byId.computeIfAbsent(id, i -> new GenericDatumReader<>(writerSchemas.apply(i), readerSchema));
      try {
        return reader.read(null, DecoderFactory.get().binaryDecoder(data, 5, data.length - 5, null));
      } catch (IOException | RuntimeException e) {
        throw new SerializationException(topic + ": undecodable Avro (schema id " + id + "): " + e, e);
      }
    }
  }

  /** Writes a record with the local schema under the id it is registered with. */
  static final class Writer implements Serializer<GenericRecord> {
    private final GenericDatumWriter<GenericRecord> writer;
    private final int schemaId;

    Writer(Schema schema, int schemaId) {
      this.writer = new GenericDatumWriter<>(schema);
      this.schemaId = schemaId;
    }

    @Override
    public byte[] serialize(String topic, GenericRecord record) {
      if (record == null) return null;
      ByteArrayOutputStream out = new ByteArrayOutputStream(256);
      out.write(MAGIC);
      out.write(schemaId >>> 24);
      out.write(schemaId >>> 16);
      out.write(schemaId >>> 8);
      out.write(schemaId);
      try {
        BinaryEncoder enc = EncoderFactory.get().directBinaryEncoder(out, null);
        writer.write(record, enc);
        enc.flush();
      } catch (IOException | RuntimeException e) {
        throw new SerializationException(topic + ": cannot encode " + record.getSchema().getName() + ": " + e, e);
      }
      return out.toByteArray();
    }
  }
}
