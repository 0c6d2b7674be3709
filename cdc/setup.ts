import type { Client } from 'pg';
import { CONTEXT_PREFIX, CONTEXT_SETTING } from '../producer/cdc-context/context-message';
import type { CdcMapping } from './mapping';
import { tablePolicy } from './mapping';

export class CdcSetupError extends Error {
  constructor(message: string, override readonly cause?: unknown) {
    super(message);
    this.name = 'CdcSetupError';
  }
}

export interface SetupOptions {
  slot: string;
  publication: string;
  /** Create what is missing (else a missing slot or publication is an error). */
  create: boolean;
  /** Tables of a created publication; empty = FOR ALL TABLES. */
  tables: readonly string[];
  roleTriggers: boolean;
  mapping: CdcMapping;
}

export interface SetupResult {
  createdSlot: boolean;
  createdPublication: boolean;
  /** Tables given the role trigger by this run. */
  triggersInstalled: string[];
}

const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;

/** `schema.table` or `table` (public) as a quoted SQL name. */
export function qualifiedName(table: string): string {
  const dot = table.indexOf('.');
  return dot < 0 ? `public.${quoteIdent(table)}` : `${quoteIdent(table.slice(0, dot))}.${quoteIdent(table.slice(dot + 1))}`;
}

// Serialises setup between audit-cdc instances (CREATE OR REPLACE FUNCTION races with itself).
const SETUP_LOCK = 'SELECT pg_advisory_xact_lock(4242424242)';

/**
 * Emits the database role as the context of a transaction the app gave none
 * (a migration, a psql session), once per transaction, before its first row
 * change: a BEFORE ... FOR EACH STATEMENT trigger runs before the statement's
 * rows are written, so the message precedes them in the WAL.
 */
const ROLE_FUNCTION = `
CREATE SCHEMA IF NOT EXISTS audit_cdc;
CREATE OR REPLACE FUNCTION audit_cdc.role_context() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  IF coalesce(current_setting('${CONTEXT_SETTING}', true), '') = '' THEN
    PERFORM set_config('${CONTEXT_SETTING}', 'role', true);
    PERFORM pg_logical_emit_message(true, '${CONTEXT_PREFIX}', json_build_object(
      'actorId', session_user::text, 'actorType', 'db_role', 'dbRole', current_user::text,
      'applicationName', nullif(current_setting('application_name', true), ''),
      'ip', host(inet_client_addr()))::text);
  END IF;
  RETURN NULL;
END $f$;`;

/** Creates (when asked) the publication, the slot and the role triggers. Idempotent. */
export async function setupCapture(db: Client, o: SetupOptions): Promise<SetupResult> {
  const result: SetupResult = { createdSlot: false, createdPublication: false, triggersInstalled: [] };
  const wal = await db.query<{ wal_level: string }>('SHOW wal_level');
  if (wal.rows[0]?.wal_level !== 'logical') {
    throw new CdcSetupError(`wal_level is ${wal.rows[0]?.wal_level}: set wal_level=logical and restart PostgreSQL (cdc/README.md)`);
  }
  await db.query('BEGIN');
  try {
    await db.query(SETUP_LOCK);
    const pub = await db.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [o.publication]);
    if (pub.rowCount === 0) {
      if (!o.create) throw new CdcSetupError(`publication ${o.publication} does not exist (AUDIT_CDC_CREATE=false)`);
      const target = o.tables.length > 0 ? `FOR TABLE ${o.tables.map(qualifiedName).join(', ')}` : 'FOR ALL TABLES';
      await db.query(`CREATE PUBLICATION ${quoteIdent(o.publication)} ${target}`);
      result.createdPublication = true;
    }
    if (o.roleTriggers) {
      const fn = await db.query("SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'audit_cdc' AND p.proname = 'role_context'");
      if (fn.rowCount === 0) await db.query(ROLE_FUNCTION);
      const missing = await db.query<{ schemaname: string; tablename: string }>(
        `SELECT t.schemaname, t.tablename FROM pg_publication_tables t
          WHERE t.pubname = $1 AND NOT EXISTS (
            SELECT 1 FROM pg_trigger g WHERE g.tgrelid = format('%I.%I', t.schemaname, t.tablename)::regclass AND g.tgname = 'audit_cdc_role_context')`,
        [o.publication],
      );
      for (const { schemaname, tablename } of missing.rows) {
        if (tablePolicy(o.mapping, schemaname, tablename).skip) continue;
        await db.query(
          `CREATE TRIGGER audit_cdc_role_context BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON ${quoteIdent(schemaname)}.${quoteIdent(tablename)}
             FOR EACH STATEMENT EXECUTE FUNCTION audit_cdc.role_context()`,
        );
        result.triggersInstalled.push(`${schemaname}.${tablename}`);
      }
    }
    await db.query('COMMIT');
  } catch (err) {
    await db.query('ROLLBACK').catch(() => undefined);
    if (err instanceof CdcSetupError) throw err;
    throw new CdcSetupError(`setting up publication ${o.publication}: ${(err as Error).message}`, err);
  }
  // Outside the transaction: a slot cannot be created in one that has written.
  const slot = await db.query<{ plugin: string }>('SELECT plugin FROM pg_replication_slots WHERE slot_name = $1', [o.slot]);
  if (slot.rowCount === 0) {
    if (!o.create) throw new CdcSetupError(`replication slot ${o.slot} does not exist (AUDIT_CDC_CREATE=false)`);
    try {
      await db.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [o.slot]);
      result.createdSlot = true;
    } catch (err) {
      // Another instance created it meanwhile: fine.
      if (!/already exists/.test((err as Error).message)) throw new CdcSetupError(`creating slot ${o.slot}: ${(err as Error).message}`, err);
    }
  } else if (slot.rows[0]!.plugin !== 'pgoutput') {
    throw new CdcSetupError(`replication slot ${o.slot} uses ${slot.rows[0]!.plugin}, not pgoutput`);
  }
  return result;
}

/** Bytes of WAL the slot holds back (server position minus confirmed position), and whether a reader is attached. */
export async function slotLag(db: Client, slot: string): Promise<{ bytes: number; active: boolean } | null> {
  const r = await db.query<{ bytes: string | null; active: boolean }>(
    'SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS bytes, active FROM pg_replication_slots WHERE slot_name = $1',
    [slot],
  );
  const row = r.rows[0];
  // Confirmations name the byte after the last one processed, so an idle slot reads -1: caught up.
  return row ? { bytes: Math.max(0, Number(row.bytes ?? 0)), active: row.active } : null;
}

/** The primary key columns of a table, in key order (empty without a primary key). */
export async function primaryKeyColumns(db: Client, relationOid: number): Promise<string[]> {
  const r = await db.query<{ attname: string }>(
    `SELECT a.attname FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
      WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.n`,
    [relationOid],
  );
  return r.rows.map((row) => row.attname);
}
