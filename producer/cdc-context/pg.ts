import type { Pool, PoolClient, Client } from 'pg';
import type { AuditContext } from '../context';
import { auditContextStatement } from './statement';

type Connection = Client | PoolClient;

/**
 * Starts a transaction carrying the current AuditContext, in one round trip
 * (`BEGIN; SELECT pg_logical_emit_message(...)`): what costs the app's write path
 * one message in the WAL and nothing more. Without a context it is a plain BEGIN.
 */
export async function beginWithAuditContext(db: Connection, ctx?: AuditContext): Promise<void> {
  const stmt = ctx === undefined ? auditContextStatement() : auditContextStatement(ctx);
  await db.query(stmt ? `BEGIN; ${stmt}` : 'BEGIN');
}

/** Emits the context inside a transaction already open on `db` (changes before it keep the previous context). */
export async function emitAuditContext(db: Connection, ctx?: AuditContext): Promise<void> {
  const stmt = ctx === undefined ? auditContextStatement() : auditContextStatement(ctx);
  if (stmt) await db.query(stmt);
}

function isPool(db: Pool | Connection): db is Pool {
  return typeof (db as Pool).totalCount === 'number';
}

/**
 * Runs `fn` in a transaction whose row changes audit-cdc records with the
 * current AuditContext (actor, tenant, request id, ip, trace id). Commits when
 * `fn` resolves, rolls back when it throws. With a Pool, a client is checked
 * out for the transaction and released after.
 */
export async function withAuditTransaction<T>(db: Pool | Connection, fn: (client: Connection) => Promise<T>): Promise<T> {
  const client = isPool(db) ? await db.connect() : db;
  try {
    await beginWithAuditContext(client);
    let result: T;
    try {
      result = await fn(client);
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
    await client.query('COMMIT');
    return result;
  } finally {
    if (isPool(db)) (client as PoolClient).release();
  }
}

/**
 * The tables a publication captures, as `table` (public schema) or `schema.table`:
 * pass them to the ORM hooks' `exclude` so that a change audit-cdc records is
 * not recorded a second time by the app (cdc/README.md, "One event per change").
 */
export async function capturedTables(db: Pool | Connection, publication = 'audit_cdc'): Promise<string[]> {
  const r = await db.query<{ schemaname: string; tablename: string }>(
    'SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = $1 ORDER BY 1, 2',
    [publication],
  );
  return r.rows.map((row) => (row.schemaname === 'public' ? row.tablename : `${row.schemaname}.${row.tablename}`));
}
