import fastifyCookie from '@fastify/cookie';
import fastifyCsrf from '@fastify/csrf-protection';
import fastifyFormbody from '@fastify/formbody';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { StorageError } from '../storage';
import { Unauthenticated, authenticate } from './auth';
import type { ViewerContext } from './context';
import { BadCursor } from './cursor';
import { BadRequest } from './params';
import { ReadNotRecorded } from './recorder';
import { html, href } from './render/html';
import { STYLESHEET, page } from './render/layout';
import { registerApiRoutes } from './routes/api';
import { registerExportRoutes } from './routes/exports';
import { registerPageRoutes } from './routes/pages';
import { registerSessionRoutes } from './routes/session';

/** Routes reachable without signing in. */
const PUBLIC = new Set(['GET /signin', 'POST /signin', 'POST /signout', 'GET /static/viewer.css', 'GET /healthz', 'HEAD /signin', 'HEAD /static/viewer.css', 'HEAD /healthz']);

/** No script, no framing, no foreign resources: the pages are plain server-rendered HTML. */
const CSP = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export interface ViewerLogger {
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** Extra routes mounted by other viewer modules (the embed routes): called once the auth hook is in place. */
export type ViewerPlugin = (app: FastifyInstance, ctx: ViewerContext) => void | Promise<void>;

function isEmbed(req: FastifyRequest): boolean {
  return req.url.startsWith('/embed/');
}

function wantsJson(req: FastifyRequest): boolean {
  return req.url.startsWith('/api/');
}

function sendError(req: FastifyRequest, reply: FastifyReply, status: number, message: string): FastifyReply {
  reply.code(status);
  if (wantsJson(req)) return reply.type('application/json; charset=utf-8').send(JSON.stringify({ error: message }));
  const body = html`<p class="error" role="alert">${message}</p><p><a href="/">Back to search</a></p>`;
  return reply.type('text/html; charset=utf-8').send(page({ title: status === 404 ? 'Not found' : 'Error', viewer: req.viewer, csrf: null, body }));
}

export async function buildViewerApp(ctx: ViewerContext, log: ViewerLogger, plugins: readonly ViewerPlugin[] = []): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, bodyLimit: 16 * 1024, routerOptions: { maxParamLength: 1024 }, trustProxy: false, return503OnClosing: true });
  app.decorateRequest('viewer', null);
  await app.register(fastifyCookie, { secret: ctx.config.cookieSecret.toString('base64') });
  await app.register(fastifyFormbody);
  await app.register(fastifyCsrf, {
    cookieKey: 'audit_viewer_csrf',
    cookieOpts: { path: '/', httpOnly: true, sameSite: 'strict', secure: ctx.config.secureCookies, signed: true },
    // Forms only: the API is read-only and takes bearer tokens, which a forged cross-site request cannot carry.
    getToken: (req) => {
      const body = req.body as Record<string, unknown> | undefined;
      return typeof body?._csrf === 'string' ? body._csrf : undefined;
    },
  });

  app.addHook('onSend', async (req, reply, payload) => {
    // The embed routes are made to be framed and fetched from allowed origins: they set their own policy.
    if (isEmbed(req)) return payload;
    reply.header('Content-Security-Policy', CSP);
    reply.header('X-Content-Type-Options', 'nosniff');
    reply.header('Referrer-Policy', 'no-referrer');
    reply.header('X-Frame-Options', 'DENY');
    reply.header('Cross-Origin-Opener-Policy', 'same-origin');
    reply.header('Cache-Control', 'no-store');
    return payload;
  });

  app.addHook('onRequest', async (req, reply) => {
    const route = `${req.method} ${req.url.split('?')[0]}`;
    // Embed routes take their own short-lived token (viewer/embed/token.ts) and no session.
    if (PUBLIC.has(route) || isEmbed(req)) return;
    try {
      req.viewer = authenticate(ctx.config, req);
    } catch (err) {
      if (!(err instanceof Unauthenticated)) throw err;
      if (wantsJson(req) || req.headers.authorization !== undefined) {
        reply.header('WWW-Authenticate', 'Bearer realm="audit-viewer"');
        return sendError(req, reply, 401, 'unauthorized');
      }
      return reply.redirect(href('/signin', { next: req.url.length <= 2048 ? req.url : '/' }), 303);
    }
  });

  app.setErrorHandler((err, req, reply) => {
    if (err instanceof BadRequest || err instanceof BadCursor) return sendError(req, reply, 400, err.message);
    if (err instanceof ReadNotRecorded) {
      log.error({ err: err.message }, 'read refused: the audit trail did not accept its read event');
      return sendError(req, reply, 503, 'the audit trail is unavailable; reads are refused until it is back');
    }
    if (err instanceof StorageError) {
      log.error({ err: err.message }, 'storage unavailable');
      return sendError(req, reply, 503, 'storage unavailable');
    }
    const status = (err as { statusCode?: number }).statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      // Fastify's own (bad body, CSRF token missing or wrong): their messages quote no stored data.
      return sendError(req, reply, status, status === 403 ? 'forbidden: the form expired or was not sent from this viewer; reload it and try again' : 'bad request');
    }
    log.error({ err: (err as Error).message, stack: (err as Error).stack }, 'request failed');
    return sendError(req, reply, 500, 'internal error');
  });

  app.setNotFoundHandler((req, reply) => sendError(req, reply, 404, 'not found'));

  app.get('/static/viewer.css', async (_req, reply) => reply.type('text/css; charset=utf-8').send(STYLESHEET));
  app.get('/healthz', async (_req, reply) => reply.type('text/plain').send('ok\n'));
  registerSessionRoutes(app, ctx);
  registerApiRoutes(app, ctx);
  registerPageRoutes(app, ctx);
  registerExportRoutes(app, ctx);
  for (const plugin of plugins) await plugin(app, ctx);
  return app;
}
