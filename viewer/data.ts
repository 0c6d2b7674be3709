import type { HistoryEvent } from '../query/history';
import type { ObjectRef, TimeRange } from '../query/locate';
import type { AuditQuery } from '../query/query';
import { CursorCodec, queryFingerprint } from './cursor';
import { type Scope, describeScope, inScope, scopedEvents } from './scope';

/**
 * What the viewer reads, always through a scope: every method returns only
 * events the scope covers, and pages and counts are made after scoping, so
 * nothing about events outside it (not even how many) reaches a response.
 */

export interface EventPage {
  events: HistoryEvent[];
  next: string | null;
}

export interface HistoryParams {
  object: ObjectRef;
  range: TimeRange;
  actor: string | null;
  action: string | null;
}

export interface SearchParams {
  actor: string | null;
  tenant: string | null;
  action: string | null;
  range: TimeRange;
}

export interface ViewerData {
  /** An object's whole (scoped) history, oldest first: the timeline, diffs and as-of state need all of it. */
  history(p: HistoryParams, scope: Scope): Promise<HistoryEvent[]>;
  /** One page of an object's history. */
  historyPage(p: HistoryParams, scope: Scope, cursor: string | null, limit: number): Promise<EventPage>;
  /** One page of events across objects by actor, tenant and/or action. */
  search(p: SearchParams, scope: Scope, cursor: string | null, limit: number): Promise<EventPage>;
  /** The events of one request, looked for within a day either side of `aroundUs`. */
  request(requestId: string, aroundUs: number, scope: Scope): Promise<HistoryEvent[]>;
}

const DAY_US = 86_400_000_000;

function page(events: readonly HistoryEvent[], codec: CursorCodec, fingerprint: string, cursor: string | null, limit: number): EventPage {
  const offset = cursor === null ? 0 : codec.decode(fingerprint, cursor);
  const slice = events.slice(offset, offset + limit);
  const end = offset + slice.length;
  return { events: slice, next: end < events.length ? codec.encode(fingerprint, end) : null };
}

/**
 * The data over one AuditQuery: object lookups through its indexes, searches
 * as a scan of the time range (filtered here).
 */
export class QueryData implements ViewerData {
  private readonly codec: CursorCodec;

  constructor(
    private readonly query: AuditQuery,
    cursorKey: Buffer,
  ) {
    this.codec = new CursorCodec(cursorKey);
  }

  async history(p: HistoryParams, scope: Scope): Promise<HistoryEvent[]> {
    const events = await this.query.history({ object: p.object, range: p.range, actor: p.actor, action: p.action });
    return scopedEvents(scope, events);
  }

  async historyPage(p: HistoryParams, scope: Scope, cursor: string | null, limit: number): Promise<EventPage> {
    const fingerprint = queryFingerprint(['history', p.object.type, p.object.id, p.range.since, p.range.until, p.actor, p.action, describeScope(scope)]);
    // Checked before reading: a forged cursor costs no scan.
    if (cursor !== null) this.codec.decode(fingerprint, cursor);
    return page(await this.history(p, scope), this.codec, fingerprint, cursor, limit);
  }

  async search(p: SearchParams, scope: Scope, cursor: string | null, limit: number): Promise<EventPage> {
    const fingerprint = queryFingerprint(['search', p.actor, p.tenant, p.action, p.range.since, p.range.until, describeScope(scope)]);
    if (cursor !== null) this.codec.decode(fingerprint, cursor);
    // A tenant outside the scope has, for this viewer, no events: answered without reading.
    if (p.tenant !== null && !inScope(scope, p.tenant)) return { events: [], next: null };
    const events = await this.query.history({ object: null, range: p.range, actor: p.actor, action: p.action });
    const matching = scopedEvents(scope, events).filter((e) => p.tenant === null || e.tenant_id === p.tenant);
    return page(matching, this.codec, fingerprint, cursor, limit);
  }

  async request(requestId: string, aroundUs: number, scope: Scope): Promise<HistoryEvent[]> {
    const range = { since: aroundUs - DAY_US, until: aroundUs + DAY_US };
    const events = await this.query.history({ object: null, range, actor: null, action: null });
    return scopedEvents(scope, events).filter((e) => e.request_id === requestId);
  }
}
