import { DuckDBInstance, type DuckDBConnection, type DuckDBValue } from '@duckdb/node-api';
import type { ObjectRef, TimeRange } from './locate';

/** One event as the query side returns it. JSON columns are parsed. */
export interface HistoryEvent {
  event_id: string;
  occurred_at: string;
  object_type: string;
  object_id: string;
  action: string;
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
  changes: Record<string, { old: unknown; new: unknown }> | null;
  before: unknown;
  after: unknown;
  metadata: Record<string, string> | null;
  source_service: string | null;
  schema_version: number;
  duration_ms: number | null;
  error_type: string | null;
  error_message: string | null;
  error_stack: string | null;
}

export interface HistoryFilter {
  object: ObjectRef | null;
  range: TimeRange;
  actor: string | null;
  action: string | null;
}

/** ISO-8601 with microseconds, UTC. */
export function isoMicros(us: bigint): string {
  const ms = us / 1000n;
  const rest = Number(us - ms * 1000n);
  const base = new Date(Number(ms)).toISOString(); // ...sss Z
  return `${base.slice(0, 23)}${String(rest).padStart(3, '0')}Z`;
}

function parseJson(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  try {
    return JSON.parse(String(v));
  } catch {
    return v;
  }
}

export function sqlStringLiteral(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}

export async function openDuckDb(): Promise<{ instance: DuckDBInstance; conn: DuckDBConnection }> {
  const instance = await DuckDBInstance.create(':memory:', {
    // Offline by design: no extension is ever downloaded or auto-loaded.
    autoinstall_known_extensions: 'false',
    autoload_known_extensions: 'false',
  });
  return { instance, conn: await instance.connect() };
}

/** `read_parquet` over local files (paths are our cache's, never user input). */
export function parquetSource(paths: readonly string[]): string {
  return `read_parquet([${paths.map(sqlStringLiteral).join(', ')}], union_by_name = true)`;
}

/**
 * Reads the events matching the filter from local Parquet files, oldest first.
 * User input only ever reaches DuckDB as bound parameters. A record stored twice
 * (a producer retry that Kafka accepted twice) is returned once, by event_id.
 */
export async function readHistory(conn: DuckDBConnection, paths: readonly string[], filter: HistoryFilter): Promise<HistoryEvent[]> {
  if (paths.length === 0) return [];
  const where: string[] = [];
  const params: Record<string, DuckDBValue> = {};
  if (filter.object) {
    where.push('object_type = $type', 'object_id = $id');
    params.type = filter.object.type;
    params.id = filter.object.id;
  }
  if (filter.range.since !== null) {
    where.push('epoch_us(occurred_at) >= $since');
    params.since = BigInt(filter.range.since);
  }
  if (filter.range.until !== null) {
    where.push('epoch_us(occurred_at) <= $until');
    params.until = BigInt(filter.range.until);
  }
  if (filter.actor !== null) {
    where.push('actor_id = $actor');
    params.actor = filter.actor;
  }
  if (filter.action !== null) {
    where.push('action = $action');
    params.action = filter.action;
  }
  const sql = `
    SELECT * EXCLUDE (dup), epoch_us(occurred_at) AS occurred_us FROM (
      SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY kafka_partition, kafka_offset) AS dup
      FROM ${parquetSource(paths)}
      ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
    ) WHERE dup = 1
    ORDER BY occurred_at, kafka_partition, kafka_offset`;
  const reader = await conn.runAndReadAll(sql, params);
  return reader.getRowObjects().map((r) => ({
    event_id: String(r.event_id),
    occurred_at: isoMicros(r.occurred_us as bigint),
    object_type: String(r.object_type),
    object_id: String(r.object_id),
    action: String(r.action),
    actor_id: (r.actor_id as string | null) ?? null,
    actor_type: (r.actor_type as string | null) ?? null,
    tenant_id: (r.tenant_id as string | null) ?? null,
    request_id: (r.request_id as string | null) ?? null,
    trace_id: (r.trace_id as string | null) ?? null,
    ip: (r.ip as string | null) ?? null,
    user_agent: (r.user_agent as string | null) ?? null,
    http_method: (r.http_method as string | null) ?? null,
    http_path: (r.http_path as string | null) ?? null,
    http_status: r.http_status === null || r.http_status === undefined ? null : Number(r.http_status),
    changes: parseJson(r.changes) as HistoryEvent['changes'],
    before: parseJson(r.before),
    after: parseJson(r.after),
    metadata: parseJson(r.metadata) as HistoryEvent['metadata'],
    source_service: (r.source_service as string | null) ?? null,
    schema_version: Number(r.schema_version),
    duration_ms: r.duration_ms === null || r.duration_ms === undefined ? null : Number(r.duration_ms),
    error_type: (r.error_type as string | null) ?? null,
    error_message: (r.error_message as string | null) ?? null,
    error_stack: (r.error_stack as string | null) ?? null,
  }));
}
