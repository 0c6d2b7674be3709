import { constants } from 'node:fs';
import { appendFile, chmod, type FileHandle, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createHash, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { StorageError, type ObjectStore } from '../storage';
import { Limiter } from '../storage/concurrency';
import { type ByteRange, coversRange, mergeRanges, subtractRanges, totalBytes } from './ranges';

/** What the Parquet footer says about a file's layout (see footer.ts); immutable like the file. */
export interface FooterLayout {
  v: 2;
  /** Everything from here to the end (Bloom filters, footer) is needed to open and prune the file. */
  tailStart: number;
  rowGroups: {
    /** Byte range of the row group's column chunks. */
    start: number;
    end: number;
    rows: number;
    typeMin: string | null;
    typeMax: string | null;
    idMin: string | null;
    idMax: string | null;
  }[];
}

/** A data file in the cache: a local file of the object's full size holding the byte ranges fetched so far. */
export interface CachedFile {
  key: string;
  path: string;
  size: number;
  /** Ranges present locally (merged). */
  present: ByteRange[];
  layout: FooterLayout | null;
}

/** First line of a ranges log: what the sparse file is a copy of. */
interface RangesHeader {
  v: 1;
  store: string;
  key: string;
  size: number;
}

export interface CacheCounters {
  /** Bytes received from the store (whole objects and ranges). */
  bytesFetched: number;
  indexBytesFetched: number;
  dataBytesFetched: number;
  /** GET requests (whole or ranged). */
  requests: number;
  /** Objects fetched whole (indexes). */
  objectsFetched: number;
  rangesFetched: number;
  /** Lookups answered locally without a request. */
  hits: number;
}

/** Ranges closer than this are fetched as one (a gap is cheaper than another round trip). */
export const MERGE_GAP = 8 * 1024;

/**
 * A local cache of immutable objects: data files and their indexes never change
 * once written (a replay rewrites identical content under the same key).
 *
 * - Small objects (indexes) are cached whole, written atomically.
 * - Data files are cached *sparse*: a local file of the object's full size
 *   (`<name>.sparse`, holes where nothing was fetched), an append-only log of
 *   the byte ranges present (`<name>.sparse.ranges`, one JSON line per range)
 *   and, once read, the footer's layout (`<name>.sparse.layout.json`). Ranges
 *   are written at their exact offsets, so DuckDB reads the local file as if it
 *   were whole, as long as it only touches present ranges (see query.ts for why
 *   it does).
 *
 * Entries are keyed by store location + key (+ size for data files, so a
 * rewritten object of another size never mixes with old bytes). Bytes are only
 * ever added, never removed; a range is logged only after its bytes are
 * written, by an O_APPEND write of one short line, so concurrent processes
 * sharing the cache neither lose nor invent ranges, without any lock.
 *
 * Whole objects and complete data files are read-only on disk (0444): the
 * `sql` command lets DuckDB read exactly those files, and a write there would
 * forge what every later lookup sharing the cache returns (sandbox.ts keeps
 * such statements from running; this keeps a user other than root from
 * writing them by any other mistake).
 */
export class ObjectCache {
  readonly counters: CacheCounters = { bytesFetched: 0, indexBytesFetched: 0, dataBytesFetched: 0, requests: 0, objectsFetched: 0, rangesFetched: 0, hits: 0 };
  /** Backwards-compatible aggregates. */
  get bytesFetched(): number {
    return this.counters.bytesFetched;
  }
  get objectsFetched(): number {
    return this.counters.objectsFetched;
  }
  get hits(): number {
    return this.counters.hits;
  }

  constructor(
    private readonly dir: string,
    private readonly store: ObjectStore,
    private readonly limiter: Limiter = new Limiter(16),
  ) {}

  private pathFor(key: string, suffix = ''): string {
    const h = createHash('sha256').update(`${this.store.description}\u0000${key}`).digest('hex');
    const base = (key.split('/').pop() ?? 'object').replace(/[^A-Za-z0-9._=-]/g, '_').slice(0, 120);
    return join(this.dir, h.slice(0, 2), `${h.slice(2, 20)}-${base}${suffix}`);
  }

  /** Local path of a whole object, fetching it on a miss (or always, with `refresh`). */
  async file(key: string, opts: { refresh?: boolean } = {}): Promise<string> {
    const path = await this.fileIfExists(key, opts);
    if (path === null) throw new StorageError('get', `${this.store.description}${key}`, new Error('no such object'));
    return path;
  }

  /** Like `file`, but null when the store has no such object (a cached copy is kept: it may still be used). */
  async fileIfExists(key: string, opts: { refresh?: boolean } = {}): Promise<string | null> {
    const path = this.pathFor(key);
    if (!opts.refresh) {
      try {
        await stat(path);
        this.counters.hits++;
        return path;
      } catch {
        // miss: fetch below
      }
    }
    await mkdir(join(path, '..'), { recursive: true });
    const body = await this.limiter.run(() => this.store.get(key));
    this.counters.requests++;
    if (body === null) return null;
    this.counters.objectsFetched++;
    this.counters.bytesFetched += body.length;
    this.counters.indexBytesFetched += body.length;
    const tmp = `${path}.${randomUUID()}.tmp`;
    await writeFile(tmp, body, { mode: 0o444 });
    await rename(tmp, path);
    return path;
  }

  /**
   * A small object fetched now, never cached on disk (a day manifest: it is
   * rewritten as files arrive, unlike everything else here); null when absent.
   * Counted as index bytes.
   */
  async fetchObject(key: string): Promise<Buffer | null> {
    const body = await this.limiter.run(() => this.store.get(key));
    this.counters.requests++;
    if (body !== null) {
      this.counters.objectsFetched++;
      this.counters.bytesFetched += body.length;
      this.counters.indexBytesFetched += body.length;
    }
    return body;
  }

  /** The cache entry of a data file of `size` bytes (possibly holding nothing yet). */
  async dataFile(key: string, size: number): Promise<CachedFile> {
    // A whole copy cached by an earlier version of this cache.
    const legacy = this.pathFor(key);
    try {
      if ((await stat(legacy)).size === size) return { key, path: legacy, size, present: [[0, size]], layout: null };
    } catch {
      // none
    }
    const path = this.pathFor(key, `-${size}.sparse`);
    let present = await ObjectCache.presentRanges(path, { store: this.store.description, key, size });
    if (present.length > 0) {
      // The log may survive a lost data file (e.g. someone cleaned the directory half-way).
      try {
        if ((await stat(path)).size !== size) present = [];
      } catch {
        present = [];
      }
    }
    let layout: FooterLayout | null = null;
    try {
      layout = JSON.parse(await readFile(`${path}.layout.json`, 'utf8')) as FooterLayout;
      if (layout.v !== 2 || !Array.isArray(layout.rowGroups) || typeof layout.tailStart !== 'number') layout = null;
    } catch {
      // not read yet
    }
    return { key, path, size, present, layout };
  }

  /**
   * The ranges logged for a sparse file (merged). Lines that do not parse (a
   * write cut short by a crash) are skipped; a header for another object voids the log.
   */
  static async presentRanges(sparsePath: string, expect?: Omit<RangesHeader, 'v'>): Promise<ByteRange[]> {
    let text: string;
    try {
      text = await readFile(`${sparsePath}.ranges`, 'utf8');
    } catch {
      return [];
    }
    const ranges: ByteRange[] = [];
    let size = Infinity;
    for (const line of text.split('\n')) {
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch {
        continue;
      }
      if (Array.isArray(v) && v.length === 2 && Number.isSafeInteger(v[0]) && Number.isSafeInteger(v[1]) && v[0] >= 0 && v[1] > v[0]) {
        ranges.push([v[0] as number, v[1] as number]);
      } else if (v !== null && typeof v === 'object' && (v as RangesHeader).v === 1) {
        const h = v as RangesHeader;
        if (expect && (h.store !== expect.store || h.key !== expect.key || h.size !== expect.size)) return [];
        size = h.size;
      }
    }
    return mergeRanges(ranges.filter(([, e]) => e <= size));
  }

  /** True when every byte of `ranges` is present locally. */
  static has(entry: CachedFile, ranges: Iterable<ByteRange>): boolean {
    return subtractRanges(ranges, entry.present).length === 0;
  }

  static isComplete(entry: CachedFile): boolean {
    return coversRange(entry.present, 0, entry.size);
  }

  /**
   * Makes `ranges` of the data file present locally: fetches what is missing
   * (merged, concurrency-limited), writes it at its offsets, records it.
   * Returns the number of bytes fetched.
   */
  async ensure(entry: CachedFile, ranges: Iterable<ByteRange>): Promise<number> {
    const clipped = [...ranges].map(([s, e]): ByteRange => [Math.max(0, s), Math.min(entry.size, e)]);
    const missing = subtractRanges(clipped, entry.present);
    if (missing.length === 0) {
      this.counters.hits++;
      return 0;
    }
    // Merge small gaps, but never refetch what is already here when a gap is big.
    const fetch = mergeRanges(missing, MERGE_GAP);
    await mkdir(join(entry.path, '..'), { recursive: true });
    const fh = await openForRanges(entry.path);
    const fetched: ByteRange[] = [];
    try {
      const { size } = await fh.stat();
      if (size < entry.size) await fh.truncate(entry.size); // sparse: holes read as zeros and use no disk
      await Promise.all(
        fetch.map(async ([start, end]) => {
          const body = await this.limiter.run(() => this.store.getRange(entry.key, start, end));
          this.counters.requests++;
          this.counters.rangesFetched++;
          this.counters.bytesFetched += body.length;
          this.counters.dataBytesFetched += body.length;
          if (body.length !== end - start) {
            throw new StorageError('ranged get', `${this.store.description}${entry.key}`, new Error(`expected ${end - start} bytes at ${start}, got ${body.length} (object changed?)`));
          }
          let written = 0;
          while (written < body.length) {
            const { bytesWritten } = await fh.write(body, written, body.length - written, start + written);
            written += bytesWritten;
          }
          fetched.push([start, end]);
        }),
      );
    } finally {
      await fh.close();
      // Record whatever was written, even if another range failed.
      if (fetched.length > 0) {
        entry.present = mergeRanges([...entry.present, ...fetched]);
        await this.logRanges(entry, fetched);
        if (ObjectCache.isComplete(entry)) await chmod(entry.path, 0o444);
      }
    }
    return totalBytes(fetch);
  }

  /** Records the footer layout of a data file (immutable, so it never needs to be read again). */
  async setLayout(entry: CachedFile, layout: FooterLayout): Promise<void> {
    entry.layout = layout;
    if (entry.path === this.pathFor(entry.key)) return; // legacy whole copy
    const path = `${entry.path}.layout.json`;
    const tmp = `${path}.${randomUUID()}.tmp`;
    try {
      await writeFile(tmp, JSON.stringify(layout));
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  /** Appends ranges (already written to the data file) to its log: one O_APPEND write, never lost to a concurrent writer. */
  private async logRanges(entry: CachedFile, ranges: readonly ByteRange[]): Promise<void> {
    if (entry.path === this.pathFor(entry.key)) return; // legacy whole copy: nothing to record
    const path = `${entry.path}.ranges`;
    let text = ranges.map(([s, e]) => `[${s},${e}]\n`).join('');
    let header = false;
    try {
      header = (await stat(path)).size === 0;
    } catch {
      header = true;
    }
    if (header) {
      const h: RangesHeader = { v: 1, store: this.store.description, key: entry.key, size: entry.size };
      text = `${JSON.stringify(h)}\n${text}`;
    }
    // A line starting with a newline also ends any line a crash cut short.
    await appendFile(path, `\n${text}`, { flag: 'a' });
  }
}

/**
 * Opens a sparse file to add ranges. A complete one is read-only (0444); it is
 * only written again when its ranges log was lost, so then it is made writable.
 */
async function openForRanges(path: string): Promise<FileHandle> {
  try {
    return await open(path, constants.O_RDWR | constants.O_CREAT, 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EACCES') throw err;
    await chmod(path, 0o644);
    return open(path, constants.O_RDWR | constants.O_CREAT, 0o644);
  }
}
