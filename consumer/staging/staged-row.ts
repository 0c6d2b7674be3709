import type { AuditRecord } from '../../schemas';
import { COLUMN_TYPES } from '../../storage/columns';

export { COLUMN_TYPES };

/**
 * The key each column has in a staging line: one character (its position in
 * base 36). Full column names made up about half of every line's bytes, which
 * both the transcoder and DuckDB's JSON reader paid for.
 */
export const STAGING_KEYS: ReadonlyMap<string, string> = new Map(COLUMN_TYPES.map(([name], i) => [name, i.toString(36)]));

/** `"<key>":` for a column. */
export function stagingKeyPrefix(column: string): string {
  const key = STAGING_KEYS.get(column);
  if (key === undefined) throw new Error(`no staging column ${column}`);
  return `"${key}":`;
}

/**
 * A row ready to write: its staging line (one NDJSON object, newline included)
 * plus what the sink needs to place and order it. The line is the bytes
 * `chunk[start, end)`, not a Buffer of its own: a Buffer view per record cost
 * about 0.4 µs to make plus its garbage (0.5 s of CPU per million records).
 */
export interface StagedRow {
  partition: number;
  offset: string;
  /** Encoded size on Kafka, for the rotation and memory limits. */
  size: number;
  /** Event time, microseconds UTC. */
  occurredAt: number;
  objectType: string;
  objectId: string;
  chunk: Buffer;
  start: number;
  end: number;
}

/**
 * What a buffered row costs in memory, as the memory bound counts it: its staging
 * line plus an estimate of its heap bookkeeping (the row object, its offset and
 * object id strings, its array slot). Lines run about 1.7x the Avro bytes, so
 * counting Kafka's bytes understated memory about twofold.
 */
export function heldBytes(row: StagedRow): number {
  return row.end - row.start + ROW_HEAP_BYTES;
}

const ROW_HEAP_BYTES = 160;

/** The row's staging line as a Buffer view (tests and diagnostics; the writer copies from the chunk). */
export function stagedLine(row: StagedRow): Buffer {
  return row.chunk.subarray(row.start, row.end);
}

/** A decoded record plus where it came from in Kafka (kept in the file for lineage and ordering). */
export interface StoredRow {
  record: AuditRecord;
  partition: number;
  offset: string;
  /** Encoded size on Kafka, for the rotation and memory limits. */
  size: number;
}

/** JSON texts that are certainly valid and need no re-encoding: numbers, literals, simple strings. */
export const SIMPLE_JSON = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null|"[^"\\\u0000-\u001f]*")$/;

/** A JSON value for an old/new text: parsed when it is JSON, kept as a string when it is not. */
export function jsonValueText(text: string | null): string {
  if (text === null) return 'null';
  if (SIMPLE_JSON.test(text)) return text;
  try {
    return JSON.stringify(JSON.parse(text));
  } catch {
    return JSON.stringify(text);
  }
}

/** `changes` as readable JSON: {"field": {"old": <value>, "new": <value>}}. */
export function changesJson(changes: AuditRecord['changes']): string | null {
  let out = '';
  for (const field of Object.keys(changes)) {
    const c = changes[field]!;
    out += `${out ? ',' : '{'}${JSON.stringify(field)}:{"old":${jsonValueText(c.old)},"new":${jsonValueText(c.new)}}`;
  }
  return out ? `${out}}` : null;
}

function hasKeys(o: Record<string, string>): boolean {
  return Object.keys(o).length > 0;
}

/**
 * Stages a decoded record (the general path; `AvroStagingTranscoder` is the fast
 * one for well-formed records and must produce the same row).
 */
export function stageRow(row: StoredRow): StagedRow {
  const r = row.record;
  const line = Buffer.from(`${stagingLine(row)}\n`, 'utf8');
  return {
    partition: row.partition,
    offset: row.offset,
    size: row.size,
    occurredAt: r.occurred_at,
    objectType: r.object_type,
    objectId: r.object_id,
    chunk: line,
    start: 0,
    end: line.length,
  };
}

/** One staging line: the row as a flat JSON object keyed by `STAGING_KEYS`, event time as epoch microseconds. */
function stagingLine({ record: r, partition, offset }: StoredRow): string {
  const values: unknown[] = [
    r.event_id,
    r.occurred_at,
    r.object_type,
    r.object_id,
    r.action,
    r.actor_id,
    r.actor_type,
    r.tenant_id,
    r.request_id,
    r.trace_id,
    r.ip,
    r.user_agent,
    r.http_method,
    r.http_path,
    r.http_status,
    changesJson(r.changes),
    r.before,
    r.after,
    hasKeys(r.metadata) ? JSON.stringify(r.metadata) : null,
    r.source_service,
    r.schema_version,
    r.duration_ms ?? null,
    r.error_type ?? null,
    r.error_message ?? null,
    r.error_stack ?? null,
    partition,
    Number(offset),
  ];
  let line = '';
  for (let i = 0; i < values.length; i++) {
    line += `${i === 0 ? '{' : ','}"${i.toString(36)}":${JSON.stringify(values[i] ?? null)}`;
  }
  return `${line}}`;
}

/**
 * Compares strings by code point, which is UTF-8 byte order: the order of
 * DuckDB's VARCHAR comparison and of Parquet statistics. `<` compares UTF-16
 * code units, which disagrees when a character above U+FFFF meets one in
 * U+E000..U+FFFF.
 */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        // Surrogates (D800..DFFF) stand for code points above every BMP character.
        x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
        y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
      }
      return x < y ? -1 : 1;
    }
  }
  return a.length - b.length;
}

function compareOffsets(a: string, b: string): number {
  return a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0;
}

/** The order rows take inside a file: (object_type, object_id, occurred_at, partition, offset). */
export function compareStaged(a: StagedRow, b: StagedRow): number {
  return (
    compareCodePoints(a.objectType, b.objectType) ||
    compareCodePoints(a.objectId, b.objectId) ||
    a.occurredAt - b.occurredAt ||
    a.partition - b.partition ||
    compareOffsets(a.offset, b.offset)
  );
}
