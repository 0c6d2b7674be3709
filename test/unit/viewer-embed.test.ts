import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { readEnv } from '../../config/env';
import type { JsonEvent } from '../../viewer/export/event';
import { embedConfig } from '../../viewer/embed/config';
import { registerEmbedRoutes } from '../../viewer/embed/routes';
import { EmbedTokenError, EmbedTokenRequestError, mintEmbedToken, verifyEmbedToken } from '../../viewer/embed/token';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ROOT, runCli } from '../helpers/infra';
import { jsonEvent } from '../helpers/viewer-events';

const KEY = randomBytes(32);
const T0 = new Date('2026-03-01T12:00:00.000Z');
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);
const APP = 'https://app.example.com';

interface Answer {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
  json(): unknown;
}

/**
 * GET on a listening app. Not fastify's inject: its light-my-request requires an ES-module-only
 * `cookie`, which jest's CommonJS runtime cannot load.
 */
async function get(app: FastifyInstance, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${await urlOf(app)}${path}`, { headers });
  const body = await res.text();
  return { statusCode: res.status, headers: Object.fromEntries(res.headers), body, json: () => JSON.parse(body) as unknown };
}

const listening = new WeakMap<FastifyInstance, Promise<string>>();
function urlOf(app: FastifyInstance): Promise<string> {
  let url = listening.get(app);
  if (url === undefined) listening.set(app, (url = app.listen({ port: 0, host: '127.0.0.1' })));
  return url;
}

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof EmbedTokenError) return err.reason;
    throw err;
  }
  throw new Error('expected the token to be refused');
}

describe('embed tokens', () => {
  it('round-trips tenant, object, fields and validity', () => {
    const token = mintEmbedToken({ tenant: 'acme', object: 'invoice:7:a', fields: ['status', 'total'], ttlSeconds: 120 }, KEY, T0);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(verifyEmbedToken(token, KEY, at(119))).toEqual({
      tenant: 'acme',
      object: { type: 'invoice', id: '7:a' },
      fields: ['status', 'total'],
      issuedAt: T0.getTime() / 1000,
      expiresAt: T0.getTime() / 1000 + 120,
    });
    expect(verifyEmbedToken(mintEmbedToken({ tenant: 'acme', object: 'invoice:7' }, KEY, T0), KEY, at(299)).fields).toBeNull();
  });

  it('refuses expired, early, tampered, foreign-key and malformed tokens with the reason', () => {
    const token = mintEmbedToken({ tenant: 'acme', object: 'invoice:7' }, KEY, T0);
    expect(refusal(() => verifyEmbedToken(token, KEY, at(300)))).toBe('expired');
    expect(refusal(() => verifyEmbedToken(token, KEY, at(-31)))).toBe('not-yet-valid');
    // Claims rewritten (another object), the MAC kept: the MAC no longer matches.
    const [, mac] = token.split('.');
    const forged = Buffer.from(JSON.stringify({ v: 1, t: 'acme', o: 'invoice:8', iat: T0.getTime() / 1000, exp: T0.getTime() / 1000 + 300 })).toString('base64url');
    expect(refusal(() => verifyEmbedToken(`${forged}.${mac}`, KEY, T0))).toBe('bad-signature');
    const flipped = token.slice(0, -2) + (token.endsWith('A') ? 'B' : 'A') + token.slice(-1);
    expect(refusal(() => verifyEmbedToken(flipped, KEY, T0))).toBe('bad-signature');
    // The MAC's last character carries two spare bits: spelt otherwise, it decodes to the same
    // bytes, and must still be refused as altered.
    const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const spare = token.slice(0, -1) + B64[B64.indexOf(token.slice(-1)) ^ 1];
    expect(Buffer.from(spare.split('.')[1]!, 'base64url')).toEqual(Buffer.from(token.split('.')[1]!, 'base64url'));
    expect(refusal(() => verifyEmbedToken(spare, KEY, T0))).toBe('bad-signature');
    expect(refusal(() => verifyEmbedToken(token, randomBytes(32), T0))).toBe('bad-signature');
    for (const junk of ['', 'abc', '.', 'a.', '.b', 'a.b.c', 'a b.c', 'x'.repeat(10_000)]) expect(refusal(() => verifyEmbedToken(junk, KEY, T0))).toBe('malformed');
  });

  it('mints only for a TYPE:ID object, a tenant, a TTL of 1..3600 s and a key of 32+ bytes', () => {
    const ok = { tenant: 'acme', object: 'invoice:7' };
    expect(() => mintEmbedToken({ ...ok, object: 'invoice' }, KEY)).toThrow(EmbedTokenRequestError);
    expect(() => mintEmbedToken({ ...ok, object: ':7' }, KEY)).toThrow(EmbedTokenRequestError);
    expect(() => mintEmbedToken({ ...ok, tenant: '' }, KEY)).toThrow(EmbedTokenRequestError);
    expect(() => mintEmbedToken({ ...ok, ttlSeconds: 3601 }, KEY)).toThrow(/1 to 3600/);
    expect(() => mintEmbedToken({ ...ok, ttlSeconds: 0 }, KEY)).toThrow(EmbedTokenRequestError);
    expect(() => mintEmbedToken({ ...ok, fields: ['a\u0000'] }, KEY)).toThrow(EmbedTokenRequestError);
    expect(() => mintEmbedToken(ok, randomBytes(31))).toThrow(/at least 32 bytes/);
    expect(verifyEmbedToken(mintEmbedToken({ ...ok, ttlSeconds: 3600 }, KEY, T0), KEY, at(3599)).expiresAt - T0.getTime() / 1000).toBe(3600);
  });
});

describe('embed configuration', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'embed-key-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('reads the key file and the origins, naming the variable at fault', async () => {
    await writeFile(join(dir, 'good.key'), KEY);
    await writeFile(join(dir, 'short.key'), randomBytes(16));
    expect(embedConfig(readEnv({}))).toBeNull();
    expect(embedConfig(readEnv({ AUDIT_EMBED_KEY_FILE: join(dir, 'good.key'), AUDIT_EMBED_ORIGINS: `${APP}, http://127.0.0.1:8080` }))).toEqual({
      key: KEY,
      allowedOrigins: [APP, 'http://127.0.0.1:8080'],
    });
    expect(() => embedConfig(readEnv({ AUDIT_EMBED_KEY_FILE: join(dir, 'short.key') }))).toThrow(/AUDIT_EMBED_KEY_FILE.*at least 32 bytes/);
    expect(() => embedConfig(readEnv({ AUDIT_EMBED_KEY_FILE: join(dir, 'missing.key') }))).toThrow(/AUDIT_EMBED_KEY_FILE.*cannot read/);
    for (const bad of ['https://app.example.com/', 'app.example.com', 'javascript:alert(1)', "https://a.example; script-src 'unsafe-inline'"]) {
      expect(() => readEnv({ AUDIT_EMBED_ORIGINS: bad })).toThrow(/AUDIT_EMBED_ORIGINS/);
    }
  });
});

describe('embed routes', () => {
  const INJECT = '<img src=x onerror="window.__pwned=1">';
  const events: JsonEvent[] = [
    jsonEvent({ action: 'create', after: { status: 'draft', total: 10, secret_note: 'internal' } }),
    jsonEvent({ event_id: 'e2', occurred_at: '2026-03-01T11:00:00.000000Z', changes: { status: { old: 'draft', new: INJECT }, total: { old: 10, new: 12 } }, ip: '10.0.0.9', user_agent: 'curl' }),
    jsonEvent({ event_id: 'e3', occurred_at: '2026-03-01T11:30:00.000000Z', changes: { secret_note: { old: 'internal', new: 'more internal' } } }),
    // Another tenant's event a faulty loadHistory lets through: the route drops it.
    jsonEvent({ event_id: 'other-tenant', tenant_id: 'globex', changes: { status: { old: 'a', new: 'globex secret' } } }),
    jsonEvent({ event_id: 'other-object', object_id: '8', changes: { status: { old: 'a', new: 'invoice 8' } } }),
    jsonEvent({ event_id: 'e4', occurred_at: '2026-03-01T12:00:00.000000Z', actor_id: 'evil\u202Eresu', changes: { 'javascript:alert(1)': { old: '=1+1', new: '</script><script>alert(1)</script>' } } }),
  ];
  let app: FastifyInstance;
  let now = T0;
  const calls: { object: { type: string; id: string }; tenant: string }[] = [];

  beforeAll(async () => {
    app = Fastify({ logger: false });
    registerEmbedRoutes(app, {
      key: KEY,
      allowedOrigins: [APP, 'http://127.0.0.1:9999'],
      loadHistory: async (object, tenant) => {
        calls.push({ object, tenant });
        return events;
      },
      now: () => now,
    });
    await app.ready();
  });
  afterAll(() => app.close());
  beforeEach(() => {
    now = T0;
    calls.length = 0;
  });

  const token = (over: Partial<Parameters<typeof mintEmbedToken>[0]> = {}) => mintEmbedToken({ tenant: 'acme', object: 'invoice:7', ...over }, KEY, T0);
  const history = (query: string, origin: string | undefined = APP) =>
    get(app, `/embed/history?${query}`, origin ? { origin } : {});

  it('answers the token object of the token tenant, only the token fields, no request details, CORS for an allowed origin', async () => {
    const res = await history(`token=${token({ fields: ['status', 'total'] })}`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['access-control-allow-origin']).toBe(APP);
    expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    expect(res.headers.vary).toMatch(/Origin/);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(calls).toEqual([{ object: { type: 'invoice', id: '7' }, tenant: 'acme' }]);
    const body = res.json() as { object: string; events: Record<string, unknown>[] };
    expect(body.object).toBe('invoice:7');
    // e3 changed only a hidden field and e4 only an unlisted one: both left out, not shown empty.
    expect(body.events).toEqual([
      { event_id: events[0]!.event_id, occurred_at: '2026-03-01T10:00:00.000000Z', action: 'create', actor_id: 'user-42', actor_type: 'user', changes: [{ field: 'status', old: null, new: 'draft' }, { field: 'total', old: null, new: 10 }] },
      { event_id: 'e2', occurred_at: '2026-03-01T11:00:00.000000Z', action: 'update', actor_id: 'user-42', actor_type: 'user', changes: [{ field: 'status', old: 'draft', new: INJECT }, { field: 'total', old: 10, new: 12 }] },
    ]);
    expect(res.body).not.toMatch(/globex|invoice 8|10\.0\.0\.9|curl|internal/);
  });

  it('without fields shows every field; stored control and bidi characters arrive escaped', async () => {
    const body = (await history(`token=${token()}`)).json() as { events: { event_id: string; actor_id: string; changes: { field: string }[] }[] };
    expect(body.events.map((e) => e.event_id)).toEqual([events[0]!.event_id, 'e2', 'e3', 'e4']);
    const e4 = body.events.find((e) => e.event_id === 'e4')!;
    expect(e4.actor_id).toBe('evil\\u202Eresu');
    expect(e4.changes[0]!.field).toBe('javascript:alert(1)');
  });

  it('refuses expired, tampered, early, other-object and missing tokens, and origins not allowed', async () => {
    const cases: [string, string | undefined, number, string][] = [
      [`token=${token()}`, 'https://evil.example', 403, 'origin-not-allowed'],
      [`token=${token()}&object=invoice:8`, APP, 403, 'other-object'],
      [`token=${token()}&object=invoice`, APP, 403, 'other-object'],
      [`token=${token().replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'))}`, APP, 401, 'bad-signature'],
      [`token=${mintEmbedToken({ tenant: 'acme', object: 'invoice:7' }, randomBytes(32), T0)}`, APP, 401, 'bad-signature'],
      [`token=${mintEmbedToken({ tenant: 'acme', object: 'invoice:7' }, KEY, at(120))}`, APP, 401, 'not-yet-valid'],
      ['', APP, 401, 'malformed'],
      ['token=a&token=b', APP, 401, 'malformed'],
    ];
    for (const [query, origin, status, reason] of cases) {
      const res = await history(query, origin);
      expect({ query, status: res.statusCode, body: res.json() as unknown }).toEqual({ query, status, body: { error: 'refused', reason } });
      if (reason === 'origin-not-allowed') expect(res.headers['access-control-allow-origin']).toBeUndefined();
    }
    now = at(300);
    expect((await history(`token=${token()}`)).json()).toEqual({ error: 'refused', reason: 'expired' });
    expect((await history(`token=${token()}&object=invoice:7`, undefined)).statusCode).toBe(401);
    expect(calls).toEqual([]);
  });

  it('an unreadable history is 503 with nothing of the error', async () => {
    const failing = Fastify({ logger: false });
    registerEmbedRoutes(failing, { key: KEY, allowedOrigins: [], loadHistory: () => Promise.reject(new Error('s3://bucket/secret-path unreachable')), now: () => T0 });
    const res = await get(failing, `/embed/history?token=${token()}`);
    await failing.close();
    expect(res.statusCode).toBe(503);
    expect(res.json()).toEqual({ error: 'unavailable', reason: 'unavailable' });
  });

  it('the frame: escaped HTML, no script, a nonce for its style, frame-ancestors of the allowed origins', async () => {
    const res = await get(app, `/embed/frame?token=${token()}`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toMatch(/frame-ancestors https:\/\/app\.example\.com http:\/\/127\.0\.0\.1:9999$/);
    expect(csp).toMatch(/default-src 'none'/);
    expect(csp).not.toMatch(/script-src|unsafe-inline/);
    const nonce = /style-src 'nonce-([A-Za-z0-9+/=]+)'/.exec(csp)?.[1];
    expect(nonce).toBeDefined();
    expect(res.body).toContain(`<style nonce="${nonce}">`);
    // Tags only as escaped text; the onerror= left is inside that text, not an attribute.
    expect(res.body).not.toMatch(/<script|<img|<\/script>|onerror="/i);
    expect(res.body).toContain('&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;');
    expect(res.body).toContain('&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(res.body).toContain('evil\\u202Eresu');
    expect(res.body).not.toMatch(/globex|invoice 8|10\.0\.0\.9/);
    // A fresh nonce each time: one seen once is no use later.
    const again = await get(app, `/embed/frame?token=${token()}`);
    expect(again.headers['content-security-policy']).not.toBe(csp);

    now = at(301);
    const expired = await get(app, `/embed/frame?token=${token()}`);
    expect(expired.statusCode).toBe(401);
    expect(expired.body).toContain('data-reason="expired"');
    expect(String(expired.headers['content-security-policy'])).toMatch(/frame-ancestors https:\/\/app\.example\.com/);
  });

  it('no allowed origins: frame-ancestors none and every Origin refused', async () => {
    const closed = Fastify({ logger: false });
    registerEmbedRoutes(closed, { key: KEY, allowedOrigins: [], loadHistory: async () => events, now: () => T0 });
    const frame = await get(closed, `/embed/frame?token=${token()}`);
    const cors = await get(closed, `/embed/history?token=${token()}`, { origin: APP });
    await closed.close();
    expect(String(frame.headers['content-security-policy'])).toMatch(/frame-ancestors 'none'$/);
    expect(cors.statusCode).toBe(403);
  });

  it('serves the component as a script any origin may load, building its DOM with textContent only', async () => {
    const res = await get(app, '/embed/audit-history.js');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(res.headers['cross-origin-resource-policy']).toBe('cross-origin');
    expect(res.body).toContain("customElements.define('audit-history'");
    expect(res.body).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
    expect(() => new Function(res.body)).not.toThrow();
  });
});

describe('audit-admin embed-token', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'embed-cli-'));
    await writeFile(join(dir, 'embed.key'), KEY);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('prints a token the routes accept; bad arguments exit 2', async () => {
    const vars = { AUDIT_EMBED_KEY_FILE: join(dir, 'embed.key') };
    const ok = await runCli('maintenance', ['embed-token', '--tenant', 'acme', '--object', 'invoice:7', '--fields', 'status,total', '--ttl', '60'], vars);
    expect({ code: ok.code, stderr: ok.stderr }).toEqual({ code: 0, stderr: '' });
    const claims = verifyEmbedToken(ok.stdout.trim(), KEY);
    expect(claims).toMatchObject({ tenant: 'acme', object: { type: 'invoice', id: '7' }, fields: ['status', 'total'] });
    expect(claims.expiresAt - claims.issuedAt).toBe(60);

    const bad: [string[], Record<string, string>, RegExp][] = [
      [['embed-token', '--tenant', 'acme', '--object', 'invoice'], vars, /TYPE:ID/],
      [['embed-token', '--tenant', 'acme', '--object', 'invoice:7', '--ttl', '7200'], vars, /1 to 3600/],
      [['embed-token', '--object', 'invoice:7'], vars, /--tenant/],
      [['embed-token', '--tenant', 'acme', '--object', 'invoice:7'], {}, /AUDIT_EMBED_KEY_FILE/],
    ];
    for (const [args, env, message] of bad) {
      const r = await runCli('maintenance', args, env);
      expect({ args, code: r.code, stdout: r.stdout }).toEqual({ args, code: 2, stdout: '' });
      expect(r.stderr).toMatch(message);
    }
  });
});

describe('audit-pipeline/embed', () => {
  it('is the token module alone: an app minting tokens loads nothing of the viewer', async () => {
    const dir = join(ROOT, 'packages', 'audit-pipeline');
    const pkg = JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')) as { exports: Record<string, { default: string }> };
    const entry = join(dir, pkg.exports['./embed']!.default);
    const script = `const m = require(${JSON.stringify(entry)}); process.stdout.write(JSON.stringify({ names: Object.keys(m), loaded: Object.keys(require.cache) }))`;
    const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { cwd: ROOT });
    const { names, loaded } = JSON.parse(stdout) as { names: string[]; loaded: string[] };
    expect(names).toEqual(expect.arrayContaining(['mintEmbedToken', 'readEmbedKeyFile', 'EmbedTokenRequestError']));
    expect(loaded.map((p) => p.slice(dir.length + 1)).sort()).toEqual(['dist/viewer/embed/entry.js', 'dist/viewer/embed/token.js']);
  });
});
