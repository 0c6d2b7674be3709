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

/** The columns and their types, as DuckDB's JSON reader is told to read them. */
export const COLUMN_TYPES: readonly (readonly [string, string])[] = PARQUET_COLUMNS.trim()
  .split(',')
  .map((c) => c.trim().split(/\s+/) as [string, string]);
