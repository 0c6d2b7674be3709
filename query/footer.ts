import type { DuckDBConnection } from '@duckdb/node-api';
import type { FooterLayout } from './cache';
import { sqlString } from '../storage/sql';

interface LayoutRow {
  file_name: string;
  rg: bigint;
  rows: bigint;
  start: bigint;
  stop: bigint;
  bloom_start: bigint | null;
  type_min: string | null;
  type_max: string | null;
  id_min: string | null;
  id_max: string | null;
}

function str(v: unknown): string | null {
  return v === null || v === undefined ? null : String(v);
}

async function layoutsOf(conn: DuckDBConnection, paths: readonly string[]): Promise<Map<string, FooterLayout>> {
  // Paths are the cache's own, never user input. parquet_metadata reads only the footer.
  const reader = await conn.runAndReadAll(`
    SELECT file_name,
           row_group_id::BIGINT AS rg,
           any_value(row_group_num_rows)::BIGINT AS rows,
           min(least(data_page_offset, coalesce(dictionary_page_offset, data_page_offset)))::BIGINT AS start,
           max(least(data_page_offset, coalesce(dictionary_page_offset, data_page_offset)) + total_compressed_size)::BIGINT AS stop,
           min(bloom_filter_offset)::BIGINT AS bloom_start,
           max(CASE WHEN path_in_schema = 'object_type' THEN stats_min_value END) AS type_min,
           max(CASE WHEN path_in_schema = 'object_type' THEN stats_max_value END) AS type_max,
           max(CASE WHEN path_in_schema = 'object_id' THEN stats_min_value END) AS id_min,
           max(CASE WHEN path_in_schema = 'object_id' THEN stats_max_value END) AS id_max
    FROM parquet_metadata([${paths.map(sqlString).join(', ')}])
    GROUP BY file_name, row_group_id
    ORDER BY file_name, row_group_id`);
  const out = new Map<string, FooterLayout>();
  const dataEnd = new Map<string, number>();
  const bloomStart = new Map<string, number>();
  for (const r of reader.getRowObjects() as unknown as LayoutRow[]) {
    const file = String(r.file_name);
    let layout = out.get(file);
    if (!layout) out.set(file, (layout = { v: 2, tailStart: 0, rowGroups: [] }));
    const start = Number(r.start);
    const end = Number(r.stop);
    layout.rowGroups.push({ start, end, rows: Number(r.rows), typeMin: str(r.type_min), typeMax: str(r.type_max), idMin: str(r.id_min), idMax: str(r.id_max) });
    dataEnd.set(file, Math.max(dataEnd.get(file) ?? 0, end));
    if (r.bloom_start !== null) bloomStart.set(file, Math.min(bloomStart.get(file) ?? Infinity, Number(r.bloom_start)));
  }
  for (const [file, layout] of out) {
    // Bloom filters (which DuckDB reads to prune) normally follow the column chunks; if a
    // writer put them anywhere earlier, the tail simply starts there (more bytes, still correct).
    layout.tailStart = Math.min(dataEnd.get(file) ?? 0, bloomStart.get(file) ?? Infinity);
  }
  return out;
}

/**
 * The layouts of local Parquet files of which at least the tail (footer) is
 * present. A file whose footer cannot be read maps to its error.
 */
export async function readFooterLayouts(conn: DuckDBConnection, paths: readonly string[]): Promise<Map<string, FooterLayout | Error>> {
  const result = new Map<string, FooterLayout | Error>();
  if (paths.length === 0) return result;
  try {
    const layouts = await layoutsOf(conn, paths);
    for (const p of paths) result.set(p, layouts.get(p) ?? new Error(`no row groups in ${p}`));
    return result;
  } catch {
    // One bad file fails the whole call: find out which.
    for (const p of paths) {
      try {
        result.set(p, (await layoutsOf(conn, [p])).get(p) ?? new Error(`no row groups in ${p}`));
      } catch (err) {
        result.set(p, err as Error);
      }
    }
    return result;
  }
}
