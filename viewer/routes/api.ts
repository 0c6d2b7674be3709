import type { FastifyInstance, FastifyReply } from 'fastify';
import { jsonTerminalSafe } from '../../config/safe-text';
import type { EventPage } from '../data';
import { type ViewerContext, recordRead, viewerOf } from '../context';
import { BadRequest, type Query, given, objectParam, param, rangeParams } from '../params';

const HISTORY_PARAMS = ['object', 'since', 'until', 'action', 'actor', 'cursor'] as const;
const EVENTS_PARAMS = ['actor', 'tenant', 'action', 'since', 'until', 'cursor'] as const;

/**
 * JSON as stored, but with `<`, `>` and `&` escaped (`\u003c`...): a JSON
 * reader gets the same values, and no browser that sniffs the body can find markup in it.
 */
export function inertJson(value: unknown): string {
  const text = JSON.stringify(value, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
  return jsonTerminalSafe(text.replace(/[<>&]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

function sendPage(reply: FastifyReply, page: EventPage): FastifyReply {
  return reply.type('application/json; charset=utf-8').send(inertJson({ events: page.events, next: page.next }));
}

/** The API of shared/CONTRACT.md: bearer tokens, `{"events": [...], "next": cursor-or-null}`. */
export function registerApiRoutes(app: FastifyInstance, ctx: ViewerContext): void {
  app.get('/api/history', async (req, reply) => {
    const q = req.query as Query;
    const object = objectParam(q);
    if (object === null) throw new BadRequest('object=TYPE:ID is required');
    const range = rangeParams(q);
    const cursor = param(q, 'cursor');
    await recordRead(ctx, req, { kind: 'object', type: object.type, id: object.id, view: 'api-history', params: given(q, HISTORY_PARAMS) });
    const page = await ctx.data.historyPage({ object, range, actor: param(q, 'actor'), action: param(q, 'action') }, viewerOf(req).scope, cursor, ctx.config.pageSize);
    return sendPage(reply, page);
  });

  app.get('/api/events', async (req, reply) => {
    const q = req.query as Query;
    const actor = param(q, 'actor');
    const tenant = param(q, 'tenant');
    const action = param(q, 'action');
    if (actor === null && tenant === null && action === null) throw new BadRequest('one of actor, tenant or action is required');
    const range = rangeParams(q);
    const cursor = param(q, 'cursor');
    await recordRead(ctx, req, { kind: 'search', view: 'api-events', params: given(q, EVENTS_PARAMS) });
    const page = await ctx.data.search({ actor, tenant, action, range }, viewerOf(req).scope, cursor, ctx.config.pageSize);
    return sendPage(reply, page);
  });
}
