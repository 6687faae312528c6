/**
 * Pipeline health (Prometheus): is every processor and the ClickHouse sink keeping up, and is
 * anything failing? Every query is scoped by the `service` variable.
 */
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import { HALF, THIRD, finish, promql, row, serviceVariable, statPanel, timeSeriesPanel } from './panels';

const S = 'service=~"$service"';

/**
 * A counter that only appears once it moves (aborts, restarts, retries): its increase per service,
 * or 0 for a service that runs (`baseline` is a series every running process of that kind has), so
 * "no aborts" reads 0 rather than "No data".
 */
function countOrZero(counter: string, by: string, baseline: string): string {
  return `sum by (service, ${by}) (increase(${counter}{${S}}[$__rate_interval]))
    or on (service) sum by (service) (0 * ${baseline}{${S}})`;
}

function quantiles(histogram: string, by: string, legend: string) {
  return [0.5, 0.99].map((q) =>
    promql(
      `histogram_quantile(${q}, sum by (${by}, le) (rate(${histogram}_bucket{${S}}[$__rate_interval])))`,
      `${legend} p${q * 100}`,
    ),
  );
}

export function pipelineHealth(): dashboard.Dashboard {
  const b = new dashboard.DashboardBuilder('Holdback: pipeline health')
    .uid('holdback-pipeline-health')
    .description('Processors (holdback run) and the ClickHouse sink: throughput, lag, latency, failures.')
    .tags(['holdback', 'prometheus'])
    .timezone('utc')
    .time({ from: 'now-1h', to: 'now' })
    .refresh('10s')
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .withVariable(serviceVariable())

    .withRow(row('Processors: throughput and lag'))
    .withPanel(
      timeSeriesPanel(
        'Records in per second',
        'Input records consumed, by processor and topic (holdback_records_in_total).',
        'rps',
        [
          promql(
            `sum by (service, processor, topic) (rate(holdback_records_in_total{${S}}[$__rate_interval]))`,
            '{{processor}} {{topic}}',
          ),
        ],
        THIRD,
      ),
    )
    .withPanel(
      timeSeriesPanel(
        'Records out per second',
        'Output records committed, by processor and topic (holdback_records_out_total).',
        'rps',
        [
          promql(
            `sum by (service, processor, topic) (rate(holdback_records_out_total{${S}}[$__rate_interval]))`,
            '{{processor}} {{topic}}',
          ),
        ],
        THIRD,
      ),
    )
    .withPanel(
      timeSeriesPanel(
        'Consumer lag',
        'Records behind the end of each input topic, summed over its partitions (holdback_consumer_lag).',
        'short',
        [
          promql(
            `sum by (service, processor, topic) (holdback_consumer_lag{${S}})`,
            '{{processor}} {{topic}}',
          ),
        ],
        THIRD,
      ),
    )

    .withRow(row('Processors: latency'))
    .withPanel(
      timeSeriesPanel(
        'Event to commit',
        'From the oldest input record timestamp of a commit to the commit (holdback_event_to_commit_seconds). Replayed history shows its age here.',
        's',
        quantiles('holdback_event_to_commit_seconds', 'processor', '{{processor}}'),
      ),
    )
    .withPanel(
      timeSeriesPanel(
        'Commit latency',
        'One task transaction: outputs, changelog, offsets (holdback_commit_seconds).',
        's',
        quantiles('holdback_commit_seconds', 'processor', '{{processor}}'),
      ),
    )

    .withRow(row('Processors: failures'))
    .withPanel(
      timeSeriesPanel(
        'Dead letters per second by reason',
        'Input records sent to holdback.dlq.v1, by reason code (holdback_dlq_total; docs/reason-codes.md).',
        'rps',
        [
          promql(
            `sum by (service, processor, reason) (rate(holdback_dlq_total{${S}}[$__rate_interval]))`,
            '{{processor}} {{reason}}',
          ),
        ],
        { w: 6, h: 8 },
        { stack: true },
      ),
    )
    .withPanel(
      timeSeriesPanel(
        'Transaction aborts',
        'Aborted transactions per interval, by reason (holdback_transaction_aborts_total); 0 for a running processor without any.',
        'short',
        [
          promql(
            countOrZero(
              'holdback_transaction_aborts_total',
              'reason',
              'holdback_last_commit_timestamp_seconds',
            ),
            '{{service}} {{reason}}',
          ),
        ],
        { w: 6, h: 8 },
        { bars: true },
      ),
    )
    .withPanel(
      timeSeriesPanel(
        'Engine restarts',
        'Consumer/producer restarts after a crash or a failed commit (holdback_engine_restarts_total); 0 for a running processor without any.',
        'short',
        [
          promql(
            countOrZero('holdback_engine_restarts_total', 'reason', 'holdback_last_commit_timestamp_seconds'),
            '{{service}} {{reason}}',
          ),
        ],
        { w: 6, h: 8 },
        { bars: true },
      ),
    )
    .withPanel(
      statPanel(
        'Stopped partitions',
        'Partitions stopped on a broken invariant (holdback_stopped_partitions): fix and restart the processor (docs/runbooks).',
        'short',
        [
          promql(
            `sum by (service) (holdback_stopped_partitions{${S}})
              or on (service) sum by (service) (0 * holdback_last_commit_timestamp_seconds{${S}})`,
            '{{service}}',
          ),
        ],
        { w: 6, h: 8 },
        [
          { value: null, color: 'green' },
          { value: 1, color: 'red' },
        ],
      ),
    )

    .withRow(row('ClickHouse sink'))
    .withPanel(
      statPanel(
        'ClickHouse up',
        '1 while the last ClickHouse request of the sink succeeded, 0 while it retries (holdback_clickhouse_up).',
        'short',
        [promql(`min by (service) (holdback_clickhouse_up{${S}})`, '{{service}}')],
        { w: 6, h: 8 },
        [
          { value: null, color: 'red' },
          { value: 1, color: 'green' },
        ],
      ),
    )
    .withPanel(
      timeSeriesPanel(
        'Rows inserted per second',
        'Rows durably inserted, by table (holdback_clickhouse_rows_inserted_total).',
        'rps',
        [
          promql(
            `sum by (service, table) (rate(holdback_clickhouse_rows_inserted_total{${S}}[$__rate_interval]))`,
            '{{table}}',
          ),
        ],
        { w: 9, h: 8 },
        { stack: true },
      ),
    )
    .withPanel(
      timeSeriesPanel(
        'Sink lag',
        'Records in Kafka not yet durable in ClickHouse, by topic (holdback_clickhouse_sink_consumer_lag).',
        'short',
        [promql(`sum by (service, topic) (holdback_clickhouse_sink_consumer_lag{${S}})`, '{{topic}}')],
        { w: 9, h: 8 },
      ),
    )
    .withPanel(
      timeSeriesPanel(
        'Insert latency',
        'Successful INSERTs, by table (holdback_clickhouse_insert_seconds).',
        's',
        quantiles('holdback_clickhouse_insert_seconds', 'table', '{{table}}'),
        HALF,
      ),
    )
    .withPanel(
      timeSeriesPanel(
        'Insert retries',
        'INSERTs that failed or timed out and were retried, by table and reason (holdback_clickhouse_insert_retries_total); 0 for a running sink without any.',
        'short',
        [
          promql(
            countOrZero(
              'holdback_clickhouse_insert_retries_total',
              'table, reason',
              'holdback_clickhouse_up',
            ),
            '{{service}} {{table}} {{reason}}',
          ),
        ],
        HALF,
        { bars: true },
      ),
    );
  return finish(b);
}
