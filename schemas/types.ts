/**
 * TypeScript shape of one audit record, as it travels on Kafka (Avro) and as it
 * is stored (Parquet). Field names are snake_case because they are the contract
 * shared with non-JS readers (Spark, Athena, pyarrow).
 */

/** Well-known actions; any other non-empty string is accepted too. */
export type KnownAction =
  | 'create'
  | 'update'
  | 'delete'
  | 'read'
  | 'login'
  | 'logout'
  | 'login_failed'
  | 'request'
  | 'custom'
  | 'process_step';

// `string & {}` keeps editor completion for the known names while allowing any string.
export type AuditAction = KnownAction | (string & {});

/** One field's change: JSON text of the old and new value (null when absent). */
export interface FieldChange {
  old: string | null;
  new: string | null;
}

export interface AuditRecord {
  event_id: string;
  /** Microseconds since the Unix epoch, UTC. */
  occurred_at: number;
  object_type: string;
  object_id: string;
  action: AuditAction;
  actor_id: string | null;
  actor_type: string | null;
  tenant_id: string | null;
  request_id: string | null;
  trace_id: string | null;
  ip: string | null;
  user_agent: string | null;
  http_method: string | null;
  http_path: string | null;
  http_status: number | null;
  changes: Record<string, FieldChange>;
  /** JSON text of the object before the change. */
  before: string | null;
  /** JSON text of the object after the change. */
  after: string | null;
  metadata: Record<string, string>;
  source_service: string | null;
  schema_version: number;
  /** v2: duration of the audited request or step, in milliseconds. */
  duration_ms: number | null;
  /** v2: error trace of a failed request or step. */
  error_type: string | null;
  error_message: string | null;
  error_stack: string | null;
}

/** Kafka message key: one object's events share it, so they stay ordered in one partition. */
export function objectKey(record: Pick<AuditRecord, 'object_type' | 'object_id'>): string {
  return `${record.object_type}:${record.object_id}`;
}
