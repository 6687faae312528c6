/**
 * The runtime's Prometheus metrics. Labels are bounded: processor, topic, partition number,
 * reason code. Never a merchant or loan id (cardinality and privacy).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PayoutSettlement } from '../schemas/generated/types';
import { TOPICS } from '../schemas/topics';
import type { Flush, Task } from './task';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Seconds: 1 s (a demo's simulated settlements) to 14 days (a stuck bank file). */
const SETTLEMENT_BUCKETS = [
  1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14_400, 21_600, 43_200, 86_400, 172_800, 345_600, 604_800,
  1_209_600,
];

export class RuntimeMetrics {
  readonly recordsIn: Counter<'processor' | 'topic'>;
  readonly recordsOut: Counter<'processor' | 'topic'>;
  readonly deadLetters: Counter<'processor' | 'topic' | 'reason'>;
  readonly batchSeconds: Histogram<'processor'>;
  readonly commitSeconds: Histogram<'processor'>;
  readonly eventToCommitSeconds: Histogram<'processor'>;
  readonly aborts: Counter<'processor' | 'reason'>;
  readonly restoreSeconds: Histogram<'processor'>;
  readonly restoredKeys: Counter<'processor'>;
  readonly restoreRemaining: Gauge<'processor'>;
  readonly standbyPartitions: Gauge<'processor'>;
  readonly standbyRecords: Counter<'processor'>;
  readonly tasksFromStandby: Counter<'processor'>;
  readonly consumerLag: Gauge<'processor' | 'topic' | 'partition'>;
  readonly restarts: Counter<'processor' | 'reason'>;
  readonly stoppedPartitions: Gauge<'processor'>;
  /** The broker's clock minus this machine's (connectors/broker-clock.ts), as the rules correct by. */
  readonly clockOffset: Gauge;
  readonly partitionStops: Counter<'processor' | 'reason'>;
  readonly enforcedProcessing: Counter<'processor' | 'topic'>;
  readonly endProbeSeconds: Histogram<'processor'>;
  readonly deductions: Counter<'processor' | 'type' | 'currency'>;
  readonly deductedMinor: Counter<'processor' | 'type' | 'currency'>;
  readonly stateKeys: Gauge<'processor'>;
  readonly stateEntries: Gauge<'processor'>;
  readonly operatorSkips: Counter<'processor'>;
  readonly registryRetries: Counter<'processor'>;
  readonly lastCommit: Gauge<'processor'>;
  readonly fetchToCommitSeconds: Histogram<'processor'>;
  readonly settlementLag: Histogram<'processor' | 'stage'>;
  readonly mismatches: Counter<'processor' | 'currency'>;
  readonly mismatchMinor: Counter<'processor' | 'currency'>;
  readonly unsettledWithholdings: Gauge<'processor'>;
  readonly unsettledMinor: Gauge<'processor' | 'currency'>;
  readonly oldestUnsettledAge: Gauge<'processor'>;

  constructor(readonly registry: Registry = new Registry()) {
    const r = [registry];
    collectDefaultMetrics({ register: registry, prefix: 'holdback_process_' });
    this.recordsIn = new Counter({
      name: 'holdback_records_in_total',
      help: 'Input records consumed',
      labelNames: ['processor', 'topic'],
      registers: r,
    });
    this.recordsOut = new Counter({
      name: 'holdback_records_out_total',
      help: 'Output records committed',
      labelNames: ['processor', 'topic'],
      registers: r,
    });
    this.deadLetters = new Counter({
      name: 'holdback_dlq_total',
      help: 'Input records sent to the DLQ, by reason code',
      labelNames: ['processor', 'topic', 'reason'],
      registers: r,
    });
    this.batchSeconds = new Histogram({
      name: 'holdback_batch_process_seconds',
      help: 'Time to decode and process one fetched batch',
      labelNames: ['processor'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    });
    this.commitSeconds = new Histogram({
      name: 'holdback_commit_seconds',
      help: 'Time to commit one task transaction (outputs, changelog, offsets)',
      labelNames: ['processor'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    });
    this.eventToCommitSeconds = new Histogram({
      name: 'holdback_event_to_commit_seconds',
      help: 'From the oldest input record timestamp in a commit to the commit',
      labelNames: ['processor'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    });
    this.fetchToCommitSeconds = new Histogram({
      name: 'holdback_fetch_to_commit_seconds',
      help: 'Wall time from fetching the oldest record of a commit to the commit: the latency Holdback adds, whatever the record timestamps (meaningful with --clock=stream too)',
      labelNames: ['processor'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    });
    this.aborts = new Counter({
      name: 'holdback_transaction_aborts_total',
      help: 'Transactions aborted',
      labelNames: ['processor', 'reason'],
      registers: r,
    });
    this.restoreSeconds = new Histogram({
      name: 'holdback_restore_seconds',
      help: 'Time to restore assigned tasks from their changelog',
      labelNames: ['processor'],
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 1800],
      registers: r,
    });
    this.restoreRemaining = new Gauge({
      name: 'holdback_restore_remaining_records',
      help: 'Changelog offsets still to read by the restore in progress (0 when none runs)',
      labelNames: ['processor'],
      registers: r,
    });
    this.standbyPartitions = new Gauge({
      name: 'holdback_standby_partitions',
      help: 'Tasks this instance keeps a warm standby copy of (--standby-replicas)',
      labelNames: ['processor'],
      registers: r,
    });
    this.standbyRecords = new Counter({
      name: 'holdback_standby_records_total',
      help: 'Changelog records applied to standby copies',
      labelNames: ['processor'],
      registers: r,
    });
    this.tasksFromStandby = new Counter({
      name: 'holdback_tasks_from_standby_total',
      help: 'Tasks opened from a warm standby copy instead of a full restore',
      labelNames: ['processor'],
      registers: r,
    });
    this.restoredKeys = new Counter({
      name: 'holdback_restored_keys_total',
      help: 'State entries read back from changelogs',
      labelNames: ['processor'],
      registers: r,
    });
    this.consumerLag = new Gauge({
      name: 'holdback_consumer_lag',
      help: 'Records behind the end of each input partition',
      labelNames: ['processor', 'topic', 'partition'],
      registers: r,
    });
    this.restarts = new Counter({
      name: 'holdback_engine_restarts_total',
      help: 'Consumer/producer restarts after a crash or a failed commit',
      labelNames: ['processor', 'reason'],
      registers: r,
    });
    this.clockOffset = new Gauge({
      name: 'holdback_clock_offset_seconds',
      help: "The Kafka cluster's clock minus this machine's: what the rules' time is corrected by under --clock=wall",
      registers: r,
    });
    this.stoppedPartitions = new Gauge({
      name: 'holdback_stopped_partitions',
      help: 'Partitions stopped on a broken invariant',
      labelNames: ['processor'],
      registers: r,
    });
    this.partitionStops = new Counter({
      name: 'holdback_partition_stops_total',
      help: 'Times a partition stopped: a broken invariant, or an output that does not encode (reason)',
      labelNames: ['processor', 'reason'],
      registers: r,
    });
    this.endProbeSeconds = new Histogram({
      name: 'holdback_task_end_probe_seconds',
      help:
        'Time a task waited for the broker to say where its empty input partitions end ' +
        '(time order: asked when the competing data was fetched after the last answer)',
      labelNames: ['processor'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    });
    this.enforcedProcessing = new Counter({
      name: 'holdback_task_enforced_processing_total',
      help:
        'Times a task went on processing in time order without data of an empty input partition ' +
        '(caught up, or past --max-task-idle-ms), by the topic it went on without',
      labelNames: ['processor', 'topic'],
      registers: r,
    });
    this.stateKeys = new Gauge({
      name: 'holdback_state_keys',
      help: 'Keys held in the state stores of this instance',
      labelNames: ['processor'],
      registers: r,
    });
    this.stateEntries = new Gauge({
      name: 'holdback_state_entries',
      help: 'Entries kept under the keys of this instance (repayment: remembered payouts)',
      labelNames: ['processor'],
      registers: r,
    });
    this.operatorSkips = new Counter({
      name: 'holdback_operator_skips_total',
      help: 'Records an operator moved to the DLQ after they stopped a partition (holdback dlq skip)',
      labelNames: ['processor'],
      registers: r,
    });
    this.registryRetries = new Counter({
      name: 'holdback_registry_retries_total',
      help: 'Decode retries while the schema registry was unreachable',
      labelNames: ['processor'],
      registers: r,
    });
    // Settlement (issue 7): payouts settle hours to days after their withholding, so the buckets
    // run from a minute to two weeks.
    this.settlementLag = new Histogram({
      name: 'holdback_settlement_lag_seconds',
      help: 'Per settled payout: from its first withholding (stage withheld_to_settled) or its SCHEDULED (scheduled_to_settled) to its SETTLED',
      labelNames: ['processor', 'stage'],
      buckets: SETTLEMENT_BUCKETS,
      registers: r,
    });
    this.deductions = new Counter({
      name: 'holdback_deductions_total',
      help: 'Deductions committed, by type (WITHHOLD, REVERSAL) and currency: one per deduction_id',
      labelNames: ['processor', 'type', 'currency'],
      registers: r,
    });
    this.deductedMinor = new Counter({
      name: 'holdback_deducted_minor_total',
      help: 'Amounts of the deductions committed, minor units, by type and currency',
      labelNames: ['processor', 'type', 'currency'],
      registers: r,
    });
    this.mismatches = new Counter({
      name: 'holdback_reconciliation_mismatches_total',
      help: 'Settled payouts whose reported withheld amount differs from what was instructed',
      labelNames: ['processor', 'currency'],
      registers: r,
    });
    this.mismatchMinor = new Counter({
      name: 'holdback_reconciliation_mismatch_minor_total',
      help: 'Absolute difference, in minor units, between reported and instructed withholdings of settled payouts',
      labelNames: ['processor', 'currency'],
      registers: r,
    });
    this.unsettledWithholdings = new Gauge({
      name: 'holdback_unsettled_withholdings',
      help: 'Withholdings whose payout has neither settled nor failed yet, in the partitions this instance owns',
      labelNames: ['processor'],
      registers: r,
    });
    this.unsettledMinor = new Gauge({
      name: 'holdback_unsettled_withheld_minor',
      help: 'Amount withheld from payouts not settled yet, minor units, per currency',
      labelNames: ['processor', 'currency'],
      registers: r,
    });
    this.oldestUnsettledAge = new Gauge({
      name: 'holdback_oldest_unsettled_withholding_age_seconds',
      help: 'Age of the oldest withholding whose payout has not settled (0 when none)',
      labelNames: ['processor'],
      registers: r,
    });
    this.lastCommit = new Gauge({
      name: 'holdback_last_commit_timestamp_seconds',
      help: 'Wall-clock time of the last successful commit',
      labelNames: ['processor'],
      registers: r,
    });
  }

  /** Settlement lag and reconciliation, from one committed PayoutSettlement (issue 7). */
  observeSettlement(processor: string, v: PayoutSettlement): void {
    if (v.status !== 'SETTLED') return;
    if (v.first_withheld_decided_at !== null) {
      const lag = Math.max(0, v.settled_at - v.first_withheld_decided_at) / 1000;
      this.settlementLag.observe({ processor, stage: 'withheld_to_settled' }, lag);
    }
    if (v.scheduled_at !== null) {
      const lag = Math.max(0, v.settled_at - v.scheduled_at) / 1000;
      this.settlementLag.observe({ processor, stage: 'scheduled_to_settled' }, lag);
    }
    if (v.mismatch_minor !== 0) {
      this.mismatches.inc({ processor, currency: v.currency });
      this.mismatchMinor.inc({ processor, currency: v.currency }, Math.abs(v.mismatch_minor));
    }
  }

  /** The unsettled-withholding gauges over the tasks an instance owns now (revoked ones drop out). */
  reportUnsettled(processor: string, tasks: Iterable<Pick<Task<unknown>, 'unsettled'>>, now: number): void {
    let count = 0;
    let oldest: number | undefined;
    const minor = new Map<string, number>();
    for (const t of tasks) {
      const u = t.unsettled();
      count += u.count;
      for (const [c, v] of u.minorByCurrency) minor.set(c, (minor.get(c) ?? 0) + v);
      if (u.oldestAt !== undefined && (oldest === undefined || u.oldestAt < oldest)) oldest = u.oldestAt;
    }
    this.unsettledWithholdings.set({ processor }, count);
    this.unsettledMinor.reset();
    for (const [currency, v] of minor) this.unsettledMinor.set({ processor, currency }, v);
    this.oldestUnsettledAge.set({ processor }, oldest === undefined ? 0 : Math.max(0, now - oldest) / 1000);
  }

  /** Everything one committed task transaction says, whichever transport committed it. */
  recordCommit(
    processor: string,
    c: {
      seconds: number;
      end: number;
      fetchedAt: number | undefined;
      flush: Flush;
      /** Records written per contract topic (changelog excluded). */
      outputsByTopic: ReadonlyMap<string, number>;
    },
  ): void {
    this.commitSeconds.observe({ processor }, c.seconds);
    this.lastCommit.set({ processor }, c.end / 1000);
    if (c.fetchedAt !== undefined)
      this.fetchToCommitSeconds.observe({ processor }, (c.end - c.fetchedAt) / 1000);
    if (c.flush.oldestTimestamp !== undefined) {
      this.eventToCommitSeconds.observe({ processor }, Math.max(0, c.end - c.flush.oldestTimestamp) / 1000);
    }
    for (const [topic, n] of c.outputsByTopic) this.recordsOut.inc({ processor, topic }, n);
    for (const o of c.flush.outputs) {
      if (o.topic === TOPICS.settlements) this.observeSettlement(processor, o.value);
      else if (o.topic === TOPICS.deductions) {
        const labels = { processor, type: o.value.type, currency: o.value.currency };
        this.deductions.inc(labels);
        this.deductedMinor.inc(labels, o.value.amount_minor);
      }
    }
    for (const r of c.flush.rejected) {
      this.deadLetters.inc({ processor, topic: r.source.topic, reason: r.reasonCode });
    }
  }
}
