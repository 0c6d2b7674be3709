import { mapLimit } from './concurrency';
import { UntrustedObjectError } from '../trust/signed-object';
import type { DigestSigner } from '../trust/signer';
import type { TrustPolicy } from '../trust/trust-policy';
import { BLOOM_HASH, type FileIndex } from './file-index';
import { type DayManifest, encodeDayManifest, manifestKey, openDayManifest } from './day-manifest';
import { DATA_PREFIX, INDEX_PREFIX, indexKey, isDt } from './layout';
import { readDay } from './live-set';
import type { ObjectInfo, ObjectStore } from './object-store';
import { openFileIndex } from './signed-index';
import { hasSubjectFilters } from './subject-filters';

export interface IndexBuildOptions {
  /** First and last day (YYYY-MM-DD, inclusive); null = unbounded. */
  since: string | null;
  until: string | null;
  /** Requests in flight (default 16). */
  concurrency?: number;
  log?: (line: string) => void;
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
  /** Per-file indexes and manifests that failed the trust check (left out, or rebuilt). */
  rejected: number;
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
export async function buildDayManifests(store: ObjectStore, opts: IndexBuildOptions, writer: ManifestWriter): Promise<IndexBuildResult> {
  const days = (await store.listPrefixes(''))
    .filter((p) => p.startsWith(DATA_PREFIX) && isDt(p.slice(DATA_PREFIX.length, -1)))
    .map((p) => p.slice(DATA_PREFIX.length, -1))
    .filter((dt) => (opts.since === null || dt >= opts.since) && (opts.until === null || dt <= opts.until));
  const result: IndexBuildResult = { days: days.length, written: 0, unchanged: 0, files: 0, skipped: 0, bytes: 0, rejected: 0 };
  for (const dt of days) {
    const day = await buildDayManifest(store, dt, { ...writer, concurrency: opts.concurrency ?? 16 });
    result.files += day.files;
    result.skipped += day.skipped;
    result.rejected += day.rejected.length;
    for (const r of day.rejected) opts.log?.(`ignored ${r.message} (${r.code})`);
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
  /** Per-file indexes that failed the trust check (or did not describe their file), and the manifest if it did. */
  rejected: UntrustedObjectError[];
  /** Indexes rebuilt from their data file (missing or rejected). */
  rebuilt: number;
}

/**
 * Who writes a day's manifest and what it trusts. A signed store's manifests
 * are written signed (the maintainer's key); a failed or missing per-file index
 * is rebuilt through `repair` (the maintainer's), else left out of the manifest
 * (lookups then read that file without an index).
 */
export interface ManifestWriter {
  policy: TrustPolicy;
  signer: DigestSigner | null;
  writer?: string;
  repair?: (file: ObjectInfo) => Promise<FileIndex | null>;
  concurrency?: number;
}

/** An index as the last manifest recorded it, with its index object's listing then. */
interface KnownIndex {
  index: FileIndex;
  indexObject: [size: number, lastModified: number] | undefined;
}

/** Writes one day's index manifest from the per-file indexes of its live data files (unless it is up to date). */
export async function buildDayManifest(store: ObjectStore, dt: string, w: ManifestWriter): Promise<DayManifestResult> {
  // Only the live files: compaction leaves superseded ones behind for a grace period.
  const data = (await readDay(store, dt, w.policy)).live;
  const listed = new Map<string, ObjectInfo>();
  for await (const o of store.list(`${INDEX_PREFIX}${DATA_PREFIX}${dt}/`)) listed.set(o.key, o);
  const rejected: UntrustedObjectError[] = [];
  const previous = await existingEntries(store, dt, w.policy, rejected);
  let reused = 0;
  let rebuilt = 0;
  const indexObjects = new Map<string, [number, number]>();
  const found = await mapLimit(data, w.concurrency ?? 16, async (f): Promise<FileIndex | null> => {
    const key = indexKey(dt, f.key.slice(f.key.lastIndexOf('/') + 1));
    const obj = listed.get(key);
    const seen: [number, number] | undefined = obj?.lastModified !== undefined ? [obj.size, obj.lastModified] : undefined;
    const old = previous.known.get(f.key);
    // Unchanged since the signed manifest checked it: no GET. A rewritten index has a new listing.
    // One without actor/tenant filters is backfilled by a writer that can repair (issue 20).
    const backfill = (ix: FileIndex) => w.repair !== undefined && !hasSubjectFilters(ix.subjects);
    if (old && !backfill(old.index) && old.index.bytes === f.size && old.indexObject && seen && old.indexObject[0] === seen[0] && old.indexObject[1] === seen[1]) {
      reused++;
      indexObjects.set(f.key, seen);
      return old.index;
    }
    const body = obj ? await store.get(key) : null;
    let usable: FileIndex | null = null;
    if (body !== null) {
      try {
        const { index } = openFileIndex(w.policy, body, key, f);
        if (seen) indexObjects.set(f.key, seen);
        if (!backfill(index)) return index;
        usable = index;
      } catch (err) {
        if (!(err instanceof UntrustedObjectError)) throw err;
        rejected.push(err);
      }
    }
    const repaired = w.repair ? await w.repair(f) : null;
    if (repaired) rebuilt++;
    return repaired ?? usable;
  });
  const indexes = found.filter((ix): ix is FileIndex => ix !== null);
  const skipped = data.length - indexes.length;
  if (previous.trusted && reused === indexes.length && reused === previous.known.size) return { written: false, files: indexes.length, skipped, bytes: 0, rejected, rebuilt };
  const body = encodeDayManifest(dt, indexes, { signer: w.signer, indexObjects, ...(w.writer ? { writer: w.writer } : {}) });
  await store.put(manifestKey(dt), body);
  return { written: true, files: indexes.length, skipped, bytes: body.length, rejected, rebuilt };
}

/** The entries of a day's current manifest (none when it is missing or fails the check: it is rebuilt). */
async function existingEntries(store: ObjectStore, dt: string, policy: TrustPolicy, rejected: UntrustedObjectError[]): Promise<{ known: Map<string, KnownIndex>; trusted: boolean }> {
  const known = new Map<string, KnownIndex>();
  const body = await store.get(manifestKey(dt));
  if (body === null) return { known, trusted: false };
  let manifest: DayManifest;
  try {
    manifest = openDayManifest(policy, body, manifestKey(dt));
  } catch (err) {
    if (!(err instanceof UntrustedObjectError)) throw err;
    rejected.push(err);
    return { known, trusted: false };
  }
  for (const f of manifest.files) {
    // An entry without a usable filter is refetched (its per-file index may have one).
    if (!f.bloomBits) continue;
    known.set(f.index.key, {
      index: { ...f.index, bloom: Buffer.from(f.bloomBits).toString('base64'), bloomHashes: f.bloomHashes, bloomHash: BLOOM_HASH },
      indexObject: f.indexObject,
    });
  }
  return { known, trusted: true };
}
