import { AsyncResource } from 'node:async_hooks';
import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import { HttpAuditor, type AuditHttpOptions, type RequestState } from './core';
import type { AuditRecorder } from './emit';

export interface AuditFastifyOptions extends AuditHttpOptions<FastifyRequest> {
  /** The audit client (`AuditClient`). */
  client: AuditRecorder;
}

interface Tracked {
  state: RequestState;
  /** Carries the request's async context over body parsing to the handler. */
  scope: AsyncResource | null;
}

function routeOf(request: FastifyRequest): string | undefined {
  const url = (request as { routeOptions?: { url?: unknown } }).routeOptions?.url;
  return typeof url === 'string' ? url : undefined;
}

const plugin: FastifyPluginCallback<AuditFastifyOptions> = (fastify: FastifyInstance, opts: AuditFastifyOptions, done: (err?: Error) => void) => {
  let auditor: HttpAuditor<FastifyRequest>;
  try {
    auditor = new HttpAuditor<FastifyRequest>(opts.client, opts);
  } catch (err) {
    done(err as Error);
    return;
  }
  // Deleted once the request is finished: young-generation collections keep a WeakMap's entries alive.
  const tracked = new WeakMap<FastifyRequest, Tracked>();
  const fail = (err: unknown, what: string) => auditor.fail(err, what);

  fastify.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, next: (err?: Error) => void) => {
    let state: RequestState | null = null;
    try {
      if (auditor.shouldAudit(request.url)) {
        state = auditor.start(request, {
          method: request.method,
          url: request.url,
          headers: request.headers,
          socketAddress: request.raw.socket?.remoteAddress,
        });
      }
      if (state && auditor.echoRequestId) reply.header(auditor.requestIdHeaderName, state.requestId);
    } catch (err) {
      fail(err, 'fastify onRequest');
      state = null;
    }
    if (!state) {
      next();
      return;
    }
    const st = state;
    auditor.enter(request, st, () => {
      let scope: AsyncResource | null = null;
      try {
        scope = new AsyncResource('audit-request');
      } catch (err) {
        fail(err, 'fastify async scope');
      }
      tracked.set(request, { state: st, scope });
      next();
    });
  });

  // Body parsing runs in the socket's async context: re-enter the request's before validation and the handler.
  const reenter = (request: FastifyRequest, _reply: FastifyReply, next: (err?: Error) => void): void => {
    const t = tracked.get(request);
    if (t?.scope) {
      t.scope.runInAsyncScope(next);
      return;
    }
    next();
  };
  fastify.addHook('preValidation', reenter);
  fastify.addHook('preHandler', reenter);

  fastify.addHook('onError', (request: FastifyRequest, _reply: FastifyReply, error: Error, next: () => void) => {
    const t = tracked.get(request);
    if (t) auditor.setError(t.state, error);
    next();
  });

  const finish = (request: FastifyRequest, status: number, aborted: boolean): void => {
    const t = tracked.get(request);
    if (!t) return;
    tracked.delete(request);
    auditor.finish(request, t.state, {
      status,
      query: () => request.query,
      body: request.body,
      route: routeOf(request),
      aborted,
    });
    t.scope?.emitDestroy();
    t.scope = null;
  };

  fastify.addHook('onResponse', (request: FastifyRequest, reply: FastifyReply, next: () => void) => {
    try {
      finish(request, reply.statusCode, false);
    } catch (err) {
      fail(err, 'fastify onResponse');
    }
    next();
  });

  fastify.addHook('onRequestAbort', (request: FastifyRequest, next: () => void) => {
    try {
      finish(request, 499, true); // nginx's "client closed request"
    } catch (err) {
      fail(err, 'fastify onRequestAbort');
    }
    next();
  });

  done();
};

// What fastify-plugin does: no encapsulation, so the hooks apply to every route of the app.
Object.defineProperty(plugin, Symbol.for('skip-override'), { value: true });
Object.defineProperty(plugin, Symbol.for('fastify.display-name'), { value: 'audit-pipeline' });

/**
 * Fastify plugin: `app.register(auditFastify, { client, ...options })`. One
 * AuditContext per request (kept across body parsing into hooks and the
 * handler), one `request` event per response (`onResponse`), the error of 5xx
 * responses from `onError`. Never throws into the app; register it before
 * the routes.
 */
export const auditFastify = plugin;
