import type { DuckDBConnection } from '@duckdb/node-api';
import type { RowGroupIndex } from './file-index';
import { sqlString } from './sql';

/**
 * Row-group byte ranges and object key statistics of a Parquet file, as the
 * per-file index stores them (the consumer's files and compacted ones alike).
 */
export async function readRowGroups(conn: DuckDBConnection, path: string): Promise<RowGroupIndex[]> {
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
  return reader.getRowObjects().map((g) => {
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
}

function nullableString(v: unknown): string | null {
  return v === null || v === undefined ? null : String(v);
}
