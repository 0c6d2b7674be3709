import type { AuditRecord } from './types';

/**
 * `/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i`, by hand: every event
 * is checked on the app's thread by the producer, and the regular expression took ~0.3 µs.
 */
export function isUuid(s: string): boolean {
  if (s.length !== 36) return false;
  for (let i = 0; i < 36; i++) {
    const c = s.charCodeAt(i);
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (c !== 0x2d) return false;
    } else if (!((c >= 0x30 && c <= 0x39) || ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x66))) {
      return false;
    }
  }
  return true;
}

/**
 * Accepted event times, in microseconds since the epoch, both ends included:
 * 1970-01-01T00:00:00Z to 2200-01-01T00:00:00Z. The producer (`record()`) and the
 * consumer (both its fast path and its general path) check the same range, so an
 * event the producer accepts is never dead-lettered for its time.
 *
 * Why these ends: backfills of old history (records migrated from a legacy system)
 * are legitimate at any date of the computer era, so the floor is the Unix epoch,
 * not "recently". Below it, event times would be negative numbers, which the
 * storage layout and time formatting do not support, and which are far likelier
 * to be a bug (a default 0, a sign error) than an audit trail. The ceiling catches
 * unit mistakes the other way (microseconds passed as milliseconds land in the
 * year 50,000+). Seconds passed as milliseconds (1970-01-21) are NOT caught.
 */
export const MIN_OCCURRED_AT_MICROS = 0;
export const MAX_OCCURRED_AT_MICROS = Date.UTC(2200, 0, 1) * 1000;

export class InvalidRecordError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid audit record: ${problems.join('; ')}`);
    this.name = 'InvalidRecordError';
  }
}

function instant(micros: number): string {
  const ms = micros / 1000;
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : String(micros);
}

/** Semantic checks Avro cannot express. Returns the problems found (empty when valid). */
export function recordProblems(r: AuditRecord): string[] {
  const problems: string[] = [];
  if (!isUuid(r.event_id)) problems.push(`event_id is not a UUID: ${JSON.stringify(r.event_id)}`);
  if (!Number.isSafeInteger(r.occurred_at) || r.occurred_at < MIN_OCCURRED_AT_MICROS || r.occurred_at > MAX_OCCURRED_AT_MICROS) {
    problems.push(
      `occurred_at out of range: ${instant(r.occurred_at)} (accepted: ${instant(MIN_OCCURRED_AT_MICROS)} to ${instant(MAX_OCCURRED_AT_MICROS)})`,
    );
  }
  if (!r.object_type) problems.push('object_type is empty');
  if (!r.object_id) problems.push('object_id is empty');
  if (!r.action) problems.push('action is empty');
  for (const field of ['http_status', 'schema_version'] as const) {
    const v = r[field];
    if (v !== null && (!Number.isInteger(v) || v < -2147483648 || v > 2147483647)) problems.push(`${field} is not a 32-bit integer: ${v}`);
  }
  // A map key "__proto__" decodes (avsc) into a prototype, not an entry: such a record cannot be stored
  // faithfully. Maps built without a prototype (the producer's) hold such a key as an ordinary entry.
  for (const field of ['changes', 'metadata'] as const) {
    const map: unknown = r[field];
    const proto: unknown = typeof map === 'object' && map !== null ? Object.getPrototypeOf(map) : undefined;
    if (proto !== Object.prototype && proto !== null) {
      problems.push(`${field} has a key the decoder cannot represent ("__proto__")`);
    }
  }
  return problems;
}

export function assertValidRecord(r: AuditRecord): void {
  const problems = recordProblems(r);
  if (problems.length > 0) throw new InvalidRecordError(problems);
}
