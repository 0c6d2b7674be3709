import type { DuckDBConnection } from '@duckdb/node-api';
import { sqlStringLiteral } from './history';

/**
 * Closes a DuckDB connection's instance to everything but the audit data, once
 * the `audit` view exists: the analyst's SQL (or a script passing one along)
 * may then read exactly `paths` (the cached data files behind the view) and
 * nothing else on the machine. After this, COPY ... TO, read_csv/read_text/
 * read_blob/glob of other files, ATTACH of a file, INSTALL/LOAD and every SET
 * fail with DuckDB's "Permission Error" or "configuration has been locked".
 *
 * The order matters: `allowed_paths` can only be set while external access is
 * still on, and `lock_configuration` last, so no statement can undo the others
 * (it locks the whole instance, every connection included).
 */
export async function lockDown(conn: DuckDBConnection, paths: readonly string[]): Promise<void> {
  // The view re-reads its files at every query: they must stay readable. Exact
  // paths, not their directory: the cache also holds other stores' files.
  if (paths.length > 0) await conn.run(`SET allowed_paths = [${paths.map(sqlStringLiteral).join(', ')}]`);
  await conn.run('SET enable_external_access = false');
  await conn.run('SET lock_configuration = true');
}

/** DuckDB's messages for what lockDown refuses. */
export function isRefusedByLockDown(message: string): boolean {
  return /^Permission Error:/.test(message) || /configuration has been locked/.test(message);
}
