import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { CallHandler, ExecutionContext, NestInterceptor } from '@nestjs/common';
import type { Reflector } from '@nestjs/core';
import { Observable, tap } from 'rxjs';
import type { AuditEventInput } from '../build-record';
import { type AuditContext, currentAuditContext, runWithAuditContext } from '../context';
import { HttpAuditor, normalizeError, type AuditHttpOptions, type RequestState } from '../http/core';
import { type AuditRecorder, type HookStats, safeRecord } from '../http/emit';
import type { AuditedMetadata } from './decorators';
import { AUDITED_METADATA } from './tokens';

/** The request of Nest's Express or Fastify adapter, as far as the interceptor reads it. */
export interface NestHttpRequest {
  method: string;
  url: string;
  originalUrl?: string;
  headers: IncomingHttpHeaders;
  socket?: { remoteAddress?: string | undefined };
  params?: Record<string, string | undefined>;
  query?: unknown;
  body?: unknown;
  user?: unknown;
  /** Express: the matched route. */
  route?: { path?: unknown };
  baseUrl?: string;
  /** Fastify: the matched route. */
  routeOptions?: { url?: string };
}

export interface AuditInterceptorOptions extends AuditHttpOptions<NestHttpRequest> {
  /** Record one `request` event per handled request (default true). With false the interceptor only opens the AuditContext and records `@Audited` events. */
  requestEvents?: boolean;
}

function rawResponse(res: unknown): ServerResponse | null {
  const raw = (res as { raw?: unknown }).raw ?? res;
  return raw && typeof (raw as ServerResponse).once === 'function' && 'statusCode' in (raw as object) ? (raw as ServerResponse) : null;
}

function routeOf(req: NestHttpRequest): string | undefined {
  if (req.routeOptions && typeof req.routeOptions.url === 'string') return req.routeOptions.url;
  const path = req.route?.path;
  return typeof path === 'string' ? `${req.baseUrl ?? ''}${path}` : undefined;
}

/**
 * Nest interceptor (registered globally by `AuditModule`): opens the request's
 * AuditContext around the handler, so that everything the handler awaits — the
 * ORM hooks, `prismaCdcContext`, `client.record()` — sees the request id, trace,
 * client address and actor; records one `request` event when the response is
 * finished (status, duration; the error of a 5xx), and the `@Audited` events.
 * It never throws into the app and never delays the response: events are
 * recorded fire-and-forget after the handler.
 *
 * Guards and middleware run before interceptors: requests they reject (401/403
 * from a guard, 404 for no route) reach no handler and get no request event
 * from the interceptor. To record those too, mount `auditExpress()` /
 * `auditFastify()` in main.ts: the interceptor then finds the request's
 * context already open, records no request event of its own (the middleware
 * does) and keeps recording the `@Audited` events in that context.
 */
export class AuditInterceptor implements NestInterceptor {
  readonly stats: HookStats;
  private readonly http: HttpAuditor<NestHttpRequest>;
  private readonly requestEvents: boolean;

  constructor(
    private readonly client: AuditRecorder,
    private readonly reflector: Reflector,
    options: AuditInterceptorOptions = {},
  ) {
    this.http = new HttpAuditor<NestHttpRequest>(client, options);
    this.stats = this.http.stats;
    this.requestEvents = options.requestEvents !== false;
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    const http = context.switchToHttp();
    const req = http.getRequest<NestHttpRequest>();
    let state: RequestState | null = null;
    let audited: AuditedMetadata | undefined;
    try {
      audited = this.reflector.getAllAndOverride<AuditedMetadata | undefined>(AUDITED_METADATA, [context.getHandler(), context.getClass()]);
      const url = req.originalUrl ?? req.url;
      // A request context already open (the Express/Fastify middleware mounted in main.ts)
      // is the request's: it records the request event, the handler runs in it.
      if (!currentAuditContext()?.requestId && this.http.shouldAudit(url)) {
        state = this.http.start(req, { method: req.method, url, headers: req.headers, socketAddress: req.socket?.remoteAddress });
      }
      if (state) this.watchResponse(req, http.getResponse<unknown>(), state);
    } catch (err) {
      this.http.fail(err, 'nest interceptor');
      state = null;
    }
    const handlerName = `${context.getClass().name}.${context.getHandler().name}`;
    // `next.handle()` binds the handler to the async context it is called in (Nest's
    // AsyncResource.bind): called inside the request's context, the handler runs in it.
    const run = (): Observable<unknown> => {
      const ctx = currentAuditContext();
      const handled = next.handle();
      if (!audited && !state) return handled;
      let recorded = false;
      const success = (value: unknown): void => {
        if (audited && !recorded) this.explicit(audited, req, handlerName, ctx, value, undefined);
        recorded = true;
      };
      return handled.pipe(
        tap({
          next: success,
          complete: () => success(undefined),
          error: (err: unknown) => {
            if (state) this.http.setError(state, err);
            if (audited && audited.recordFailures !== false) this.explicit(audited, req, handlerName, ctx, undefined, err);
          },
        }),
      );
    };
    if (state) return this.http.enter(req, state, run);
    return run();
  }

  private watchResponse(req: NestHttpRequest, res: unknown, state: RequestState): void {
    const raw = rawResponse(res);
    if (!raw) return;
    if (this.http.echoRequestId && !raw.headersSent) raw.setHeader(this.http.requestIdHeaderName, state.requestId);
    if (!this.requestEvents) return;
    const done = (aborted: boolean): void => {
      this.http.finish(req, state, { status: raw.statusCode, query: () => req.query, body: req.body, route: routeOf(req), aborted });
    };
    raw.once('finish', () => done(false));
    raw.once('close', () => done(!raw.writableFinished));
  }

  private explicit(meta: AuditedMetadata, req: NestHttpRequest, handler: string, ctx: AuditContext | undefined, result: unknown, error: unknown): void {
    try {
      const params = req.params ?? {};
      const idOption = meta.objectId ?? 'id';
      const objectId =
        typeof idOption === 'function' ? idOption({ params, query: req.query, body: req.body, result, request: req }) : params[idOption];
      const dot = meta.action.indexOf('.');
      const input: AuditEventInput = {
        objectType: meta.objectType ?? (dot > 0 ? meta.action.slice(0, dot) : meta.action),
        objectId: objectId === undefined || objectId === null || objectId === '' ? '*' : objectId,
        action: meta.action,
        metadata: { ...meta.metadata, 'nest.handler': handler, outcome: error === undefined ? 'success' : 'failure' },
        ...(error !== undefined ? { error: normalizeError(error) } : {}),
      };
      const sink = { stats: this.stats };
      if (ctx) runWithAuditContext(ctx, () => safeRecord(this.client, input, sink));
      else safeRecord(this.client, input, sink);
    } catch (err) {
      this.http.fail(err, `@Audited(${meta.action})`);
    }
  }
}
