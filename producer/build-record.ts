import { randomUUID } from 'node:crypto';
import { CURRENT_SCHEMA_ID, objectKey, recordProblems, type AuditAction, type AuditRecord, type FieldChange } from '../schemas';
import type { AuditContext } from './context';
import { AuditInputError } from './errors';
import { type FieldMatcher, MASK, maskedJson } from './mask';

/** What an app passes to `audit.record()`. Only `objectType`, `objectId` and `action` are required. */
export interface AuditEventInput {
  objectType: string;
  objectId: string | number | bigint;
  action: AuditAction;
  /** Event time (default: now). Date, epoch milliseconds or an ISO-8601 string. */
  occurredAt?: Date | number | string;
  eventId?: string;
  actorId?: string | number | null;
  actorType?: string | null;
  tenantId?: string | number | null;
  requestId?: string | null;
  traceId?: string | null;
  ip?: string | null;
  userAgent?: string | null;
  httpMethod?: string | null;
  httpPath?: string | null;
  httpStatus?: number | null;
  /** Field-level changes; values are any JSON-serializable data. */
  changes?: Record<string, { old: unknown; new: unknown }>;
  before?: unknown;
  after?: unknown;
  metadata?: Record<string, string | number | boolean | null | undefined>;
  durationMs?: number | null;
  error?: Error | { type?: string; message: string; stack?: string } | null;
}

export interface BuildOptions {
  sourceService: string | null;
  isSensitive: FieldMatcher;
}

function str(v: string | number | bigint | null | undefined): string | null {
  return v === null || v === undefined ? null : String(v);
}

function micros(at: AuditEventInput['occurredAt']): number {
  if (at === undefined) return Date.now() * 1000;
  const ms = at instanceof Date ? at.getTime() : typeof at === 'number' ? at : Date.parse(at);
  if (!Number.isFinite(ms)) throw new AuditInputError(`occurredAt is not a valid time: ${String(at)}`);
  return Math.round(ms * 1000);
}

/** JSON text of any value: BigInt as string, Dates as ISO, circular references cut. */
export function toJson(value: unknown): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(value, (_k, v: unknown) => {
    if (typeof v === 'bigint') return v.toString();
    if (v !== null && typeof v === 'object') {
      if (seen.has(v)) return '[Circular]';
      seen.add(v);
    }
    return v;
  }) ?? 'null';
}

/**
 * Builds the wire record: input over context over defaults, sensitive data masked.
 * Throws `AuditInputError` for what the consumer would dead-letter (the checks of
 * schemas/validate.ts: event time out of range, an event id that is not a UUID...).
 * `changes` and `metadata` have no prototype, so a key named `__proto__` is kept as
 * an entry (on a plain object, assigning it would replace the prototype instead).
 */
export function buildRecord(input: AuditEventInput, ctx: AuditContext | undefined, opts: BuildOptions): AuditRecord {
  if (!input || typeof input !== 'object') throw new AuditInputError('audit event must be an object');
  if (!input.objectType) throw new AuditInputError('audit event needs objectType');
  if (input.objectId === undefined || input.objectId === null || input.objectId === '') {
    throw new AuditInputError('audit event needs objectId');
  }
  if (!input.action) throw new AuditInputError('audit event needs action');

  const changes = Object.create(null) as Record<string, FieldChange>;
  for (const [field, change] of Object.entries(input.changes ?? {})) {
    changes[field] = opts.isSensitive(field)
      ? { old: JSON.stringify(MASK), new: JSON.stringify(MASK) }
      : {
          old: change.old === undefined ? null : maskedJson(change.old, opts.isSensitive),
          new: change.new === undefined ? null : maskedJson(change.new, opts.isSensitive),
        };
  }
  const metadata = Object.assign(Object.create(null) as Record<string, string>, ctx?.metadata);
  for (const [k, v] of Object.entries(input.metadata ?? {})) {
    if (v !== undefined && v !== null) metadata[k] = opts.isSensitive(k) ? MASK : String(v);
  }
  const err = input.error ?? null;
  const pick = <K extends keyof AuditContext>(own: string | number | null | undefined, key: K) =>
    own !== undefined ? str(own) : str((ctx?.[key] as string | null | undefined) ?? null);

  const record: AuditRecord = {
    event_id: input.eventId ?? randomUUID(),
    occurred_at: micros(input.occurredAt),
    object_type: String(input.objectType),
    object_id: String(input.objectId),
    action: input.action,
    actor_id: pick(input.actorId, 'actorId'),
    actor_type: pick(input.actorType, 'actorType'),
    tenant_id: pick(input.tenantId, 'tenantId'),
    request_id: pick(input.requestId, 'requestId'),
    trace_id: pick(input.traceId, 'traceId'),
    ip: pick(input.ip, 'ip'),
    user_agent: pick(input.userAgent, 'userAgent'),
    http_method: pick(input.httpMethod, 'httpMethod'),
    http_path: pick(input.httpPath, 'httpPath'),
    http_status: input.httpStatus ?? null,
    changes,
    before: input.before === undefined || input.before === null ? null : maskedJson(input.before, opts.isSensitive),
    after: input.after === undefined || input.after === null ? null : maskedJson(input.after, opts.isSensitive),
    metadata,
    source_service: opts.sourceService,
    schema_version: CURRENT_SCHEMA_ID,
    duration_ms: input.durationMs ?? null,
    error_type: err ? ((err as Error).name ?? (err as { type?: string }).type ?? 'Error') : null,
    error_message: err ? err.message : null,
    error_stack: err ? (err.stack ?? null) : null,
  };
  const problems = recordProblems(record);
  if (problems.length > 0) {
    const object = objectKey(record);
    throw new AuditInputError(`invalid audit event ${object}: ${problems.join('; ')}`, problems, object);
  }
  return record;
}
