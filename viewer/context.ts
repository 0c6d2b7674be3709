import type { FastifyRequest } from 'fastify';
import type { Viewer } from './auth';
import type { ViewerConfig } from './config';
import type { ViewerData } from './data';
import type { ReadRecorder, ReadSubject } from './recorder';

/** What every route module is given. */
export interface ViewerContext {
  config: ViewerConfig;
  data: ViewerData;
  recorder: ReadRecorder;
}

/** The signed-in viewer (routes run only after the auth hook set it). */
export function viewerOf(req: FastifyRequest): Viewer {
  if (!req.viewer) throw new Error('route reached without a signed-in viewer');
  return req.viewer;
}

/** Records the read in the audit trail before anything is read: attempts are in the trail too. */
export function recordRead(ctx: ViewerContext, req: FastifyRequest, subject: ReadSubject): Promise<void> {
  const ua = req.headers['user-agent'];
  return ctx.recorder.record(viewerOf(req), subject, {
    ip: req.raw.socket.remoteAddress ?? null,
    userAgent: typeof ua === 'string' ? ua.slice(0, 512) : null,
    method: req.method,
    path: req.url.split('?')[0] ?? '/',
  });
}
