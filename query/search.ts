import type { DuckDBConnection, DuckDBInstance, DuckDBValue } from '@duckdb/node-api';
import type { Env } from '../config/env';
import { DATA_PREFIX, type ObjectStore, dtOfMicros, isDt, openStore } from '../storage';
import { Limiter, mapLimit } from '../storage/concurrency';
import { type TrustPolicy, resolveTrust } from '../trust/trust-policy';
import { UsageError } from './args';
import { ObjectCache } from './cache';
import { type CursorPosition, cliCursorKey, decodeCursor, encodeCursor, queryHash } from './cursor';
import { DeadlineStore, DEFAULT_DEADLINES } from './deadline-store';
import { type HistoryEvent, openDuckDb, parquetSource, toEvent } from './history';
import type { RejectedIndex } from './locate';
import { wholeFile } from './plan';
import { defaultCacheDir } from './query';
import { type DayCandidates, type SubjectWanted, locateSubjectDay } from './search-locate';

/**
 * Activity across objects (issue 20): the events of an actor, a tenant or an
 * action in a time range, oldest first, a page at a time. Used by
 * `audit-query --actor/--tenant/--action` and by the viewer's `/api/events`.
 *
 *   const ctx = await openSearchContext(readEnv(), { cursorKey });
 *   const page = await searchEvents(ctx, { actor: 'alice', since, until, scope: ['acme'] });
 *   ... searchEvents(ctx, { ...same query, cursor: page.next })
 *   ctx.close();
 *
 * Order: event time, then Kafka partition, offset and event_id. Pages are read
 * day by day (a day's events are all in its dt= partition), from the files the
 * actor/tenant filters of their indexes do not rule out, and stop as soon as
 * the page is full. A record stored twice is returned once (its first copy).
 */

/** Tenants a caller may see: all, or these (events with another or no tenant are never returned nor counted). */
export type TenantScope = '*' | readonly string[];

export interface SearchQuery {
  actor?: string;
  tenant?: string;
  action?: string;
  /** ms since the epoch, inclusive bounds. */
  since?: number;
  until?: number;
  /** Page size: default 100, at most 1000. */
  limit?: number;
  /** The `next` of the previous page of the same query and scope. */
  cursor?: string | null;
  /** Default '*'. */
  scope?: TenantScope;
}

/** One event exactly as `audit-query --format json` prints it. */
export type JsonEvent = HistoryEvent;

export interface SearchPage {
  events: JsonEvent[];
  next: string | null;
}

export interface SearchStats {
  /** Days looked at, their live data files, and the files read (the others ruled out by their indexes). */
  days: number;
  filesListed: number;
  filesRead: number;
  bytesRead: number;
  manifestsFetched: number;
  filesFromManifests: number;
  /** Indexes, manifests or generations that failed the trust check (their files read without them). */
  indexesRejected: number;
  /** Bytes received from the store (indexes, manifests, data). */
  bytesFetched: number;
  msLocate: number;
  msFetch: number;
  msRead: number;
}

export const DEFAULT_LIMIT = 100;
/** Days located beyond the window being read. */
const LOCATE_AHEAD = 8;
export const MAX_LIMIT = 1000;

/** What a search needs: the store, the local cache, the trust policy, DuckDB and the cursor key. */
export interface SearchContext {
  readonly store: ObjectStore;
  readonly cache: ObjectCache;
  readonly cursorKey: Buffer;
  trust(): Promise<TrustPolicy>;
  /** Indexes that failed the trust check in this context's searches (each once). */
  rejected(): RejectedIndex[];
  close(): void;
}

export interface SearchContextOptions {
  /** HMAC key of the cursors (the viewer passes its own); default AUDIT_QUERY_CURSOR_KEY, else a key kept in the cache dir. */
  cursorKey?: Buffer | string;
  /** Requests in flight to the store (default 32). */
  concurrency?: number;
}

type ContextEnv = Pick<Env, 'AUDIT_STORE_URL' | 'AUDIT_S3_ENDPOINT' | 'AUDIT_S3_REGION' | 'AUDIT_CACHE_DIR' | 'AUDIT_TRUSTED_KEYS_FILE' | 'AUDIT_QUERY_CURSOR_KEY'>;

class Context implements SearchContext {
  private policy: Promise<TrustPolicy> | null = null;
  private db: Promise<{ instance: DuckDBInstance; conn: DuckDBConnection }> | null = null;
  private readonly refused = new Map<string, RejectedIndex>();

  constructor(
    readonly store: ObjectStore,
    readonly cache: ObjectCache,
    readonly cursorKey: Buffer,
    private readonly trustedKeysFile: string | undefined,
  ) {}

  trust(): Promise<TrustPolicy> {
    this.policy ??= resolveTrust({ trustedKeysFile: this.trustedKeysFile, store: this.store, role: 'audit-query' });
    return this.policy;
  }

  /** One DuckDB instance per context; a connection per search (searches may run side by side). */
  async connect(): Promise<DuckDBConnection> {
    this.db ??= openDuckDb();
    return (await this.db).instance.connect();
  }

  noteRejected(r: RejectedIndex): void {
    this.refused.set(r.key, r);
  }

  rejected(): RejectedIndex[] {
    return [...this.refused.values()];
  }

  close(): void {
    const db = this.db;
    this.db = null;
    if (db) {
      void db.then(
        ({ instance, conn }) => {
          conn.closeSync();
          instance.closeSync();
        },
        () => undefined,
      );
    }
    this.store.close();
  }
}

/**
 * Opens a search context on the store of `env` (AUDIT_STORE_URL, its endpoint
 * and trusted keys), with the local cache of AUDIT_CACHE_DIR. Close it when done.
 */
export async function openSearchContext(env: ContextEnv, opts: SearchContextOptions = {}): Promise<SearchContext> {
  const cacheDir = defaultCacheDir(env);
  const key = opts.cursorKey !== undefined ? Buffer.from(opts.cursorKey) : await cliCursorKey(env.AUDIT_QUERY_CURSOR_KEY, cacheDir);
  if (key.length < 16) throw new UsageError('the cursor key must be at least 16 bytes');
  const store = new DeadlineStore(openStore(env), DEFAULT_DEADLINES);
  const cache = new ObjectCache(cacheDir, store, new Limiter(opts.concurrency ?? 32));
  return new Context(store, cache, key, env.AUDIT_TRUSTED_KEYS_FILE);
}

/** A validated query: µs bounds, the scope as a sorted list (or '*'), the hash cursors are bound to. */
export interface NormalizedSearch {
  actor: string | null;
  tenant: string | null;
  action: string | null;
  sinceUs: number | null;
  untilUs: number | null;
  limit: number;
  scope: '*' | string[];
  hash: string;
}

const MAX_TEXT = 1024;

function text(name: string, v: unknown): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_TEXT) throw new UsageError(`${name} must be a non-empty string of at most ${MAX_TEXT} characters`);
  return v;
}

/** Checks a query (UsageError with a one-line reason); bounds in µs, as the CLI parses them. */
export function normalizeSearch(q: Omit<SearchQuery, 'since' | 'until'> & { sinceUs?: number | null; untilUs?: number | null }): NormalizedSearch {
  const actor = text('actor', q.actor);
  const tenant = text('tenant', q.tenant);
  const action = text('action', q.action);
  const sinceUs = q.sinceUs ?? null;
  const untilUs = q.untilUs ?? null;
  for (const [name, v] of [['since', sinceUs], ['until', untilUs]] as const) {
    if (v !== null && !Number.isSafeInteger(v)) throw new UsageError(`${name} is not a time`);
  }
  if (actor === null && tenant === null && action === null) throw new UsageError('a search needs --actor, --tenant or --action (or --object for one object)');
  if (actor === null && tenant === null && (sinceUs === null || untilUs === null)) throw new UsageError('a search by action alone needs --since and --until');
  if (sinceUs !== null && untilUs !== null && sinceUs > untilUs) throw new UsageError('--since is after --until');
  const limit = q.limit ?? DEFAULT_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new UsageError(`the limit must be an integer from 1 to ${MAX_LIMIT}`);
  const rawScope = q.scope ?? '*';
  let scope: '*' | string[];
  if (rawScope === '*') scope = '*';
  else if (Array.isArray(rawScope) && rawScope.every((t) => typeof t === 'string')) scope = [...new Set(rawScope as readonly string[])].sort();
  else throw new UsageError("the tenant scope must be '*' or a list of tenants");
  const hash = queryHash({ actor, tenant, action, sinceUs, untilUs, scope });
  return { actor, tenant, action, sinceUs, untilUs, limit, scope, hash };
}

/** A page of events matching the query (see the module comment). Throws UsageError for a bad query or cursor. */
export async function searchEvents(ctx: SearchContext, q: SearchQuery): Promise<SearchPage> {
  for (const [name, v] of [['since', q.since], ['until', q.until]] as const) {
    if (v !== undefined && v !== null && !Number.isSafeInteger(v)) throw new UsageError(`${name} must be milliseconds since the epoch`);
  }
  const n = normalizeSearch({
    ...q,
    sinceUs: q.since === undefined ? null : q.since * 1000,
    // An inclusive bound in ms includes that whole millisecond.
    untilUs: q.until === undefined ? null : q.until * 1000 + 999,
  });
  return (await runSearch(ctx, n, q.cursor ?? null)).page;
}

interface Row {
  event: HistoryEvent;
  pos: CursorPosition;
}

/** The search behind searchEvents, with what it cost (the CLI's --stats). */
export async function runSearch(ctx: SearchContext, n: NormalizedSearch, cursorText: string | null): Promise<{ page: SearchPage; stats: SearchStats }> {
  const cursor = cursorText ? decodeCursor(ctx.cursorKey, n.hash, cursorText) : null;
  const before = ctx.cache.counters.bytesFetched;
  const stats: SearchStats = { days: 0, filesListed: 0, filesRead: 0, bytesRead: 0, manifestsFetched: 0, filesFromManifests: 0, indexesRejected: 0, bytesFetched: 0, msLocate: 0, msFetch: 0, msRead: 0 };
  const done = (rows: Row[]) => {
    stats.bytesFetched = ctx.cache.counters.bytesFetched - before;
    const events = rows.slice(0, n.limit);
    const next = rows.length > n.limit ? encodeCursor(ctx.cursorKey, n.hash, events[events.length - 1]!.pos) : null;
    return { page: { events: events.map((r) => r.event), next }, stats };
  };
  // A scope that excludes the tenant asked for answers like a tenant with no events.
  if (n.scope !== '*' && (n.scope.length === 0 || (n.tenant !== null && !n.scope.includes(n.tenant)))) return done([]);

  const t0 = Date.now();
  const policy = await ctx.trust();
  const fromDt = n.sinceUs === null ? null : dtOfMicros(n.sinceUs);
  const toDt = n.untilUs === null ? null : dtOfMicros(n.untilUs);
  const cursorDt = cursor ? dtOfMicros(Number(cursor.occurredUs)) : null;
  const days = (await ctx.store.listPrefixes(''))
    .filter((p) => p.startsWith(DATA_PREFIX) && isDt(p.slice(DATA_PREFIX.length, -1)))
    .map((p) => p.slice(DATA_PREFIX.length, -1))
    .filter((dt) => (fromDt === null || dt >= fromDt) && (toDt === null || dt <= toDt) && (cursorDt === null || dt >= cursorDt))
    .sort();
  stats.msLocate += Date.now() - t0;
  const want: SubjectWanted = {
    ...(n.actor !== null ? { actor: n.actor } : {}),
    ...(n.tenant !== null ? { tenant: n.tenant } : {}),
    ...(n.scope !== '*' ? { tenants: n.scope } : {}),
    sinceUs: n.sinceUs,
    untilUs: n.untilUs,
  };
  // Days are located (listings, manifest, indexes: metadata only) a few windows
  // ahead of the one being read, on a shared limit, so the reads never wait for them.
  const limiter = new Limiter(8);
  const located = new Map<number, Promise<DayCandidates>>();
  const locateDay = (k: number) => {
    let p = located.get(k);
    if (!p) {
      p = limiter.run(() => locateSubjectDay(ctx.store, ctx.cache, policy, days[k]!, want));
      // Awaited in order below; one located ahead and never needed must not go unhandled.
      p.catch(() => undefined);
      located.set(k, p);
    }
    return p;
  };

  const conn = await (ctx as Context).connect();
  try {
    const rows: Row[] = [];
    // Windows of days, growing (1, 2, 4, 8): a first page of a busy tenant reads one
    // day; a sparse actor's month in few DuckDB scans.
    let i = 0;
    let width = 1;
    while (i < days.length && rows.length <= n.limit) {
      const window = days.slice(i, i + width).map((_, j) => i + j);
      for (let k = i; k < Math.min(days.length, i + width + LOCATE_AHEAD); k++) void locateDay(k);
      i += width;
      width = Math.min(width * 2, 8);
      const dayResults = await timed(stats, 'msLocate', () => Promise.all(window.map(locateDay)));
      const candidates = dayResults.flatMap((d) => d.candidates);
      account(ctx as Context, stats, dayResults);
      if (candidates.length === 0) continue;
      const paths = await timed(stats, 'msFetch', () =>
        mapLimit(candidates, 16, async (c) => {
          const entry = await ctx.cache.dataFile(c.key, c.size);
          await ctx.cache.ensure(entry, wholeFile(entry.size));
          return entry.path;
        }),
      );
      stats.filesRead += candidates.length;
      stats.bytesRead += candidates.reduce((s, c) => s + c.size, 0);
      rows.push(...(await timed(stats, 'msRead', () => readPage(conn, paths, n, cursor, n.limit + 1 - rows.length))));
    }
    return done(rows);
  } finally {
    conn.closeSync();
  }
}

function account(ctx: Context, stats: SearchStats, located: DayCandidates[]): void {
  for (const d of located) {
    stats.days++;
    stats.filesListed += d.listed;
    stats.filesFromManifests += d.fromManifest;
    if (d.manifestFetched) stats.manifestsFetched++;
    stats.indexesRejected += d.rejected.length;
    for (const r of d.rejected) ctx.noteRejected(r);
  }
}

async function timed<T>(stats: SearchStats, field: 'msLocate' | 'msFetch' | 'msRead', op: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await op();
  } finally {
    stats[field] += Date.now() - t0;
  }
}

/**
 * The next rows after the cursor in these files, in order, at most `limit`.
 * Duplicates are dropped before the cursor applies, so a record stored twice
 * never reappears on a later page. User input reaches DuckDB only as bound parameters.
 */
async function readPage(conn: DuckDBConnection, paths: readonly string[], n: NormalizedSearch, cursor: CursorPosition | null, limit: number): Promise<Row[]> {
  const where: string[] = [];
  const params: Record<string, DuckDBValue> = { lim: limit };
  if (n.actor !== null) {
    where.push('actor_id = $actor');
    params.actor = n.actor;
  }
  if (n.tenant !== null) {
    where.push('tenant_id = $tenant');
    params.tenant = n.tenant;
  }
  if (n.action !== null) {
    where.push('action = $action');
    params.action = n.action;
  }
  if (n.scope !== '*') {
    where.push(`tenant_id IN (${n.scope.map((_, k) => `$s${k}`).join(', ')})`);
    n.scope.forEach((t, k) => (params[`s${k}`] = t));
  }
  if (n.sinceUs !== null) {
    where.push('epoch_us(occurred_at) >= $since');
    params.since = BigInt(n.sinceUs);
  }
  if (n.untilUs !== null) {
    where.push('epoch_us(occurred_at) <= $until');
    params.until = BigInt(n.untilUs);
  }
  let after = '';
  if (cursor) {
    after = `AND (occurred_us > $ct OR (occurred_us = $ct AND (kafka_partition > $cp OR (kafka_partition = $cp AND (kafka_offset > $co OR (kafka_offset = $co AND eid__ > $ce))))))`;
    params.ct = BigInt(cursor.occurredUs);
    params.cp = cursor.partition;
    params.co = BigInt(cursor.offset);
    params.ce = cursor.eventId;
  }
  const sql = `
    SELECT * EXCLUDE (dup) FROM (
      SELECT *, epoch_us(occurred_at) AS occurred_us, CAST(event_id AS VARCHAR) AS eid__,
             row_number() OVER (PARTITION BY event_id ORDER BY kafka_partition, kafka_offset) AS dup
      FROM ${parquetSource(paths)}
      WHERE ${where.join(' AND ')}
    ) WHERE dup = 1 ${after}
    ORDER BY occurred_us, kafka_partition, kafka_offset, eid__
    LIMIT $lim`;
  const reader = await conn.runAndReadAll(sql, params);
  return reader.getRowObjects().map((r) => ({
    event: toEvent(r),
    pos: { occurredUs: String(r.occurred_us), partition: Number(r.kafka_partition), offset: String(r.kafka_offset), eventId: String(r.eid__) },
  }));
}
