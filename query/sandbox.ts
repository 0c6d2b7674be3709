import type { DuckDBConnection, DuckDBPreparedStatement } from '@duckdb/node-api';
import { sqlString } from '../storage/sql';

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
 *
 * This alone is not enough: `allowed_paths` lets a statement write the listed
 * files too (`COPY ... TO '<cached file>'` would forge what later lookups
 * read), and PRAGMAs such as enable_profiling still print. So the analyst's
 * text also passes readOnlyStatement, and complete cached data files are
 * read-only on disk (cache.ts).
 */
export async function lockDown(conn: DuckDBConnection, paths: readonly string[]): Promise<void> {
  // The view re-reads its files at every query: they must stay readable. Exact
  // paths, not their directory: the cache also holds other stores' files.
  if (paths.length > 0) await conn.run(`SET allowed_paths = [${paths.map(sqlString).join(', ')}]`);
  await conn.run('SET enable_external_access = false');
  await conn.run('SET lock_configuration = true');
}

/** DuckDB's messages for what lockDown refuses. */
export function isRefusedByLockDown(message: string): boolean {
  // The last: DuckDB's query() table function refuses to run anything but a SELECT.
  return /^Permission Error:/.test(message) || /configuration has been locked/.test(message) || /Expected a single SELECT statement/.test(message);
}

/** The analyst's SQL failed (syntax, unknown column, ...) or was refused: a usage error, not an internal one. */
export class SqlError extends Error {
  constructor(
    message: string,
    /** It tried to do more than read the audit view (a write, a setting, a file, an extension). */
    readonly refused = false,
  ) {
    super(message);
    this.name = 'SqlError';
  }
}

/**
 * The analyst's text as one prepared SELECT, or a refusal. DuckDB's own parser
 * decides the statement's type, so no spelling, comment or quoting trick gets
 * a write past it; DESCRIBE, SHOW and SUMMARIZE are SELECTs to DuckDB. EXPLAIN
 * is refused: `EXPLAIN ANALYZE` runs the statement it explains, whatever it is.
 * One statement only: the output is one result, and a second statement would
 * need its own check for no benefit. Call after lockDown: preparing binds the
 * statement, and binding some statements already touches files (EXPORT
 * DATABASE creates its directory), which the locked instance refuses.
 */
export async function readOnlyStatement(conn: DuckDBConnection, text: string): Promise<DuckDBPreparedStatement> {
  if (text.replace(/;/g, '').trim() === '') throw new SqlError('no SQL statement given', true);
  let prepared: DuckDBPreparedStatement;
  try {
    const statements = await conn.extractStatements(text);
    if (statements.count !== 1) throw new SqlError(`one statement at a time (got ${statements.count})`, true);
    prepared = await statements.prepare(0);
  } catch (err) {
    if (err instanceof SqlError) throw err;
    const message = (err as Error).message.replace(/^Failed to extract statements: /, '');
    throw new SqlError(message, isRefusedByLockDown(message));
  }
  const type = prepared.statementType;
  // Loaded here, not at the top: importing this module must not load DuckDB (see openDuckDb).
  const { StatementType } = await import('@duckdb/node-api');
  if (type !== StatementType.SELECT) {
    prepared.destroySync();
    throw new SqlError(`only SELECT (also DESCRIBE, SHOW, SUMMARIZE) runs here, not ${StatementType[type] ?? `statement type ${type}`}`, true);
  }
  return prepared;
}
