import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { HistoryEvent } from '../../query/history';
import { renderCsv } from '../export/csv';
import { UnknownFieldError } from '../export/event';
import { renderPdf } from '../export/pdf';
import { type ViewerContext, recordRead, viewerOf } from '../context';
import { BadRequest, type Query, given, objectParam, param, rangeParams } from '../params';
import { inertJson } from './api';

/** An export holds the whole result (no paging), up to this many events. */
export const MAX_EXPORT_EVENTS = 100_000;

const PARAMS = ['object', 'actor', 'tenant', 'action', 'since', 'until'] as const;

interface ExportSubject {
  events: HistoryEvent[];
  /** For the file name and the report's title. */
  title: string;
}

/** The events of an export: an object's history, or a search; scoped like every other read. */
async function exportEvents(ctx: ViewerContext, req: FastifyRequest, format: string): Promise<ExportSubject> {
  const q = req.query as Query;
  const object = objectParam(q);
  const range = rangeParams(q);
  const actor = param(q, 'actor');
  const action = param(q, 'action');
  const scope = viewerOf(req).scope;
  const params = given(q, PARAMS);
  if (object !== null) {
    await recordRead(ctx, req, { kind: 'object', type: object.type, id: object.id, view: `export-${format}`, params });
    const events = await ctx.data.history({ object, range, actor, action }, scope);
    return { events: events.slice(0, MAX_EXPORT_EVENTS), title: `History of ${object.type}:${object.id}` };
  }
  const tenant = param(q, 'tenant');
  if (actor === null && tenant === null && action === null) throw new BadRequest('object, actor, tenant or action is required');
  await recordRead(ctx, req, { kind: 'search', view: `export-${format}`, params });
  const events = await ctx.data.searchAll({ actor, tenant, action, range }, scope, MAX_EXPORT_EVENTS);
  const what = actor !== null ? `Activity of ${actor}` : tenant !== null ? `Events of tenant ${tenant}` : `Events with action ${action ?? ''}`;
  return { events, title: what };
}

/** A file name with nothing of the (stored, user-chosen) subject in it: headers are no place for stored text. */
function attachment(ext: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return `attachment; filename="audit-export-${stamp}.${ext}"`;
}

/** `fields=a,b,c`: the CSV's columns, in that order (default every field of `--format json`). */
function fieldsParam(q: Query): string[] | undefined {
  const text = param(q, 'fields');
  return text === null ? undefined : text.split(',').map((f) => f.trim()).filter(Boolean);
}

function csvOf(events: readonly HistoryEvent[], fields: string[] | undefined): string {
  try {
    return renderCsv(events, fields);
  } catch (err) {
    if (err instanceof UnknownFieldError) throw new BadRequest(err.message);
    throw err;
  }
}

/** Exports of any search or object history: CSV (viewer/export/csv.ts), JSON, and a PDF report (viewer/export/pdf.ts). */
export function registerExportRoutes(app: FastifyInstance, ctx: ViewerContext): void {
  app.get('/export/csv', async (req, reply) => {
    const fields = fieldsParam(req.query as Query);
    // Checked before reading (and before the read is recorded): a typo costs nothing.
    csvOf([], fields);
    const { events } = await exportEvents(ctx, req, 'csv');
    return reply.type('text/csv; charset=utf-8').header('Content-Disposition', attachment('csv')).send(csvOf(events, fields));
  });

  app.get('/export/json', async (req, reply) => {
    const { events } = await exportEvents(ctx, req, 'json');
    return reply.type('application/json; charset=utf-8').header('Content-Disposition', attachment('json')).send(inertJson(events));
  });

  app.get('/export/pdf', async (req, reply) => {
    const { events, title } = await exportEvents(ctx, req, 'pdf');
    const q = req.query as Query;
    const subtitle = `${param(q, 'since') ?? 'from the first event'} to ${param(q, 'until') ?? 'the last'}; ${events.length} event(s); for ${viewerOf(req).identity}`;
    const body = await renderPdf({ title, subtitle, events, generatedAt: new Date() });
    return reply.type('application/pdf').header('Content-Disposition', attachment('pdf')).send(body);
  });
}
