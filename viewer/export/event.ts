import type { HistoryEvent } from '../../query/history';

/** One event as `audit-query --format json` prints it and the viewer's API answers it. */
export type JsonEvent = HistoryEvent;
export type EventField = keyof JsonEvent;

/**
 * Every field, in the order `--format json` prints them. The Record makes the compiler
 * reject this list when the event gains or loses a field, so exports never silently drop one.
 */
const FIELD_ORDER: Readonly<Record<EventField, number>> = {
  event_id: 0, occurred_at: 1, object_type: 2, object_id: 3, action: 4, actor_id: 5, actor_type: 6,
  tenant_id: 7, request_id: 8, trace_id: 9, ip: 10, user_agent: 11, http_method: 12, http_path: 13,
  http_status: 14, changes: 15, before: 16, after: 17, metadata: 18, source_service: 19,
  schema_version: 20, duration_ms: 21, error_type: 22, error_message: 23, error_stack: 24,
};

export const EVENT_FIELDS: readonly EventField[] = (Object.keys(FIELD_ORDER) as EventField[]).sort((a, b) => FIELD_ORDER[a] - FIELD_ORDER[b]);

export function isEventField(name: string): name is EventField {
  return Object.prototype.hasOwnProperty.call(FIELD_ORDER, name);
}

/** A field list naming something that is not a field of an event (a typo in a URL or a token). */
export class UnknownFieldError extends Error {
  constructor(readonly fields: readonly string[]) {
    super(`unknown event field${fields.length > 1 ? 's' : ''}: ${fields.join(', ')} (known: ${EVENT_FIELDS.join(', ')})`);
    this.name = 'UnknownFieldError';
  }
}

/** The fields asked for, checked, in the order given and without repeats; none asked = all. */
export function resolveFields(fields: readonly string[] | undefined): EventField[] {
  if (fields === undefined) return [...EVENT_FIELDS];
  const unknown = fields.filter((f) => !isEventField(f));
  if (unknown.length > 0) throw new UnknownFieldError(unknown);
  return [...new Set(fields as readonly EventField[])];
}
