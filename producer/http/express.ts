import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express';
import { HttpAuditor, type AuditHttpOptions, type RequestState } from './core';
import type { AuditRecorder, HookStats } from './emit';

export type AuditExpressOptions = AuditHttpOptions<Request>;

/** The middleware, with the counters of what it recorded, skipped and failed to record. */
export interface AuditExpressMiddleware extends RequestHandler {
  readonly stats: HookStats;
}

interface Tracked {
  auditor: HttpAuditor<Request>;
  state: RequestState;
}

// Response -> its audit state, for the error middleware. The entry is deleted once the response is
// done: V8's young-generation collections keep a WeakMap's entries alive, so every request's objects
// would otherwise survive into the old generation (measured: several times the app's GC time).
const tracked = new WeakMap<Response, Tracked>();

function routeOf(req: Request): string | undefined {
  const route = (req as { route?: { path?: unknown } }).route;
  return route && typeof route.path === 'string' ? `${req.baseUrl ?? ''}${route.path}` : undefined;
}

/**
 * Express middleware: one AuditContext per request (request id, trace id, client
 * address, user agent, method, path; the actor read lazily from the request) and
 * one `request` event when the response is done. Mount it first, before body
 * parsers and auth; add `auditExpressErrors()` after the routes to capture the
 * error of 5xx responses. It never throws into the app and never delays the
 * response: the event is recorded after the response is finished, fire-and-forget.
 */
export function auditExpress(client: AuditRecorder, options: AuditExpressOptions = {}): AuditExpressMiddleware {
  const auditor = new HttpAuditor<Request>(client, options);
  const middleware = function auditMiddleware(req: Request, res: Response, next: NextFunction): void {
    let state: RequestState | null = null;
    try {
      const url = req.originalUrl ?? req.url;
      if (auditor.shouldAudit(url)) {
        state = auditor.start(req, { method: req.method, url, headers: req.headers, socketAddress: req.socket?.remoteAddress });
      }
      if (state) {
        const st = state;
        tracked.set(res, { auditor, state: st });
        if (auditor.echoRequestId && !res.headersSent) res.setHeader(auditor.requestIdHeaderName, st.requestId);
        const done = (aborted: boolean): void => {
          tracked.delete(res);
          auditor.finish(req, st, {
            status: res.statusCode,
            query: () => req.query,
            body: (req as { body?: unknown }).body,
            route: routeOf(req),
            error: (res.locals as Record<string, unknown> | undefined)?.auditError,
            aborted,
          });
        };
        res.once('finish', () => done(false));
        res.once('close', () => done(!res.writableFinished));
      }
    } catch (err) {
      auditor.fail(err, 'express middleware');
      state = null;
    }
    if (!state) {
      next();
      return;
    }
    auditor.enter(req, state, () => next());
  } as AuditExpressMiddleware;
  Object.defineProperty(middleware, 'stats', { value: auditor.stats, enumerable: true });
  return middleware;
}

/**
 * Error-handling middleware that hands the error to the request's audit event
 * (type, message and stack on 5xx) and passes it on unchanged. Mount it after
 * the routes and before your own error handlers. An app whose error handler
 * answers without calling `next(err)` can instead set `res.locals.auditError = err`.
 */
export function auditExpressErrors(): ErrorRequestHandler {
  return function auditErrors(err: unknown, _req: Request, res: Response, next: NextFunction): void {
    try {
      const t = tracked.get(res);
      if (t) t.auditor.setError(t.state, err);
    } catch {
      // Never in the way of the app's own error handling.
    }
    next(err);
  };
}
