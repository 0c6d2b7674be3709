import { Counter, Gauge, Histogram } from 'prom-client';
import { createServiceRegistry } from '../ops/metrics-registry';

/** Prometheus metrics of the consumer, on a registry of its own (several consumers may share a process in tests). */
export function createMetrics() {
  const registry = createServiceRegistry('audit_consumer_');
  const m = {
    registry,
    consumed: new Counter({ name: 'audit_consumer_records_consumed_total', help: 'Audit records read from Kafka and decoded', registers: [registry] }),
    rowsWritten: new Counter({ name: 'audit_consumer_rows_written_total', help: 'Rows stored in Parquet files', registers: [registry] }),
    filesWritten: new Counter({ name: 'audit_consumer_files_written_total', help: 'Parquet files stored', registers: [registry] }),
    bytesWritten: new Counter({ name: 'audit_consumer_bytes_written_total', help: 'Parquet bytes stored', registers: [registry] }),
    deadLetters: new Counter({ name: 'audit_consumer_dead_letters_total', help: 'Records sent to the dead-letter topic', registers: [registry] }),
    expiredDayLetters: new Counter({
      name: 'audit_consumer_expired_day_letters_total',
      help: 'Records dated inside a day removed by retention, sent to the dead-letter topic (also counted in dead_letters_total)',
      registers: [registry],
    }),
    uploadRetries: new Counter({ name: 'audit_consumer_upload_retries_total', help: 'Storage operations retried', registers: [registry] }),
    adoptedCuts: new Counter({ name: 'audit_consumer_adopted_cuts_total', help: 'Cuts adopted from an earlier claim (replays, rebalances)', registers: [registry] }),
    trustFailures: new Counter({
      name: 'audit_consumer_trust_failures_total',
      help: 'Objects of the store that failed their trust check and stopped the consumer (object: chain-head, cut-claim; reason: trust/signed-object.ts codes)',
      labelNames: ['object', 'reason'] as const,
      registers: [registry],
    }),
    commitFailures: new Counter({ name: 'audit_consumer_commit_failures_total', help: 'Offset commits refused after a cut was stored', registers: [registry] }),
    flushSeconds: new Histogram({
      name: 'audit_consumer_flush_seconds',
      help: 'Time to write, upload and commit one cut',
      labelNames: ['reason'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    lag: new Gauge({ name: 'audit_consumer_lag', help: 'Records behind the high watermark, per partition', labelNames: ['partition'] as const, registers: [registry] }),
    bufferedRecords: new Gauge({ name: 'audit_consumer_buffered_records', help: 'Records read but not yet stored', registers: [registry] }),
    bufferedBytes: new Gauge({ name: 'audit_consumer_buffered_bytes', help: 'Encoded bytes read but not yet stored', registers: [registry] }),
    heldBytes: new Gauge({
      name: 'audit_consumer_held_bytes',
      help: 'Memory held by records read but not yet stored (staging lines plus per-record bookkeeping); bounded by AUDIT_MEMORY_MAX_BYTES',
      registers: [registry],
    }),
  };
  return m;
}

export type SinkMetrics = ReturnType<typeof createMetrics>;
