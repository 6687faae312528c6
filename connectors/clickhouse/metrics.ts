/** The sink's Prometheus metrics (its own registry, served by connectors/metrics-server.ts). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class SinkMetrics {
  readonly registry = new Registry();
  readonly rowsInserted = new Counter({
    name: 'holdback_clickhouse_rows_inserted_total',
    help: 'Rows durably inserted into ClickHouse, by table.',
    labelNames: ['table'],
    registers: [this.registry],
  });
  readonly insertSeconds = new Histogram({
    name: 'holdback_clickhouse_insert_seconds',
    help: 'Duration of one successful INSERT, by table.',
    labelNames: ['table'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly batchRows = new Histogram({
    name: 'holdback_clickhouse_batch_rows',
    help: 'Rows per INSERT, by table.',
    labelNames: ['table'],
    buckets: [1, 10, 100, 500, 1000, 5000, 10000, 25000, 50000, 100000],
    registers: [this.registry],
  });
  readonly flushSeconds = new Histogram({
    name: 'holdback_clickhouse_flush_seconds',
    help: 'Duration of one flush (every table of a batch, retries included).',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });
  readonly retries = new Counter({
    name: 'holdback_clickhouse_insert_retries_total',
    help: 'INSERTs that failed or timed out and were retried after re-reading positions from ClickHouse.',
    labelNames: ['table', 'reason'],
    registers: [this.registry],
  });
  readonly rowsAlreadyPresent = new Counter({
    name: 'holdback_clickhouse_rows_already_present_total',
    help: 'Rows dropped from a retry because ClickHouse already had them (the failed INSERT had in fact landed).',
    labelNames: ['table'],
    registers: [this.registry],
  });
  readonly clickhouseUp = new Gauge({
    name: 'holdback_clickhouse_up',
    help: '1 while the last ClickHouse request succeeded, 0 while the sink is retrying.',
    registers: [this.registry],
  });
  readonly consumerLag = new Gauge({
    name: 'holdback_clickhouse_sink_consumer_lag',
    help: 'Records in Kafka not yet durable in ClickHouse (high watermark - next offset), by topic and partition.',
    labelNames: ['topic', 'partition'],
    registers: [this.registry],
  });
  readonly records = new Counter({
    name: 'holdback_clickhouse_sink_records_total',
    help: 'Kafka records seen by the sink, by topic and outcome (accepted, skipped: undecodable, duplicate: already durable).',
    labelNames: ['topic', 'outcome'],
    registers: [this.registry],
  });
  readonly lastFlush = new Gauge({
    name: 'holdback_clickhouse_last_flush_timestamp_seconds',
    help: 'When the last flush became durable.',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'holdback_clickhouse_sink_' });
  }
}
