/**
 * The NestJS module on the Express adapter (and the Fastify adapter), against the real broker, PostgreSQL
 * and audit-cdc: real HTTP requests to a Nest app publish request events and
 * `@Audited` events (read back from Kafka and decoded), the client is injected
 * into controllers, the request's context reaches the handler's awaits and the
 * row changes audit-cdc records for a transaction the handler runs, and the
 * module made by `forRootAsync` closes (flushes) the client it made at shutdown.
 */
import 'reflect-metadata';
import { randomUUID } from 'node:crypto';
import {
  type CanActivate,
  ConflictException,
  Controller,
  type ExecutionContext,
  Get,
  Inject,
  Injectable,
  type INestApplication,
  Module,
  Param,
  Post,
  UseGuards,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { Pool } from 'pg';
import { withAuditTransaction } from '../../cdc';
import { AuditClient, auditExpress, currentAuditContext } from '../../producer';
import { AUDIT_CLIENT, Audited, AuditModule, InjectAuditClient } from '../../producer/entries/nestjs';
import { CdcProcess, cdcEnv, dropCapture, PG_URL, RecordReader } from '../helpers/cdc';
import { KAFKA_BROKERS } from '../helpers/infra';
import { TopicReader } from '../helpers/topic-reader';

jest.setTimeout(120_000);

const topic = `test.nestjs-${randomUUID()}`;
const asyncTopic = `test.nestjs-async-${randomUUID()}`;
const reader = new TopicReader(topic);
const asyncReader = new TopicReader(asyncTopic);
const { table, vars } = cdcEnv('nestjs');
const cdcReader = new RecordReader(vars.AUDIT_TOPIC!);
const pool = new Pool({ connectionString: PG_URL, max: 2 });
let cdc: CdcProcess;
let client: AuditClient;
let app: INestApplication;
let base: string;

/** Stands for an auth guard (passport's AuthGuard sets `req.user` the same way); `x-user: mallory` is refused. */
@Injectable()
class HeaderAuthGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<{ headers: Record<string, string | undefined>; user?: { id: string } }>();
    const user = req.headers['x-user'];
    if (user) req.user = { id: user };
    return user !== 'mallory';
  }
}

@Injectable()
class InvoiceService {
  constructor(@InjectAuditClient() private readonly audit: AuditClient) {}

  /** Deep in a service, after awaits: the request's context is there. */
  async read(id: string): Promise<{ id: string; requestId: string | null | undefined; actor: string | null | undefined }> {
    await new Promise((r) => setTimeout(r, 5));
    void this.audit.record({ objectType: 'invoice', objectId: id, action: 'read' });
    return { id, requestId: currentAuditContext()?.requestId, actor: currentAuditContext()?.actorId };
  }
}

@Controller('invoices')
@UseGuards(HeaderAuthGuard)
class InvoicesController {
  constructor(
    private readonly invoices: InvoiceService,
    @Inject(AUDIT_CLIENT) private readonly audit: AuditClient,
  ) {}

  @Get(':id')
  read(@Param('id') id: string) {
    return this.invoices.read(id);
  }

  @Post(':id/approve')
  @Audited('invoice.approve', { metadata: { via: 'it' } })
  async approve(@Param('id') id: string) {
    await new Promise((r) => setTimeout(r, 5));
    return { id, approved: true, sameClient: this.audit instanceof AuditClient };
  }

  @Post(':id/void')
  @Audited('invoice.void')
  void(@Param('id') id: string) {
    throw new ConflictException(`invoice ${id} is paid`);
  }

  @Get('crash/now')
  crash(): never {
    throw new RangeError('ledger out of balance');
  }

  /** A database transaction in the handler: audit-cdc attributes its row changes to the request. */
  @Post(':id/ship')
  @Audited('invoice.ship', { objectId: (call) => (call.result as { id: string }).id })
  async ship(@Param('id') id: string) {
    await withAuditTransaction(pool, (c) => c.query(`UPDATE "${table}" SET status = 'shipped' WHERE id = $1`, [Number(id)]));
    return { id };
  }
}

function appModule(auditClient: AuditClient) {
  @Module({
    imports: [AuditModule.forRoot({ client: auditClient, http: { trustProxy: ['loopback'], exclude: ['/health'] } })],
    controllers: [InvoicesController],
    providers: [InvoiceService],
  })
  class AppModule {}
  return AppModule;
}

beforeAll(async () => {
  await pool.query(`CREATE TABLE "${table}" (id int PRIMARY KEY, status text NOT NULL)`);
  await pool.query(`INSERT INTO "${table}" SELECT g, 'new' FROM generate_series(1, 5) g`);
  // One after the other: three topic creations at once drew UNKNOWN_TOPIC_OR_PARTITION from a loaded broker.
  await reader.start();
  await asyncReader.start();
  await cdcReader.start();
  cdc = new CdcProcess(vars);
  await cdc.ready();
  client = new AuditClient({ brokers: [KAFKA_BROKERS], topic, sourceService: 'nest-it', lingerMs: 5 });
  app = await NestFactory.create(appModule(client), { logger: false });
  await app.listen(0, '127.0.0.1');
  base = await app.getUrl();
});

afterAll(async () => {
  await app?.close();
  await client?.close();
  await cdc?.stop('SIGTERM').catch(() => undefined);
  await Promise.all([reader.stop(), asyncReader.stop(), cdcReader.stop()]);
  await dropCapture(pool, vars, table);
  await pool.end();
});

const byRequest = (rid: string) => (r: { request_id: string | null }) => r.request_id === rid;

describe('AuditModule on the Express adapter -> Kafka', () => {
  it('records the request event with actor, ip, request id, status and duration; the context reaches the service', async () => {
    const rid = `rid-${randomUUID()}`;
    const res = await fetch(`${base}/invoices/41`, { headers: { 'x-user': 'alice', 'x-request-id': rid, 'x-forwarded-for': '198.51.100.7' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-request-id')).toBe(rid);
    expect(await res.json()).toEqual({ id: '41', requestId: rid, actor: 'alice' });
    const events = await reader.waitFor(byRequest(rid), 2);
    const request = events.find((e) => e.action === 'request')!;
    expect(request).toMatchObject({
      object_type: 'http_request',
      object_id: rid,
      actor_id: 'alice',
      actor_type: 'user',
      ip: '198.51.100.7',
      http_method: 'GET',
      http_path: '/invoices/41',
      http_status: 200,
      source_service: 'nest-it',
    });
    expect(request.duration_ms).toBeGreaterThanOrEqual(5);
    expect(request.metadata['http.route']).toBe('/invoices/:id');
    expect(events.find((e) => e.action === 'read')).toMatchObject({ object_type: 'invoice', object_id: '41', actor_id: 'alice', ip: '198.51.100.7' });
  });

  it('records @Audited events on success and on failure, with the status the exception filter gave', async () => {
    const ok = `rid-${randomUUID()}`;
    const res = await fetch(`${base}/invoices/42/approve`, { method: 'POST', headers: { 'x-user': 'bob', 'x-request-id': ok } });
    expect(res.status).toBe(201);
    expect(await res.json()).toEqual({ id: '42', approved: true, sameClient: true });
    const events = await reader.waitFor(byRequest(ok), 2);
    const approve = events.find((e) => e.action === 'invoice.approve')!;
    expect(approve).toMatchObject({ object_type: 'invoice', object_id: '42', actor_id: 'bob', error_type: null });
    expect(approve.metadata).toMatchObject({ via: 'it', outcome: 'success', 'nest.handler': 'InvoicesController.approve' });
    expect(events.find((e) => e.action === 'request')).toMatchObject({ http_status: 201, http_method: 'POST' });

    const bad = `rid-${randomUUID()}`;
    const res2 = await fetch(`${base}/invoices/43/void`, { method: 'POST', headers: { 'x-user': 'bob', 'x-request-id': bad } });
    expect(res2.status).toBe(409);
    const failed = await reader.waitFor(byRequest(bad), 2);
    expect(failed.find((e) => e.action === 'invoice.void')).toMatchObject({ object_id: '43', actor_id: 'bob', error_type: 'ConflictException', error_message: 'invoice 43 is paid' });
    expect(failed.find((e) => e.action === 'invoice.void')!.metadata.outcome).toBe('failure');
    // 4xx: the request event has the status, not the error (errors are kept for 5xx).
    expect(failed.find((e) => e.action === 'request')).toMatchObject({ http_status: 409, error_type: null });
  });

  it('records the error of a 5xx request', async () => {
    const rid = `rid-${randomUUID()}`;
    const res = await fetch(`${base}/invoices/crash/now`, { headers: { 'x-request-id': rid } });
    expect(res.status).toBe(500);
    const [e] = await reader.waitFor(byRequest(rid));
    expect(e).toMatchObject({ action: 'request', http_status: 500, actor_id: null, error_type: 'RangeError', error_message: 'ledger out of balance' });
  });

  it("puts the request's context on the row changes of a transaction the handler runs (audit-cdc)", async () => {
    const rid = `rid-${randomUUID()}`;
    const res = await fetch(`${base}/invoices/3/ship`, { method: 'POST', headers: { 'x-user': 'carol', 'x-request-id': rid } });
    expect(res.status).toBe(201);
    const [row] = await cdcReader.waitFor(byRequest(rid));
    expect(row).toMatchObject({ object_type: table, object_id: '3', action: 'update', actor_id: 'carol', http_method: 'POST', http_path: '/invoices/3/ship' });
    const [ship] = await reader.waitFor((r) => r.request_id === rid && r.action === 'invoice.ship');
    expect(ship).toMatchObject({ object_id: '3', actor_id: 'carol' });
  });
});

describe('AuditModule.forRootAsync', () => {
  const CONFIG = Symbol('config');

  @Module({ providers: [{ provide: CONFIG, useValue: { brokers: [KAFKA_BROKERS], topic: asyncTopic } }], exports: [CONFIG] })
  class ConfigModule {}

  it('makes the client from injected configuration and closes (flushes) it when the app shuts down', async () => {
    @Module({
      imports: [
        AuditModule.forRootAsync({
          imports: [ConfigModule],
          inject: [CONFIG],
          useFactory: async (cfg: { brokers: string[]; topic: string }) => ({ clientOptions: { ...cfg, sourceService: 'nest-async', lingerMs: 200 } }),
        }),
      ],
      controllers: [InvoicesController],
      providers: [InvoiceService],
    })
    class AsyncAppModule {}
    const asyncApp = await NestFactory.create(AsyncAppModule, { logger: false });
    await asyncApp.listen(0, '127.0.0.1');
    const rid = `rid-${randomUUID()}`;
    const res = await fetch(`${await asyncApp.getUrl()}/invoices/44/approve`, { method: 'POST', headers: { 'x-user': 'dora', 'x-request-id': rid } });
    expect(res.status).toBe(201);
    const made = asyncApp.get<AuditClient>(AUDIT_CLIENT);
    expect(made).toBeInstanceOf(AuditClient);
    expect(made).not.toBe(client);
    const close = jest.spyOn(made, 'close');
    await asyncApp.close();
    // The module closed the client it made, and the close waited for delivery.
    expect(close).toHaveBeenCalledTimes(1);
    expect(made.stats()).toMatchObject({ delivered: 2, dropped: 0 });
    const events = await asyncReader.waitFor(byRequest(rid), 2);
    expect(events.map((e) => `${e.action}:${e.source_service}:${e.actor_id}`).sort()).toEqual(['invoice.approve:nest-async:dora', 'request:nest-async:dora']);
  });
});

describe('AuditModule on the Fastify adapter', () => {
  it('records the request event and the @Audited event with the same context', async () => {
    const fastifyApp = await NestFactory.create(appModule(client), new FastifyAdapter(), { logger: false });
    await fastifyApp.listen(0, '127.0.0.1');
    try {
      const rid = `rid-${randomUUID()}`;
      const res = await fetch(`${await fastifyApp.getUrl()}/invoices/45/approve`, { method: 'POST', headers: { 'x-user': 'erin', 'x-request-id': rid } });
      expect(res.status).toBe(201);
      expect(res.headers.get('x-request-id')).toBe(rid);
      const events = await reader.waitFor(byRequest(rid), 2);
      expect(events.find((e) => e.action === 'request')).toMatchObject({ http_status: 201, http_method: 'POST', http_path: '/invoices/45/approve', actor_id: 'erin', ip: '127.0.0.1' });
      expect(events.find((e) => e.action === 'request')!.metadata['http.route']).toBe('/invoices/:id/approve');
      expect(events.find((e) => e.action === 'invoice.approve')).toMatchObject({ object_id: '45', actor_id: 'erin' });
    } finally {
      await fastifyApp.close();
    }
  });
});

describe('AuditModule with the Express middleware mounted too (main.ts)', () => {
  it('records requests a guard refuses; a handled request gets one request event and its @Audited event in the same context', async () => {
    const both = await NestFactory.create(appModule(client), { logger: false });
    both.use(auditExpress(client, { trustProxy: ['loopback'] }));
    await both.listen(0, '127.0.0.1');
    try {
      const url = await both.getUrl();
      const refused = `rid-${randomUUID()}`;
      const res = await fetch(`${url}/invoices/46/approve`, { method: 'POST', headers: { 'x-user': 'mallory', 'x-request-id': refused } });
      expect(res.status).toBe(403);
      const [denied] = await reader.waitFor(byRequest(refused));
      expect(denied).toMatchObject({ action: 'request', http_status: 403, actor_id: 'mallory' });

      const ok = `rid-${randomUUID()}`;
      const res2 = await fetch(`${url}/invoices/47/approve`, { method: 'POST', headers: { 'x-user': 'fred', 'x-request-id': ok } });
      expect(res2.status).toBe(201);
      await reader.waitFor(byRequest(ok), 2);
      const events = await reader.settled(client, byRequest(ok));
      expect(events.map((e) => `${e.action}:${e.actor_id}`).sort()).toEqual(['invoice.approve:fred', 'request:fred']);
      // The guard's refusal reached no handler: no @Audited event for it.
      expect(reader.records.filter((r) => r.request_id === refused && r.action !== 'request')).toEqual([]);
    } finally {
      await both.close();
    }
  });
});
