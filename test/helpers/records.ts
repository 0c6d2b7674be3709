import { randomUUID } from 'node:crypto';
import { CURRENT_SCHEMA_ID, type AuditRecord } from '../../schemas';

/** A valid record with every optional field empty. */
export function sampleRecord(overrides: Partial<AuditRecord> = {}): AuditRecord {
  return {
    event_id: randomUUID(),
    occurred_at: Date.UTC(2026, 0, 15, 12) * 1000,
    object_type: 'invoice',
    object_id: '42',
    action: 'update',
    actor_id: null,
    actor_type: null,
    tenant_id: null,
    request_id: null,
    trace_id: null,
    ip: null,
    user_agent: null,
    http_method: null,
    http_path: null,
    http_status: null,
    changes: {},
    before: null,
    after: null,
    metadata: {},
    source_service: null,
    schema_version: CURRENT_SCHEMA_ID,
    duration_ms: null,
    error_type: null,
    error_message: null,
    error_stack: null,
    ...overrides,
  };
}
