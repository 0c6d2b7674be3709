import { mapLimit } from './concurrency';
import { BLOOM_HASH, type FileIndex, parseFileIndex } from './file-index';
import { decodeDayManifest, encodeDayManifest, manifestKey } from './day-manifest';
import { DATA_PREFIX, INDEX_PREFIX, indexKey, isDt } from './layout';
import { readDay } from './live-set';
import type { ObjectStore } from './object-store';
import type { TrustPolicy } from '../trust/trust-policy';

export interface IndexBuildOptions {
  /** First and last day (YYYY-MM-DD, inclusive); null = unbounded. */
  since: string | null;
  until: string | null;
  /** Requests in flight (default 16). */
  concurrency?: number;
  log?: (line: string) => void;
  /** Which generations are trusted to say what is live (storage/live-set.ts). */
  trust: TrustPolicy;
}

export interface IndexBuildResult {
  /** Days looked at, manifests written, manifests already up to date. */
  days: number;
  written: number;
  unchanged: number;
  /** Data files described by the manifests written or kept. */
  files: number;
  /** Data files left out: no per-file index yet, or one that does not match the file (lookups read them as before). */
  skipped: number;
  /** Bytes of the manifests written. */
  bytes: number;
}

/**
 * Writes each day's index manifest (`_index/dt=.../_manifest.bin`, see
 * storage/day-manifest.ts) from the per-file indexes of the files stored so
 * far: partitions managed by an explicit command (run it from cron, e.g. after
 * midnight for the day before; re-running it is cheap and only rewrites days
 * whose files changed). Entries of an existing manifest that still match their
 * data file (key and size) are reused, so only new files' indexes are fetched.
 * A day's files that arrive later are simply not in its manifest yet: lookups
 * read their per-file indexes, as they do for a day without a manifest.
 */
export async function buildDayManifests(store: ObjectStore, opts: IndexBuildOptions): Promise<IndexBuildResult> {
  const days = (await store.listPrefixes(''))
    .filter((p) => p.startsWith(DATA_PREFIX) && isDt(p.slice(DATA_PREFIX.length, -1)))
    .map((p) => p.slice(DATA_PREFIX.length, -1))
    .filter((dt) => (opts.since === null || dt >= opts.since) && (opts.until === null || dt <= opts.until));
  const result: IndexBuildResult = { days: days.length, written: 0, unchanged: 0, files: 0, skipped: 0, bytes: 0 };
  for (const dt of days) {
    const day = await buildDayManifest(store, dt, opts.trust, opts.concurrency ?? 16);
    result.files += day.files;
    result.skipped += day.skipped;
    if (!day.written) {
      result.unchanged++;
      continue;
    }
    result.written++;
    result.bytes += day.bytes;
    opts.log?.(`dt=${dt}: ${day.files} files${day.skipped > 0 ? ` (${day.skipped} without a usable index)` : ''}, ${day.bytes} bytes`);
  }
  return result;
}

export interface DayManifestResult {
  /** False when the day's manifest already described exactly its live files. */
  written: boolean;
  files: number;
  skipped: number;
  bytes: number;
}

/** Writes one day's index manifest from the per-file indexes of its live data files (unless it is up to date). */
export async function buildDayManifest(store: ObjectStore, dt: string, trust: TrustPolicy, limit = 16): Promise<DayManifestResult> {
  // Only the live files: compaction leaves superseded ones behind for a grace period.
  const data = (await readDay(store, dt, trust)).live;
  const indexed = new Set<string>();
  for await (const o of store.list(`${INDEX_PREFIX}${DATA_PREFIX}${dt}/`)) indexed.add(o.key);
  const previous = await existingEntries(store, dt);
  let reused = 0;
  const found = await mapLimit(data, limit, async (f): Promise<FileIndex | null> => {
    const old = previous.get(f.key);
    if (old && old.bytes === f.size) {
      reused++;
      return old;
    }
    const key = indexKey(dt, f.key.slice(f.key.lastIndexOf('/') + 1));
    if (!indexed.has(key)) return null;
    const body = await store.get(key);
    if (body === null) return null;
    try {
      const index = parseFileIndex(body.toString('utf8'), key);
      // An index of another version of the file (or of another file) is left out, never trusted.
      return index.key === f.key && index.bytes === f.size ? index : null;
    } catch {
      return null;
    }
  });
  const indexes = found.filter((ix): ix is FileIndex => ix !== null);
  const skipped = data.length - indexes.length;
  if (reused === indexes.length && reused === previous.size) return { written: false, files: indexes.length, skipped, bytes: 0 };
  const body = encodeDayManifest(dt, indexes);
  await store.put(manifestKey(dt), body);
  return { written: true, files: indexes.length, skipped, bytes: body.length };
}

/** The entries of a day's current manifest, as indexes (none when it is missing or unreadable). */
async function existingEntries(store: ObjectStore, dt: string): Promise<Map<string, FileIndex>> {
  const out = new Map<string, FileIndex>();
  const body = await store.get(manifestKey(dt));
  if (body === null) return out;
  try {
    for (const f of decodeDayManifest(body, manifestKey(dt)).files) {
      // An entry without a usable filter is refetched (its per-file index may have one).
      if (!f.bloomBits) continue;
      out.set(f.index.key, { ...f.index, bloom: Buffer.from(f.bloomBits).toString('base64'), bloomHashes: f.bloomHashes, bloomHash: BLOOM_HASH });
    }
  } catch {
    // unreadable: rebuilt from the per-file indexes
  }
  return out;
}
