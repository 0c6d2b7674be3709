import { open } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { type DuckDBConnection, type DuckDBInstance, type DuckDBResultReader, DuckDBTypeId } from '@duckdb/node-api';
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
import { type ShardBuildResult, buildObjectShards } from './object-shards-build';
import { type HistoryEvent, type HistoryFilter, type ObjectRow, type ScanSource, finishHistory, openDuckDb, parquetSource, readHistory, readObjectRows } from './history';
import { ResultCache, fileId } from './result-cache';
import { ReplayFinder, type ViewFile } from './replays';
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
  /** Object shards fetched, and listed files whose layout and filters came from one (see query/shard-locate.ts). */
  shardsFetched: number;
  filesFromShards: number;
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
  private readonly stats = { trust: null as TrustMode | null, indexesRejected: 0, filesListed: 0, bytesListed: 0, filesRead: 0, bytesCandidates: 0, filesSparse: 0, filesWhole: 0, listCalls: 0, manifestsFetched: 0, filesFromManifests: 0, shardsFetched: 0, filesFromShards: 0, fallbacks: 0, msLocate: 0, msFetch: 0, msRead: 0, filesFromResultCache: 0 };
  private readonly wholeFiles: boolean;
  private readonly useResultCache: boolean;
  private readonly results: ResultCache;
  private readonly replays: ReplayFinder;
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
    this.replays = new ReplayFinder(this.cacheDir, this.store.description);
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
    this.stats.shardsFetched = stats.shardsFetched;
    this.stats.filesFromShards = stats.filesFromShards;
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
    const restricted = (entry: CachedFile, layout: FooterLayout, only?: readonly number[]) => {
      // Both the statistics and a shard's filters only ever say "may": a group must pass both.
      const selected = selectRowGroups(layout, object!).filter((k) => !only || only.includes(k));
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
          // A shard's row-group choice holds only for the layout it describes (the same number of groups and rows).
          const only = (layout: FooterLayout) => (c.rowGroups && layout.rowGroups.length === c.index!.rowGroups.length ? c.rowGroups : undefined);
          const guess = entry.layout ?? layoutFromIndex(c.index, entry.size);
          await this.cache.ensure(entry, guess ? restricted(entry, guess, only(guess)).ranges : [[entry.size - FOOTER_PROBE_BYTES, entry.size]]);
          if (entry.layout) {
            result = restricted(entry, entry.layout, only(entry.layout));
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
              const rowsPerGroupAgree = layout.rowGroups.length === c.index.rowGroups.length && layout.rowGroups.every((rg, k) => rg.rows === c.index!.rowGroups[k]!.rows);
              if (footerRows !== c.index.rows || (c.rowGroups && !rowsPerGroupAgree)) {
                this.reject({ key: c.describedBy ?? `${INDEX_PREFIX}${c.key.replace(/\.parquet$/, '.json')}`, code: 'malformed', message: `describes ${c.index.rows} rows in ${c.index.rowGroups.length} row groups; the footer of ${c.key} has ${footerRows} in ${layout.rowGroups.length}` });
              }
              await this.cache.setLayout(entry, layout);
              const plan = restricted(entry, layout, rowsPerGroupAgree ? only(layout) : undefined);
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
    if (filter.object === null) return this.historyOfAll(await this.locate(null, filter.range), filter);
    const object = filter.object;
    // The object's rows in files read before need no DuckDB at all (immutable files).
    const known = this.useResultCache ? await this.results.load(object) : new Map<string, ObjectRow[]>();
    const located = this.locate(object, filter.range);
    // An object never read before will need DuckDB: loading it (a synchronous
    // require of a large module, then the instance) waits for the store's
    // answers to the listing instead of adding to the lookup's time.
    const early = known.size === 0 ? new Promise((resolve) => setImmediate(resolve)).then(() => openDuckDb()) : null;
    const closeEarly = () => early?.then(({ instance, conn }) => (conn.closeSync(), instance.closeSync()), () => undefined);
    let candidates: Candidate[];
    try {
      candidates = await located;
    } catch (err) {
      await closeEarly();
      throw err;
    }
    const missing = candidates.filter((c) => !known.has(fileId(c.key, c.size)));
    this.stats.filesFromResultCache = candidates.length - missing.length;
    if (missing.length === 0) await closeEarly();
    if (missing.length > 0) {
      const { instance, conn } = await (early ?? openDuckDb());
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
      const prepared = await this.fetch(candidates, null, instance);
      const paths = prepared.map((p) => p.entry.path);
      if (paths.length > 0) {
        await createAuditView(conn, candidates.map((c, i) => ({ key: c.key, size: c.size, path: paths[i]! })), this.replays);
      } else {
        // An empty store still answers schema-correct queries (with no rows).
        await conn.run(`CREATE TABLE audit (${PARQUET_COLUMNS})`);
      }
      // From here on the analyst's SQL can read the audit data and nothing else.
      await lockDown(conn, paths);
      const statement = await readOnlyStatement(conn, text);
      try {
        const reader = await statement.runAndReadAll();
        return withIntegerNumbers(reader);
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
  async buildIndexManifests(opts: Omit<IndexBuildOptions, 'concurrency'>): Promise<IndexBuildResult & { objectShards: ShardBuildResult }> {
    await this.store.check();
    const signer = this.signer;
    const policy = await this.trust();
    if (!signer && policy.mode !== 'unsigned') {
      throw new ConfigError('the store is signed: index build writes manifests only with AUDIT_SIGNING_KEY_FILE (the maintainer\'s key), or leave them to audit-admin maintain');
    }
    const manifests = await buildDayManifests(this.store, opts, { policy, signer, writer: 'audit-query index build' });
    const { instance, conn } = await openDuckDb();
    try {
      // Counted in the result only: stderr keeps its one line per manifest written.
      const objectShards = await buildObjectShards(this.store, conn, { since: opts.since, until: opts.until }, { policy, signer, writer: 'audit-query index build' });
      return { ...manifests, objectShards };
    } finally {
      conn.closeSync();
      instance.closeSync();
    }
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

/**
 * The `audit` view: every stored event once, as `--object` shows it (query/replays.ts says
 * which copy wins and what finding the others costs). Without replays it is the plain view
 * over the files; with some, their later copies are left out by file and row number, through
 * an anti-join on that small set.
 */
export async function createAuditView(conn: DuckDBConnection, files: readonly ViewFile[], replays: ReplayFinder): Promise<void> {
  const src = parquetSource(files.map((f) => f.path));
  const later = await replays.laterCopies(conn, files);
  if (later.length === 0) {
    await conn.run(`CREATE VIEW audit AS SELECT * FROM ${src}`);
    return;
  }
  // In the run's in-memory database, gone with it.
  await conn.run('CREATE TABLE audit_later_copies__ (filename VARCHAR, file_row_number BIGINT)');
  const appender = await conn.createAppender('audit_later_copies__');
  try {
    for (const c of later) {
      appender.appendVarchar(c.path);
      appender.appendBigInt(c.row);
      appender.endRow();
    }
    appender.flushSync();
  } finally {
    appender.closeSync();
  }
  const positioned = src.replace(/\)$/, ', filename = true, file_row_number = true)');
  await conn.run(`CREATE VIEW audit AS SELECT * EXCLUDE (filename, file_row_number) FROM ${positioned} ANTI JOIN audit_later_copies__ USING (filename, file_row_number)`);
}

const INTEGER_TYPES: ReadonlySet<DuckDBTypeId> = new Set([DuckDBTypeId.BIGINT, DuckDBTypeId.UBIGINT, DuckDBTypeId.HUGEINT, DuckDBTypeId.UHUGEINT]);

/**
 * The rows as JSON values, with 64- and 128-bit integers (every `count(*)`, `sum` of integers,
 * `kafka_offset`) as numbers where they fit a double exactly: DuckDB's JSON conversion gives
 * them as strings, so `count(*)` came out as "5". Larger values stay strings, exact.
 */
function withIntegerNumbers(reader: DuckDBResultReader): Record<string, unknown>[] {
  const rows = reader.getRowObjectsJson() as Record<string, unknown>[];
  const types = reader.columnTypes();
  const integral = reader.columnNames().filter((_, i) => INTEGER_TYPES.has(types[i]!.typeId));
  if (integral.length === 0) return rows;
  for (const row of rows) {
    for (const name of integral) {
      const v = row[name];
      if (typeof v === 'string' && Number.isSafeInteger(Number(v))) row[name] = Number(v);
    }
  }
  return rows;
}

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
