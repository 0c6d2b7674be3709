/**
 * Express middleware against the real broker: every event is read back from
 * Kafka and decoded with the project's RecordDecoder.
 */
import { createHmac, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express, { type Request } from 'express';
import {
  AuditClient,
  auditExpress,
  auditExpressErrors,
  currentAuditContext,
  jwtClaim,
  MASK,
  TRUNCATED_MARKER_KEY,
  type AuditExpressOptions,
} from '../../producer';
import { KAFKA_BROKERS } from '../helpers/infra';
import { TopicReader } from '../helpers/topic-reader';

jest.setTimeout(60_000);

const SECRET = 'it-secret';
function jwt(claims: object): string {
  const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const head = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc(claims)}`;
  return `${head}.${createHmac('sha256', SECRET).update(head).digest('base64url')}`;
}
const verify = (token: string) => {
  const [h, p, s] = token.split('.');
  return createHmac('sha256', SECRET).update(`${h}.${p}`).digest('base64url') === s;
};

const topic = `test.producer-express-${randomUUID()}`;
const reader = new TopicReader(topic);
let client: AuditClient;
const servers: Server[] = [];

async function listen(app: express.Express): Promise<string> {
  const server = app.listen(0, '127.0.0.1');
  servers.push(server);
  await new Promise((r) => server.once('listening', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** The app under test: audit first, then body parser, a JWT auth middleware, routes, the audit error middleware. */
function buildApp(options: AuditExpressOptions): express.Express {
  const app = express();
  app.use(auditExpress(client, options));
  app.use(express.json({ limit: '1mb' }));
  const subject = jwtClaim('sub', { verify });
  app.use((req, _res, next) => {
    const sub = subject(req);
    if (sub) (req as Request & { user?: { id: string } }).user = { id: sub };
    next();
  });
  app.post('/orders/:id', async (req, res) => {
    await new Promise((r) => setTimeout(r, 10));
    // Explicit event deep in the handler, after awaits: the request's context is there.
    void client.record({ objectType: 'order', objectId: req.params.id as string, action: 'update', changes: { status: { old: 'new', new: 'paid' } } });
    res.status(201).json({ ok: true, seenRequestId: currentAuditContext()?.requestId, seenActor: currentAuditContext()?.actorId });
  });
  app.get('/health', (_req, res) => void res.send('ok'));
  app.get('/static/app.js', (_req, res) => void res.send('js'));
  app.get('/api/items', (_req, res) => void res.json([]));
  app.get('/boom', async () => {
    await new Promise((r) => setTimeout(r, 2));
    throw new RangeError('inventory underflow');
  });
  app.get('/sync-boom', () => {
    throw new Error('sync failure');
  });
  app.get('/missing', (_req, res) => void res.status(404).json({ error: 'nope' }));
  app.post('/auth/login', (req, res) => {
    const { username, password } = req.body as { username: string; password: string };
    if (password === 'correct horse') res.json({ token: jwt({ sub: `user-${username}` }) });
    else res.status(401).json({ error: 'bad credentials' });
  });
  app.post('/auth/logout', (_req, res) => void res.status(204).end());
  app.post('/upload', (_req, res) => void res.json({ ok: true }));
  app.use(auditExpressErrors());
  return app;
}

let base: string;

beforeAll(async () => {
  await reader.start();
  client = new AuditClient({ brokers: [KAFKA_BROKERS], topic, sourceService: 'express-it', lingerMs: 5, maxFieldBytes: 2048 });
  base = await listen(
    buildApp({
      trustProxy: ['loopback'],
      exclude: ['/health', /^\/static\//],
      capture: { body: true, query: true, headers: true },
      auth: { loginPaths: ['/auth/login'], logoutPaths: ['/auth/logout'], method: 'password' },
    }),
  );
});

afterAll(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
  await client?.close();
  await reader.stop();
});

describe('express middleware -> Kafka', () => {
  it('records the request with context, masking and the actor from the JWT; the context follows awaits into the handler', async () => {
    const rid = `rid-${randomUUID()}`;
    const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await fetch(`${base}/orders/77?expand=lines&api_key=k-123`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-request-id': rid,
        traceparent: `00-${trace}-00f067aa0ba902b7-01`,
        'x-forwarded-for': '198.51.100.23',
        'user-agent': 'it-agent/1.0',
        authorization: `Bearer ${jwt({ sub: 'alice' })}`,
        cookie: 'sid=abc',
      },
      body: JSON.stringify({ note: 'pay', password: 'hunter2', card: { number: '4111111111111111', holder: 'A' } }),
    });
    expect(res.status).toBe(201);
    expect(res.headers.get('x-request-id')).toBe(rid);
    expect(await res.json()).toEqual({ ok: true, seenRequestId: rid, seenActor: 'alice' });

    const [reqEvent] = await reader.waitFor((r) => r.request_id === rid && r.action === 'request');
    expect(reqEvent).toMatchObject({
      object_type: 'http_request',
      object_id: rid,
      actor_id: 'alice',
      actor_type: 'user',
      trace_id: trace,
      ip: '198.51.100.23',
      user_agent: 'it-agent/1.0',
      http_method: 'POST',
      http_path: '/orders/77',
      http_status: 201,
      source_service: 'express-it',
      error_type: null,
    });
    expect(reqEvent!.duration_ms).toBeGreaterThanOrEqual(9);
    expect(reqEvent!.metadata['http.route']).toBe('/orders/:id');
    expect(JSON.parse(reqEvent!.metadata['http.body']!)).toEqual({ note: 'pay', password: MASK, card: { number: MASK, holder: 'A' } });
    expect(JSON.parse(reqEvent!.metadata['http.query']!)).toEqual({ expand: 'lines', api_key: MASK });
    const headers = JSON.parse(reqEvent!.metadata['http.headers']!) as Record<string, string>;
    expect(headers).toMatchObject({ authorization: MASK, cookie: MASK, 'user-agent': 'it-agent/1.0' });
    expect(JSON.stringify(reqEvent)).not.toContain('hunter2');

    const [orderEvent] = await reader.waitFor((r) => r.request_id === rid && r.object_type === 'order');
    expect(orderEvent).toMatchObject({ object_id: '77', action: 'update', actor_id: 'alice', trace_id: trace, ip: '198.51.100.23', http_path: '/orders/77' });
  });

  it('captures error type, message and stack of 5xx responses only', async () => {
    const rids = { async: `rid-${randomUUID()}`, sync: `rid-${randomUUID()}`, notFound: `rid-${randomUUID()}` };
    expect((await fetch(`${base}/boom`, { headers: { 'x-request-id': rids.async } })).status).toBe(500);
    expect((await fetch(`${base}/sync-boom`, { headers: { 'x-request-id': rids.sync } })).status).toBe(500);
    expect((await fetch(`${base}/missing`, { headers: { 'x-request-id': rids.notFound } })).status).toBe(404);
    const [a] = await reader.waitFor((r) => r.request_id === rids.async);
    const [s] = await reader.waitFor((r) => r.request_id === rids.sync);
    const [n] = await reader.waitFor((r) => r.request_id === rids.notFound);
    expect(a).toMatchObject({ http_status: 500, error_type: 'RangeError', error_message: 'inventory underflow' });
    expect(a!.error_stack).toMatch(/RangeError: inventory underflow\n\s+at /);
    expect(s).toMatchObject({ http_status: 500, error_type: 'Error', error_message: 'sync failure' });
    expect(s!.error_stack).toContain('producer-express.test.ts');
    expect(n).toMatchObject({ http_status: 404, error_type: null, error_message: null, error_stack: null });
  });

  it('detects login, failed login and logout; never records the password', async () => {
    const failRid = `rid-${randomUUID()}`;
    const okRid = `rid-${randomUUID()}`;
    const outRid = `rid-${randomUUID()}`;
    const bad = await fetch(`${base}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': failRid },
      body: JSON.stringify({ username: 'mallory', password: 'guess-1' }),
    });
    expect(bad.status).toBe(401);
    const good = await fetch(`${base}/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': okRid },
      body: JSON.stringify({ email: 'bob@example.com', username: 'bob', password: 'correct horse' }),
    });
    const { token } = (await good.json()) as { token: string };
    const out = await fetch(`${base}/auth/logout`, { method: 'POST', headers: { 'x-request-id': outRid, authorization: `Bearer ${token}` } });
    expect(out.status).toBe(204);

    const [failed] = await reader.waitFor((r) => r.request_id === failRid && r.action === 'login_failed');
    expect(failed).toMatchObject({ object_type: 'user', object_id: 'mallory', actor_id: null, http_path: '/auth/login' });
    expect(failed!.metadata).toMatchObject({ 'auth.reason': 'http_401', 'auth.method': 'password' });
    const [login] = await reader.waitFor((r) => r.request_id === okRid && r.action === 'login');
    // The app did not set the actor during the login request: the user name from the body is used.
    expect(login).toMatchObject({ object_type: 'user', object_id: 'bob', actor_id: 'bob' });
    const [logout] = await reader.waitFor((r) => r.request_id === outRid && r.action === 'logout');
    expect(logout).toMatchObject({ object_type: 'user', object_id: 'user-bob', actor_id: 'user-bob' });
    const [failedReq] = await reader.waitFor((r) => r.request_id === failRid && r.action === 'request');
    expect(failedReq!.metadata['http.body']).toBe(JSON.stringify({ username: 'mallory', password: MASK }));
    const all = JSON.stringify(reader.records.filter((r) => [failRid, okRid, outRid].includes(r.request_id ?? '')));
    expect(all).not.toContain('guess-1');
    expect(all).not.toContain('correct horse');
  });

  it('truncates an oversized body and marks the record', async () => {
    const rid = `rid-${randomUUID()}`;
    const res = await fetch(`${base}/upload`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': rid },
      body: JSON.stringify({ blob: 'z'.repeat(200_000) }),
    });
    expect(res.status).toBe(200);
    const [ev] = await reader.waitFor((r) => r.request_id === rid);
    expect(Buffer.byteLength(ev!.metadata['http.body']!)).toBeLessThan(2200);
    expect(ev!.metadata['http.body']).toMatch(/…\[truncated \d+ bytes\]$/);
    expect(ev!.metadata[TRUNCATED_MARKER_KEY]).toContain('metadata.http.body');
    expect(client.stats().truncated).toBeGreaterThanOrEqual(1);
  });

  it('skips excluded paths and, with include, audits only the included ones', async () => {
    const rids = [1, 2, 3].map(() => `rid-${randomUUID()}`);
    await fetch(`${base}/health`, { headers: { 'x-request-id': rids[0]! } });
    await fetch(`${base}/static/app.js`, { headers: { 'x-request-id': rids[1]! } });
    await fetch(`${base}/api/items`, { headers: { 'x-request-id': rids[2]! } });
    const only = await listen(buildApp({ include: ['/api/*'], exclude: [/\/internal$/] }));
    const inc = [1, 2].map(() => `rid-${randomUUID()}`);
    await fetch(`${only}/missing`, { headers: { 'x-request-id': inc[0]! } });
    await fetch(`${only}/api/items`, { headers: { 'x-request-id': inc[1]! } });
    await reader.waitFor((r) => r.request_id === rids[2] || r.request_id === inc[1], 2);
    await client.flush(10_000);
    await new Promise((r) => setTimeout(r, 500));
    const seen = new Set(reader.records.map((r) => r.request_id));
    expect([rids.map((id) => seen.has(id)), inc.map((id) => seen.has(id))]).toEqual([
      [false, false, true],
      [false, true],
    ]);
  });

  it('resolves the client address per trustProxy setting', async () => {
    const xff = '203.0.113.5, 10.1.2.3';
    const cases: [AuditExpressOptions['trustProxy'], string][] = [
      [undefined, '127.0.0.1'],
      [1, '10.1.2.3'],
      [2, '203.0.113.5'],
      [true, '203.0.113.5'],
      [['127.0.0.1/32', '10.0.0.0/8'], '203.0.113.5'],
      [['127.0.0.1'], '10.1.2.3'],
      [['192.0.2.1'], '127.0.0.1'],
    ];
    const rids: string[] = [];
    for (const [trustProxy] of cases) {
      const url = await listen(buildApp(trustProxy === undefined ? {} : { trustProxy }));
      const rid = `rid-${randomUUID()}`;
      rids.push(rid);
      await fetch(`${url}/api/items`, { headers: { 'x-request-id': rid, 'x-forwarded-for': xff } });
    }
    const events = await reader.waitFor((r) => rids.includes(r.request_id ?? ''), rids.length);
    const byRid = new Map(events.map((e) => [e.request_id, e.ip]));
    expect(rids.map((rid) => byRid.get(rid))).toEqual(cases.map(([, ip]) => ip));
  });

  it('generates a request id when none (or a hostile one) is sent', async () => {
    const res = await fetch(`${base}/api/items`, { headers: { 'x-request-id': 'bad id with spaces "quoted"' } });
    const rid = res.headers.get('x-request-id')!;
    expect(rid).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const [ev] = await reader.waitFor((r) => r.request_id === rid);
    expect(ev).toMatchObject({ object_id: rid, trace_id: null, actor_id: null });
  });
});
