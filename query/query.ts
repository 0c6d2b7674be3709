import { open } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import type { Env } from '../config/env';
import { ConfigError } from '../config/env';
import { INDEX_PREFIX, openStore, type ObjectStore, PARQUET_COLUMNS } from '../storage';
import type { DigestSigner } from '../trust/signer';
import { type TrustMode, type TrustPolicy, resolveTrust } from '../trust/trust-policy';
import { type CachedFile, type FooterLayout, ObjectCache } from './cache';
import { Limiter, mapLimit } from '../storage/concurrency';
import { DeadlineStore, type Deadlines, DEFAULT_DEADLINES } from './deadline-store';
import { IndexCatalog } from './index-catalog';
import { type IndexBuildOptions, type IndexBuildResult, buildDayManifests } from '../storage/day-manifest-build';
import { readFooterLayouts } from './footer';
import { type HistoryEvent, type HistoryFilter, type ObjectRow, type ScanSource, finishHistory, openDuckDb, parquetSource, readHistory, readObjectRows } from './history';
import { ResultCache, fileId } from './result-cache';
import { SqlError, isRefusedByLockDown, lockDown, readOnlyStatement } from './sandbox';
import { type Candidate, type ObjectRef, type RejectedIndex, locateFiles, type TimeRange } from './locate';
import { rejectionWarning } from '../storage/live-set';
import { FOOTER_PROBE_BYTES, footerStartOf, layoutFromIndex, rangesForRowGroups, rowRuns, selectRowGroups, wholeFile } from './plan';

export interface QueryProgress {
  (done: number, total: number): void;
}

export interface QueryStats {
  /** Data files in the listed dt partitions, and their stored bytes. */
  filesListed: number;
  bytesListed: number;
  /** Candidate files after pruning (dt, time bounds, Bloom filter, row-group statistics). */
  filesRead: number;
  /** Stored bytes of the candidate files. */
  bytesCandidates: number;
  /** Candidates read through byte ranges, and read whole (no usable index, or the sql command). */
  filesSparse: number;
  filesWhole: number;
  /** Everything received from the store: data ranges + index files. */
  bytesFetched: number;
  dataBytesFetched: number;
  indexBytesFetched: number;
  /** GET requests (whole or ranged), whole objects fetched (indexes), ranges fetched. */
  requests: number;
  objectsFetched: number;
  rangesFetched: number;
  /** LIST prefixes listed (the listing is never cached). */
  listCalls: number;
  /** Day manifests fetched, and candidate-listing files whose index came from one (see storage/day-manifest.ts). */
  manifestsFetched: number;
  filesFromManifests: number;
  /** How indexes and manifests were checked (trust/trust-policy.ts), and how many failed the check and were read around. */
  trust: TrustMode | null;
  indexesRejected: number;
  cacheHits: number;
  /** Times a sparse read failed and the files were completed and read again (should stay 0). */
  fallbacks: number;
  /** Candidates whose rows for this object came from the local result cache (no read at all). */
  filesFromResultCache: number;
  /** Milliseconds spent listing and pruning, fetching (and checking footers), reading with DuckDB. */
  msLocate: number;
  msFetch: number;
  msRead: number;
}

export interface AuditQueryOptions {
  /** Requests in flight to the store (default 32). */
  concurrency?: number;
  deadlines?: Deadlines;
  /** Turns off byte-range reads (every candidate file is fetched whole); for comparisons. */
  wholeFiles?: boolean;
  /** Keep and reuse each object's rows per data file (default true). */
  resultCache?: boolean;
  /** Where warnings go (a generation that failed the trust check); default stderr. */
  warn?: (line: string) => void;
  /** The process's signing key (`index build`): part of the one trust policy it resolves. */
  signer?: DigestSigner | null;
}

export function defaultCacheDir(env: Pick<Env, 'AUDIT_CACHE_DIR'>): string {
  return env.AUDIT_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'audit-query');
}

/**
 * Reads audit data from a store through a local cache of immutable files.
 *
 * An object lookup:
 * 1. lists the data files of the dt partitions in range (never cached: late
 *    events add files to past days) and prunes them with their indexes (time
 *    bounds, Bloom filter of objects, row-group statistics), summed up in a
 *    local catalog;
 * 2. per candidate file, fetches only the tail (footer and Parquet Bloom
 *    filters) and the row groups that may hold the object, into a sparse local
 *    file of the full size (byte ranges at their offsets), checking the
 *    index-based plan against the real footer the first time;
 * 3. reads those files with DuckDB, each scan restricted to the fetched row
 *    groups by `file_row_number` (DuckDB skips every other row group, whatever
 *    its statistics say, so it never touches a byte that was not fetched) and
 *    filtered by the object as bound parameters;
 * 4. keeps the object's rows per file, so a repeated lookup reads nothing but
 *    the listing. A failed sparse read falls back to whole files.
 */
export class AuditQuery {
  readonly store: ObjectStore;
  readonly cache: ObjectCache;
  private readonly cacheDir: string;
  private trustPolicy: Promise<TrustPolicy> | null = null;
  private readonly rejectedIndexes = new Map<string, RejectedIndex>();
  private readonly stats = { trust: null as TrustMode | null, indexesRejected: 0, filesListed: 0, bytesListed: 0, filesRead: 0, bytesCandidates: 0, filesSparse: 0, filesWhole: 0, listCalls: 0, manifestsFetched: 0, filesFromManifests: 0, fallbacks: 0, msLocate: 0, msFetch: 0, msRead: 0, filesFromResultCache: 0 };
  private readonly wholeFiles: boolean;
  private readonly useResultCache: boolean;
  private readonly results: ResultCache;
  private readonly warn: (line: string) => void;
  private readonly warned = new Set<string>();
  private readonly signer: DigestSigner | null;

  constructor(
    private readonly env: Pick<Env, 'AUDIT_STORE_URL' | 'AUDIT_S3_ENDPOINT' | 'AUDIT_S3_REGION' | 'AUDIT_CACHE_DIR' | 'AUDIT_TRUSTED_KEYS_FILE'>,
    private readonly progress?: QueryProgress,
    opts: AuditQueryOptions = {},
  ) {
    this.store = new DeadlineStore(openStore(env), opts.deadlines ?? DEFAULT_DEADLINES);
    this.cacheDir = defaultCacheDir(env);
    this.cache = new ObjectCache(this.cacheDir, this.store, new Limiter(opts.concurrency ?? 32));
    this.wholeFiles = opts.wholeFiles ?? false;
    this.useResultCache = opts.resultCache ?? true;
    this.results = new ResultCache(this.cacheDir, this.store.description);
    this.warn = opts.warn ?? ((line) => process.stderr.write(`audit-query: ${line}\n`));
    this.signer = opts.signer ?? null;
  }

  /**
   * What indexes and manifests must be signed by (resolved once per run):
   * AUDIT_TRUSTED_KEYS_FILE, else the keys the store publishes, else none
   * (an unsigned store: indexes taken as written, as before signing).
   */
  trust(): Promise<TrustPolicy> {
    this.trustPolicy ??= resolveTrust({ trustedKeysFile: this.env.AUDIT_TRUSTED_KEYS_FILE, signer: this.signer, store: this.store, role: this.signer ? 'audit-query index build' : 'audit-query' });
    return this.trustPolicy;
  }

  /** Indexes and manifests that failed the check in this run (each once), for the one report on stderr. */
  rejected(): RejectedIndex[] {
    return [...this.rejectedIndexes.values()];
  }

  private reject(r: RejectedIndex): void {
    this.rejectedIndexes.set(r.key, r);
    this.stats.indexesRejected = this.rejectedIndexes.size;
  }

  private async locate(object: ObjectRef | null, range: TimeRange): Promise<Candidate[]> {
    const t0 = Date.now();
    // The bucket check runs beside the listing (one round trip less); its error,
    // the clearest one, wins when both fail.
    // A reader creates nothing: a store that is not there is an error, not an empty answer.
    const checked = this.store.check('existing').then(
      () => null,
      (err: unknown) => err,
    );
    // A failed check fails the query at once, without waiting for the listing's own deadline.
    const checkFailure = checked.then((err) => (err ? Promise.reject(err) : new Promise<never>(() => undefined)));
    checkFailure.catch(() => undefined);
    let located;
    try {
      located = await Promise.race([
        (async () => {
          const policy = await this.trust();
          this.stats.trust = policy.mode;
          const catalog = await IndexCatalog.load(this.cacheDir, this.store.description, `${policy.mode}:${policy.keys.fingerprint()}`);
          const found = await locateFiles(this.store, this.cache, object, range, catalog, policy);
          await catalog.save(this.store.description);
          return found;
        })(),
        checkFailure,
      ]);
    } catch (err) {
      throw (await checked) ?? err;
    }
    const failed = await checked;
    if (failed) throw failed;
    const { candidates, stats } = located;
    for (const r of located.rejectedGenerations) {
      if (this.warned.has(r.key)) continue;
      this.warned.add(r.key);
      this.warn(rejectionWarning(r, 'reading the day under its newest generation that passes'));
    }
    for (const r of located.rejected) this.reject(r);
    this.stats.msLocate = Date.now() - t0;
    this.stats.filesListed = stats.filesListed;
    this.stats.bytesListed = stats.bytesListed;
    this.stats.listCalls = stats.listCalls;
    this.stats.manifestsFetched = stats.manifestsFetched;
    this.stats.filesFromManifests = stats.filesFromManifests;
    this.stats.filesRead = candidates.length;
    this.stats.bytesCandidates = candidates.reduce((s, c) => s + c.size, 0);
    return candidates;
  }

  /**
   * Makes the candidate files readable locally: for an object lookup, the tail
   * and the row groups that may hold it; otherwise whole files. Returns what to
   * scan: whole files, or sparse files restricted to the fetched row groups.
   */
  private async fetch(candidates: readonly Candidate[], object: ObjectRef | null, instance: DuckDBInstance): Promise<{ entry: CachedFile; source: ScanSource }[]> {
    let done = 0;
    const sparse = object !== null && !this.wholeFiles;
    const whole = (entry: CachedFile) => ({ entry, source: { path: entry.path, rowRuns: null } });
    const restricted = (entry: CachedFile, layout: FooterLayout) => {
      const selected = selectRowGroups(layout, object!);
      return { entry, source: { path: entry.path, rowRuns: rowRuns(layout, selected) }, ranges: rangesForRowGroups(layout, entry.size, selected) };
    };
    // Footers are checked as soon as each file's tail is here, on a few connections,
    // while other files are still downloading.
    const pool = sparse ? await ConnectionPool.open(instance, 2) : null;
    try {
      return await mapLimit(candidates, 64, async (c) => {
        const entry = await this.cache.dataFile(c.key, c.size);
        let result: { entry: CachedFile; source: ScanSource };
        if (sparse && c.index) {
          this.stats.filesSparse++;
          // The footer's layout once known (authoritative), else the index's (checked
          // below), else just the end of the file, to find the footer.
          const guess = entry.layout ?? layoutFromIndex(c.index, entry.size);
          await this.cache.ensure(entry, guess ? restricted(entry, guess).ranges : [[entry.size - FOOTER_PROBE_BYTES, entry.size]]);
          if (entry.layout) {
            result = restricted(entry, entry.layout);
          } else {
            // First read of this file's footer: record its layout, plan from it (the
            // index only gave a first guess) and fetch anything the guess missed.
            const layout = (await this.ensureFooter(entry)) ? (await pool!.run((cn) => readFooterLayouts(cn, [entry.path]))).get(entry.path) : undefined;
            if (layout === undefined || layout instanceof Error) {
              await this.cache.ensure(entry, wholeFile(entry.size));
              result = whole(entry);
            } else {
              // The footer is the truth; an index that counts other rows was made for another file.
              const footerRows = layout.rowGroups.reduce((n, rg) => n + rg.rows, 0);
              if (footerRows !== c.index.rows) {
                this.reject({ key: `${INDEX_PREFIX}${c.key.replace(/\.parquet$/, '.json')}`, code: 'malformed', message: `describes ${c.index.rows} rows; the footer of ${c.key} has ${footerRows}` });
              }
              await this.cache.setLayout(entry, layout);
              const plan = restricted(entry, layout);
              await this.cache.ensure(entry, plan.ranges);
              result = plan;
            }
          }
        } else {
          await this.cache.ensure(entry, wholeFile(entry.size));
          result = whole(entry);
          this.stats.filesWhole++;
        }
        this.progress?.(++done, candidates.length);
        return result;
      });
    } finally {
      pool?.close();
    }
  }

  /**
   * Makes sure the whole footer of a sparse file is present (its length is in
   * the last 8 bytes). False when the file does not end like a Parquet file.
   */
  private async ensureFooter(entry: CachedFile): Promise<boolean> {
    await this.cache.ensure(entry, [[entry.size - 8, entry.size]]);
    const fh = await open(entry.path, 'r');
    let last8: Buffer;
    try {
      last8 = Buffer.alloc(8);
      await fh.read(last8, 0, 8, entry.size - 8);
    } finally {
      await fh.close();
    }
    const footerStart = footerStartOf(last8, entry.size);
    if (footerStart === null) return false;
    await this.cache.ensure(entry, [[footerStart, entry.size]]);
    return true;
  }

  /** One object's (or all objects') events matching the filter, oldest first. */
  async history(filter: HistoryFilter): Promise<HistoryEvent[]> {
    const candidates = await this.locate(filter.object, filter.range);
    if (filter.object === null) return this.historyOfAll(candidates, filter);
    const object = filter.object;
    // The object's rows in files read before need no DuckDB at all (immutable files).
    const known = this.useResultCache ? await this.results.load(object) : new Map<string, ObjectRow[]>();
    const missing = candidates.filter((c) => !known.has(fileId(c.key, c.size)));
    this.stats.filesFromResultCache = candidates.length - missing.length;
    if (missing.length > 0) {
      const { instance, conn } = await openDuckDb();
      try {
        const t0 = Date.now();
        const prepared = await this.fetch(missing, object, instance);
        const t1 = Date.now();
        this.stats.msFetch = t1 - t0;
        let rows: ObjectRow[][];
        try {
          rows = await readObjectRows(conn, prepared.map((p) => p.source), object);
        } catch (err) {
          // A sparse read can only fail if DuckDB touched a range we did not fetch
          // (a reader change, a damaged cache): complete the files and read them whole.
          const partial = prepared.filter((p) => !ObjectCache.isComplete(p.entry));
          if (partial.length === 0) throw err;
          this.stats.fallbacks++;
          await mapLimit(partial, 16, (p) => this.cache.ensure(p.entry, wholeFile(p.entry.size)));
          rows = await readObjectRows(conn, prepared.map((p) => ({ path: p.entry.path, rowRuns: null })), object);
        }
        missing.forEach((c, i) => known.set(fileId(c.key, c.size), rows[i]!));
        this.stats.msRead = Date.now() - t1;
      } finally {
        conn.closeSync();
        instance.closeSync();
      }
      if (this.useResultCache) await this.results.save(object, known);
    }
    return finishHistory(candidates.flatMap((c) => known.get(fileId(c.key, c.size)) ?? []), filter);
  }

  /** Every object's events (no object filter): whole files, filtered in SQL. */
  private async historyOfAll(candidates: readonly Candidate[], filter: HistoryFilter): Promise<HistoryEvent[]> {
    const { instance, conn } = await openDuckDb();
    try {
      const prepared = await this.fetch(candidates, null, instance);
      return await readHistory(conn, prepared.map((p) => p.entry.path), filter);
    } finally {
      conn.closeSync();
      instance.closeSync();
    }
  }

  /** Runs an analyst's SQL with a view `audit` over the files in the time range. */
  async sql(text: string, range: TimeRange): Promise<Record<string, unknown>[]> {
    const candidates = await this.locate(null, range);
    const { instance, conn } = await openDuckDb();
    try {
      const paths = (await this.fetch(candidates, null, instance)).map((p) => p.entry.path);
      if (paths.length > 0) {
        await conn.run(`CREATE VIEW audit AS SELECT * FROM ${parquetSource(paths)}`);
      } else {
        // An empty store still answers schema-correct queries (with no rows).
        await conn.run(`CREATE TABLE audit (${PARQUET_COLUMNS})`);
      }
      // From here on the analyst's SQL can read the audit data and nothing else.
      await lockDown(conn, paths);
      const statement = await readOnlyStatement(conn, text);
      try {
        const reader = await statement.runAndReadAll();
        return reader.getRowObjectsJson() as Record<string, unknown>[];
      } catch (err) {
        const message = (err as Error).message;
        throw new SqlError(message, isRefusedByLockDown(message));
      } finally {
        statement.destroySync();
      }
    } finally {
      conn.closeSync();
      instance.closeSync();
    }
  }

  /**
   * Writes the day index manifests of the days in range (`audit-query index
   * build`), signed with the signer given at construction, under the run's one
   * trust policy. A signed store refuses unsigned manifests (readers would
   * ignore them): without a key it is a ConfigError.
   */
  async buildIndexManifests(opts: Omit<IndexBuildOptions, 'concurrency'>): Promise<IndexBuildResult> {
    await this.store.check();
    const signer = this.signer;
    const policy = await this.trust();
    if (!signer && policy.mode !== 'unsigned') {
      throw new ConfigError('the store is signed: index build writes manifests only with AUDIT_SIGNING_KEY_FILE (the maintainer\'s key), or leave them to audit-admin maintain');
    }
    return buildDayManifests(this.store, opts, { policy, signer, writer: 'audit-query index build' });
  }

  summary(): QueryStats {
    const c = this.cache.counters;
    return {
      ...this.stats,
      bytesFetched: c.bytesFetched,
      dataBytesFetched: c.dataBytesFetched,
      indexBytesFetched: c.indexBytesFetched,
      requests: c.requests,
      objectsFetched: c.objectsFetched,
      rangesFetched: c.rangesFetched,
      cacheHits: c.hits,
    };
  }

  close(): void {
    this.store.close();
  }
}

export { SqlError } from './sandbox';

/** A few connections of one DuckDB instance, to run small queries side by side. */
class ConnectionPool {
  private readonly limiter: Limiter;
  private readonly free: DuckDBConnection[];

  private constructor(private readonly conns: DuckDBConnection[]) {
    this.limiter = new Limiter(conns.length);
    this.free = [...conns];
  }

  static async open(instance: DuckDBInstance, size: number): Promise<ConnectionPool> {
    const conns: DuckDBConnection[] = [];
    for (let i = 0; i < size; i++) conns.push(await instance.connect());
    return new ConnectionPool(conns);
  }

  run<T>(task: (conn: DuckDBConnection) => Promise<T>): Promise<T> {
    return this.limiter.run(async () => {
      const conn = this.free.pop()!;
      try {
        return await task(conn);
      } finally {
        this.free.push(conn);
      }
    });
  }

  close(): void {
    for (const c of this.conns) c.closeSync();
  }
}
