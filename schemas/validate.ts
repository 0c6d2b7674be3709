import type { AuditRecord } from './types';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// Event time must be a plausible instant: 2000-01-01 .. 2200-01-01, in microseconds.
const MIN_MICROS = Date.UTC(2000, 0, 1) * 1000;
const MAX_MICROS = Date.UTC(2200, 0, 1) * 1000;

export class InvalidRecordError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid audit record: ${problems.join('; ')}`);
    this.name = 'InvalidRecordError';
  }
}

/** Semantic checks Avro cannot express. Returns the problems found (empty when valid). */
export function recordProblems(r: AuditRecord): string[] {
  const problems: string[] = [];
  if (!UUID.test(r.event_id)) problems.push(`event_id is not a UUID: ${JSON.stringify(r.event_id)}`);
  if (!Number.isSafeInteger(r.occurred_at) || r.occurred_at < MIN_MICROS || r.occurred_at > MAX_MICROS) {
    problems.push(`occurred_at out of range: ${r.occurred_at}`);
  }
  if (!r.object_type) problems.push('object_type is empty');
  if (!r.object_id) problems.push('object_id is empty');
  if (!r.action) problems.push('action is empty');
  for (const field of ['http_status', 'schema_version'] as const) {
    const v = r[field];
    if (v !== null && (!Number.isInteger(v) || v < -2147483648 || v > 2147483647)) problems.push(`${field} is not a 32-bit integer: ${v}`);
  }
  // A map key "__proto__" decodes into a prototype, not an entry: such a record cannot be stored faithfully.
  for (const field of ['changes', 'metadata'] as const) {
    const map: unknown = r[field];
    if (typeof map !== 'object' || map === null || Object.getPrototypeOf(map) !== Object.prototype) {
      problems.push(`${field} has a key the decoder cannot represent ("__proto__")`);
    }
  }
  return problems;
}

export function assertValidRecord(r: AuditRecord): void {
  const problems = recordProblems(r);
  if (problems.length > 0) throw new InvalidRecordError(problems);
}
