/**
 * audit-cdc on the real PostgreSQL (logical replication) and the real broker:
 * what the database does, however it is done, becomes audit events; what it
 * rolls back does not.
 */
import { createServer } from 'node:net';
import { Pool } from 'pg';
import { CdcProcess, cdcEnv, dropCapture, parseJson, PG_URL, RecordReader, type ReadRecord } from '../helpers/cdc';

const ROWS = 10_000;
const { table, vars } = cdcEnv('capture');

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
const pool = new Pool({ connectionString: PG_URL, max: 2 });
const reader = new RecordReader(vars.AUDIT_TOPIC!);
let cdc: CdcProcess;
let records: ReadRecord[] = [];

const byAction = (action: string) => records.filter((r) => r.action === action);

beforeAll(async () => {
  await pool.query(`CREATE TABLE "${table}" (id int PRIMARY KEY, status text NOT NULL, total int NOT NULL, password text)`);
  // Full before-images of updates and deletes (cdc/README.md, REPLICA IDENTITY).
  await pool.query(`ALTER TABLE "${table}" REPLICA IDENTITY FULL`);
  await reader.start();
  vars.AUDIT_METRICS_PORT = String(await freePort());
  cdc = new CdcProcess(vars);
  await cdc.ready();

  // Raw SQL, as a migration or psql would: no app context.
  await pool.query(`INSERT INTO "${table}" SELECT g, 'draft', g, 'secret-' || g FROM generate_series(1, ${ROWS}) g`);
  await pool.query(`UPDATE "${table}" SET total = total + 1, status = 'sent'`); // the bulk update
  await pool.query(`INSERT INTO "${table}" VALUES (1, 'upserted', 0, NULL), (${ROWS + 1}, 'new', 7, NULL)
                    ON CONFLICT (id) DO UPDATE SET status = excluded.status, total = excluded.total`);
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query(`UPDATE "${table}" SET status = 'rolled-back' WHERE id <= 100`);
    await c.query(`INSERT INTO "${table}" VALUES (${ROWS + 2}, 'rolled-back', 0, NULL)`);
    await c.query('ROLLBACK');
  } finally {
    c.release();
  }
  await pool.query(`DELETE FROM "${table}" WHERE id = 2`);
  await pool.query(`TRUNCATE "${table}"`);

  // The truncate is the last change: once it is read, everything before it was published (commit order).
  await reader.waitFor((r) => r.action === 'truncate', 1, 120_000);
  await reader.caughtUp();
  records = [...reader.records];
}, 240_000);

afterAll(async () => {
  await cdc?.stop('SIGTERM').catch(() => undefined);
  await reader.stop();
  await dropCapture(pool, vars, table);
  await pool.end();
});

it('records every inserted row of a multi-row INSERT as a create with its after image', () => {
  const creates = byAction('create').filter((r) => Number(r.object_id) <= ROWS);
  expect(creates).toHaveLength(ROWS);
  expect(new Set(creates.map((r) => r.object_id)).size).toBe(ROWS);
  const c = creates.find((r) => r.object_id === '42')!;
  expect(c.object_type).toBe(table);
  expect(parseJson(c.after)).toEqual({ id: 42, status: 'draft', total: 42, password: '[MASKED]' });
  expect(c.before).toBeNull();
});

it('records a bulk UPDATE of 10,000 rows as 10,000 update events with before, after and changes', () => {
  const bulk = byAction('update').filter((r) => parseJson<{ status: string }>(r.after)!.status === 'sent');
  expect(bulk).toHaveLength(ROWS);
  expect(new Set(bulk.map((r) => r.object_id)).size).toBe(ROWS);
  for (const r of bulk) {
    const id = Number(r.object_id);
    expect(parseJson(r.before)).toEqual({ id, status: 'draft', total: id, password: '[MASKED]' });
    expect(parseJson(r.after)).toEqual({ id, status: 'sent', total: id + 1, password: '[MASKED]' });
    expect(r.changes).toEqual({ status: { old: '"draft"', new: '"sent"' }, total: { old: String(id), new: String(id + 1) } });
  }
  // One transaction: one commit time, distinct ids.
  expect(new Set(bulk.map((r) => r.occurred_at)).size).toBe(1);
  expect(new Set(bulk.map((r) => r.event_id)).size).toBe(ROWS);
});

it('records INSERT … ON CONFLICT as an update of the existing row and a create of the new one', () => {
  const upd = byAction('update').filter((r) => r.object_id === '1' && parseJson<{ status: string }>(r.after)!.status === 'upserted');
  expect(upd).toHaveLength(1);
  expect(upd[0]!.changes).toEqual({ status: { old: '"sent"', new: '"upserted"' }, total: { old: '2', new: '0' } });
  const created = byAction('create').filter((r) => r.object_id === String(ROWS + 1));
  expect(created).toHaveLength(1);
  // A sensitive column is masked even when null, as the producer does.
  expect(parseJson(created[0]!.after)).toEqual({ id: ROWS + 1, status: 'new', total: 7, password: '[MASKED]' });
});

it('records a DELETE with the full before image', () => {
  const del = byAction('delete');
  expect(del).toHaveLength(1);
  expect(del[0]!.object_id).toBe('2');
  expect(parseJson(del[0]!.before)).toEqual({ id: 2, status: 'sent', total: 3, password: '[MASKED]' });
});

it('records a TRUNCATE as one event, not one per row', () => {
  const t = byAction('truncate');
  expect(t).toHaveLength(1);
  expect(t[0]).toMatchObject({ object_type: table, object_id: '*' });
  expect(t[0]!.metadata['cdc.truncate.tables']).toBe(`public.${table}`);
});

it('records nothing of a rolled-back transaction', () => {
  expect(records.filter((r) => r.after?.includes('rolled-back'))).toHaveLength(0);
  expect(records.filter((r) => r.object_id === String(ROWS + 2))).toHaveLength(0);
  // Exactly the expected events, no more: creates, the bulk update, the upsert's two, the delete, the truncate.
  expect(records).toHaveLength(ROWS + ROWS + 2 + 1 + 1);
  expect(new Set(records.map((r) => r.event_id)).size).toBe(records.length);
});

it('attributes changes made without app context to the database role, keyed object_type:object_id', () => {
  const who = new Set(records.map((r) => `${r.actor_id}|${r.actor_type}|${r.metadata['db.role']}|${r.source_service}`));
  expect([...who]).toEqual(['postgres|db_role|postgres|audit-cdc']);
  const keys = new Set(records.map((r) => `${r.object_type}:${r.object_id}`));
  expect(keys.has(`${table}:42`)).toBe(true);
});

it('serves health and the slot lag in bytes and seconds as Prometheus metrics', async () => {
  const base = `http://127.0.0.1:${vars.AUDIT_METRICS_PORT}`;
  expect((await fetch(`${base}/healthz`)).status).toBe(200);
  expect((await fetch(`${base}/readyz`)).status).toBe(200);
  const text = await (await fetch(`${base}/metrics`)).text();
  const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
  expect(value('audit_cdc_slot_lag_bytes')).toBeGreaterThanOrEqual(0);
  expect(value('audit_cdc_lag_seconds')).toBeGreaterThanOrEqual(0);
  expect(value('audit_cdc_changes_total')).toBe(records.length);
  expect(value('audit_cdc_events_delivered_total')).toBe(records.length);
  expect(value('audit_cdc_confirmed_lsn_bytes')).toBeGreaterThan(0);
});

it('confirms the slot past everything published (nothing left to replay)', async () => {
  const r = await pool.query<{ pending: string }>(
    'SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS pending FROM pg_replication_slots WHERE slot_name = $1',
    [vars.AUDIT_CDC_SLOT],
  );
  // The slot may trail by WAL written since (other tests share the server), never by our transactions:
  // a clean stop confirms everything, and the process exits 0.
  expect(r.rowCount).toBe(1);
  const exit = await cdc.stop('SIGTERM');
  expect(exit).toEqual({ code: 0, signal: null });
  expect(cdc.stderr).toContain('"stopped"');
});
