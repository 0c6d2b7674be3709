import { randomBytes } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { terminalSafe } from '../../config/safe-text';
import { changesOf } from '../export/changes';
import type { JsonEvent } from '../export/event';
import { COMPONENT_SOURCE } from './component';
import { EmbedTokenError, parseEmbedObject, verifyEmbedToken, type EmbedClaims } from './token';

export interface EmbedRouteOptions {
  key: Buffer;
  /** Origins allowed to embed (CORS for the component, frame-ancestors for the iframe); empty = none. */
  allowedOrigins: readonly string[];
  /** The object's history, oldest first; the routes filter by tenant and object again whatever it returns. */
  loadHistory: (object: { type: string; id: string }, tenant: string) => Promise<JsonEvent[]>;
  /** For tests: the time tokens are checked at. */
  now?: () => Date;
}

/** What the component and the frame show of an event: no request, network or error details. */
export interface EmbedEvent {
  event_id: string;
  occurred_at: string;
  action: string;
  actor_id: string | null;
  actor_type: string | null;
  /** Only the fields the token allows, in the order recorded. */
  changes: { field: string; old: unknown; new: unknown }[];
}

/** Why a request was refused, as the body's `reason` (the component maps it to a message). */
type Refusal = EmbedTokenError['reason'] | 'other-object' | 'origin-not-allowed';

const STATUS: Readonly<Record<Refusal, number>> = {
  malformed: 401,
  'bad-signature': 401,
  expired: 401,
  'not-yet-valid': 401,
  'other-object': 403,
  'origin-not-allowed': 403,
};

const FRAME_MESSAGES: Readonly<Record<Refusal | 'unavailable', string>> = {
  expired: 'This history link has expired. Reload the page to see it again.',
  'not-yet-valid': 'This history link is not valid yet.',
  'bad-signature': 'This history link is not valid.',
  malformed: 'This history link is not valid.',
  'other-object': 'This history link is for another record.',
  'origin-not-allowed': 'This site may not show this history.',
  unavailable: 'The history is not available right now. Try again later.',
};

/**
 * Every string shown to the end user escaped for display (config/safe-text.ts: control and
 * bidi characters as visible escapes), recursively inside JSON values.
 */
function displaySafe(v: unknown): unknown {
  if (typeof v === 'string') return terminalSafe(v);
  if (Array.isArray(v)) return v.map(displaySafe);
  if (typeof v === 'object' && v !== null) {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [terminalSafe(k), displaySafe(x)]));
  }
  return v;
}

/**
 * The events of the token's object and tenant, each reduced to what an end user sees. An
 * event whose every change is to a field the token hides is left out: showing it would
 * tell that a hidden field changed, and when.
 */
export function embedEvents(events: readonly JsonEvent[], claims: EmbedClaims): EmbedEvent[] {
  const allowed = claims.fields === null ? null : new Set(claims.fields);
  const out: EmbedEvent[] = [];
  for (const e of events) {
    if (e.tenant_id !== claims.tenant || e.object_type !== claims.object.type || e.object_id !== claims.object.id) continue;
    const all = changesOf(e);
    const visible = allowed === null ? all : all.filter(([field]) => allowed.has(field));
    if (all.length > 0 && visible.length === 0) continue;
    out.push({
      event_id: e.event_id,
      occurred_at: terminalSafe(e.occurred_at),
      action: terminalSafe(e.action),
      actor_id: e.actor_id === null ? null : terminalSafe(e.actor_id),
      actor_type: e.actor_type === null ? null : terminalSafe(e.actor_type),
      // A field absent on one side (a create's old value) is null: JSON has no undefined.
      changes: visible.map(([field, old, next]) => ({ field: terminalSafe(field), old: displaySafe(old ?? null), new: displaySafe(next ?? null) })),
    });
  }
  return out;
}

const HTML_ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
function html(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}
const shown = (v: unknown): string => (v === null || v === undefined ? '(none)' : typeof v === 'string' ? v : JSON.stringify(v));

const FRAME_CSS = `body{margin:0;padding:8px;font:14px/1.4 system-ui,sans-serif;color:#222}
ol{list-style:none;margin:0;padding:0}li.event{padding:6px 0;border-bottom:1px solid #ddd}
.meta{color:#555;font-size:12px}.action{font-weight:600;color:#222}ul{margin:2px 0 0;padding-left:16px}
.field{font-weight:600}.old{text-decoration:line-through;color:#a33}.new{color:#262}.error{color:#a33}.empty{color:#555}`;

function framePage(nonce: string, body: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><meta name="referrer" content="no-referrer"><title>History</title><style nonce="${nonce}">${FRAME_CSS}</style></head><body>${body}</body></html>`;
}

function frameEvents(events: readonly EmbedEvent[]): string {
  if (events.length === 0) return '<p class="empty">No changes recorded.</p>';
  const items = events.map((e) => {
    const actor = e.actor_id === null ? '' : ` by <bdi class="actor">${html(e.actor_id)}</bdi>`;
    const changes = e.changes.map(
      (c) => `<li class="change"><bdi class="field">${html(c.field)}</bdi>: <bdi class="old">${html(shown(c.old))}</bdi> → <bdi class="new">${html(shown(c.new))}</bdi></li>`,
    );
    return `<li class="event"><div class="meta"><time datetime="${html(e.occurred_at)}">${html(e.occurred_at)}</time> <span class="action">${html(e.action)}</span>${actor}</div>${changes.length > 0 ? `<ul class="changes">${changes.join('')}</ul>` : ''}</li>`;
  });
  return `<ol class="list">${items.join('')}</ol>`;
}

/**
 * The embed routes: GET /embed/history (JSON for the component), /embed/frame (the iframe
 * form) and /embed/audit-history.js (the component). A short-lived token (token.ts) is the
 * only credential: no cookie is read or set, so third-party cookie blocking changes nothing.
 */
export function registerEmbedRoutes(app: FastifyInstance, opts: EmbedRouteOptions): void {
  const allowed = new Set(opts.allowedOrigins);
  const now = opts.now ?? (() => new Date());
  const ancestors = opts.allowedOrigins.length > 0 ? opts.allowedOrigins.join(' ') : "'none'";

  /** Common to every embed answer: the token is in the URL, so it must not leak onward or be cached. */
  const guard = (reply: FastifyReply): void => {
    reply.header('Cache-Control', 'no-store');
    reply.header('Referrer-Policy', 'no-referrer');
    reply.header('X-Content-Type-Options', 'nosniff');
  };

  /** The claims for this request, or the refusal; `object` in the query, when given, must be the token's. */
  const authorise = (req: FastifyRequest): EmbedClaims | Refusal => {
    const query = req.query as Record<string, unknown>;
    const token = typeof query.token === 'string' ? query.token : '';
    let claims: EmbedClaims;
    try {
      claims = verifyEmbedToken(token, opts.key, now());
    } catch (err) {
      if (err instanceof EmbedTokenError) {
        req.log.info({ reason: err.reason }, 'embed token refused');
        return err.reason;
      }
      throw err;
    }
    if (query.object !== undefined) {
      const asked = typeof query.object === 'string' ? parseEmbedObject(query.object) : null;
      if (asked === null || asked.type !== claims.object.type || asked.id !== claims.object.id) return 'other-object';
    }
    return claims;
  };

  const load = async (req: FastifyRequest, claims: EmbedClaims): Promise<EmbedEvent[] | null> => {
    try {
      return embedEvents(await opts.loadHistory(claims.object, claims.tenant), claims);
    } catch (err) {
      req.log.error({ err: (err as Error).message, object: `${claims.object.type}:${claims.object.id}` }, 'embed history could not be read');
      return null;
    }
  };

  app.get('/embed/history', async (req, reply) => {
    guard(reply);
    reply.header('Vary', 'Origin');
    const origin = req.headers.origin;
    // No Origin: not a cross-origin browser request (a server, curl); the token is the whole authority.
    if (origin !== undefined) {
      if (!allowed.has(origin)) return reply.code(STATUS['origin-not-allowed']).send({ error: 'refused', reason: 'origin-not-allowed' });
      reply.header('Access-Control-Allow-Origin', origin);
    }
    const claims = authorise(req);
    if (typeof claims === 'string') return reply.code(STATUS[claims]).send({ error: 'refused', reason: claims });
    const events = await load(req, claims);
    if (events === null) return reply.code(503).send({ error: 'unavailable', reason: 'unavailable' });
    return reply.send({ object: `${terminalSafe(claims.object.type)}:${terminalSafe(claims.object.id)}`, events });
  });

  app.get('/embed/frame', async (req, reply) => {
    guard(reply);
    const nonce = randomBytes(16).toString('base64');
    // No script at all: the page is rendered here. The nonce admits its one style element.
    reply.header(
      'Content-Security-Policy',
      `default-src 'none'; style-src 'nonce-${nonce}'; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors ${ancestors}`,
    );
    reply.header('Cross-Origin-Opener-Policy', 'same-origin');
    reply.type('text/html; charset=utf-8');
    const claims = authorise(req);
    if (typeof claims === 'string') {
      return reply.code(STATUS[claims]).send(framePage(nonce, `<p class="error" role="alert" data-reason="${claims}">${html(FRAME_MESSAGES[claims])}</p>`));
    }
    const events = await load(req, claims);
    if (events === null) return reply.code(503).send(framePage(nonce, `<p class="error" role="alert" data-reason="unavailable">${html(FRAME_MESSAGES.unavailable)}</p>`));
    return reply.send(framePage(nonce, frameEvents(events)));
  });

  app.get('/embed/audit-history.js', async (_req, reply) => {
    reply.header('X-Content-Type-Options', 'nosniff');
    // Loaded by <script src> from the app's pages: another origin must be able to use it.
    reply.header('Cross-Origin-Resource-Policy', 'cross-origin');
    reply.header('Cache-Control', 'public, max-age=300');
    reply.type('text/javascript; charset=utf-8');
    return reply.send(COMPONENT_SOURCE);
  });
}
