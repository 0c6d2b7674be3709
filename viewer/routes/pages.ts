import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isoMicros } from '../../query/history';
import { type FieldDiff, diffVersions, stateAsOf } from '../../query/state';
import { type ViewerContext, recordRead, viewerOf } from '../context';
import { BadRequest, type Query, given, instantParam, objectParam, param, rangeParams } from '../params';
import { eventsTable, stateView } from '../render/events';
import { type Markup, html, href } from '../render/html';
import { page } from '../render/layout';

const SEARCH_FIELDS = ['object', 'actor', 'tenant', 'action', 'since', 'until'] as const;

function send(req: FastifyRequest, reply: FastifyReply, title: string, body: Markup): FastifyReply {
  const csrf = viewerOf(req).via === 'session' ? reply.generateCsrf() : null;
  return reply.type('text/html; charset=utf-8').send(page({ title, viewer: viewerOf(req), csrf, body }));
}

function searchForm(q: Query): Markup {
  const v = (n: string) => (typeof q[n] === 'string' ? (q[n] as string) : '');
  const field = (name: string, label: string, hint: string) =>
    html`<label for="f-${name}">${label}<input id="f-${name}" name="${name}" value="${v(name)}" placeholder="${hint}"></label>`;
  return html`<form method="get" action="/" class="search" role="search" aria-label="Search events">
${field('object', 'Object', 'TYPE:ID, e.g. invoice:42')}
${field('actor', 'Actor', 'actor id')}
${field('tenant', 'Tenant', 'tenant id')}
${field('action', 'Action', 'create, update, read...')}
${field('since', 'Since', '2026-01-01 or 2026-01-01T09:00Z')}
${field('until', 'Until', 'a date includes that day')}
<button type="submit">Search</button>
</form>`;
}

function exportLinks(params: Record<string, string>): Markup {
  return html`<nav class="exports" aria-label="Exports">
<a href="${href('/export/csv', params)}" download>Export CSV</a>
<a href="${href('/export/json', params)}" download>Export JSON</a>
<a href="${href('/export/pdf', params)}" download>PDF report</a>
</nav>`;
}

function pager(path: string, params: Record<string, string>, next: string | null): Markup | null {
  if (next === null) return null;
  return html`<nav class="pager" aria-label="Pages"><a rel="next" id="next-page" href="${href(path, { ...params, cursor: next })}">Next page</a></nav>`;
}

function byEvent(diffs: readonly FieldDiff[]): Map<string, FieldDiff[]> {
  const out = new Map<string, FieldDiff[]>();
  for (const d of diffs) {
    const list = out.get(d.event_id) ?? [];
    list.push(d);
    out.set(d.event_id, list);
  }
  return out;
}

/** The server-rendered pages: search, an object's timeline (diffs, as-of state), an actor's activity, a request's events. */
export function registerPageRoutes(app: FastifyInstance, ctx: ViewerContext): void {
  app.get('/', async (req, reply) => {
    const q = req.query as Query;
    const object = param(q, 'object');
    if (object !== null) return reply.redirect(href('/object', given(q, ['object', 'since', 'until', 'actor', 'action'])), 303);
    const actor = param(q, 'actor');
    const tenant = param(q, 'tenant');
    const action = param(q, 'action');
    if (actor === null && tenant === null && action === null) {
      return send(req, reply, 'Search', html`${searchForm(q)}<p>Give an object, or an actor, tenant or action (with an optional time range).</p>`);
    }
    const range = rangeParams(q);
    const cursor = param(q, 'cursor');
    const params = given(q, SEARCH_FIELDS);
    await recordRead(ctx, req, { kind: 'search', view: 'page-search', params: given(q, [...SEARCH_FIELDS, 'cursor']) });
    const result = await ctx.data.search({ actor, tenant, action, range }, viewerOf(req).scope, cursor, ctx.config.pageSize);
    return send(req, reply, 'Search', html`${searchForm(q)}
${exportLinks(params)}
${eventsTable(result.events, { caption: `${result.events.length} event(s)${result.next ? ' on this page' : ''}`, showObject: true })}
${pager('/', params, result.next)}`);
  });

  app.get('/object', async (req, reply) => {
    const q = req.query as Query;
    const object = objectParam(q);
    if (object === null) throw new BadRequest('object=TYPE:ID is required');
    const range = rangeParams(q);
    const asOf = instantParam(q, 'as_of', true);
    const actor = param(q, 'actor');
    const action = param(q, 'action');
    const scope = viewerOf(req).scope;
    await recordRead(ctx, req, { kind: 'object', type: object.type, id: object.id, view: 'page-object', params: given(q, ['since', 'until', 'actor', 'action', 'as_of']) });
    // Diffs and as-of state are rebuilt from the whole (scoped) history; the filters choose what the timeline lists.
    const all = await ctx.data.history({ object, range: { since: null, until: null }, actor: null, action: null }, scope);
    const since = range.since === null ? null : isoMicros(BigInt(range.since));
    const until = range.until === null ? null : isoMicros(BigInt(range.until));
    const listed = all.filter((e) => (since === null || e.occurred_at >= since) && (until === null || e.occurred_at <= until) && (actor === null || e.actor_id === actor) && (action === null || e.action === action));
    const ref = `${object.type}:${object.id}`;
    const params = { object: ref, ...given(q, ['since', 'until', 'actor', 'action']) };
    const asOfForm = html`<form method="get" action="/object" class="search" aria-label="State as of a time">
<input type="hidden" name="object" value="${ref}">
<label for="f-as_of">State as of<input id="f-as_of" name="as_of" value="${typeof q.as_of === 'string' ? q.as_of : ''}" placeholder="2026-04-02T12:00Z"></label>
<button type="submit">Show state</button>
</form>`;
    const state = asOf === null ? null : stateView(stateAsOf(all, isoMicros(BigInt(asOf)), object.type, object.id));
    return send(req, reply, `History of ${ref}`, html`${searchForm(q)}
${asOfForm}
${state}
${exportLinks(params)}
${eventsTable(listed, { caption: `${listed.length} event(s), oldest first`, diffs: byEvent(diffVersions(all)), showObject: false })}`);
  });

  app.get('/actor', async (req, reply) => {
    const q = req.query as Query;
    const actor = param(q, 'actor');
    if (actor === null) throw new BadRequest('actor is required');
    const range = rangeParams(q);
    const cursor = param(q, 'cursor');
    const params = given(q, ['actor', 'since', 'until']);
    await recordRead(ctx, req, { kind: 'search', view: 'page-actor', params: given(q, ['actor', 'since', 'until', 'cursor']) });
    const result = await ctx.data.search({ actor, tenant: null, action: null, range }, viewerOf(req).scope, cursor, ctx.config.pageSize);
    const rangeForm = html`<form method="get" action="/actor" class="search" aria-label="Time range">
<input type="hidden" name="actor" value="${actor}">
<label for="f-since">Since<input id="f-since" name="since" value="${params.since ?? ''}"></label>
<label for="f-until">Until<input id="f-until" name="until" value="${params.until ?? ''}"></label>
<button type="submit">Show</button></form>`;
    return send(req, reply, `Activity of ${actor}`, html`${rangeForm}
${exportLinks(params)}
${eventsTable(result.events, { caption: `${result.events.length} event(s)${result.next ? ' on this page' : ''}, oldest first`, showObject: true })}
${pager('/actor', params, result.next)}`);
  });

  app.get('/request', async (req, reply) => {
    const q = req.query as Query;
    const requestId = param(q, 'request_id');
    if (requestId === null) throw new BadRequest('request_id is required');
    const at = instantParam(q, 'at');
    if (at === null) throw new BadRequest('at (the time of one of its events) is required');
    await recordRead(ctx, req, { kind: 'search', view: 'page-request', params: given(q, ['request_id', 'at']) });
    const events = await ctx.data.request(requestId, at, viewerOf(req).scope);
    return send(req, reply, `Request ${requestId}`, html`<p>Every event recorded with this request id (within a day of it).</p>
${eventsTable(events, { caption: `${events.length} event(s) of this request`, showObject: true })}`);
  });
}
