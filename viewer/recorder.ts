import { randomUUID } from 'node:crypto';
import type { AuditClient } from '../producer/client';
import type { Viewer } from './auth';
import { readTenant } from './scope';

/**
 * Every search, view and export is itself an audit event (action `read`, by
 * the viewer's identity), recorded before the answer leaves: a read that could
 * not be recorded is not served.
 */

/** What was read: one object, or a search (described in the event's metadata). */
export type ReadSubject =
  | { kind: 'object'; type: string; id: string; view: string; params: Record<string, string> }
  | { kind: 'search'; view: string; params: Record<string, string> };

export interface ReadContext {
  ip: string | null;
  userAgent: string | null;
  method: string;
  path: string;
}

/** The object type of search reads; their object id is the view (events, actor, request, ...). */
export const SEARCH_OBJECT_TYPE = 'audit_viewer_search';

export class ReadNotRecorded extends Error {
  constructor(cause: unknown) {
    super(`the read could not be recorded in the audit trail: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = 'ReadNotRecorded';
  }
}

export interface ReadRecorder {
  record(viewer: Viewer, subject: ReadSubject, ctx: ReadContext): Promise<void>;
  close(): Promise<void>;
}

export class ProducerReadRecorder implements ReadRecorder {
  constructor(private readonly client: AuditClient) {}

  async record(viewer: Viewer, subject: ReadSubject, ctx: ReadContext): Promise<void> {
    const metadata: Record<string, string> = { viewer_view: subject.view, viewer_auth: viewer.via };
    if (Object.keys(subject.params).length > 0) metadata.viewer_query = JSON.stringify(subject.params);
    try {
      await this.client.record({
        objectType: subject.kind === 'object' ? subject.type : SEARCH_OBJECT_TYPE,
        objectId: subject.kind === 'object' ? subject.id : subject.view,
        action: 'read',
        actorId: viewer.identity,
        actorType: 'viewer',
        tenantId: readTenant(viewer.scope),
        requestId: randomUUID(),
        ip: ctx.ip,
        userAgent: ctx.userAgent,
        httpMethod: ctx.method,
        httpPath: ctx.path,
        metadata,
      });
    } catch (err) {
      throw new ReadNotRecorded(err);
    }
  }

  close(): Promise<void> {
    return this.client.close();
  }
}
