import { Counter, Gauge } from 'prom-client';
import { createServiceRegistry } from '../ops/metrics-registry';

/** Prometheus metrics of audit-cdc, on a registry of its own (tests run several services in one process). */
export function createCdcMetrics(sources: { slotLagBytes: () => Promise<number | null>; lagSeconds: () => number; buffered: () => number }) {
  const registry = createServiceRegistry('audit_cdc_');
  return {
    registry,
    transactions: new Counter({ name: 'audit_cdc_transactions_total', help: 'Committed transactions decoded', registers: [registry] }),
    changes: new Counter({ name: 'audit_cdc_changes_total', help: 'Row changes and truncates turned into audit events', registers: [registry] }),
    skipped: new Counter({ name: 'audit_cdc_skipped_changes_total', help: 'Row changes of tables mapped as skipped', registers: [registry] }),
    delivered: new Counter({ name: 'audit_cdc_events_delivered_total', help: 'Audit events acknowledged by Kafka', registers: [registry] }),
    invalid: new Counter({ name: 'audit_cdc_events_invalid_total', help: 'Changes that could not be made into a record (logged)', registers: [registry] }),
    confirmedLsn: new Gauge({ name: 'audit_cdc_confirmed_lsn_bytes', help: 'WAL position confirmed to PostgreSQL (everything before it is in Kafka)', registers: [registry] }),
    slotLagBytes: new Gauge({
      name: 'audit_cdc_slot_lag_bytes',
      help: 'WAL bytes the replication slot holds back: server position minus confirmed position',
      registers: [registry],
      async collect() {
        const v = await sources.slotLagBytes();
        if (v !== null) this.set(v);
      },
    }),
    lagSeconds: new Gauge({
      name: 'audit_cdc_lag_seconds',
      help: 'Age of the oldest committed transaction read but not yet confirmed (0 when caught up)',
      registers: [registry],
      collect() {
        this.set(sources.lagSeconds());
      },
    }),
    buffered: new Gauge({
      name: 'audit_cdc_buffered_events',
      help: 'Events waiting for Kafka',
      registers: [registry],
      collect() {
        this.set(sources.buffered());
      },
    }),
    paused: new Gauge({ name: 'audit_cdc_reading_paused', help: '1 while reading is paused because Kafka is behind', registers: [registry] }),
  };
}

export type CdcMetrics = ReturnType<typeof createCdcMetrics>;
