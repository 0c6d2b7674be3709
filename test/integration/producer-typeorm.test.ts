/**
 * TypeORM subscriber against the real PostgreSQL and Kafka; the request
 * context set by an Express auth middleware reaches the ORM events; process
 * steps wrap ORM writes.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import 'reflect-metadata';
import express from 'express';
import { DataSource, EntitySchema, type Repository } from 'typeorm';
import {
  AuditClient,
  attachTypeormAudit,
  auditExpress,
  auditProcess,
  type AuditSubscriber,
  createTypeormAuditSubscriber,
  MASK,
  runWithAuditContext,
  updateAuditContext,
} from '../../producer';
import type { AuditRecord } from '../../schemas';
import { PG_URL } from '../helpers/cdc';
import { KAFKA_BROKERS } from '../helpers/infra';
import { TopicReader } from '../helpers/topic-reader';

jest.setTimeout(90_000);

interface Invoice {
  id: number;
  number: string;
  status: string;
  total: string;
  customerEmail: string;
  internalNote: string | null;
  password: string | null;
  updatedAt?: Date;
  deletedAt?: Date | null;
}
interface OrderLine {
  orderId: number;
  lineNo: number;
  sku: string;
  qty: number;
}
interface Scratch {
  id: number;
  v: string;
}

const suffix = randomUUID().slice(0, 8);
const InvoiceSchema = new EntitySchema<Invoice>({
  name: 'Invoice',
  tableName: `it_invoice_${suffix}`,
  columns: {
    id: { type: Number, primary: true, generated: 'increment' },
    number: { type: String },
    status: { type: String },
    total: { type: 'numeric', precision: 10, scale: 2 },
    customerEmail: { type: String, name: 'customer_email' },
    internalNote: { type: String, nullable: true, name: 'internal_note' },
    password: { type: String, nullable: true },
    updatedAt: { type: 'timestamptz', updateDate: true, name: 'updated_at' },
    deletedAt: { type: 'timestamptz', deleteDate: true, nullable: true, name: 'deleted_at' },
  },
});
const OrderLineSchema = new EntitySchema<OrderLine>({
  name: 'OrderLine',
  tableName: `it_order_line_${suffix}`,
  columns: {
    orderId: { type: Number, primary: true, name: 'order_id' },
    lineNo: { type: Number, primary: true, name: 'line_no' },
    sku: { type: String },
    qty: { type: Number },
  },
});
const ScratchSchema = new EntitySchema<Scratch>({
  name: 'Scratch',
  tableName: `it_scratch_${suffix}`,
  columns: { id: { type: Number, primary: true, generated: 'increment' }, v: { type: String } },
});

const topic = `test.producer-typeorm-${randomUUID()}`;
const reader = new TopicReader(topic);
let client: AuditClient;
let ds: DataSource;
let subscriber: AuditSubscriber;
let invoices: Repository<Invoice>;
let lines: Repository<OrderLine>;
const INVOICE = `it_invoice_${suffix}`;

const newInvoice = (n: string, extra: Partial<Invoice> = {}): Partial<Invoice> => ({
  number: n,
  status: 'draft',
  total: '100.00',
  customerEmail: 'c@example.com',
  internalNote: 'do not audit me',
  password: 'pw-123',
  ...extra,
});

beforeAll(async () => {
  await reader.start();
  client = new AuditClient({ brokers: [KAFKA_BROKERS], topic, sourceService: 'typeorm-it', lingerMs: 5 });
  ds = new DataSource({
    type: 'postgres',
    url: PG_URL,
    entities: [InvoiceSchema, OrderLineSchema, ScratchSchema],
    synchronize: true,
    logging: false,
  });
  await ds.initialize();
  subscriber = attachTypeormAudit(ds, client, {
    exclude: ['Scratch'],
    excludeFields: ['updatedAt'],
    models: { Invoice: { objectType: 'invoice', excludeFields: ['internalNote'] } },
  });
  invoices = ds.getRepository(InvoiceSchema);
  lines = ds.getRepository(OrderLineSchema);
});

afterAll(async () => {
  if (ds?.isInitialized) {
    for (const t of [INVOICE, `it_order_line_${suffix}`, `it_scratch_${suffix}`]) await ds.query(`DROP TABLE IF EXISTS "${t}"`);
    await ds.destroy();
  }
  await client?.close();
  await reader.stop();
});

const ofInvoice = (id: number | string) => (r: AuditRecord) => r.object_type === 'invoice' && r.object_id === String(id);

describe('TypeORM subscriber -> Kafka', () => {
  it('records create, update (before/after/changed fields only) and delete of entities; excluded fields never appear', async () => {
    const saved = await runWithAuditContext({ actorId: 'u-1', tenantId: 'acme', requestId: 'req-crud' }, () => invoices.save(newInvoice('INV-1')));
    const loaded = await invoices.findOneByOrFail({ id: saved.id });
    loaded.status = 'sent';
    loaded.total = '150.5';
    loaded.internalNote = 'changed but excluded';
    await runWithAuditContext({ actorId: 'u-2' }, () => invoices.save(loaded));
    await runWithAuditContext({ actorId: 'u-3' }, () => invoices.remove(loaded));

    const events = await reader.waitFor(ofInvoice(saved.id), 3);
    expect(events.map((e) => [e.action, e.actor_id])).toEqual([
      ['create', 'u-1'],
      ['update', 'u-2'],
      ['delete', 'u-3'],
    ]);
    const [create, update, del] = events as [AuditRecord, AuditRecord, AuditRecord];
    expect(create).toMatchObject({ tenant_id: 'acme', request_id: 'req-crud', before: null });
    expect(JSON.parse(create.after!)).toMatchObject({ id: saved.id, number: 'INV-1', status: 'draft', customerEmail: 'c@example.com', password: MASK });
    expect(create.metadata).toMatchObject({ 'orm.entity': 'Invoice', 'orm.source': 'typeorm' });
    expect(Object.keys(update.changes).sort()).toEqual(['status', 'total']);
    expect(update.changes.status).toEqual({ old: '"draft"', new: '"sent"' });
    expect(JSON.parse(update.before!)).toMatchObject({ status: 'draft' });
    expect(JSON.parse(update.after!)).toMatchObject({ status: 'sent', number: 'INV-1' });
    expect(JSON.parse(del.before!)).toMatchObject({ id: saved.id, status: 'sent' });
    for (const e of events) {
      const text = JSON.stringify([e.before, e.after, e.changes]);
      expect(text).not.toContain('internalNote');
      expect(text).not.toContain('updatedAt');
      expect(text).not.toContain('pw-123');
    }
  });

  it('composite keys are joined; excluded entities are skipped', async () => {
    await lines.save({ orderId: 7, lineNo: 2, sku: 'SKU-9', qty: 3 });
    await ds.getRepository(ScratchSchema).save({ v: 'x' });
    const [ev] = await reader.waitFor((r) => r.object_type === `it_order_line_${suffix}`);
    expect(ev).toMatchObject({ object_id: '7:2', action: 'create' });
    const skipped = subscriber.stats.skipped;
    expect(skipped).toBeGreaterThanOrEqual(1);
    expect(await reader.settled(client, (r) => r.object_type.startsWith('it_scratch'))).toEqual([]);
  });

  it('writes without entities (update/delete by criteria) give events with the criteria and no before-image', async () => {
    const a = await invoices.save(newInvoice('INV-A'));
    const b = await invoices.save(newInvoice('INV-B'));
    const c = await invoices.save(newInvoice('INV-C', { status: 'void' }));
    await invoices.update(a.id, { status: 'paid' });
    await invoices.update({ status: 'void', number: 'INV-C' }, { total: '0' });
    await invoices.delete([a.id, b.id]);

    const [byId] = await reader.waitFor((r) => ofInvoice(a.id)(r) && r.action === 'update');
    expect(byId).toMatchObject({ before: null });
    expect(JSON.parse(byId!.after!)).toEqual({ status: 'paid' });
    expect(byId!.changes).toEqual({});
    expect(byId!.metadata).toMatchObject({ 'orm.before_image': 'unavailable', 'orm.affected': '1' });
    expect(byId!.metadata['orm.where']).toMatch(/"id" = \$\d+/);

    const [byCriteria] = await reader.waitFor((r) => r.object_type === 'invoice' && r.object_id === '*' && r.action === 'update');
    expect(byCriteria!.metadata['orm.where']).toMatch(/"status" = \$\d+ AND "number" = \$\d+/);
    expect(JSON.parse(byCriteria!.metadata['orm.parameters']!)).toEqual(['void', 'INV-C']);
    expect(JSON.parse(byCriteria!.after!)).toEqual({ total: '0' });

    const deletes = await reader.waitFor((r) => r.object_type === 'invoice' && r.action === 'delete' && [String(a.id), String(b.id)].includes(r.object_id), 2);
    expect(deletes.map((d) => d.object_id).sort()).toEqual([String(a.id), String(b.id)].sort());
    expect(deletes.every((d) => d.before === null && d.metadata['orm.before_image'] === 'unavailable')).toBe(true);
    expect(c.id).toBeGreaterThan(0);
  });

  it('soft remove and recover', async () => {
    const inv = await invoices.save(newInvoice('INV-S'));
    await invoices.softRemove(inv);
    await invoices.recover(inv);
    const events = await reader.waitFor(ofInvoice(inv.id), 3);
    expect(events.map((e) => e.action)).toEqual(['create', 'soft_delete', 'restore']);
  });

  it('holds events until commit and drops them on rollback', async () => {
    const discarded = subscriber.stats.discarded;
    let rolledBackId = 0;
    await expect(
      ds.transaction(async (m) => {
        const inv = await m.save(InvoiceSchema, newInvoice('INV-RB'));
        rolledBackId = inv.id;
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    const committed = await ds.transaction(async (m) => {
      const one = await m.save(InvoiceSchema, newInvoice('INV-T1'));
      const two = await m.save(InvoiceSchema, newInvoice('INV-T2'));
      // Nothing is on the topic before the commit.
      await client.flush(5000);
      expect(reader.records.some((r) => ofInvoice(one.id)(r))).toBe(false);
      return [one.id, two.id];
    });
    const got = await reader.waitFor((r) => r.object_type === 'invoice' && committed.map(String).includes(r.object_id), 2);
    expect(got).toHaveLength(2);
    expect(subscriber.stats.discarded).toBe(discarded + 1);
    expect(await reader.settled(client, ofInvoice(rolledBackId))).toEqual([]);
  });

  it('a rolled-back savepoint drops its own events only; the outer transaction keeps the rest', async () => {
    const ids = await ds.transaction(async (m) => {
      const outer = await m.save(InvoiceSchema, newInvoice('INV-OUTER'));
      let inner = 0;
      await m
        .transaction(async (n) => {
          inner = (await n.save(InvoiceSchema, newInvoice('INV-INNER'))).id;
          throw new Error('inner abort');
        })
        .catch(() => undefined);
      const kept = await m.transaction(async (n) => (await n.save(InvoiceSchema, newInvoice('INV-KEPT'))).id);
      return { outer: outer.id, inner, kept };
    });
    const got = await reader.waitFor((r) => r.object_type === 'invoice' && [ids.outer, ids.kept].map(String).includes(r.object_id), 2);
    expect(got.map((r) => r.action)).toEqual(['create', 'create']);
    expect(await reader.settled(client, ofInvoice(ids.inner))).toEqual([]);
  });

  it('never breaks the write when recording fails', async () => {
    const broken = createTypeormAuditSubscriber({ record: () => { throw new Error('audit down'); } }, { include: ['Invoice'] });
    ds.subscribers.push(broken);
    try {
      const inv = await invoices.save(newInvoice('INV-X'));
      expect(inv.id).toBeGreaterThan(0);
      expect(broken.stats.failed).toBe(1);
    } finally {
      ds.subscribers.splice(ds.subscribers.indexOf(broken), 1);
    }
  });

  it('actor set by an auth middleware reaches ORM events made after awaits in the handler', async () => {
    const app = express();
    app.use(auditExpress(client));
    app.use(express.json());
    app.use((req, _res, next) => {
      const user = req.headers['x-user'];
      if (typeof user === 'string') (req as unknown as { user: { id: string } }).user = { id: user };
      next();
    });
    app.post('/invoices', async (req, res) => {
      await new Promise((r) => setTimeout(r, 5));
      const inv = await invoices.save(newInvoice((req.body as { number: string }).number));
      updateAuditContext({ tenantId: 'tenant-from-handler' });
      inv.status = 'approved';
      await invoices.save(inv);
      res.status(201).json({ id: inv.id });
    });
    const server: Server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const rid = `rid-${randomUUID()}`;
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/invoices`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-user': 'grace', 'x-request-id': rid },
        body: JSON.stringify({ number: 'INV-HTTP' }),
      });
      const { id } = (await res.json()) as { id: number };
      const events = await reader.waitFor(ofInvoice(id), 2);
      expect(events.map((e) => [e.action, e.actor_id, e.request_id, e.http_path, e.tenant_id])).toEqual([
        ['create', 'grace', rid, '/invoices', null],
        ['update', 'grace', rid, '/invoices', 'tenant-from-handler'],
      ]);
      const [req] = await reader.waitFor((r) => r.request_id === rid && r.action === 'request');
      expect(req).toMatchObject({ actor_id: 'grace', http_status: 201, tenant_id: 'tenant-from-handler' });
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it('process steps wrap ORM writes: step events, and ORM events tagged with the step', async () => {
    const proc = auditProcess(client, 'invoice-approval', { objectType: 'approval', objectId: `ap-${suffix}` });
    const inv = await proc.step('create', () => invoices.save(newInvoice('INV-P')));
    await expect(
      proc.step('approve', async () => {
        await invoices.update(inv.id, { status: 'approved' });
        throw new Error('approver missing');
      }),
    ).rejects.toThrow('approver missing');
    proc.fail(new Error('approval incomplete'));
    const steps = await reader.waitFor((r) => r.object_type === 'approval' && r.object_id === `ap-${suffix}`, 3);
    expect(steps.map((s) => [s.action, s.metadata['process.step'] ?? null, s.metadata['process.status'], s.error_message])).toEqual([
      ['process_step', 'create', 'success', null],
      ['process_step', 'approve', 'failure', 'approver missing'],
      ['process_end', null, 'failure', 'approval incomplete'],
    ]);
    expect(steps.every((s) => s.duration_ms !== null && s.duration_ms >= 0)).toBe(true);
    const orm = await reader.waitFor(ofInvoice(inv.id), 2);
    expect(orm.map((e) => [e.action, e.metadata['process.step'], e.metadata['process.id']])).toEqual([
      ['create', 'create', proc.runId],
      ['update', 'approve', proc.runId],
    ]);
  });
});
