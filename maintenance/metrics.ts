import { Counter, Gauge, Histogram } from 'prom-client';
import { createServiceRegistry } from '../ops/metrics-registry';
import type { PassReport } from './maintainer';

/** Prometheus metrics of the maintainer (audit-admin maintain). */
export function createMaintenanceMetrics() {
  const registry = createServiceRegistry('audit_maintainer_');
  const counter = (name: string, help: string) => new Counter({ name: `audit_maintainer_${name}`, help, registers: [registry] });
  const m = {
    registry,
    passes: new Counter({ name: 'audit_maintainer_passes_total', help: 'Maintenance passes, by outcome', labelNames: ['outcome'] as const, registers: [registry] }),
    passSeconds: new Histogram({ name: 'audit_maintainer_pass_seconds', help: 'Duration of a maintenance pass', buckets: [1, 5, 15, 60, 300, 900, 3600], registers: [registry] }),
    lastSuccess: new Gauge({ name: 'audit_maintainer_last_success_timestamp_seconds', help: 'End of the last successful pass (alert when it gets old)', registers: [registry] }),
    daysCompacted: counter('days_compacted_total', 'Day partitions given a new generation'),
    filesMerged: counter('files_merged_total', 'Data files merged into compacted files'),
    rowsWritten: counter('rows_written_total', 'Rows written into compacted files'),
    bytesWritten: counter('bytes_written_total', 'Bytes of compacted files written'),
    duplicatesDropped: counter('duplicates_dropped_total', 'Extra copies of an event id dropped by compaction'),
    racesLost: counter('races_lost_total', 'Day commits another maintainer won'),
    objectsDeleted: counter('objects_deleted_total', 'Objects deleted (superseded, expired, claims)'),
    daysExpired: counter('days_expired_total', 'Day partitions removed by retention'),
    claimsRemoved: counter('claims_removed_total', 'Cut claims removed'),
    lateFilesRemoved: counter('late_files_removed_total', 'Data files stored into a day after retention removed it, removed again by policy'),
    claimsKept: counter('claims_kept_total', 'Unsigned cut claims on a signed store kept and named (counted each pass)'),
    indexesRejected: counter('indexes_rejected_total', 'Per-file indexes and day manifests that failed the trust check (read around, rebuilt)'),
    indexesRebuilt: counter('indexes_rebuilt_total', 'Per-file indexes rebuilt from their data file'),
    untrusted: new Counter({ name: 'audit_maintainer_untrusted_objects_total', help: 'Objects that failed the trust check and stopped the maintainer, by kind and reason', labelNames: ['kind', 'code'] as const, registers: [registry] }),
    halted: new Gauge({ name: 'audit_maintainer_halted', help: '1 once the maintainer stopped on an object that failed the trust check', registers: [registry] }),
    daysLocked: new Gauge({ name: 'audit_maintainer_days_locked', help: 'Days past retention kept because of S3 Object Lock (last pass)', registers: [registry] }),
  };
  return m;
}

export type MaintenanceMetrics = ReturnType<typeof createMaintenanceMetrics>;

export function recordPass(m: MaintenanceMetrics, r: PassReport, seconds: number): void {
  m.passes.inc({ outcome: 'ok' });
  m.passSeconds.observe(seconds);
  m.lastSuccess.set(Date.now() / 1000);
  m.daysCompacted.inc(r.daysCompacted);
  m.filesMerged.inc(r.filesMerged);
  m.rowsWritten.inc(r.rowsWritten);
  m.bytesWritten.inc(r.bytesWritten);
  m.duplicatesDropped.inc(r.duplicatesDropped);
  m.racesLost.inc(r.racesLost);
  m.objectsDeleted.inc(r.objectsDeleted);
  m.daysExpired.inc(r.daysExpired);
  m.claimsRemoved.inc(r.claimsRemoved);
  m.lateFilesRemoved.inc(r.lateFilesRemoved);
  m.claimsKept.inc(r.claimsKept);
  m.indexesRejected.inc(r.indexesRejected);
  m.indexesRebuilt.inc(r.indexesRebuilt);
  m.daysLocked.set(r.daysLocked);
}
