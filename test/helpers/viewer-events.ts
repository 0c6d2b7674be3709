import type { JsonEvent } from '../../viewer/export/event';

/** An event as `audit-query --format json` prints it, every field present; `over` sets some. */
export function jsonEvent(over: Partial<JsonEvent> = {}): JsonEvent {
  return {
    event_id: '00000000-0000-4000-8000-000000000001',
    occurred_at: '2026-03-01T10:00:00.000000Z',
    object_type: 'invoice',
    object_id: '7',
    action: 'update',
    actor_id: 'user-42',
    actor_type: 'user',
    tenant_id: 'acme',
    request_id: null,
    trace_id: null,
    ip: null,
    user_agent: null,
    http_method: null,
    http_path: null,
    http_status: null,
    changes: null,
    before: null,
    after: null,
    metadata: null,
    source_service: 'billing',
    schema_version: 1,
    duration_ms: null,
    error_type: null,
    error_message: null,
    error_stack: null,
    ...over,
  };
}
