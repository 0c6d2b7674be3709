import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { z } from 'zod';
import { ConfigError } from '../config/env';
import { ALL_TENANTS, type Scope } from './scope';

/**
 * The viewer's own settings (viewer/README.md "Configuration"). Read once at
 * start-up; a bad value stops `audit-query serve` with a message naming the variable.
 */

/** A bearer token and what it may see. */
export interface TokenGrant {
  /** Who the token's reads are recorded as: its `name`, else `token:` and the first hex digits of its hash. */
  identity: string;
  /** SHA-256 of the token: tokens are never kept or compared in clear after start-up. */
  digest: Buffer;
  scope: Scope;
}

export interface ProxyConfig {
  /** Lower-case header name carrying the signed-in user's identity. */
  header: string;
  /** Peers whose header is believed (the reverse proxy's addresses); every other peer's header is ignored. */
  trusted: BlockList;
  /** Identity -> tenants; an identity not listed is refused. */
  tenants: ReadonlyMap<string, Scope>;
}

export interface ViewerConfig {
  tokens: readonly TokenGrant[];
  proxy: ProxyConfig | null;
  /** Key of the session cookie's MAC. */
  cookieSecret: Buffer;
  /** True when the cookie secret was generated for this process (sessions end with it). */
  cookieSecretGenerated: boolean;
  /** Session lifetime in seconds. */
  sessionSeconds: number;
  /** Send cookies with `Secure` (behind TLS). */
  secureCookies: boolean;
  /** Events per page in the API and the pages. */
  pageSize: number;
}

const tenantsSchema = z.union([z.literal('*'), z.array(z.string().min(1)).min(1)]);
const tokensSchema = z
  .array(
    z.strictObject({
      token: z.string().min(16, 'a token must have at least 16 characters'),
      tenants: tenantsSchema,
      name: z.string().min(1).max(200).optional(),
    }),
  )
  .min(1, 'at least one token');
const proxyTenantsSchema = z.record(z.string().min(1), tenantsSchema);

export function scopeOf(tenants: z.infer<typeof tenantsSchema>): Scope {
  return tenants === '*' ? ALL_TENANTS : { kind: 'tenants', tenants: new Set(tenants) };
}

function parseJsonVar<T>(name: string, text: string, schema: z.ZodType<T>): T {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`invalid configuration: ${name}: not JSON (${(err as Error).message})`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.length ? `${i.path.join('.')}: ` : ''}${i.message}`).join('; ');
    throw new ConfigError(`invalid configuration: ${name}: ${issues}`);
  }
  return parsed.data;
}

export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

function readTokens(env: NodeJS.ProcessEnv): TokenGrant[] {
  const inline = env.AUDIT_VIEWER_TOKENS;
  const file = env.AUDIT_VIEWER_TOKENS_FILE;
  if (inline && file) throw new ConfigError('invalid configuration: AUDIT_VIEWER_TOKENS and AUDIT_VIEWER_TOKENS_FILE exclude each other');
  let text: string;
  let name: string;
  if (inline) {
    text = inline;
    name = 'AUDIT_VIEWER_TOKENS';
  } else if (file) {
    name = 'AUDIT_VIEWER_TOKENS_FILE';
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`invalid configuration: AUDIT_VIEWER_TOKENS_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
  } else {
    return [];
  }
  const entries = parseJsonVar(name, text, tokensSchema);
  const seen = new Set<string>();
  return entries.map((e) => {
    const digest = tokenDigest(e.token);
    const hex = digest.toString('hex');
    if (seen.has(hex)) throw new ConfigError(`invalid configuration: ${name}: a token is listed twice`);
    seen.add(hex);
    return { identity: e.name ?? `token:${hex.slice(0, 12)}`, digest, scope: scopeOf(e.tenants) };
  });
}

function readProxy(env: NodeJS.ProcessEnv): ProxyConfig | null {
  const header = env.AUDIT_VIEWER_PROXY_HEADER;
  const addresses = env.AUDIT_VIEWER_PROXY_ADDRESSES;
  const mapping = env.AUDIT_VIEWER_PROXY_TENANTS;
  if (!header) {
    if (addresses || mapping) throw new ConfigError('invalid configuration: AUDIT_VIEWER_PROXY_ADDRESSES and AUDIT_VIEWER_PROXY_TENANTS need AUDIT_VIEWER_PROXY_HEADER');
    return null;
  }
  if (!/^[A-Za-z0-9-]{1,100}$/.test(header)) throw new ConfigError('invalid configuration: AUDIT_VIEWER_PROXY_HEADER: a header name (letters, digits, -)');
  if (['authorization', 'cookie', 'host'].includes(header.toLowerCase())) throw new ConfigError(`invalid configuration: AUDIT_VIEWER_PROXY_HEADER: ${header} cannot carry an identity`);
  if (!addresses) throw new ConfigError('invalid configuration: AUDIT_VIEWER_PROXY_ADDRESSES: required with AUDIT_VIEWER_PROXY_HEADER (the reverse proxy\'s addresses)');
  if (!mapping) throw new ConfigError('invalid configuration: AUDIT_VIEWER_PROXY_TENANTS: required with AUDIT_VIEWER_PROXY_HEADER (identity -> tenants)');
  const trusted = new BlockList();
  for (const part of addresses.split(',').map((s) => s.trim()).filter(Boolean)) {
    const [addr = '', bits] = part.split('/');
    const family = isIP(addr);
    if (family === 0) throw new ConfigError(`invalid configuration: AUDIT_VIEWER_PROXY_ADDRESSES: ${JSON.stringify(part)} is not an IP address or CIDR`);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) {
      trusted.addAddress(addr, type);
    } else {
      const prefix = Number(bits);
      if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) {
        throw new ConfigError(`invalid configuration: AUDIT_VIEWER_PROXY_ADDRESSES: ${JSON.stringify(part)} has a bad prefix length`);
      }
      trusted.addSubnet(addr, prefix, type);
    }
  }
  const tenants = new Map<string, Scope>();
  for (const [identity, t] of Object.entries(parseJsonVar('AUDIT_VIEWER_PROXY_TENANTS', mapping, proxyTenantsSchema))) tenants.set(identity, scopeOf(t));
  return { header: header.toLowerCase(), trusted, tenants };
}

const intVar = (name: string, text: string | undefined, def: number, min: number, max: number): number => {
  if (text === undefined || text === '') return def;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`invalid configuration: ${name}: a whole number from ${min} to ${max} (got ${JSON.stringify(text)})`);
  return n;
};

/** The viewer's configuration; no tokens and no proxy header is refused (no anonymous access). */
export function readViewerConfig(env: NodeJS.ProcessEnv = process.env): ViewerConfig {
  const tokens = readTokens(env);
  const proxy = readProxy(env);
  if (tokens.length === 0 && proxy === null) {
    throw new ConfigError('invalid configuration: AUDIT_VIEWER_TOKENS (or AUDIT_VIEWER_TOKENS_FILE) or AUDIT_VIEWER_PROXY_HEADER must be set: the viewer has no anonymous access');
  }
  const secretText = env.AUDIT_VIEWER_COOKIE_SECRET;
  if (secretText !== undefined && secretText !== '' && secretText.length < 32) {
    throw new ConfigError('invalid configuration: AUDIT_VIEWER_COOKIE_SECRET: at least 32 characters');
  }
  const generated = !secretText;
  const cookieSecret = generated ? randomBytes(32) : Buffer.from(secretText, 'utf8');
  const secure = env.AUDIT_VIEWER_SECURE_COOKIES ?? 'false';
  if (secure !== 'true' && secure !== 'false') throw new ConfigError('invalid configuration: AUDIT_VIEWER_SECURE_COOKIES: true or false');
  return {
    tokens,
    proxy,
    cookieSecret,
    cookieSecretGenerated: generated,
    sessionSeconds: intVar('AUDIT_VIEWER_SESSION_SECONDS', env.AUDIT_VIEWER_SESSION_SECONDS, 8 * 3600, 60, 30 * 86_400),
    secureCookies: secure === 'true',
    pageSize: intVar('AUDIT_VIEWER_PAGE_SIZE', env.AUDIT_VIEWER_PAGE_SIZE, 100, 1, 1000),
  };
}
