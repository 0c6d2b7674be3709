import { UsageError } from '../query/args';
import { decodeCursor } from '../query/cursor';
import type { HistoryEvent } from '../query/history';
import type { ObjectRef, TimeRange } from '../query/locate';
import type { AuditQuery } from '../query/query';
import { MAX_LIMIT, type SearchContext, normalizeSearch, runSearch } from '../query/search';
import { BadCursor, CursorCodec, queryFingerprint } from './cursor';
import { BadRequest } from './params';
import { type Scope, describeScope, scopeTenants, scopedEvents } from './scope';

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
  /** Every event of a search (pages read one after another), up to `max`. */
  searchAll(p: SearchParams, scope: Scope, max: number): Promise<HistoryEvent[]>;
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
 * The data through query/: object lookups by AuditQuery (through the indexes),
 * searches by query/search.ts (scope applied inside the query, cursors bound to
 * query and scope), a request's events as a scan of the days around it.
 */
export class QueryData implements ViewerData {
  private readonly codec: CursorCodec;

  constructor(
    private readonly query: AuditQuery,
    private readonly searchContext: SearchContext,
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
    let n;
    try {
      n = normalizeSearch({
        ...(p.actor !== null ? { actor: p.actor } : {}),
        ...(p.tenant !== null ? { tenant: p.tenant } : {}),
        ...(p.action !== null ? { action: p.action } : {}),
        sinceUs: p.range.since,
        untilUs: p.range.until,
        limit: Math.min(limit, MAX_LIMIT),
        scope: scopeTenants(scope) ?? '*',
      });
    } catch (err) {
      if (err instanceof UsageError) throw new BadRequest(err.message.replace(/--/g, ''));
      throw err;
    }
    if (cursor !== null) {
      // One answer for every cursor not made for this query and scope, whatever the reason.
      try {
        decodeCursor(this.searchContext.cursorKey, n.hash, cursor);
      } catch (err) {
        if (err instanceof UsageError) throw new BadCursor();
        throw err;
      }
    }
    const { page: result } = await runSearch(this.searchContext, n, cursor);
    return { events: result.events, next: result.next };
  }

  async searchAll(p: SearchParams, scope: Scope, max: number): Promise<HistoryEvent[]> {
    const out: HistoryEvent[] = [];
    let cursor: string | null = null;
    do {
      const page: EventPage = await this.search(p, scope, cursor, Math.min(MAX_LIMIT, max - out.length));
      out.push(...page.events);
      cursor = page.next;
    } while (cursor !== null && out.length < max);
    return out;
  }

  async request(requestId: string, aroundUs: number, scope: Scope): Promise<HistoryEvent[]> {
    const range = { since: aroundUs - DAY_US, until: aroundUs + DAY_US };
    const events = await this.query.history({ object: null, range, actor: null, action: null });
    return scopedEvents(scope, events).filter((e) => e.request_id === requestId);
  }
}
