/**
 * Fastify plugin against the real broker.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { AuditClient, auditFastify, createHookStats, currentAuditContext, jwtClaim, MASK } from '../../producer';
import { KAFKA_BROKERS } from '../helpers/infra';
import { TopicReader } from '../helpers/topic-reader';

jest.setTimeout(60_000);

function token(sub: string): string {
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'none' })}.${enc({ sub })}.sig`;
}

const topic = `test.producer-fastify-${randomUUID()}`;
const reader = new TopicReader(topic);
let client: AuditClient;
let app: FastifyInstance;
let base: string;
const stats = createHookStats();

beforeAll(async () => {
  await reader.start();
  client = new AuditClient({ brokers: [KAFKA_BROKERS], topic, sourceService: 'fastify-it', lingerMs: 5 });
  app = Fastify();
  await app.register(auditFastify, {
    client,
    stats,
    trustProxy: 1,
    actor: jwtClaim('sub'),
    exclude: ['/health'],
    capture: { body: true },
    auth: { loginPaths: ['/login'], logoutPaths: ['/logout'] },
  });
  // An auth hook running after the plugin's onRequest, like @fastify/jwt would.
  app.addHook('preHandler', async (request) => {
    (request as unknown as { authChecked: boolean }).authChecked = true;
  });
  app.post('/docs/:id', async (request, reply) => {
    await new Promise((r) => setTimeout(r, 10));
    const ctx = currentAuditContext();
    void client.record({ objectType: 'doc', objectId: (request.params as { id: string }).id, action: 'update', after: request.body });
    await Promise.resolve();
    reply.code(202);
    return { requestId: ctx?.requestId ?? null, actor: ctx?.actorId ?? null };
  });
  app.get('/health', async () => 'ok');
  app.get('/fail', async () => {
    await new Promise((r) => setTimeout(r, 2));
    throw new SyntaxError('bad template');
  });
  app.get('/bad', async (_request, reply) => reply.code(400).send({ error: 'bad' }));
  app.post('/login', async (request, reply) => {
    const { password } = request.body as { password: string };
    if (password !== 'ok') return reply.code(403).send({ error: 'no' });
    return { ok: true };
  });
  app.post('/logout', async () => ({ ok: true }));
  base = await app.listen({ port: 0, host: '127.0.0.1' });
});

afterAll(async () => {
  await app?.close();
  await client?.close();
  await reader.stop();
});

describe('fastify plugin -> Kafka', () => {
  it('keeps the request context across body parsing and awaits, records the request', async () => {
    const rid = `rid-${randomUUID()}`;
    const res = await fetch(`${base}/docs/d-1`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-request-id': rid,
        authorization: `Bearer ${token('erin')}`,
        'x-forwarded-for': '192.0.2.44',
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      },
      body: JSON.stringify({ title: 'Q3', secret: 's' }),
    });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ requestId: rid, actor: 'erin' });
    const [doc] = await reader.waitFor((r) => r.request_id === rid && r.object_type === 'doc');
    expect(doc).toMatchObject({ object_id: 'd-1', actor_id: 'erin', ip: '192.0.2.44', trace_id: '0af7651916cd43dd8448eb211c80319c', http_method: 'POST', http_path: '/docs/d-1' });
    expect(JSON.parse(doc!.after!)).toEqual({ title: 'Q3', secret: MASK });
    const [req] = await reader.waitFor((r) => r.request_id === rid && r.action === 'request');
    expect(req).toMatchObject({ object_type: 'http_request', object_id: rid, http_status: 202, actor_id: 'erin', ip: '192.0.2.44' });
    expect(req!.metadata['http.route']).toBe('/docs/:id');
    expect(JSON.parse(req!.metadata['http.body']!)).toEqual({ title: 'Q3', secret: MASK });
    expect(req!.duration_ms).toBeGreaterThanOrEqual(9);
  });

  it('captures the error of a 5xx from onError; not for 4xx; skips excluded paths', async () => {
    const r500 = `rid-${randomUUID()}`;
    const r400 = `rid-${randomUUID()}`;
    const rHealth = `rid-${randomUUID()}`;
    expect((await fetch(`${base}/fail`, { headers: { 'x-request-id': r500 } })).status).toBe(500);
    expect((await fetch(`${base}/bad`, { headers: { 'x-request-id': r400 } })).status).toBe(400);
    expect((await fetch(`${base}/health`, { headers: { 'x-request-id': rHealth } })).status).toBe(200);
    const [e500] = await reader.waitFor((r) => r.request_id === r500);
    expect(e500).toMatchObject({ http_status: 500, error_type: 'SyntaxError', error_message: 'bad template' });
    expect(e500!.error_stack).toContain('bad template');
    const [e400] = await reader.waitFor((r) => r.request_id === r400);
    expect(e400).toMatchObject({ http_status: 400, error_type: null });
    await client.flush(5000);
    await new Promise((r) => setTimeout(r, 300));
    expect(reader.records.some((r) => r.request_id === rHealth)).toBe(false);
    expect(stats.skipped).toBeGreaterThanOrEqual(1);
  });

  it('detects login, failed login (403) and logout', async () => {
    const [a, b, c] = [1, 2, 3].map(() => `rid-${randomUUID()}`);
    await fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': a! }, body: JSON.stringify({ email: 'f@x.io', password: 'nope' }) });
    await fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': b! }, body: JSON.stringify({ email: 'f@x.io', password: 'ok' }) });
    await fetch(`${base}/logout`, { method: 'POST', headers: { 'x-request-id': c!, authorization: `Bearer ${token('frank')}` } });
    const [failed] = await reader.waitFor((r) => r.request_id === a && r.action === 'login_failed');
    expect(failed).toMatchObject({ object_type: 'user', object_id: 'f@x.io', actor_id: null, metadata: expect.objectContaining({ 'auth.reason': 'http_403' }) });
    const [login] = await reader.waitFor((r) => r.request_id === b && r.action === 'login');
    expect(login).toMatchObject({ object_id: 'f@x.io' });
    const [logout] = await reader.waitFor((r) => r.request_id === c && r.action === 'logout');
    expect(logout).toMatchObject({ object_id: 'frank', actor_id: 'frank' });
    expect(stats.failed).toBe(0);
  });
});
