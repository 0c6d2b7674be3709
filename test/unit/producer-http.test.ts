import { createHmac } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import express from 'express';
import {
  auditExpress,
  auditExpressErrors,
  compilePatterns,
  createIpResolver,
  currentAuditContext,
  decodeJwtPayload,
  jwtClaim,
  MASK,
  normalizeIp,
  parseTraceparent,
  pathOf,
  requestIdFrom,
  safeRecord,
  createHookStats,
  updateAuditContext,
} from '../../producer';
import { FakeRecorder } from '../helpers/fake-recorder';

function b64url(obj: object): string {
  return Buffer.from(JSON.stringify(obj)).toString('base64url');
}
function jwt(claims: object, secret = 's3cret'): string {
  const head = b64url({ alg: 'HS256', typ: 'JWT' });
  const body = b64url(claims);
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

describe('client address behind proxies', () => {
  const xff = '203.0.113.9, 10.0.0.2, 10.0.0.1';
  it('trusts no proxy by default', () => {
    expect(createIpResolver(undefined)('::ffff:127.0.0.1', xff)).toBe('127.0.0.1');
    expect(createIpResolver(false)('10.0.0.1', xff)).toBe('10.0.0.1');
  });
  it('walks the given number of hops', () => {
    expect(createIpResolver(1)('127.0.0.1', xff)).toBe('10.0.0.1');
    expect(createIpResolver(2)('127.0.0.1', xff)).toBe('10.0.0.2');
    expect(createIpResolver(3)('127.0.0.1', xff)).toBe('203.0.113.9');
    expect(createIpResolver(9)('127.0.0.1', xff)).toBe('203.0.113.9');
  });
  it('trusts everything with true: the left-most address', () => {
    expect(createIpResolver(true)('127.0.0.1', xff)).toBe('203.0.113.9');
  });
  it('stops at the first untrusted address of a CIDR list', () => {
    const r = createIpResolver(['loopback', '10.0.0.0/30']);
    expect(r('127.0.0.1', xff)).toBe('203.0.113.9'); // 10.0.0.0/30 = .0-.3: both proxies trusted
    expect(createIpResolver(['loopback', '10.0.0.1'])('127.0.0.1', xff)).toBe('10.0.0.2');
    expect(createIpResolver(['127.0.0.1'])('198.51.100.1', xff)).toBe('198.51.100.1'); // socket not trusted: header ignored
    expect(createIpResolver(['::1/128', 'uniquelocal'])('::1', '2001:db8::1, 192.168.1.10')).toBe('2001:db8::1');
  });
  it('ignores garbage in the header and rejects bad configuration at start-up', () => {
    expect(createIpResolver(true)('127.0.0.1', 'not-an-ip, 10.0.0.1')).toBe('10.0.0.1');
    expect(createIpResolver(true)('127.0.0.1', '[2001:db8::5]:443, 198.51.100.7:8080')).toBe('2001:db8::5');
    expect(() => createIpResolver(['10.0.0.0/99'])).toThrow(/prefix/);
    expect(() => createIpResolver(['nope'])).toThrow(/not an IP/);
    expect(normalizeIp('fe80::1%eth0')).toBe('fe80::1');
  });
});

describe('request id, trace id, URL patterns', () => {
  it('parses W3C traceparent and rejects invalid ones', () => {
    expect(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toMatchObject({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', flags: '01' });
    expect(parseTraceparent('00-00000000000000000000000000000000-00f067aa0ba902b7-01')).toBeNull();
    expect(parseTraceparent('ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toBeNull();
    expect(parseTraceparent('garbage')).toBeNull();
    expect(parseTraceparent(undefined)).toBeNull();
  });
  it('keeps a sane x-request-id and replaces a hostile one', () => {
    expect(requestIdFrom('abc-123')).toBe('abc-123');
    expect(requestIdFrom('a b"<script>', () => 'gen')).toBe('gen');
    expect(requestIdFrom('x'.repeat(300), () => 'gen')).toBe('gen');
    expect(requestIdFrom(undefined, () => 'gen')).toBe('gen');
  });
  it('matches globs and RegExps against the path only', () => {
    const m = compilePatterns(['/health', '/static/*', /^\/api\/v\d+\/internal/]);
    expect(m('/health')).toBe(true);
    expect(m('/healthz')).toBe(false);
    expect(m('/static/css/a.css')).toBe(true);
    expect(m('/api/v2/internal/x')).toBe(true);
    expect(m('/api/v2/public')).toBe(false);
    expect(pathOf('/a/b?x=1#f')).toBe('/a/b');
    expect(compilePatterns(undefined)('/x')).toBe(false);
  });
});

describe('jwtClaim', () => {
  it('decodes the claim of a Bearer token without verifying by default', () => {
    const get = jwtClaim('sub');
    expect(get({ headers: { authorization: `Bearer ${jwt({ sub: 'u-42' })}` } })).toBe('u-42');
    expect(get({ headers: { authorization: 'Basic abc' } })).toBeNull();
    expect(get({ headers: {} })).toBeNull();
    expect(get({ headers: { authorization: 'Bearer not.a.jwt' } })).toBeNull();
    expect(jwtClaim('user.id')({ headers: { authorization: `Bearer ${jwt({ user: { id: 7 } })}` } })).toBe('7');
    expect(decodeJwtPayload('a.b')).toBeNull();
  });
  it('uses the verify function when given', () => {
    const verify = (token: string) => {
      const [h, p, s] = token.split('.');
      return createHmac('sha256', 's3cret').update(`${h}.${p}`).digest('base64url') === s;
    };
    const get = jwtClaim('sub', { verify });
    expect(get({ headers: { authorization: `Bearer ${jwt({ sub: 'good' })}` } })).toBe('good');
    expect(get({ headers: { authorization: `Bearer ${jwt({ sub: 'forged' }, 'other')}` } })).toBeNull();
    const throwing = jwtClaim('sub', { verify: () => { throw new Error('expired'); } });
    expect(throwing({ headers: { authorization: `Bearer ${jwt({ sub: 'x' })}` } })).toBeNull();
  });
});

describe('safeRecord', () => {
  it('counts a rejected or throwing record and never throws', async () => {
    const stats = createHookStats();
    safeRecord({ record: () => Promise.reject(new Error('full')) }, { objectType: 'a', objectId: 1, action: 'x' }, { stats });
    safeRecord({ record: () => { throw new Error('boom'); } }, { objectType: 'a', objectId: 1, action: 'x' }, { stats });
    await new Promise((r) => setImmediate(r));
    expect(stats).toMatchObject({ recorded: 1, failed: 2 });
  });
});

describe('express middleware with a fake client', () => {
  async function serve(app: express.Express, fn: (base: string) => Promise<void>): Promise<void> {
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      await fn(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    } finally {
      await new Promise((r) => server.close(r));
    }
  }
  const settle = () => new Promise((r) => setTimeout(r, 30));

  it('records one request event with lazy actor, captured masked body, and auth events', async () => {
    const client = new FakeRecorder();
    const app = express();
    const mw = auditExpress(client, {
      capture: { body: true, query: true, headers: ['authorization', 'x-custom', 'cookie'] },
      auth: { loginPaths: ['/login'], logoutPaths: ['/logout'] },
      actor: (req) => (req as unknown as { user?: { id: string } }).user?.id ?? jwtClaim('sub')(req),
    });
    app.use(mw);
    app.use(express.json());
    app.use((req, _res, next) => {
      if (req.headers['x-user']) (req as unknown as { user: { id: string } }).user = { id: String(req.headers['x-user']) };
      next();
    });
    const seen: (string | null | undefined)[] = [];
    app.post('/things', async (_req, res) => {
      await new Promise((r) => setTimeout(r, 2));
      seen.push(currentAuditContext()?.actorId);
      res.status(201).json({ ok: true });
    });
    app.post('/login', (req, res) => {
      const body = req.body as { username?: string; password?: string };
      if (body.password === 'right') {
        updateAuditContext({ actorId: `id-${body.username}` });
        res.json({ ok: true });
      } else res.status(401).json({ ok: false });
    });
    app.post('/logout', (req, res) => {
      if (req.headers['x-read-context']) void currentAuditContext()?.actorId; // e.g. an ORM write before logging out
      delete (req as unknown as { user?: unknown }).user;
      res.json({ ok: true });
    });
    await serve(app, async (base) => {
      const r = await fetch(`${base}/things?q=1&token=abc`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-user': 'alice', authorization: 'Bearer zzz', 'x-custom': 'v', cookie: 'sid=1' },
        body: JSON.stringify({ name: 'n', password: 'p', card: '4111 1111 1111 1111' }),
      });
      expect(r.status).toBe(201);
      expect(r.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
      await fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'bob', password: 'wrong' }) });
      await fetch(`${base}/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'bob', password: 'right' }) });
      // Stateless auth: the token is still there when the response is done.
      await fetch(`${base}/logout`, { method: 'POST', headers: { authorization: `Bearer ${jwt({ sub: 'carol' })}` } });
      // Session auth cleared by the handler: the actor seen earlier in the request is used.
      await fetch(`${base}/logout`, { method: 'POST', headers: { 'x-user': 'dave', 'x-read-context': '1' } });
    });
    await settle();
    expect(seen).toEqual(['alice']);
    const req = client.records.find((r) => r.http_path === '/things')!;
    expect(req).toMatchObject({ action: 'request', object_type: 'http_request', actor_id: 'alice', actor_type: 'user', http_method: 'POST', http_status: 201, ip: '127.0.0.1' });
    expect(JSON.parse(req.metadata['http.body']!)).toEqual({ name: 'n', password: MASK, card: MASK });
    expect(JSON.parse(req.metadata['http.query']!)).toEqual({ q: '1', token: MASK });
    expect(JSON.parse(req.metadata['http.headers']!)).toEqual({ authorization: MASK, 'x-custom': 'v', cookie: MASK });
    expect(req.metadata['http.route']).toBe('/things');
    const auth = client.records.filter((r) => r.object_type === 'user').map((r) => [r.action, r.object_id, r.actor_id, r.metadata['auth.reason'] ?? null]);
    expect(auth).toEqual([
      ['login_failed', 'bob', null, 'http_401'],
      ['login', 'id-bob', 'id-bob', null],
      ['logout', 'carol', 'carol', null],
      ['logout', 'dave', 'dave', null],
    ]);
    expect(JSON.stringify(client.records)).not.toContain('wrong');
    expect(mw.stats.failed).toBe(0);
  });

  it('captures error and stack only on 5xx and survives a broken client and extractor', async () => {
    const client = new FakeRecorder();
    const app = express();
    const mw = auditExpress(client, { actor: () => { throw new Error('extractor bug'); }, exclude: ['/skip*'] });
    app.use(mw);
    app.get('/boom', async () => {
      throw new TypeError('kaput');
    });
    app.get('/teapot', (_req, res) => {
      res.status(418).send('no');
    });
    app.get('/skip/me', (_req, res) => {
      res.send('ok');
    });
    app.use(auditExpressErrors());
    await serve(app, async (base) => {
      expect((await fetch(`${base}/boom`)).status).toBe(500);
      expect((await fetch(`${base}/teapot`)).status).toBe(418);
      expect((await fetch(`${base}/skip/me`)).status).toBe(200);
      client.fail = true;
      expect((await fetch(`${base}/teapot`)).status).toBe(418);
    });
    await settle();
    expect(client.records.map((r) => r.http_path)).toEqual(['/boom', '/teapot']);
    expect(client.records[0]).toMatchObject({ http_status: 500, error_type: 'TypeError', error_message: 'kaput' });
    expect(client.records[0]!.error_stack).toContain('kaput');
    expect(client.records[1]).toMatchObject({ http_status: 418, error_type: null, actor_id: null });
    expect(mw.stats.skipped).toBe(1);
    expect(mw.stats.failed).toBeGreaterThanOrEqual(2); // extractor throws + rejected record
  });
});
