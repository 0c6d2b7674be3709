/**
 * Prisma 7 (driver adapter @prisma/adapter-pg, TypeScript query compiler) on the
 * real PostgreSQL and broker:
 * - context stitching: `prismaCdcContext` puts the AuditContext on every row
 *   change audit-cdc publishes for an interactive, a batch and a standalone
 *   write, on a pool of ONE connection (a second connection would deadlock);
 *   a rolled-back transaction gives nothing; writes without context carry the
 *   database role;
 * - the `prismaAudit` client extension: events for every kind of model write,
 *   read back from Kafka; with audit-cdc on the same tables, `exclude:
 *   capturedTables()` leaves them to audit-cdc (one event per change).
 * The client is generated from test/prisma/schema.prisma by test/prisma/generate.js.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import { Pool } from 'pg';
import { capturedTables } from '../../cdc';
import { AuditClient, runWithAuditContext, type AuditRecord } from '../../producer';
import { prismaAudit, prismaCdcContext } from '../../producer/entries/prisma';
import type { PrismaClient as GeneratedClient } from '../../.test-cache/prisma-client/client';
import { CdcProcess, cdcEnv, parseJson, PG_URL, RecordReader } from '../helpers/cdc';
import { KAFKA_BROKERS, ROOT } from '../helpers/infra';
import { TopicReader } from '../helpers/topic-reader';

jest.setTimeout(120_000);

const schema = `prisma_${randomUUID().replace(/-/g, '').slice(0, 10)}`;
const invoices = `${schema}.prisma_invoice`;
const lines = `${schema}.prisma_invoice_line`;
const { vars } = cdcEnv('prisma', { AUDIT_CDC_PUBLICATION_TABLES: `${invoices},${lines}` });
vars.AUDIT_CDC_MAPPING = JSON.stringify({ tables: { [invoices]: { objectType: 'invoice', exclude: ['secret'] }, [lines]: { objectType: 'invoice_line' } } });
const admin = new Pool({ connectionString: PG_URL, max: 2 });
// The stitched client gets one connection: stitching on any other connection would wait forever.
const onePool = new Pool({ connectionString: PG_URL, max: 1 });
const hookPool = new Pool({ connectionString: PG_URL, max: 2 });
const cdcReader = new RecordReader(vars.AUDIT_TOPIC!);
const hookTopic = `test.prisma-hooks-${randomUUID()}`;
const hookReader = new TopicReader(hookTopic);
let cdc: CdcProcess;
let auditClient: AuditClient;

function stitchedClient(PrismaClient: typeof GeneratedClient) {
  return new PrismaClient({ adapter: prismaCdcContext(new PrismaPg(onePool, { schema })) });
}
let stitched: ReturnType<typeof stitchedClient>;
let hooked: ReturnType<typeof hookedClient>;
let bothSources: ReturnType<typeof hookedClient>;
let skipped: { skipped: number; recorded: number };

function hookedClient(PrismaClient: typeof GeneratedClient, excluded: string[]) {
  const ext = prismaAudit(auditClient, { schema, exclude: excluded, models: { Invoice: { objectType: 'invoice', excludeFields: ['secret'] }, InvoiceLine: { objectType: 'invoice_line' } } });
  return Object.assign(new PrismaClient({ adapter: new PrismaPg(hookPool, { schema }) }).$extends(ext), { auditStats: ext.stats });
}

beforeAll(async () => {
  execFileSync(process.execPath, [join(ROOT, 'test', 'prisma', 'generate.js')], { stdio: 'inherit' });
  const { PrismaClient } = await import('../../.test-cache/prisma-client/client');
  await admin.query(`CREATE SCHEMA "${schema}"`);
  await admin.query(`CREATE TABLE "${schema}".prisma_invoice (id serial PRIMARY KEY, number text NOT NULL UNIQUE, status text NOT NULL, total int NOT NULL, secret text)`);
  await admin.query(`CREATE TABLE "${schema}".prisma_invoice_line (id serial PRIMARY KEY, "invoiceId" int NOT NULL REFERENCES "${schema}".prisma_invoice(id), label text NOT NULL)`);
  await admin.query(`ALTER TABLE "${schema}".prisma_invoice REPLICA IDENTITY FULL`);
  await admin.query(`ALTER TABLE "${schema}".prisma_invoice_line REPLICA IDENTITY FULL`);
  await cdcReader.start();
  await hookReader.start();
  cdc = new CdcProcess(vars);
  await cdc.ready();
  auditClient = new AuditClient({ brokers: [KAFKA_BROKERS], topic: hookTopic, sourceService: 'prisma-it', lingerMs: 5 });
  stitched = stitchedClient(PrismaClient);
  hooked = hookedClient(PrismaClient, []);
  const captured = await capturedTables(admin, vars.AUDIT_CDC_PUBLICATION);
  bothSources = hookedClient(PrismaClient, captured);
  skipped = bothSources.auditStats;
});

afterAll(async () => {
  await cdc?.stop('SIGTERM').catch(() => undefined);
  await stitched?.$disconnect();
  await hooked?.$disconnect();
  await bothSources?.$disconnect();
  await auditClient?.close();
  await cdcReader.stop();
  await hookReader.stop();
  for (let i = 0; i < 100; i++) {
    const r = await admin.query<{ active: boolean }>('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [vars.AUDIT_CDC_SLOT]);
    if (r.rowCount === 0) break;
    if (!r.rows[0]!.active) {
      await admin.query('SELECT pg_drop_replication_slot($1)', [vars.AUDIT_CDC_SLOT]);
      break;
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  await admin.query(`DROP PUBLICATION IF EXISTS "${vars.AUDIT_CDC_PUBLICATION}"`);
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await Promise.all([admin.end(), onePool.end(), hookPool.end()]);
});

const imageOf = (r: AuditRecord) => parseJson(r.after) ?? parseJson(r.before) ?? {};

describe('prismaCdcContext: the request context on the row changes audit-cdc records', () => {
  it('stitches an interactive transaction (nested create, update, delete) on its own connection', async () => {
    const ctx = { actorId: 'alice', actorType: 'user', tenantId: 'acme', requestId: 'req-prisma-itx', traceId: '4bf92f3577b34da6a3ce929d0e0e4736', ip: '203.0.113.9' };
    await runWithAuditContext(ctx, () =>
      stitched.$transaction(async (tx) => {
        const inv = await tx.invoice.create({ data: { number: 'ITX-1', status: 'draft', total: 100, secret: 's', lines: { create: [{ label: 'a' }, { label: 'b' }] } } });
        await tx.invoice.update({ where: { id: inv.id }, data: { status: 'approved', total: { increment: 5 } } });
        const extra = await tx.invoiceLine.create({ data: { invoiceId: inv.id, label: 'c' } });
        await tx.invoiceLine.delete({ where: { id: extra.id } });
      }),
    );
    // 1 invoice insert + 2 line inserts + 1 invoice update + 1 line insert + 1 line delete.
    const events = await cdcReader.waitFor((r) => r.request_id === 'req-prisma-itx', 6);
    await cdcReader.caughtUp();
    const all = cdcReader.records.filter((r) => r.request_id === 'req-prisma-itx');
    expect(all).toHaveLength(6);
    expect(all.map((e) => `${e.object_type}:${e.action}`).sort()).toEqual([
      'invoice:create',
      'invoice:update',
      'invoice_line:create',
      'invoice_line:create',
      'invoice_line:create',
      'invoice_line:delete',
    ]);
    for (const e of events) {
      expect(e).toMatchObject({ actor_id: 'alice', actor_type: 'user', tenant_id: 'acme', trace_id: ctx.traceId, ip: '203.0.113.9' });
      expect(e.metadata['db.role']).toBeUndefined();
    }
    const update = all.find((e) => e.object_type === 'invoice' && e.action === 'update')!;
    expect(update.changes).toEqual({ status: { old: '"draft"', new: '"approved"' }, total: { old: '100', new: '105' } });
    expect(imageOf(update)).not.toHaveProperty('secret');
  });

  it('stitches a batch transaction and a standalone write; a write without context carries the database role', async () => {
    const [a] = await runWithAuditContext({ actorId: 'bob', requestId: 'req-prisma-batch' }, () =>
      stitched.$transaction([
        stitched.invoice.create({ data: { number: 'B-1', status: 'draft', total: 1 } }),
        stitched.invoice.create({ data: { number: 'B-2', status: 'draft', total: 2 } }),
      ]),
    );
    await runWithAuditContext({ actorId: 'carol', requestId: 'req-prisma-single' }, async () => {
      // A Prisma query runs when awaited (PrismaPromise is lazy): await it inside the context.
      await stitched.invoice.update({ where: { id: a.id }, data: { status: 'sent' } });
    });
    await stitched.invoice.update({ where: { id: a.id }, data: { status: 'paid' } });

    const batch = await cdcReader.waitFor((r) => r.request_id === 'req-prisma-batch', 2);
    expect(batch.map((e) => `${e.action}:${e.actor_id}:${String(imageOf(e).number)}`).sort()).toEqual(['create:bob:B-1', 'create:bob:B-2']);
    const [single] = await cdcReader.waitFor((r) => r.request_id === 'req-prisma-single');
    expect(single).toMatchObject({ action: 'update', actor_id: 'carol', object_id: String(a.id) });
    const [anonymous] = await cdcReader.waitFor((r) => r.object_id === String(a.id) && imageOf(r).status === 'paid');
    expect(anonymous).toMatchObject({ actor_id: 'postgres', actor_type: 'db_role', request_id: null });
  });

  it('records nothing of a rolled-back interactive transaction', async () => {
    await expect(
      runWithAuditContext({ actorId: 'dave', requestId: 'req-prisma-rollback' }, () =>
        stitched.$transaction(async (tx) => {
          await tx.invoice.create({ data: { number: 'RB-1', status: 'draft', total: 1 } });
          throw new Error('abort');
        }),
      ),
    ).rejects.toThrow('abort');
    // A later change, once read, proves audit-cdc is past the rolled-back transaction.
    await runWithAuditContext({ actorId: 'dave', requestId: 'req-prisma-after' }, async () => {
      await stitched.invoice.create({ data: { number: 'RB-2', status: 'draft', total: 1 } });
    });
    await cdcReader.waitFor((r) => r.request_id === 'req-prisma-after');
    expect(cdcReader.records.filter((r) => r.request_id === 'req-prisma-rollback' || imageOf(r).number === 'RB-1')).toEqual([]);
  });
});

describe('prismaAudit: the client extension', () => {
  const byRequest = (id: string) => (r: AuditRecord) => r.request_id === id && r.source_service === 'prisma-it';

  it('records create, update, upsert and delete with the images Prisma gives, in the caller context', async () => {
    const ctx = { actorId: 'erin', requestId: 'req-prisma-hooks' };
    const inv = await runWithAuditContext(ctx, async () => {
      const created = await hooked.invoice.create({ data: { number: 'H-1', status: 'draft', total: 10, secret: 'top' } });
      await hooked.invoice.update({ where: { id: created.id }, data: { status: 'approved', total: { increment: 1 } } });
      await hooked.invoice.upsert({ where: { number: 'H-2' }, create: { number: 'H-2', status: 'new', total: 2 }, update: { status: 'seen' } });
      await hooked.invoice.delete({ where: { number: 'H-2' } });
      return created;
    });
    const events = await hookReader.waitFor(byRequest('req-prisma-hooks'), 4);
    const [create, update, upsert, del] = ['create', 'update', 'upsert', 'delete'].map((a) => events.find((e) => e.action === a)!);
    expect(create).toMatchObject({ object_type: 'invoice', object_id: String(inv.id), actor_id: 'erin' });
    expect(parseJson(create!.after)).toEqual({ id: inv.id, number: 'H-1', status: 'draft', total: 10 });
    expect(update!.metadata).toMatchObject({ 'orm.before_image': 'unavailable', 'orm.fields': 'status', 'orm.operation': 'update' });
    expect(parseJson(update!.after)).toMatchObject({ status: 'approved', total: 11 });
    expect(upsert!.metadata['orm.before_image']).toBe('unavailable');
    expect(parseJson(del!.before)).toMatchObject({ number: 'H-2', status: 'new' });
    expect(del!.object_id).toBe(upsert!.object_id);
  });

  it('records createMany per row and updateMany / deleteMany per statement, with criteria and count', async () => {
    await runWithAuditContext({ actorId: 'frank', requestId: 'req-prisma-bulk' }, async () => {
      await hooked.invoice.createMany({ data: [{ number: 'M-1', status: 'draft', total: 1 }, { number: 'M-2', status: 'draft', total: 2 }] });
      await hooked.invoice.updateMany({ where: { number: { startsWith: 'M-' } }, data: { status: 'void' } });
      await hooked.invoice.deleteMany({ where: { number: { startsWith: 'M-' } } });
    });
    const events = await hookReader.waitFor(byRequest('req-prisma-bulk'), 4);
    expect(events.filter((e) => e.action === 'create').map((e) => parseJson(e.after)!.number).sort()).toEqual(['M-1', 'M-2']);
    const um = events.find((e) => e.action === 'update')!;
    expect(um).toMatchObject({ object_id: '*', actor_id: 'frank' });
    expect(um.metadata).toMatchObject({ 'orm.count': '2', 'orm.where': '{"number":{"startsWith":"M-"}}' });
    expect(parseJson(um.after)).toEqual({ status: 'void' });
    const dm = events.find((e) => e.action === 'delete')!;
    expect(dm.metadata).toMatchObject({ 'orm.count': '2', 'orm.before_image': 'unavailable' });
  });

  it('leaves the tables audit-cdc captures to audit-cdc (one event per change)', async () => {
    await runWithAuditContext({ actorId: 'gina', requestId: 'req-prisma-both' }, async () => {
      await bothSources.invoice.create({ data: { number: 'C-1', status: 'draft', total: 3 } });
    });
    const [e] = await cdcReader.waitFor((r) => r.request_id === 'req-prisma-both' || imageOf(r).number === 'C-1');
    // Without the stitching adapter the change carries the role; the extension recorded nothing for it.
    expect(e).toMatchObject({ action: 'create', object_type: 'invoice' });
    expect(skipped.skipped).toBe(1);
    expect(skipped.recorded).toBe(0);
  });
});
