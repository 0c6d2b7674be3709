import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { DuckDBConnection, DuckDBInstance, DuckDBValue } from '@duckdb/node-api';
import type { ObjectRef, TimeRange } from './locate';
import { sqlString } from '../storage/sql';
import { RECORD_FIELDS, type RecordField } from '../schemas/fields';

// Kept for callers that still import the quoting from here.

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

export async function openDuckDb(): Promise<{ instance: DuckDBInstance; conn: DuckDBConnection }> {
  // Loaded on first use: a lookup answered from the local result cache never needs it.
  const { DuckDBInstance } = await import('@duckdb/node-api');
  const instance = await DuckDBInstance.create(':memory:', {
    // Offline by design: no extension is ever downloaded or auto-loaded.
    autoinstall_known_extensions: 'false',
    autoload_known_extensions: 'false',
    // Cached data files can be sparse and gain byte ranges between two reads of
    // the same path: never serve bytes from an in-process copy (the OS page cache
    // serves local files as fast), and never read ahead of what a scan needs.
    enable_external_file_cache: 'false',
    // Spill files go to the system's temp folder, never into the caller's working directory.
    temp_directory: join(tmpdir(), `audit-query-duckdb-${process.pid}`),
  });
  const conn = await instance.connect();
  // Parquet settings exist once the (built-in) extension is loaded, not at creation.
  await conn.run('SET parquet_metadata_cache = false; SET disable_parquet_prefetching = true;');
  return { instance, conn };
}

/** `read_parquet` over local files (paths are our cache's, never user input). */
export function parquetSource(paths: readonly string[]): string {
  return `read_parquet([${paths.map(sqlString).join(', ')}], union_by_name = true)`;
}

/**
 * A local Parquet file to read: whole, or only the row groups covering these
 * inclusive `file_row_number` runs (DuckDB then never touches another row group).
 */
export interface ScanSource {
  path: string;
  rowRuns: readonly (readonly [first: number, last: number])[] | null;
}

function scans(sources: readonly (string | ScanSource)[], where: string): string[] {
  const out: string[] = [];
  const whole: string[] = [];
  for (const src of sources) {
    if (typeof src === 'string' || src.rowRuns === null) {
      whole.push(typeof src === 'string' ? src : src.path);
      continue;
    }
    for (const [first, last] of src.rowRuns) {
      if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last)) throw new Error('bad row run');
      // One range per scan: DuckDB prunes row groups on it (it does not on an OR of ranges).
      out.push(
        `SELECT * EXCLUDE (file_row_number) FROM read_parquet(${sqlString(src.path)}, file_row_number = true)
         WHERE ${where ? `${where} AND ` : ''}file_row_number BETWEEN ${first} AND ${last}`,
      );
    }
  }
  if (whole.length > 0) out.unshift(`SELECT * FROM ${parquetSource(whole)}${where ? ` WHERE ${where}` : ''}`);
  return out;
}

/**
 * Reads the events matching the filter from local Parquet files, oldest first.
 * User input only ever reaches DuckDB as bound parameters. A record stored twice
 * (a producer retry that Kafka accepted twice) is returned once, by event_id.
 */
export async function readHistory(conn: DuckDBConnection, sources: readonly (string | ScanSource)[], filter: HistoryFilter): Promise<HistoryEvent[]> {
  if (sources.length === 0) return [];
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
  const parts = scans(sources, where.join(' AND '));
  if (parts.length === 0) return [];
  const sql = `
    SELECT * EXCLUDE (dup), epoch_us(occurred_at) AS occurred_us FROM (
      SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY kafka_partition, kafka_offset) AS dup
      FROM (${parts.join('\n      UNION ALL BY NAME\n')})
    ) WHERE dup = 1
    ORDER BY occurred_at, kafka_partition, kafka_offset`;
  const reader = await conn.runAndReadAll(sql, params);
  return reader.getRowObjects().map(toEvent);
}

/** A stored column's value as the event carries it, by the field's Avro type. */
function eventValue(f: RecordField, r: Record<string, DuckDBValue>): unknown {
  const v = r[f.name];
  // The query selects event time as epoch microseconds too: DuckDB's timestamp values stop at milliseconds in JS.
  if (f.name === 'occurred_at') return isoMicros(r.occurred_us as bigint);
  if (f.json) return parseJson(v);
  if (f.nullable && (v === null || v === undefined)) return null;
  return f.type === 'string' || f.type === 'uuid' ? String(v) : Number(v);
}

/** A stored row as an event: its fields in schema order, which is the order of `--format json` output. */
export function toEvent(r: Record<string, DuckDBValue>): HistoryEvent {
  const e: Record<string, unknown> = {};
  for (const f of RECORD_FIELDS) e[f.name] = eventValue(f, r);
  return e as unknown as HistoryEvent;
}

/** An event with what orders and deduplicates it (Kafka position, event time in µs). */
export interface ObjectRow {
  event: HistoryEvent;
  partition: number;
  offset: string;
  occurredUs: string;
}

/**
 * Every stored row of one object in the given files, unfiltered by time,
 * actor or action (so that they can be cached per file and filtered later),
 * grouped by source index. The object reaches DuckDB only as bound parameters.
 */
export async function readObjectRows(conn: DuckDBConnection, sources: readonly ScanSource[], object: ObjectRef): Promise<ObjectRow[][]> {
  const out: ObjectRow[][] = sources.map(() => []);
  const parts: string[] = [];
  sources.forEach((src, i) => {
    for (const part of scans([src], 'object_type = $type AND object_id = $id')) parts.push(`SELECT ${i} AS src__, * FROM (${part})`);
  });
  if (parts.length === 0) return out;
  const reader = await conn.runAndReadAll(
    `SELECT *, epoch_us(occurred_at) AS occurred_us FROM (${parts.join('\n UNION ALL BY NAME\n')})`,
    { type: object.type, id: object.id },
  );
  for (const r of reader.getRowObjects()) {
    out[Number(r.src__)]!.push({
      event: toEvent(r),
      partition: Number(r.kafka_partition),
      offset: String(r.kafka_offset),
      occurredUs: String(r.occurred_us),
    });
  }
  return out;
}

function cmpBig(a: string, b: string): number {
  const x = BigInt(a);
  const y = BigInt(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * What readHistory's SQL does, over rows already read: the filter, one row per
 * event_id (the first stored, by Kafka position), oldest first.
 */
export function finishHistory(rows: readonly ObjectRow[], filter: Pick<HistoryFilter, 'range' | 'actor' | 'action'>): HistoryEvent[] {
  const since = filter.range.since === null ? null : BigInt(filter.range.since);
  const until = filter.range.until === null ? null : BigInt(filter.range.until);
  const byPosition = (a: ObjectRow, b: ObjectRow) => a.partition - b.partition || cmpBig(a.offset, b.offset);
  const first = new Map<string, ObjectRow>();
  for (const row of rows) {
    const us = BigInt(row.occurredUs);
    if (since !== null && us < since) continue;
    if (until !== null && us > until) continue;
    if (filter.actor !== null && row.event.actor_id !== filter.actor) continue;
    if (filter.action !== null && row.event.action !== filter.action) continue;
    const seen = first.get(row.event.event_id);
    if (!seen || byPosition(row, seen) < 0) first.set(row.event.event_id, row);
  }
  return [...first.values()].sort((a, b) => cmpBig(a.occurredUs, b.occurredUs) || byPosition(a, b)).map((r) => r.event);
}
