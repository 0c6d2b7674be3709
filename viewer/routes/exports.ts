import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { HistoryEvent } from '../../query/history';
import { render } from '../../query/format';
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
  const result = await ctx.data.search({ actor, tenant, action, range }, scope, null, MAX_EXPORT_EVENTS);
  const what = actor !== null ? `Activity of ${actor}` : tenant !== null ? `Events of tenant ${tenant}` : `Events with action ${action ?? ''}`;
  return { events: result.events, title: what };
}

/** A file name with nothing of the (stored, user-chosen) subject in it: headers are no place for stored text. */
function attachment(ext: string): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return `attachment; filename="audit-export-${stamp}.${ext}"`;
}

export type PdfRenderer = (title: string, events: readonly HistoryEvent[], opts: { viewer: string; range: string }) => Promise<Buffer>;
export type CsvRenderer = (events: readonly HistoryEvent[]) => string;

export interface ExportRenderers {
  csv: CsvRenderer;
  pdf: PdfRenderer | null;
}

/** CSV through query/format.ts (cells neutralised by config/safe-text.ts), every field of `--format json`. */
const defaultCsv: CsvRenderer = (events) => render(events as unknown as Record<string, unknown>[], 'csv');

/** Exports of any search or object history: CSV, JSON and (with a renderer) a PDF report. */
export function registerExportRoutes(app: FastifyInstance, ctx: ViewerContext, renderers: ExportRenderers = { csv: defaultCsv, pdf: null }): void {
  app.get('/export/csv', async (req, reply) => {
    const { events } = await exportEvents(ctx, req, 'csv');
    return reply.type('text/csv; charset=utf-8').header('Content-Disposition', attachment('csv')).send(renderers.csv(events));
  });

  app.get('/export/json', async (req, reply) => {
    const { events } = await exportEvents(ctx, req, 'json');
    return reply.type('application/json; charset=utf-8').header('Content-Disposition', attachment('json')).send(inertJson(events));
  });

  const pdf = renderers.pdf;
  if (pdf !== null) {
    app.get('/export/pdf', async (req, reply) => {
      const { events, title } = await exportEvents(ctx, req, 'pdf');
      const q = req.query as Query;
      const range = `${param(q, 'since') ?? 'the beginning'} to ${param(q, 'until') ?? 'now'}`;
      const body = await pdf(title, events, { viewer: viewerOf(req).identity, range });
      return reply.type('application/pdf').header('Content-Disposition', attachment('pdf')).send(body);
    });
  }
}
