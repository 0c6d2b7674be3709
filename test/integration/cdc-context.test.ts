/**
 * Context stitching on the real PostgreSQL and broker: the AuditContext of an
 * Express request (and of TypeORM and Sequelize transactions) reaches the row
 * events audit-cdc publishes for that transaction; changes made without one
 * carry the database role. Also the table mapping (object type, excluded and
 * masked columns).
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import 'reflect-metadata';
import express from 'express';
import { Pool } from 'pg';
import { DataTypes, Sequelize } from 'sequelize';
import { DataSource, EntitySchema } from 'typeorm';
import { attachTypeormCdcContext, capturedTables, sequelizeAuditTransaction, withAuditTransaction } from '../../cdc';
import { attachTypeormAudit, auditExpress, runWithAuditContext, updateAuditContext } from '../../producer';
import { CdcProcess, cdcEnv, dropCapture, parseJson, PG_URL, RecordReader } from '../helpers/cdc';
import { FakeRecorder } from '../helpers/fake-recorder';

const { table, vars } = cdcEnv('context');
vars.AUDIT_CDC_MAPPING = JSON.stringify({ tables: { [table]: { objectType: 'item', exclude: ['internal'], mask: ['label'] } } });
const pool = new Pool({ connectionString: PG_URL, max: 4 });
const reader = new RecordReader(vars.AUDIT_TOPIC!);
let cdc: CdcProcess;
let server: Server;
let ds: DataSource;
let seq: Sequelize;
const ormRecorder = new FakeRecorder();

interface Item {
  id: number;
  status: string;
  label: string | null;
  internal: string | null;
}

beforeAll(async () => {
  await pool.query(`CREATE TABLE "${table}" (id int PRIMARY KEY, status text NOT NULL, label text, internal text)`);
  await pool.query(`ALTER TABLE "${table}" REPLICA IDENTITY FULL`);
  await pool.query(`INSERT INTO "${table}" SELECT g, 'new', 'label-' || g, 'x' FROM generate_series(1, 20) g`);
  await reader.start();
  cdc = new CdcProcess(vars);
  await cdc.ready();

  const app = express();
  app.use(auditExpress(new FakeRecorder(), { actor: (req) => (req.headers['x-user'] as string | undefined) ?? null }));
  app.put('/items/:from/:to', async (req, res) => {
    const ids = await withAuditTransaction(pool, async (c) => {
      const r = await c.query<{ id: number }>(`UPDATE "${table}" SET status = 'approved' WHERE id BETWEEN $1 AND $2 RETURNING id`, [req.params.from, req.params.to]);
      return r.rows.map((row) => row.id);
    });
    res.json({ ids });
  });
  server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));

  ds = new DataSource({
    type: 'postgres',
    url: PG_URL,
    entities: [new EntitySchema<Item>({ name: 'CdcItem', tableName: table, columns: { id: { type: Number, primary: true }, status: { type: String }, label: { type: String, nullable: true }, internal: { type: String, nullable: true } } })],
    synchronize: false,
    logging: false,
  });
  await ds.initialize();
  attachTypeormCdcContext(ds);
  // Both sources configured, as an app moving to audit-cdc would: the ORM hooks skip what the publication captures.
  attachTypeormAudit(ds, ormRecorder, { exclude: await capturedTables(pool, vars.AUDIT_CDC_PUBLICATION) });
  seq = new Sequelize(PG_URL, { logging: false });
  seq.define('CdcItem', { id: { type: DataTypes.INTEGER, primaryKey: true }, status: DataTypes.TEXT, label: DataTypes.TEXT, internal: DataTypes.TEXT }, { tableName: table, timestamps: false });
}, 120_000);

afterAll(async () => {
  await cdc?.stop('SIGTERM').catch(() => undefined);
  server?.close();
  await ds?.destroy().catch(() => undefined);
  await seq?.close().catch(() => undefined);
  await reader.stop();
  await dropCapture(pool, vars, table);
  await pool.end();
});

it('puts the actor, request id, trace id, ip, method and path of an Express request on the row events of its transaction', async () => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const { port } = server.address() as AddressInfo;
  const res = await fetch(`http://127.0.0.1:${port}/items/3/5`, {
    method: 'PUT',
    headers: { 'x-user': 'alice', 'x-request-id': 'req-cdc-1', traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
  });
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ ids: [3, 4, 5] });

  const events = await reader.waitFor((r) => r.request_id === 'req-cdc-1', 3);
  expect(events.map((e) => e.object_id).sort()).toEqual(['3', '4', '5']);
  for (const e of events) {
    expect(e).toMatchObject({
      object_type: 'item',
      action: 'update',
      actor_id: 'alice',
      actor_type: 'user',
      request_id: 'req-cdc-1',
      trace_id: traceId,
      ip: '127.0.0.1',
      http_method: 'PUT',
      http_path: '/items/3/5',
    });
    // Mapping: `internal` excluded, `label` masked.
    expect(parseJson(e.after)).toEqual({ id: Number(e.object_id), status: 'approved', label: '[MASKED]' });
    expect(e.changes).toEqual({ status: { old: '"new"', new: '"approved"' } });
    expect(e.metadata['db.role']).toBeUndefined();
  }
});

it('stitches the context onto TypeORM transactions (save) through the subscriber', async () => {
  await runWithAuditContext({ actorId: 'bob', tenantId: 'acme', requestId: 'req-typeorm' }, async () => {
    updateAuditContext({ actorType: 'service' });
    await ds.getRepository<Item>('CdcItem').save({ id: 100, status: 'typeorm', label: null, internal: 'y' });
  });
  const [e] = await reader.waitFor((r) => r.request_id === 'req-typeorm');
  expect(e).toMatchObject({ object_type: 'item', object_id: '100', action: 'create', actor_id: 'bob', actor_type: 'service', tenant_id: 'acme' });
  // One event per change: the ORM subscriber, also attached, left the captured table to audit-cdc.
  expect(await capturedTables(pool, vars.AUDIT_CDC_PUBLICATION)).toEqual([table]);
  expect(ormRecorder.records).toHaveLength(0);
});

it('captures QueryBuilder writes, which the ORM subscriber never sees, with their transaction context', async () => {
  await runWithAuditContext({ actorId: 'dave', requestId: 'req-querybuilder' }, () =>
    ds.transaction(async (m) => {
      await m.createQueryBuilder().update('CdcItem').set({ status: 'qb' }).where('id IN (:...ids)', { ids: [11, 12] }).execute();
      await m.createQueryBuilder().insert().into('CdcItem').values({ id: 101, status: 'qb', label: null, internal: null }).execute();
    }),
  );
  const events = await reader.waitFor((r) => r.request_id === 'req-querybuilder', 3);
  expect(events.map((e) => `${e.action}:${e.object_id}:${e.actor_id}`).sort()).toEqual(['create:101:dave', 'update:11:dave', 'update:12:dave']);
  expect(ormRecorder.records).toHaveLength(0);
});

it('stitches the context onto Sequelize transactions through the wrapper', async () => {
  await runWithAuditContext({ actorId: 'carol', requestId: 'req-sequelize' }, () =>
    sequelizeAuditTransaction(seq, async (t) => {
      await seq.models.CdcItem!.update({ status: 'sequelize' }, { where: { id: 7 }, transaction: t });
      await seq.models.CdcItem!.destroy({ where: { id: 8 }, transaction: t });
    }),
  );
  const events = await reader.waitFor((r) => r.request_id === 'req-sequelize', 2);
  expect(events.map((e) => `${e.action}:${e.object_id}:${e.actor_id}`).sort()).toEqual(['delete:8:carol', 'update:7:carol']);
});

it('records changes made without any context with the database role as actor', async () => {
  await pool.query(`UPDATE "${table}" SET status = 'by-psql' WHERE id = 9`);
  const [e] = await reader.waitFor((r) => r.object_id === '9' && r.after?.includes('by-psql') === true);
  expect(e).toMatchObject({ actor_id: 'postgres', actor_type: 'db_role', request_id: null });
  expect(e!.metadata['db.role']).toBe('postgres');
});
