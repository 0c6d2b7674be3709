/**
 * A string as an SQL string literal. Paths and keys reach DuckDB (and psql in
 * the benchmarks) as text spliced into statements that take no parameters
 * (COPY ... TO, read_parquet lists, SET), so doubling the quote is the only
 * escaping both dialects need: neither treats backslash specially in a
 * standard literal.
 */
export function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}
