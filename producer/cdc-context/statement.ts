import { type AuditContext, currentAuditContext } from '../context';
import { CONTEXT_PREFIX, CONTEXT_SETTING, serializeContext } from './context-message';

/**
 * A string as an SQL literal (standard_conforming_strings on, the default since PostgreSQL 9.1).
 * Its own copy of storage/sql's quoting: this runs inside the application's
 * process as part of the published producer package, which must not pull in
 * the storage layer.
 */
function literal(text: string): string {
  return `'${text.replace(/'/g, "''")}'`;
}

/**
 * The statement that stitches `ctx` (default: the current AuditContext) onto the
 * transaction it runs in: a transactional logical decoding message audit-cdc
 * attaches to every following row change of the transaction, and the
 * transaction-local marker that keeps the role trigger quiet. Null without a
 * context. Plain SQL text without parameters, so it can share one round trip
 * with `BEGIN` (simple query protocol).
 */
export function auditContextStatement(ctx: AuditContext | undefined = currentAuditContext()): string | null {
  if (!ctx) return null;
  const json = serializeContext(ctx);
  if (json === '{}') return null;
  return `SELECT set_config('${CONTEXT_SETTING}', 'app', true), pg_logical_emit_message(true, '${CONTEXT_PREFIX}', ${literal(json)})`;
}
