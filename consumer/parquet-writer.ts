import { open, rm, stat } from 'node:fs/promises';
import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { AuditRecord } from '../schemas';
import type { RowGroupIndex } from '../storage/file-index';

/**
 * A row ready to write: its staging line plus what the sink needs to place it.
 * Records are staged as they arrive, so buffers hold one string per record
 * instead of a decoded object graph (several times smaller, and cheap to collect).
 */
export interface StagedRow {
  partition: number;
  offset: string;
  /** Encoded size on Kafka, for the rotation and memory limits. */
  size: number;
  /** Event time, microseconds UTC. */
  occurredAt: number;
  /** `object_type:object_id`. */
  key: string;
  line: string;
}

/** ZSTD (default) compresses best; SNAPPY is readable by every Parquet reader, even minimal ones. */
export type ParquetCompression = 'zstd' | 'snappy' | 'gzip' | 'uncompressed';

/** A decoded record plus where it came from in Kafka (kept in the file for lineage and ordering). */
export interface StoredRow {
  record: AuditRecord;
  partition: number;
  offset: string;
  /** Encoded size on Kafka, for the rotation and memory limits. */
  size: number;
}

/** A row group's byte range and key statistics, as the per-file index stores them. */
export type RowGroupInfo = RowGroupIndex;

export interface WrittenFile {
  path: string;
  rows: number;
  bytes: number;
  minOccurredAt: number;
  maxOccurredAt: number;
  rowGroups: RowGroupInfo[];
}

/**
 * Column order of the Parquet files. Maps/records are stored as JSON text so
 * that every Parquet reader (including minimal ones) can read them.
 */
export const PARQUET_COLUMNS = `
  event_id VARCHAR, occurred_at TIMESTAMPTZ, object_type VARCHAR, object_id VARCHAR, action VARCHAR,
  actor_id VARCHAR, actor_type VARCHAR, tenant_id VARCHAR, request_id VARCHAR, trace_id VARCHAR,
  ip VARCHAR, user_agent VARCHAR, http_method VARCHAR, http_path VARCHAR, http_status INTEGER,
  changes VARCHAR, before VARCHAR, after VARCHAR, metadata VARCHAR, source_service VARCHAR,
  schema_version INTEGER, duration_ms DOUBLE, error_type VARCHAR, error_message VARCHAR, error_stack VARCHAR,
  kafka_partition INTEGER, kafka_offset BIGINT`;

// JSON texts that are certainly valid and need no re-encoding: numbers, literals, simple strings.
const SIMPLE_JSON = /^(?:-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null|"[^"\\\u0000-\u001f]*")$/;

/** A JSON value for an old/new text: parsed when it is JSON, kept as a string when it is not. */
function jsonValueText(text: string | null): string {
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
  for (const field in changes) {
    const c = changes[field]!;
    out += `${out ? ',' : '{'}${JSON.stringify(field)}:{"old":${jsonValueText(c.old)},"new":${jsonValueText(c.new)}}`;
  }
  return out ? `${out}}` : null;
}

/** The columns and their types, as DuckDB's JSON reader is told to read them. */
const COLUMN_TYPES: [string, string][] = PARQUET_COLUMNS.trim()
  .split(',')
  .map((c) => c.trim().split(/\s+/) as [string, string]);

export function stageRow(row: StoredRow): StagedRow {
  const r = row.record;
  return {
    partition: row.partition,
    offset: row.offset,
    size: row.size,
    occurredAt: r.occurred_at,
    key: `${r.object_type}:${r.object_id}`,
    line: stagingLine(row),
  };
}

/** One staging line: the row as a flat JSON object, event time as epoch microseconds. */
function stagingLine({ record: r, partition, offset }: StoredRow): string {
  return JSON.stringify({
    event_id: r.event_id,
    occurred_at: r.occurred_at,
    object_type: r.object_type,
    object_id: r.object_id,
    action: r.action,
    actor_id: r.actor_id,
    actor_type: r.actor_type,
    tenant_id: r.tenant_id,
    request_id: r.request_id,
    trace_id: r.trace_id,
    ip: r.ip,
    user_agent: r.user_agent,
    http_method: r.http_method,
    http_path: r.http_path,
    http_status: r.http_status,
    changes: changesJson(r.changes),
    before: r.before,
    after: r.after,
    metadata: hasKeys(r.metadata) ? JSON.stringify(r.metadata) : null,
    source_service: r.source_service,
    schema_version: r.schema_version,
    duration_ms: r.duration_ms ?? null,
    error_type: r.error_type ?? null,
    error_message: r.error_message ?? null,
    error_stack: r.error_stack ?? null,
    kafka_partition: partition,
    kafka_offset: offset,
  });
}

function hasKeys(o: Record<string, string>): boolean {
  for (const _ in o) return true;
  return false;
}

/**
 * Writes batches of audit rows as Parquet files with DuckDB. Rows are staged as
 * newline-delimited JSON (one cheap JSON.stringify per row on the event loop),
 * then DuckDB parses, sorts by (object_type, object_id, occurred_at) and writes
 * ZSTD Parquet on its own threads. Per-value appender calls cost about 0.7 µs
 * each (27 per row) on the event loop; staging moves that work to DuckDB.
 */
export class ParquetWriter {
  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly rowGroupRows: number,
    private readonly compression: ParquetCompression,
  ) {}

  static async create(opts: {
    rowGroupRows: number;
    compression?: ParquetCompression;
    threads?: number;
    memoryLimit?: string;
    /** Where DuckDB may spill a large sort instead of failing (default: its own temp dir). */
    spillDir?: string;
  }): Promise<ParquetWriter> {
    const instance = await DuckDBInstance.create(':memory:', {
      threads: String(opts.threads ?? 2),
      memory_limit: opts.memoryLimit ?? '256MB',
      ...(opts.spillDir ? { temp_directory: opts.spillDir } : {}),
      // Never reach out to the network for extensions (air-gapped sites).
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
    });
    return new ParquetWriter(instance, opts.rowGroupRows, opts.compression ?? 'zstd');
  }

  async write(rows: readonly StoredRow[], path: string): Promise<WrittenFile> {
    return this.writeStaged(rows.map(stageRow), path);
  }

  async writeStaged(rows: readonly StagedRow[], path: string): Promise<WrittenFile> {
    if (rows.length === 0) throw new Error('refusing to write an empty Parquet file');
    const staging = `${path}.ndjson`;
    const fh = await open(staging, 'w');
    // A connection per file: partitions write concurrently (a connection runs one query at a time).
    const conn = await this.instance.connect();
    try {
      const lines: string[] = [];
      for (const row of rows) {
        lines.push(row.line);
        if (lines.length === 8192) {
          await fh.write(`${lines.join('\n')}\n`);
          lines.length = 0;
        }
      }
      if (lines.length > 0) await fh.write(`${lines.join('\n')}\n`);
      await fh.close();
      const columns = COLUMN_TYPES.map(([n, t]) => `'${n}': '${t === 'TIMESTAMPTZ' ? 'BIGINT' : t}'`).join(', ');
      const select = COLUMN_TYPES.map(([n, t]) => (t === 'TIMESTAMPTZ' ? `make_timestamptz(${n}) AS ${n}` : n)).join(', ');
      await conn.run(
        `COPY (SELECT ${select} FROM read_ndjson(${sqlString(staging)}, columns = {${columns}})
               ORDER BY object_type, object_id, occurred_at, kafka_partition, kafka_offset)
         TO ${sqlString(path)} (FORMAT parquet, COMPRESSION ${this.compression}, ROW_GROUP_SIZE ${this.rowGroupRows})`,
      );
      return await this.describe(conn, path, rows);
    } finally {
      conn.closeSync();
      await fh.close().catch(() => undefined);
      await rm(staging, { force: true });
    }
  }

  /** Row-group byte ranges and key statistics, for the per-file index the query side prunes with. */
  private async describe(conn: DuckDBConnection, path: string, rows: readonly StagedRow[]): Promise<WrittenFile> {
    const reader = await conn.runAndReadAll(
      `SELECT row_group_id,
              any_value(row_group_num_rows) AS rows,
              min(coalesce(dictionary_page_offset, data_page_offset)) AS start,
              max(coalesce(dictionary_page_offset, data_page_offset) + total_compressed_size) AS stop,
              max(CASE WHEN path_in_schema = 'object_type' THEN stats_min_value END) AS type_min,
              max(CASE WHEN path_in_schema = 'object_type' THEN stats_max_value END) AS type_max,
              max(CASE WHEN path_in_schema = 'object_id' THEN stats_min_value END) AS id_min,
              max(CASE WHEN path_in_schema = 'object_id' THEN stats_max_value END) AS id_max
       FROM parquet_metadata(${sqlString(path)}) GROUP BY row_group_id ORDER BY row_group_id`,
    );
    const rowGroups: RowGroupInfo[] = reader.getRowObjects().map((g) => {
      const start = Number(g.start as bigint);
      return {
        offset: start,
        length: Number(g.stop as bigint) - start,
        rows: Number(g.rows as bigint),
        typeMin: nullableString(g.type_min),
        typeMax: nullableString(g.type_max),
        idMin: nullableString(g.id_min),
        idMax: nullableString(g.id_max),
      };
    });
    let minT = Infinity;
    let maxT = -Infinity;
    for (const { occurredAt } of rows) {
      if (occurredAt < minT) minT = occurredAt;
      if (occurredAt > maxT) maxT = occurredAt;
    }
    return { path, rows: rows.length, bytes: (await stat(path)).size, minOccurredAt: minT, maxOccurredAt: maxT, rowGroups };
  }

  close(): void {
    this.instance.closeSync();
  }
}


function nullableString(v: unknown): string | null {
  return v === null || v === undefined ? null : String(v);
}

function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}
