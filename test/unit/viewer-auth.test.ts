/**
 * The viewer's configuration, credentials, escaping and redirects, in process
 * (the server itself, on real services, is test/integration/viewer-api.test.ts).
 */
import type { FastifyRequest } from 'fastify';
import { ConfigError } from '../../config/env';
import { SESSION_COOKIE, Unauthenticated, type Viewer, authenticate, sessionValue } from '../../viewer/auth';
import { readViewerConfig, type ViewerConfig } from '../../viewer/config';
import { BadCursor, CursorCodec } from '../../viewer/cursor';
import { escapeText, href, html } from '../../viewer/render/html';
import { localPath } from '../../viewer/routes/session';

const TOKENS = JSON.stringify([
  { token: 'acme-0123456789abcdef', tenants: ['acme'], name: 'acme-viewer' },
  { token: 'star-0123456789abcdef', tenants: '*' },
]);

function configError(env: Record<string, string>): string {
  try {
    readViewerConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(env)}`);
}

describe('viewer configuration', () => {
  it('refuses to start without tokens and without a proxy header', () => {
    expect(configError({})).toMatch(/AUDIT_VIEWER_TOKENS .* AUDIT_VIEWER_PROXY_HEADER must be set/);
  });

  it('names the variable of each bad value', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ AUDIT_VIEWER_TOKENS: 'nope' }, /^invalid configuration: AUDIT_VIEWER_TOKENS: not JSON/],
      [{ AUDIT_VIEWER_TOKENS: '[]' }, /AUDIT_VIEWER_TOKENS: at least one token/],
      [{ AUDIT_VIEWER_TOKENS: '[{"token":"0123456789abcdef","tenants":"acme"}]' }, /AUDIT_VIEWER_TOKENS: 0\.tenants/],
      [{ AUDIT_VIEWER_TOKENS: '[{"token":"0123456789abcdef","tenants":"*","extra":1}]' }, /AUDIT_VIEWER_TOKENS: .*extra/],
      [{ AUDIT_VIEWER_TOKENS: '[{"token":"0123456789abcdef","tenants":"*"},{"token":"0123456789abcdef","tenants":["a"]}]' }, /listed twice/],
      [{ AUDIT_VIEWER_TOKENS: TOKENS, AUDIT_VIEWER_TOKENS_FILE: '/x' }, /exclude each other/],
      [{ AUDIT_VIEWER_PROXY_HEADER: 'X-User', AUDIT_VIEWER_PROXY_ADDRESSES: '10.0.0.300', AUDIT_VIEWER_PROXY_TENANTS: '{}' }, /AUDIT_VIEWER_PROXY_ADDRESSES: "10.0.0.300" is not an IP/],
      [{ AUDIT_VIEWER_PROXY_HEADER: 'X-User', AUDIT_VIEWER_PROXY_ADDRESSES: '10.0.0.0/33', AUDIT_VIEWER_PROXY_TENANTS: '{}' }, /bad prefix length/],
      [{ AUDIT_VIEWER_PROXY_HEADER: 'X-User', AUDIT_VIEWER_PROXY_ADDRESSES: '10.0.0.1' }, /AUDIT_VIEWER_PROXY_TENANTS: required/],
      [{ AUDIT_VIEWER_PROXY_HEADER: 'Authorization', AUDIT_VIEWER_PROXY_ADDRESSES: '10.0.0.1', AUDIT_VIEWER_PROXY_TENANTS: '{}' }, /cannot carry an identity/],
      [{ AUDIT_VIEWER_PROXY_ADDRESSES: '10.0.0.1' }, /need AUDIT_VIEWER_PROXY_HEADER/],
      [{ AUDIT_VIEWER_TOKENS: TOKENS, AUDIT_VIEWER_PAGE_SIZE: '0' }, /AUDIT_VIEWER_PAGE_SIZE/],
      [{ AUDIT_VIEWER_TOKENS: TOKENS, AUDIT_VIEWER_SESSION_SECONDS: '1e9' }, /AUDIT_VIEWER_SESSION_SECONDS/],
      [{ AUDIT_VIEWER_TOKENS: TOKENS, AUDIT_VIEWER_SECURE_COOKIES: 'yes' }, /AUDIT_VIEWER_SECURE_COOKIES/],
    ];
    for (const [env, pattern] of cases) expect(configError(env)).toMatch(pattern);
  });

  it('keeps token digests, not tokens, and names unnamed tokens by their hash', () => {
    const config = readViewerConfig({ AUDIT_VIEWER_TOKENS: TOKENS });
    expect(config.tokens.map((t) => t.identity)).toEqual(['acme-viewer', expect.stringMatching(/^token:[0-9a-f]{12}$/)]);
    expect(JSON.stringify(config)).not.toContain('0123456789abcdef');
    expect(config.cookieSecretGenerated).toBe(true);
  });
});

describe('viewer credentials', () => {
  let config: ViewerConfig;
  /** What authenticate reads of a request: its headers, the socket's peer and the parsed cookies. */
  const who = async (headers: Record<string, string>, remote = '127.0.0.1'): Promise<Viewer | string> => {
    const pairs = (headers.cookie ?? '').split(';').map((p) => p.trim()).filter(Boolean);
    const cookies = Object.fromEntries(pairs.map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
    const req = { headers, cookies, raw: { socket: { remoteAddress: remote } } } as unknown as FastifyRequest;
    try {
      const v = authenticate(config, req);
      return { identity: v.identity, via: v.via, scope: v.scope.kind === 'all' ? '*' : [...v.scope.tenants] } as unknown as Viewer;
    } catch (err) {
      if (err instanceof Unauthenticated) return JSON.stringify(err.reason);
      throw err;
    }
  };

  beforeAll(() => {
    config = readViewerConfig({
      AUDIT_VIEWER_TOKENS: TOKENS,
      AUDIT_VIEWER_COOKIE_SECRET: 'x'.repeat(40),
      AUDIT_VIEWER_PROXY_HEADER: 'X-Auth-User',
      AUDIT_VIEWER_PROXY_ADDRESSES: '10.1.0.0/16, ::1',
      AUDIT_VIEWER_PROXY_TENANTS: JSON.stringify({ 'ann@acme': ['acme'] }),
    });
  });

  it('takes a bearer token, and a wrong one is never passed over for a cookie or the proxy header', async () => {
    expect(await who({ authorization: 'Bearer acme-0123456789abcdef' })).toEqual({ identity: 'acme-viewer', via: 'token', scope: ['acme'] });
    const cookie = `${SESSION_COOKIE}=${sessionValue(config, config.tokens[1]!)}`;
    expect(await who({ authorization: 'Bearer acme-0123456789abcdeX', cookie })).toBe('"bad-token"');
    expect(await who({ authorization: 'Bearer acme-0123456789abcdeX', 'x-auth-user': 'ann@acme' }, '10.1.2.3')).toBe('"bad-token"');
    expect(await who({})).toBe('"missing"');
  });

  it('accepts a session cookie only unaltered, unexpired, signed with this secret, for a configured token', async () => {
    const grant = config.tokens[0]!;
    const good = sessionValue(config, grant);
    expect(await who({ cookie: `${SESSION_COOKIE}=${good}` })).toMatchObject({ identity: 'acme-viewer', via: 'session' });
    const [v, payload, mac] = good.split('.');
    const forged = Buffer.from(JSON.stringify({ t: config.tokens[1]!.digest.toString('hex'), e: 9_999_999_999 })).toString('base64url');
    const expired = sessionValue(config, grant, Date.now() - (config.sessionSeconds + 10) * 1000);
    const otherSecret = sessionValue({ ...config, cookieSecret: Buffer.from('y'.repeat(40)) }, grant);
    const removed = sessionValue(config, { ...grant, digest: Buffer.alloc(32, 7) });
    for (const bad of [`${v}.${forged}.${mac}`, `${v}.${payload}.${mac!.slice(1)}`, expired, otherSecret, removed, 'v1..', 'garbage']) {
      expect(await who({ cookie: `${SESSION_COOKIE}=${bad}` })).toBe('"bad-session"');
    }
  });

  it('believes the proxy header only from the configured addresses, and only for mapped identities', async () => {
    expect(await who({ 'x-auth-user': 'ann@acme' }, '10.1.200.4')).toEqual({ identity: 'proxy:ann@acme', via: 'proxy', scope: ['acme'] });
    expect(await who({ 'x-auth-user': 'ann@acme' }, '::ffff:10.1.0.9')).toMatchObject({ via: 'proxy' });
    expect(await who({ 'x-auth-user': 'ann@acme' }, '::1')).toMatchObject({ via: 'proxy' });
    expect(await who({ 'x-auth-user': 'ann@acme' }, '10.2.0.1')).toBe('"missing"');
    expect(await who({ 'x-auth-user': 'ann@acme', 'x-forwarded-for': '10.1.0.1' }, '192.0.2.1')).toBe('"missing"');
    expect(await who({ 'x-auth-user': 'bob@acme' }, '10.1.0.1')).toBe('"unmapped-identity"');
  });
});

describe('viewer output', () => {
  it('escapes every interpolated value and shows control and bidi characters as escapes', () => {
    const stored = `<script>alert('x')</script>"\`&\u001b[2J\u202E`;
    const out = html`<td title="${stored}">${stored}</td>`.text;
    expect(out).toBe(`<td title="${escapeText(stored)}">${escapeText(stored)}</td>`);
    expect(escapeText(stored)).toBe('&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&quot;&#96;&amp;\\e[2J\\u202E');
    expect(html`${[html`<b>`, '<i>']}`.text).toBe('<b>&lt;i&gt;');
  });

  it('links only to its own paths, parameters encoded', () => {
    expect(href('/object', { object: 'doc:javascript:alert(1)&x=1' })).toBe('/object?object=doc%3Ajavascript%3Aalert%281%29%26x%3D1');
    expect(() => href('javascript:alert(1)')).toThrow();
    expect(() => href('//evil.example')).toThrow();
  });

  it('redirects after sign-in to local paths only', () => {
    expect(localPath('/actor?actor=a')).toBe('/actor?actor=a');
    for (const bad of ['//evil.example', '/\\evil.example', 'https://evil.example', 'javascript:alert(1)', '/a b', 42, undefined, `/${'a'.repeat(3000)}`]) {
      expect(localPath(bad)).toBe('/');
    }
  });

  it('cursors: refused when altered, made for another query, or with another key', () => {
    const codec = new CursorCodec(Buffer.alloc(32, 1));
    const c = codec.encode('q1', 50);
    expect(codec.decode('q1', c)).toBe(50);
    expect(() => codec.decode('q2', c)).toThrow(BadCursor);
    expect(() => new CursorCodec(Buffer.alloc(32, 2)).decode('q1', c)).toThrow(BadCursor);
    const [body, mac] = c.split('.');
    const other = Buffer.from(JSON.stringify({ q: 'q1', o: 0 })).toString('base64url');
    expect(() => codec.decode('q1', `${other}.${mac}`)).toThrow(BadCursor);
    expect(() => codec.decode('q1', `${body}.${mac}.x`)).toThrow(BadCursor);
  });
});
