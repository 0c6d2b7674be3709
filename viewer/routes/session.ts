import type { FastifyInstance, FastifyReply } from 'fastify';
import { clearSessionCookie, grantOfToken, setSessionCookie } from '../auth';
import type { ViewerContext } from '../context';
import { html } from '../render/html';
import { page } from '../render/layout';

/** Only the viewer's own paths: an open redirect would lend the viewer's name to any site. */
export function localPath(next: unknown): string {
  if (typeof next !== 'string' || !/^\/(?![/\\])[^\s\\]*$/.test(next) || next.length > 2048) return '/';
  return next;
}

function signInPage(reply: FastifyReply, next: string, failed: boolean): FastifyReply {
  const csrf = reply.generateCsrf();
  const body = html`
${failed ? html`<p class="error" role="alert" id="signin-error">That token is not valid.</p>` : null}
<form method="post" action="/signin" class="signin">
<input type="hidden" name="_csrf" value="${csrf}">
<input type="hidden" name="next" value="${next}">
<label>Access token <input type="password" name="token" autocomplete="current-password" required autofocus${failed ? html` aria-describedby="signin-error"` : null}></label>
<button type="submit">Sign in</button>
</form>`;
  return reply
    .code(failed ? 401 : 200)
    .type('text/html; charset=utf-8')
    .send(page({ title: 'Sign in', viewer: null, csrf: null, body }));
}

/** Browsers sign in once with a token and get a session cookie (HttpOnly, SameSite=Strict); both forms are CSRF-protected. */
export function registerSessionRoutes(app: FastifyInstance, ctx: ViewerContext): void {
  app.get('/signin', async (req, reply) => signInPage(reply, localPath((req.query as Record<string, unknown>).next), false));

  app.post('/signin', { preHandler: app.csrfProtection }, async (req, reply) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const next = localPath(body.next);
    const grant = typeof body.token === 'string' && body.token.length <= 4096 ? grantOfToken(ctx.config, body.token) : null;
    if (!grant) return signInPage(reply, next, true);
    setSessionCookie(ctx.config, reply, grant);
    return reply.redirect(next, 303);
  });

  app.post('/signout', { preHandler: app.csrfProtection }, async (_req, reply) => {
    clearSessionCookie(ctx.config, reply);
    return reply.redirect('/signin', 303);
  });
}
