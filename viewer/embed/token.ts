import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

/**
 * Embed tokens: what an app hands its end user's browser so the embedded history of one
 * object can be read without a session or a third-party cookie. The app mints them with a
 * key it shares with the viewer (AUDIT_EMBED_KEY_FILE); they live minutes, name one tenant
 * and one object, and optionally the object's fields the user may see.
 *
 * Format: base64url(compact JSON claims) "." base64url(HMAC-SHA256(key, first part)).
 * HMAC, not a signature: only the app and the viewer hold the key, and both must anyway.
 * This module loads nothing but node:crypto and node:fs, so an app importing
 * `audit-pipeline/embed` does not load the viewer.
 */

export const DEFAULT_TTL_SECONDS = 300;
export const MAX_TTL_SECONDS = 3600;
/** Shorter keys are refused: HMAC-SHA256 is only as strong as its key. */
export const MIN_KEY_BYTES = 32;
/** Clocks of the app minting and the viewer checking differ a little; `expired` gets no such grace. */
const CLOCK_SKEW_SECONDS = 30;
/** Far above any real token (a few hundred bytes); refuses work on junk before the HMAC. */
const MAX_TOKEN_LENGTH = 8192;
const MAX_FIELDS = 200;
const FIELD_NAME = /^[^\u0000-\u001f\u007f]{1,200}$/;

export interface EmbedTokenRequest {
  tenant: string;
  /** `TYPE:ID`, split at the first colon like `audit-query --object`. */
  object: string;
  /** The object's fields whose changes are shown; absent = all of them. */
  fields?: readonly string[];
  /** Default 300, at most 3600. */
  ttlSeconds?: number;
}

export interface EmbedClaims {
  tenant: string;
  object: { type: string; id: string };
  /** null = every field of the object. */
  fields: readonly string[] | null;
  /** Seconds since the epoch. */
  issuedAt: number;
  expiresAt: number;
}

/** The compact form signed: short keys, since the token travels in URLs. */
interface WireClaims {
  v: 1;
  t: string;
  o: string;
  f?: string[];
  iat: number;
  exp: number;
}

export type EmbedTokenFailure = 'malformed' | 'bad-signature' | 'expired' | 'not-yet-valid';

/** A token refused by verifyEmbedToken; `reason` is what the viewer answers (never more). */
export class EmbedTokenError extends Error {
  constructor(readonly reason: EmbedTokenFailure, detail: string) {
    super(`embed token refused (${reason}): ${detail}`);
    this.name = 'EmbedTokenError';
  }
}

/** A mint request or key the token could not be made from (a bad object, TTL, field list or key). */
export class EmbedTokenRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EmbedTokenRequestError';
  }
}

export function parseEmbedObject(text: string): { type: string; id: string } | null {
  const colon = text.indexOf(':');
  if (colon <= 0 || colon === text.length - 1) return null;
  return { type: text.slice(0, colon), id: text.slice(colon + 1) };
}

function checkKey(key: Buffer): void {
  if (!Buffer.isBuffer(key) || key.length < MIN_KEY_BYTES) {
    throw new EmbedTokenRequestError(`the embed key must be at least ${MIN_KEY_BYTES} bytes (got ${Buffer.isBuffer(key) ? key.length : 'no key'})`);
  }
}

function mac(key: Buffer, payload: string): Buffer {
  return createHmac('sha256', key).update(payload, 'ascii').digest();
}

/**
 * A token for one tenant's object, valid from `now` for ttlSeconds. Throws
 * EmbedTokenRequestError for an object that is not TYPE:ID, an empty tenant, a TTL outside
 * 1..3600 or a key shorter than 32 bytes.
 */
export function mintEmbedToken(request: EmbedTokenRequest, key: Buffer, now: Date = new Date()): string {
  checkKey(key);
  if (typeof request.tenant !== 'string' || request.tenant === '') throw new EmbedTokenRequestError('the tenant must be a non-empty string');
  if (parseEmbedObject(request.object) === null) throw new EmbedTokenRequestError(`the object must be TYPE:ID (got ${JSON.stringify(request.object)})`);
  const ttl = request.ttlSeconds ?? DEFAULT_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TTL_SECONDS) {
    throw new EmbedTokenRequestError(`the TTL must be a whole number of seconds from 1 to ${MAX_TTL_SECONDS} (got ${String(ttl)})`);
  }
  const fields = request.fields === undefined ? undefined : [...new Set(request.fields)];
  if (fields !== undefined && (fields.length === 0 || fields.length > MAX_FIELDS || !fields.every((f) => typeof f === 'string' && FIELD_NAME.test(f)))) {
    throw new EmbedTokenRequestError(`the fields must be 1 to ${MAX_FIELDS} non-empty names without control characters (or none, for all)`);
  }
  const iat = Math.floor(now.getTime() / 1000);
  const wire: WireClaims = { v: 1, t: request.tenant, o: request.object, ...(fields ? { f: fields } : {}), iat, exp: iat + ttl };
  const payload = Buffer.from(JSON.stringify(wire), 'utf8').toString('base64url');
  return `${payload}.${mac(key, payload).toString('base64url')}`;
}

const B64URL = /^[A-Za-z0-9_-]+$/;

function isWire(v: unknown): v is WireClaims {
  if (typeof v !== 'object' || v === null) return false;
  const w = v as Record<string, unknown>;
  return (
    w.v === 1 &&
    typeof w.t === 'string' && w.t !== '' &&
    typeof w.o === 'string' && parseEmbedObject(w.o) !== null &&
    (w.f === undefined || (Array.isArray(w.f) && w.f.length > 0 && w.f.every((f) => typeof f === 'string' && FIELD_NAME.test(f)))) &&
    Number.isInteger(w.iat) && Number.isInteger(w.exp) && (w.exp as number) > (w.iat as number)
  );
}

/**
 * The claims of a token this key minted and that is valid at `now`; otherwise throws
 * EmbedTokenError with the reason. The signature is checked before the claims are read,
 * so nothing an attacker wrote is parsed as JSON.
 */
export function verifyEmbedToken(token: string, key: Buffer, now: Date = new Date()): EmbedClaims {
  checkKey(key);
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) throw new EmbedTokenError('malformed', 'not a token');
  const dot = token.indexOf('.');
  const payload = token.slice(0, dot);
  const sig = token.slice(dot + 1);
  if (dot <= 0 || !B64URL.test(payload) || !B64URL.test(sig)) throw new EmbedTokenError('malformed', 'expected two base64url parts separated by a dot');
  const given = Buffer.from(sig, 'base64url');
  const expected = mac(key, payload);
  // Base64 leaves spare bits in its last character: a token whose MAC decodes to the right
  // bytes but is not spelt as it was minted was altered, and is refused like any other change.
  const canonical = given.toString('base64url') === sig;
  if (!canonical || given.length !== expected.length || !timingSafeEqual(given, expected)) throw new EmbedTokenError('bad-signature', 'not minted with this key, or altered');
  let wire: unknown;
  try {
    wire = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw new EmbedTokenError('malformed', 'the claims are not JSON');
  }
  if (!isWire(wire)) throw new EmbedTokenError('malformed', 'the claims are not those of an embed token of this version');
  const at = now.getTime() / 1000;
  if (at < wire.iat - CLOCK_SKEW_SECONDS) throw new EmbedTokenError('not-yet-valid', `issued at ${new Date(wire.iat * 1000).toISOString()}, in the future`);
  if (at >= wire.exp) throw new EmbedTokenError('expired', `expired at ${new Date(wire.exp * 1000).toISOString()}`);
  return { tenant: wire.t, object: parseEmbedObject(wire.o)!, fields: wire.f ?? null, issuedAt: wire.iat, expiresAt: wire.exp };
}

/**
 * The key in a file (AUDIT_EMBED_KEY_FILE): its bytes as they are, at least 32 of them
 * (`head -c 32 /dev/urandom > embed.key`, or `openssl rand -hex 32 > embed.key`: text works
 * too, since the app and the viewer read the same file the same way).
 */
export function readEmbedKeyFile(path: string): Buffer {
  let key: Buffer;
  try {
    key = readFileSync(path);
  } catch (err) {
    throw new EmbedTokenRequestError(`cannot read the embed key ${path}: ${(err as Error).message}`);
  }
  checkKey(key);
  return key;
}
