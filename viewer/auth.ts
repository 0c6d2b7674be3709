import { createHmac, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { type TokenGrant, type ViewerConfig, tokenDigest } from './config';
import type { Scope } from './scope';

/** Who is asking, and what they may see. */
export interface Viewer {
  identity: string;
  scope: Scope;
  /** `embed`: an embed token's one tenant and object (viewer/embed/), never a signed-in person. */
  via: 'token' | 'session' | 'proxy' | 'embed';
}

export const SESSION_COOKIE = 'audit_viewer_session';

/** Why a request is not signed in; every cause gets the same 401 body, so none is told apart. */
export class Unauthenticated extends Error {
  constructor(readonly reason: 'missing' | 'bad-token' | 'bad-session' | 'unmapped-identity') {
    super(`not signed in (${reason})`);
    this.name = 'Unauthenticated';
  }
}

/** Compares against every grant, so the time taken does not tell which token came close. */
export function grantOfToken(config: ViewerConfig, token: string): TokenGrant | null {
  const digest = tokenDigest(token);
  let found: TokenGrant | null = null;
  for (const g of config.tokens) if (timingSafeEqual(g.digest, digest)) found = g;
  return found;
}

function grantOfDigest(config: ViewerConfig, hex: string): TokenGrant | null {
  if (!/^[0-9a-f]{64}$/.test(hex)) return null;
  const digest = Buffer.from(hex, 'hex');
  let found: TokenGrant | null = null;
  for (const g of config.tokens) if (timingSafeEqual(g.digest, digest)) found = g;
  return found;
}

function mac(config: ViewerConfig, payload: string): string {
  return createHmac('sha256', config.cookieSecret).update(`audit-viewer-session\u0000${payload}`).digest('base64url');
}

interface SessionPayload {
  /** The token's SHA-256 (hex): the session ends when the token is removed from the configuration. */
  t: string;
  /** Expiry, seconds since the epoch. */
  e: number;
}

/** The session cookie's value for a signed-in token: its digest and expiry, under a MAC. */
export function sessionValue(config: ViewerConfig, grant: TokenGrant, nowMs = Date.now()): string {
  const payload = Buffer.from(JSON.stringify({ t: grant.digest.toString('hex'), e: Math.floor(nowMs / 1000) + config.sessionSeconds } satisfies SessionPayload)).toString('base64url');
  return `v1.${payload}.${mac(config, payload)}`;
}

function viewerOfSession(config: ViewerConfig, value: string, nowMs = Date.now()): Viewer {
  const [version, payload, sig] = value.split('.');
  if (version !== 'v1' || !payload || !sig) throw new Unauthenticated('bad-session');
  const expected = Buffer.from(mac(config, payload));
  const given = Buffer.from(sig);
  if (expected.length !== given.length || !timingSafeEqual(expected, given)) throw new Unauthenticated('bad-session');
  let parsed: Partial<SessionPayload>;
  try {
    parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Partial<SessionPayload>;
  } catch {
    throw new Unauthenticated('bad-session');
  }
  if (typeof parsed.e !== 'number' || parsed.e * 1000 < nowMs || typeof parsed.t !== 'string') throw new Unauthenticated('bad-session');
  const grant = grantOfDigest(config, parsed.t);
  if (!grant) throw new Unauthenticated('bad-session');
  return { identity: grant.identity, scope: grant.scope, via: 'session' };
}

/** The peer's address as the socket saw it (never a forwarded header: those are what a client chooses). */
function peerAddress(req: FastifyRequest): string | null {
  const raw = req.raw.socket.remoteAddress;
  if (!raw) return null;
  // An IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d.
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(raw);
  return v4 ? v4[1]! : raw;
}

function viewerOfProxy(config: ViewerConfig, req: FastifyRequest): Viewer | null {
  const proxy = config.proxy;
  if (!proxy) return null;
  const value = req.headers[proxy.header];
  if (value === undefined) return null;
  const peer = peerAddress(req);
  const family = peer ? isIP(peer) : 0;
  // Anyone can send the header; only the configured proxy's is believed.
  if (!peer || family === 0 || !proxy.trusted.check(peer, family === 4 ? 'ipv4' : 'ipv6')) return null;
  if (typeof value !== 'string' || value === '') throw new Unauthenticated('unmapped-identity');
  const scope = proxy.tenants.get(value);
  if (!scope) throw new Unauthenticated('unmapped-identity');
  return { identity: `proxy:${value}`, scope, via: 'proxy' };
}

/**
 * The viewer of a request: a bearer token (which, when present, must be valid:
 * a wrong one is never passed over for a cookie), else the trusted proxy's
 * identity header, else the session cookie.
 */
export function authenticate(config: ViewerConfig, req: FastifyRequest): Viewer {
  const authz = req.headers.authorization;
  if (authz !== undefined) {
    const m = /^Bearer +([^\s]+) *$/i.exec(authz);
    const grant = m ? grantOfToken(config, m[1]!) : null;
    if (!grant) throw new Unauthenticated('bad-token');
    return { identity: grant.identity, scope: grant.scope, via: 'token' };
  }
  const proxied = viewerOfProxy(config, req);
  if (proxied) return proxied;
  const cookie = req.cookies[SESSION_COOKIE];
  if (cookie) return viewerOfSession(config, cookie);
  throw new Unauthenticated('missing');
}

export function setSessionCookie(config: ViewerConfig, reply: FastifyReply, grant: TokenGrant): void {
  reply.setCookie(SESSION_COOKIE, sessionValue(config, grant), {
    path: '/',
    httpOnly: true,
    sameSite: 'strict',
    secure: config.secureCookies,
    maxAge: config.sessionSeconds,
  });
}

export function clearSessionCookie(config: ViewerConfig, reply: FastifyReply): void {
  reply.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'strict', secure: config.secureCookies });
}

declare module 'fastify' {
  interface FastifyRequest {
    viewer: Viewer | null;
  }
}
