import { CURRENT_SCHEMA_ID, type AuditRecord } from '../../schemas';

/** A record of one of 500 invoices on a day, numbered `n` (bench/index-trust-cost.ts). */
export function sampleRecordFor(dt: string, n: number): AuditRecord {
  return {
    event_id: `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`,
    occurred_at: Date.parse(`${dt}T00:00:00Z`) * 1000 + (n % 86_400) * 1_000_000,
    object_type: 'invoice',
    object_id: `inv-${n % 500}`,
    action: 'update',
    actor_id: `actor-${n % 13}`,
    actor_type: 'user',
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
    after: JSON.stringify({ n }),
    metadata: {},
    source_service: 'bench',
    schema_version: CURRENT_SCHEMA_ID,
    duration_ms: null,
    error_type: null,
    error_message: null,
    error_stack: null,
  };
}
