import { stat } from 'node:fs/promises';
import { DuckDBConnection, DuckDBInstance, DuckDBTimestampTZValue } from '@duckdb/node-api';
import type { AuditRecord } from '../schemas';

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

export interface RowGroupInfo {
  /** Byte range of the row group's column chunks in the file. */
  offset: number;
  length: number;
  rows: number;
  /** Parquet min/max statistics of object_type and object_id (null when the writer kept none). */
  typeMin: string | null;
  typeMax: string | null;
  idMin: string | null;
  idMax: string | null;
}

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

function jsonOrText(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** `changes` as readable JSON: {"field": {"old": <value>, "new": <value>}}. */
export function changesJson(changes: AuditRecord['changes']): string | null {
  const fields = Object.keys(changes);
  if (fields.length === 0) return null;
  const out: Record<string, { old: unknown; new: unknown }> = {};
  for (const f of fields) out[f] = { old: jsonOrText(changes[f]!.old), new: jsonOrText(changes[f]!.new) };
  return JSON.stringify(out);
}

/**
 * Writes batches of audit rows as Parquet files with DuckDB: rows are appended
 * to a scratch table, then COPY'd sorted by (object_type, object_id,
 * occurred_at) with ZSTD. DuckDB runs the COPY on its own threads, off the
 * event loop.
 */
export class ParquetWriter {
  private seq = 0;

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly conn: DuckDBConnection,
    private readonly rowGroupRows: number,
    private readonly compression: ParquetCompression,
  ) {}

  static async create(opts: {
    rowGroupRows: number;
    compression?: ParquetCompression;
    threads?: number;
    memoryLimit?: string;
  }): Promise<ParquetWriter> {
    const instance = await DuckDBInstance.create(':memory:', {
      threads: String(opts.threads ?? 2),
      memory_limit: opts.memoryLimit ?? '256MB',
      // Never reach out to the network for extensions (air-gapped sites).
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
    });
    const conn = await instance.connect();
    return new ParquetWriter(instance, conn, opts.rowGroupRows, opts.compression ?? 'zstd');
  }

  async write(rows: readonly StoredRow[], path: string): Promise<WrittenFile> {
    if (rows.length === 0) throw new Error('refusing to write an empty Parquet file');
    const table = `rows_${++this.seq}`;
    await this.conn.run(`CREATE TABLE ${table} (${PARQUET_COLUMNS})`);
    try {
      const app = await this.conn.createAppender(table);
      for (const { record: r, partition, offset } of rows) {
        app.appendVarchar(r.event_id);
        app.appendTimestampTZ(new DuckDBTimestampTZValue(BigInt(r.occurred_at)));
        app.appendVarchar(r.object_type);
        app.appendVarchar(r.object_id);
        app.appendVarchar(r.action);
        str(app, r.actor_id);
        str(app, r.actor_type);
        str(app, r.tenant_id);
        str(app, r.request_id);
        str(app, r.trace_id);
        str(app, r.ip);
        str(app, r.user_agent);
        str(app, r.http_method);
        str(app, r.http_path);
        if (r.http_status === null) app.appendNull();
        else app.appendInteger(r.http_status);
        str(app, changesJson(r.changes));
        str(app, r.before);
        str(app, r.after);
        str(app, Object.keys(r.metadata).length > 0 ? JSON.stringify(r.metadata) : null);
        str(app, r.source_service);
        app.appendInteger(r.schema_version);
        if (r.duration_ms === null || r.duration_ms === undefined) app.appendNull();
        else app.appendDouble(r.duration_ms);
        str(app, r.error_type ?? null);
        str(app, r.error_message ?? null);
        str(app, r.error_stack ?? null);
        app.appendInteger(partition);
        app.appendBigInt(BigInt(offset));
        app.endRow();
      }
      app.closeSync();
      const quoted = path.replace(/'/g, "''");
      await this.conn.run(
        `COPY (SELECT * FROM ${table} ORDER BY object_type, object_id, occurred_at, kafka_partition, kafka_offset)
         TO '${quoted}' (FORMAT parquet, COMPRESSION ${this.compression}, ROW_GROUP_SIZE ${this.rowGroupRows})`,
      );
      return await this.describe(path, rows);
    } finally {
      await this.conn.run(`DROP TABLE IF EXISTS ${table}`);
    }
  }

  /** Row-group byte ranges and key statistics, for the per-file index the query side prunes with. */
  private async describe(path: string, rows: readonly StoredRow[]): Promise<WrittenFile> {
    const quoted = path.replace(/'/g, "''");
    const reader = await this.conn.runAndReadAll(
      `SELECT row_group_id,
              any_value(row_group_num_rows) AS rows,
              min(coalesce(dictionary_page_offset, data_page_offset)) AS start,
              max(coalesce(dictionary_page_offset, data_page_offset) + total_compressed_size) AS stop,
              max(CASE WHEN path_in_schema = 'object_type' THEN stats_min_value END) AS type_min,
              max(CASE WHEN path_in_schema = 'object_type' THEN stats_max_value END) AS type_max,
              max(CASE WHEN path_in_schema = 'object_id' THEN stats_min_value END) AS id_min,
              max(CASE WHEN path_in_schema = 'object_id' THEN stats_max_value END) AS id_max
       FROM parquet_metadata('${quoted}') GROUP BY row_group_id ORDER BY row_group_id`,
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
    for (const { record } of rows) {
      if (record.occurred_at < minT) minT = record.occurred_at;
      if (record.occurred_at > maxT) maxT = record.occurred_at;
    }
    return { path, rows: rows.length, bytes: (await stat(path)).size, minOccurredAt: minT, maxOccurredAt: maxT, rowGroups };
  }

  close(): void {
    this.conn.closeSync();
    this.instance.closeSync();
  }
}

function str(app: { appendVarchar(v: string): void; appendNull(): void }, v: string | null | undefined): void {
  if (v === null || v === undefined) app.appendNull();
  else app.appendVarchar(v);
}

function nullableString(v: unknown): string | null {
  return v === null || v === undefined ? null : String(v);
}
