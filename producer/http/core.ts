import type { IncomingHttpHeaders } from 'node:http';
import { randomUUID } from 'node:crypto';
import { type AuditEventInput, toJson } from '../build-record';
import type { AuditLogger } from '../client';
import { type AuditContext, currentAuditContext, runWithAuditContext } from '../context';
import { DEFAULT_MASKED_FIELDS, type FieldMatcher, fieldMatcher, MASK, maskValue } from '../mask';
import { recordLoginFailed, recordLogin, recordLogout } from '../auth';
import { type AuditRecorder, createHookStats, guard, type HookSink, type HookStats, hookFailed, safeRecord } from './emit';
import { createIpResolver, type IpResolver, type TrustProxy } from './ip';
import { compilePatterns, pathOf, type UrlPattern } from './patterns';
import { parseTraceparent, requestIdFrom } from './trace';

/** Who is acting: an id, or an id with its type and tenant. `null`/`undefined`: nobody (yet). */
export type ActorInfo =
  | string
  | number
  | bigint
  | null
  | undefined
  | { id: string | number | bigint | null | undefined; type?: string | null; tenantId?: string | number | null };

export type ActorExtractor<Req> = (req: Req) => ActorInfo;

export interface AuthDetectionOptions {
  /** Paths of login endpoints (globs or RegExps). */
  loginPaths?: readonly UrlPattern[];
  /** Paths of logout endpoints. */
  logoutPaths?: readonly UrlPattern[];
  /** Statuses of a login request that mean "failed login" (default [401, 403]). */
  failureStatuses?: readonly number[];
  /** Body fields holding the user name of a login attempt, first present wins (default ['username', 'email']). Only these fields are read. */
  usernameFields?: readonly string[];
  /** Methods of a login request (default ['POST']). */
  loginMethods?: readonly string[];
  /** Methods of a logout request (default ['POST', 'GET', 'DELETE']). */
  logoutMethods?: readonly string[];
  /** Label stored as `metadata["auth.method"]` (e.g. `password`). */
  method?: string;
}

export interface CaptureOptions {
  /** The parsed query string, masked, as JSON in `metadata["http.query"]`. */
  query?: boolean;
  /** The parsed request body (needs a body parser before the route), masked, as JSON in `metadata["http.body"]`. */
  body?: boolean;
  /** Request headers (all, or the listed names) in `metadata["http.headers"]`; credentials headers are always masked. */
  headers?: boolean | readonly string[];
}

/** Options shared by the Express middleware and the Fastify plugin. `Req` is the framework's request. */
export interface AuditHttpOptions<Req> {
  /** Who is acting (default: `req.user?.id`). Read lazily, so an auth middleware running after this one is seen. */
  actor?: ActorExtractor<Req>;
  /** Actor type when the extractor returns a bare id (default `user`). */
  actorType?: string;
  /** Tenant of the request (default: the actor's `tenantId`, if the extractor returns one). */
  tenant?: (req: Req) => string | number | null | undefined;
  /** The request event's object (default `{ type: objectType, id: requestId }`). */
  object?: (req: Req, info: { requestId: string; status: number; path: string }) => { type: string; id: string | number } | null | undefined;
  /** Object type of request events (default `http_request`). */
  objectType?: string;
  /** Only these paths are audited (default: all). */
  include?: readonly UrlPattern[];
  /** These paths are not audited (wins over `include`). */
  exclude?: readonly UrlPattern[];
  /** Which proxies may set the client address through X-Forwarded-For (default: none). */
  trustProxy?: TrustProxy;
  /** Header carrying the caller's request id (default `x-request-id`). */
  requestIdHeader?: string;
  /** New request ids (default `crypto.randomUUID`). */
  generateRequestId?: () => string;
  /** Sets the request id header on the response (default true). */
  echoRequestId?: boolean;
  /** Opt-in capture of query, body, headers into metadata (masked, truncated by the client). */
  capture?: CaptureOptions;
  /** Field names masked in captured query/body/headers (default DEFAULT_MASKED_FIELDS). */
  maskFields?: readonly (string | RegExp)[];
  /** Login/logout/failed-login detection from the request path and status. */
  auth?: AuthDetectionOptions;
  /** Extra metadata of the request event. */
  metadata?: (req: Req, status: number) => AuditEventInput['metadata'] | undefined;
  /** Counters to fill (default: a new object, see `stats`). */
  stats?: HookStats;
  logger?: AuditLogger;
}

/** Headers whose values never leave the app, whatever `maskFields` says. */
export const ALWAYS_MASKED_HEADERS: readonly string[] = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-api-key',
  'api-key',
  'x-auth-token',
  'x-csrf-token',
  'x-xsrf-token',
];

/** What an adapter knows when a request starts. */
export interface RequestStart {
  method: string;
  /** Request target as received (path and query). */
  url: string;
  headers: IncomingHttpHeaders;
  socketAddress: string | undefined;
}

/** What an adapter knows when the response is done. */
export interface RequestEnd {
  status: number;
  /** Parsed query string, read only when captured. */
  query?: () => unknown;
  body?: unknown;
  /** Route pattern (`/users/:id`), when the framework knows it. */
  route?: string | undefined;
  error?: unknown;
  aborted?: boolean;
}

export interface RequestState {
  readonly requestId: string;
  readonly traceId: string | null;
  readonly ip: string | null;
  readonly method: string;
  readonly path: string;
  readonly userAgent: string | null;
  readonly startedAt: number;
  readonly startHr: bigint;
  /** The stored context (with the lazy actor), once entered. */
  context: AuditContext;
  actorAtStart: string | null;
  /** The last actor the context resolved during the request (survives a logout clearing `req.user`). */
  lastActor: string | null;
  error: unknown;
  finished: boolean;
}

type LazyField = 'actorId' | 'actorType' | 'tenantId';

interface ResolvedActor {
  actorId: string | null;
  actorType: string | null;
  tenantId: string | null;
}

/** What a request's context reads its actor from: the request when asked, unless set explicitly. */
interface LazyActor {
  resolve(): ResolvedActor;
  explicit: Partial<Record<LazyField, string | null | undefined>>;
}

const LAZY = Symbol('audit.lazyActor');

type LazyCarrier = AuditContext & { [LAZY]?: LazyActor };

/**
 * The accessors of a request context's actor fields, one set for every request: they read
 * the request's LazyActor from the context itself. Accessors made per request (closures over
 * it) gave every context a hidden class of its own, allocated in the old generation: the app's
 * garbage collections grew several-fold with the middleware on (bench/README.md, producer).
 */
function lazyAccessor(field: LazyField): PropertyDescriptor {
  return {
    enumerable: true,
    configurable: true,
    get(this: LazyCarrier): string | null | undefined {
      const lazy = this[LAZY];
      if (!lazy) return null;
      if (field in lazy.explicit) return lazy.explicit[field];
      return lazy.resolve()[field];
    },
    set(this: LazyCarrier, v: string | null | undefined): void {
      const lazy = this[LAZY];
      if (lazy) lazy.explicit[field] = v;
    },
  };
}

const LAZY_ACCESSORS: Record<LazyField, PropertyDescriptor> = {
  actorId: lazyAccessor('actorId'),
  actorType: lazyAccessor('actorType'),
  tenantId: lazyAccessor('tenantId'),
};

const str = (v: string | number | bigint | null | undefined): string | null => (v === null || v === undefined || v === '' ? null : String(v));

function defaultActor(req: unknown): ActorInfo {
  const user = (req as { user?: unknown }).user;
  if (user === null || typeof user !== 'object') return null;
  const id = (user as { id?: unknown }).id;
  return typeof id === 'string' || typeof id === 'number' || typeof id === 'bigint' ? id : null;
}

function headerValue(h: string | string[] | undefined): string | null {
  if (h === undefined) return null;
  return Array.isArray(h) ? (h[0] ?? null) : h;
}

/** The error of a failed request as the record wants it. */
export function normalizeError(err: unknown): AuditEventInput['error'] {
  if (err === null || err === undefined) return null;
  if (err instanceof Error) return err;
  if (typeof err === 'object' && typeof (err as { message?: unknown }).message === 'string') {
    const e = err as { message: string; name?: unknown; stack?: unknown };
    return {
      type: typeof e.name === 'string' ? e.name : 'Error',
      message: e.message,
      ...(typeof e.stack === 'string' ? { stack: e.stack } : {}),
    };
  }
  return { type: typeof err, message: String(err) };
}

/**
 * The framework-independent part of the HTTP middleware: request context,
 * client address, request id, trace id, URL filters, capture and masking,
 * the request event and login/logout detection. Every method swallows and
 * counts its own failures.
 */
export class HttpAuditor<Req> {
  readonly stats: HookStats;
  private readonly sink: HookSink;
  private readonly resolveIp: IpResolver;
  private readonly included: ((path: string) => boolean) | null;
  private readonly excluded: (path: string) => boolean;
  private readonly actor: ActorExtractor<Req>;
  private readonly isSensitive: FieldMatcher;
  private readonly isSensitiveHeader: FieldMatcher;
  private readonly requestIdHeader: string;
  private readonly generateRequestId: () => string;
  private readonly auth: {
    login: (path: string) => boolean;
    logout: (path: string) => boolean;
    failureStatuses: readonly number[];
    usernameFields: readonly string[];
    loginMethods: readonly string[];
    logoutMethods: readonly string[];
    method: string | undefined;
  } | null;

  constructor(
    private readonly client: AuditRecorder,
    private readonly options: AuditHttpOptions<Req>,
  ) {
    if (!client || typeof client.record !== 'function') throw new TypeError('audit middleware needs an AuditClient');
    this.stats = options.stats ?? createHookStats();
    this.sink = { stats: this.stats, ...(options.logger ? { logger: options.logger } : {}) };
    this.resolveIp = createIpResolver(options.trustProxy);
    this.included = options.include && options.include.length > 0 ? compilePatterns(options.include) : null;
    this.excluded = compilePatterns(options.exclude);
    this.actor = options.actor ?? defaultActor;
    const masked = options.maskFields ?? DEFAULT_MASKED_FIELDS;
    this.isSensitive = fieldMatcher(masked);
    this.isSensitiveHeader = fieldMatcher([...ALWAYS_MASKED_HEADERS, ...masked]);
    this.requestIdHeader = (options.requestIdHeader ?? 'x-request-id').toLowerCase();
    this.generateRequestId = options.generateRequestId ?? randomUUID;
    const a = options.auth;
    this.auth = a
      ? {
          login: compilePatterns(a.loginPaths),
          logout: compilePatterns(a.logoutPaths),
          failureStatuses: a.failureStatuses ?? [401, 403],
          usernameFields: a.usernameFields ?? ['username', 'email'],
          loginMethods: (a.loginMethods ?? ['POST']).map((m) => m.toUpperCase()),
          logoutMethods: (a.logoutMethods ?? ['POST', 'GET', 'DELETE']).map((m) => m.toUpperCase()),
          method: a.method,
        }
      : null;
  }

  /** Counts (and logs) a failure of the adapter's own code. */
  fail(err: unknown, what: string): void {
    hookFailed(this.sink, err, what);
  }

  get requestIdHeaderName(): string {
    return this.requestIdHeader;
  }

  get echoRequestId(): boolean {
    return this.options.echoRequestId !== false;
  }

  /** Whether a request to `url` is audited (counts the skipped ones). */
  shouldAudit(url: string): boolean {
    const path = pathOf(url);
    const audited = (this.included === null || this.included(path)) && !this.excluded(path);
    if (!audited) this.stats.skipped++;
    return audited;
  }

  /** Reads everything the request event needs from the start of the request; `null` on failure (the request then goes unaudited). */
  start(req: Req, s: RequestStart): RequestState | null {
    return (
      guard(this.sink, 'request start', () => {
        const ua = headerValue(s.headers['user-agent']);
        const actor = this.resolveActor(req, undefined);
        return {
          requestId: requestIdFrom(s.headers[this.requestIdHeader], this.generateRequestId),
          traceId: parseTraceparent(s.headers.traceparent)?.traceId ?? null,
          ip: this.resolveIp(s.socketAddress, s.headers['x-forwarded-for']),
          method: s.method.toUpperCase(),
          path: pathOf(s.url),
          userAgent: ua,
          startedAt: Date.now(),
          startHr: process.hrtime.bigint(),
          context: {},
          actorAtStart: actor.actorId,
          lastActor: actor.actorId,
          error: undefined,
          finished: false,
        } satisfies RequestState;
      }) ?? null
    );
  }

  /**
   * Runs `next` inside the request's AuditContext. The context's actor, actor
   * type and tenant are read from the request when asked for (so code running
   * after authentication sees them), unless `updateAuditContext` set them.
   */
  enter<T>(req: Req, state: RequestState, next: () => T): T {
    const base: AuditContext = {
      requestId: state.requestId,
      traceId: state.traceId,
      ip: state.ip,
      userAgent: state.userAgent,
      httpMethod: state.method,
      httpPath: state.path,
    };
    return runWithAuditContext(base, () => {
      const stored = currentAuditContext();
      if (stored) {
        guard(this.sink, 'request context', () => this.installLazyActor(stored, req, state));
        state.context = stored;
      }
      return next();
    });
  }

  private installLazyActor(ctx: AuditContext, req: Req, state: RequestState): void {
    const lazy: LazyActor = {
      resolve: () => {
        const resolved = this.resolveActor(req, fallback);
        if (resolved.actorId !== null) state.lastActor = resolved.actorId;
        return resolved;
      },
      explicit: {},
    };
    const fallback: ResolvedActor = { actorId: ctx.actorId ?? null, actorType: ctx.actorType ?? null, tenantId: ctx.tenantId ?? null };
    // Not enumerable: a nested context (a spread of this one) copies the actor's values, not the request.
    Object.defineProperty(ctx, LAZY, { value: lazy, enumerable: false, configurable: true, writable: true });
    Object.defineProperty(ctx, 'actorId', LAZY_ACCESSORS.actorId);
    Object.defineProperty(ctx, 'actorType', LAZY_ACCESSORS.actorType);
    Object.defineProperty(ctx, 'tenantId', LAZY_ACCESSORS.tenantId);
  }

  private resolveActor(req: Req, fallback: ResolvedActor | undefined): ResolvedActor {
    let info: ActorInfo = null;
    try {
      info = this.actor(req);
    } catch (err) {
      hookFailed(this.sink, err, 'actor extractor');
    }
    let tenant: string | number | null | undefined = null;
    if (this.options.tenant) {
      try {
        tenant = this.options.tenant(req);
      } catch (err) {
        hookFailed(this.sink, err, 'tenant extractor');
      }
    }
    const obj = info !== null && typeof info === 'object' ? info : null;
    const actorId = str(obj ? obj.id : (info as string | number | bigint | null | undefined));
    const actorType = actorId === null ? null : (obj?.type ?? this.options.actorType ?? 'user');
    const tenantId = str(tenant) ?? str(obj?.tenantId);
    return {
      actorId: actorId ?? fallback?.actorId ?? null,
      actorType: actorId !== null ? actorType : (fallback?.actorType ?? null),
      tenantId: tenantId ?? fallback?.tenantId ?? null,
    };
  }

  /** Remembers the error of a failing request (error middleware, onError hook). */
  setError(state: RequestState, err: unknown): void {
    if (state.error === undefined) state.error = err;
  }

  /** Records the request event (and any login/logout event). Once per request; never throws. */
  finish(req: Req, state: RequestState, end: RequestEnd): void {
    if (state.finished) return;
    state.finished = true;
    guard(this.sink, 'request finish', () => {
      // Inside the request's own context, whatever context the response callback runs in.
      runWithAuditContext(state.context, () => this.emit(req, state, end));
    });
  }

  private emit(req: Req, state: RequestState, end: RequestEnd): void {
    const status = end.status;
    const durationMs = Number(process.hrtime.bigint() - state.startHr) / 1e6;
    const ctx = currentAuditContext() ?? state.context;
    const metadata: Record<string, string | number | boolean | null | undefined> = {};
    if (end.route) metadata['http.route'] = end.route;
    if (end.aborted) metadata['http.aborted'] = true;
    this.capture(end, req, metadata);
    if (this.options.metadata) {
      const extra = guard(this.sink, 'metadata option', () => this.options.metadata?.(req, status));
      if (extra) Object.assign(metadata, extra);
    }
    const object =
      (this.options.object && guard(this.sink, 'object option', () => this.options.object?.(req, { requestId: state.requestId, status, path: state.path }))) || {
        type: this.options.objectType ?? 'http_request',
        id: state.requestId,
      };
    const error = status >= 500 ? normalizeError(end.error ?? state.error) : null;
    const actorId = ctx.actorId ?? state.lastActor ?? null;
    safeRecord(
      this.client,
      {
        objectType: object.type,
        objectId: object.id,
        action: 'request',
        occurredAt: state.startedAt,
        requestId: state.requestId,
        traceId: state.traceId,
        ip: state.ip,
        // The actor at the end of the request, or the one at its start (a logout clears it).
        actorId,
        actorType: actorId === null ? null : (ctx.actorType ?? this.options.actorType ?? 'user'),
        userAgent: state.userAgent,
        httpMethod: state.method,
        httpPath: state.path,
        httpStatus: status,
        durationMs: Math.round(durationMs * 1000) / 1000,
        metadata,
        ...(error ? { error } : {}),
      },
      this.sink,
    );
    if (this.auth) this.detectAuth(state, end, ctx);
  }

  private capture(end: RequestEnd, req: Req, metadata: Record<string, string | number | boolean | null | undefined>): void {
    const c = this.options.capture;
    if (!c) return;
    const query = c.query ? end.query?.() : undefined;
    if (query !== undefined && query !== null && (typeof query !== 'object' || Object.keys(query).length > 0)) {
      metadata['http.query'] = toJson(maskValue(query, this.isSensitive));
    }
    if (c.body && end.body !== undefined && end.body !== null) {
      const b = end.body;
      metadata['http.body'] = Buffer.isBuffer(b)
        ? `[${b.length} bytes]`
        : typeof b === 'string'
          ? (maskValue(b, this.isSensitive) as string)
          : toJson(maskValue(b, this.isSensitive));
    }
    if (c.headers) {
      const headers = (req as { headers?: IncomingHttpHeaders }).headers ?? {};
      const wanted = c.headers === true ? null : new Set(c.headers.map((h) => h.toLowerCase()));
      const out: Record<string, unknown> = {};
      for (const [name, value] of Object.entries(headers)) {
        if (wanted && !wanted.has(name)) continue;
        out[name] = this.isSensitiveHeader(name) ? MASK : maskValue(value, this.isSensitive);
      }
      metadata['http.headers'] = toJson(out);
    }
  }

  private usernameFrom(body: unknown): string | null {
    if (!this.auth || body === null || typeof body !== 'object') return null;
    for (const field of this.auth.usernameFields) {
      const v = (body as Record<string, unknown>)[field];
      if ((typeof v === 'string' && v.trim() !== '') || typeof v === 'number') return String(v).trim().slice(0, 256);
    }
    return null;
  }

  private detectAuth(state: RequestState, end: RequestEnd, ctx: AuditContext): void {
    const a = this.auth!;
    const status = end.status;
    const method = a.method ? { method: a.method } : {};
    if (a.loginMethods.includes(state.method) && a.login(state.path)) {
      const username = this.usernameFrom(end.body);
      if (a.failureStatuses.includes(status)) {
        void recordLoginFailed(this.client, { username: username ?? 'unknown', reason: `http_${status}`, ...method }).catch((err: unknown) =>
          hookFailed(this.sink, err, 'login_failed event'),
        );
        this.stats.recorded++;
      } else if (status < 400) {
        const actorId = ctx.actorId ?? username ?? 'unknown';
        void recordLogin(this.client, { actorId, actorType: ctx.actorType ?? 'user', ...method }).catch((err: unknown) =>
          hookFailed(this.sink, err, 'login event'),
        );
        this.stats.recorded++;
      }
    } else if (a.logoutMethods.includes(state.method) && a.logout(state.path) && status < 400) {
      const actorId = ctx.actorId ?? state.lastActor ?? 'unknown';
      void recordLogout(this.client, { actorId, actorType: ctx.actorType ?? 'user', ...method }).catch((err: unknown) =>
        hookFailed(this.sink, err, 'logout event'),
      );
      this.stats.recorded++;
    }
  }
}
