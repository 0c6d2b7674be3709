import type { IncomingHttpHeaders } from 'node:http';

export type JwtClaims = Record<string, unknown>;

export interface JwtClaimOptions {
  /** Header carrying the token (default `authorization`). */
  header?: string;
  /** Scheme before the token (default `Bearer`; empty string: the whole header is the token). */
  scheme?: string;
  /**
   * Verifies the token (signature, expiry...). Return the verified claims, or
   * `true` to use the decoded ones; `false`/`null`/a throw means "no actor".
   * Without it the token is only decoded, NOT verified: use that only behind
   * something that already verified it (an auth middleware, a gateway).
   */
  verify?: (token: string) => JwtClaims | boolean | null | undefined;
}

/** The payload of a compact JWS (`header.payload.signature`), unverified; `null` when malformed. */
export function decodeJwtPayload(token: string): JwtClaims | null {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts[1] || token.length > 16 * 1024) return null;
  try {
    const json: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'));
    return json !== null && typeof json === 'object' && !Array.isArray(json) ? (json as JwtClaims) : null;
  } catch {
    return null;
  }
}

function claimAt(claims: JwtClaims, path: string): unknown {
  if (path in claims) return claims[path];
  let v: unknown = claims;
  for (const key of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

/**
 * An actor extractor reading one claim (default `sub`; dotted paths such as
 * `user.id` work) of the request's Bearer JWT. Results are cached per request.
 */
export function jwtClaim(claim = 'sub', options: JwtClaimOptions = {}): (req: { headers: IncomingHttpHeaders }) => string | null {
  const header = (options.header ?? 'authorization').toLowerCase();
  const scheme = options.scheme ?? 'Bearer';
  // On the request itself rather than in a WeakMap: young-generation collections keep a WeakMap's
  // entries alive, which would carry every request's objects into the old generation.
  const cached = Symbol('audit.jwtClaim');
  type Cached = { [cached]?: { raw: string; value: string | null } };
  return (req) => {
    const rawHeader = req.headers[header];
    const raw = Array.isArray(rawHeader) ? rawHeader[0] : rawHeader;
    if (typeof raw !== 'string') return null;
    const hit = (req as Cached)[cached];
    if (hit && hit.raw === raw) return hit.value;
    let value: string | null = null;
    let token: string | null = raw.trim();
    if (scheme) token = token.toLowerCase().startsWith(`${scheme.toLowerCase()} `) ? token.slice(scheme.length + 1).trim() : null;
    if (token) {
      let claims: JwtClaims | null = null;
      if (options.verify) {
        try {
          const verified = options.verify(token);
          claims = verified === true ? decodeJwtPayload(token) : verified && typeof verified === 'object' ? verified : null;
        } catch {
          claims = null;
        }
      } else {
        claims = decodeJwtPayload(token);
      }
      const v = claims ? claimAt(claims, claim) : undefined;
      if (typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint') value = String(v);
    }
    (req as Cached)[cached] = { raw, value };
    return value;
  };
}
