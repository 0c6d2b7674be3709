import { readFile } from 'node:fs/promises';
import {
  type FileIndex,
  type ObjectInfo,
  type ObjectStore,
  BloomFilter,
  DATA_PREFIX,
  INDEX_PREFIX,
  datesBetween,
  type DayManifest,
  manifestDt,
  dtOfMicros,
  liveDataFiles,
  openDayManifest,
  parseStoredFile,
  rowGroupMayHold,
} from '../storage';
import type { RejectedGeneration } from '../storage/live-set';
import { openFileIndex } from '../storage/signed-index';
import { UntrustedObjectError } from '../trust/signed-object';
import type { TrustPolicy } from '../trust/trust-policy';
import type { ObjectCache } from './cache';
import type { IndexCatalog, IndexMeta } from './index-catalog';
import { mapLimit } from '../storage/concurrency';
import { locateByShards } from './shard-locate';

export interface ObjectRef {
  type: string;
  id: string;
}

export interface TimeRange {
  /** Microseconds UTC, inclusive; null = unbounded. */
  since: number | null;
  until: number | null;
}

export interface Candidate {
  key: string;
  /** Size of the stored object, from the listing. */
  size: number;
  /** The file's index (without its Bloom filter), when the consumer wrote one (files without one are always read whole). */
  index: IndexMeta | null;
  /** The only row groups that may hold the object, when an object shard said so (query/shard-locate.ts). */
  rowGroups?: readonly number[];
  /** The index object the layout came from, when not the file's own index (named if the footer disagrees). */
  describedBy?: string;
}

export interface LocateStats {
  filesListed: number;
  filesSelected: number;
  /** Stored bytes of the data files in the listed partitions. */
  bytesListed: number;
  /** LIST requests sent (one per prefix and page, approximately: pages are not visible here). */
  listCalls: number;
  /** Day manifests fetched, and data files whose index came from one (instead of a GET of its own). */
  manifestsFetched: number;
  filesFromManifests: number;
  /** Object shards fetched (the rest were cached), and listed data files a shard described (see query/shard-locate.ts). */
  shardsFetched: number;
  filesFromShards: number;
}

/** An index or manifest that failed the trust check (or describes another file): ignored, its files read without it. */
export interface RejectedIndex {
  key: string;
  code: string;
  message: string;
}

/** Bounded ranges up to this many days are listed day by day (one prefix each); longer ones in one listing. */
const MAX_DAYS_LISTED_SEPARATELY = 62;

/**
 * Lists the objects under `base` (`dt=` or `_index/dt=`) in the dt partitions of the range.
 *
 * The listing is never cached: late events add files to past days at any time,
 * and a LIST per prefix is cheap next to reading what it returns.
 */
async function listPartitions(store: ObjectStore, base: string, range: TimeRange): Promise<{ objects: ObjectInfo[]; calls: number }> {
  const fromDt = range.since === null ? null : dtOfMicros(range.since);
  const toDt = range.until === null ? null : dtOfMicros(range.until);
  const days = fromDt && toDt ? datesBetween(fromDt, toDt) : null;
  const prefixes = days && days.length <= MAX_DAYS_LISTED_SEPARATELY ? days.map((d) => `${base}${d}/`) : [base];
  const lists = await mapLimit(prefixes, 8, async (prefix) => {
    const found: ObjectInfo[] = [];
    for await (const obj of store.list(prefix)) found.push(obj);
    return found;
  });
  const objects = lists.flat().filter((o) => {
    const rel = o.key.slice(base.length - DATA_PREFIX.length); // dt=YYYY-MM-DD/...
    const dt = rel.slice(3, 13);
    return !((fromDt && dt < fromDt) || (toDt && dt > toDt));
  });
  return { objects, calls: prefixes.length };
}

/**
 * A data file's index, opened under the trust policy and checked against the
 * listed file, or why it was refused. A cached copy that fails is fetched again
 * first: the maintainer rewrites a failed index under the same key.
 */
async function loadIndex(cache: ObjectCache, indexKey: string, file: ObjectInfo, policy: TrustPolicy): Promise<FileIndex | RejectedIndex> {
  let refused: UntrustedObjectError | undefined;
  for (const refresh of [false, true]) {
    const bytes = await readFile(await cache.file(indexKey, { refresh }));
    try {
      return openFileIndex(policy, bytes, indexKey, file).index;
    } catch (err) {
      if (!(err instanceof UntrustedObjectError)) throw err;
      refused = err;
    }
  }
  return { key: indexKey, code: refused!.code, message: refused!.message };
}

/**
 * A day's generation (see storage/live-set.ts), through the local cache: a
 * generation is immutable, so a warm lookup fetches none. Its size in the
 * listing guards against the one way a key can come back with other content
 * (a day removed by retention, then written and compacted again).
 */
async function fetchGeneration(cache: ObjectCache, key: string, listed: readonly ObjectInfo[]): Promise<Buffer | null> {
  const size = listed.find((o) => o.key === key)?.size;
  let body = await readFile(await cache.file(key));
  if (size !== undefined && body.length !== size) body = await readFile(await cache.file(key, { refresh: true }));
  return body;
}

/** How long "this data file has no index" is believed before the index listing is checked again. */
export const NO_INDEX_TTL_MS = 10 * 60_000;

const indexKeyOf = (dataKey: string) => INDEX_PREFIX + dataKey.replace(/\.parquet$/, '.json');

/**
 * Finds the data files that can hold an object's events in a time range:
 * partition pruning by `dt`, then each file's index (time bounds, Bloom filter
 * of objects, row-group key statistics). Indexes are immutable: they are cached,
 * and summed up in a local catalog, so a warm lookup lists the data files and
 * reads one local file. The index listing is only needed for data files the
 * catalog does not know (or believed index-less for a while: an index is
 * uploaded just after its data file).
 */
export async function locateFiles(
  store: ObjectStore,
  cache: ObjectCache,
  object: ObjectRef | null,
  range: TimeRange,
  catalog: IndexCatalog,
  policy: TrustPolicy,
): Promise<{ candidates: Candidate[]; stats: LocateStats; rejected: RejectedIndex[]; rejectedGenerations: RejectedGeneration[] }> {
  const data = await listPartitions(store, DATA_PREFIX, range);
  // Only data files inside valid day folders, under each day's newest trusted generation.
  const { files: liveFiles, rejected: rejectedGenerations } = await liveDataFiles(data.objects, { policy, store, get: (key) => fetchGeneration(cache, key, data.objects) });
  const now = Date.now();
  const isUnknown = (f: ObjectInfo) => {
    const e = catalog.get(f.key, f.size);
    return !e || (e.index === null && now - e.checkedAt > NO_INDEX_TTL_MS);
  };
  // An object lookup tries the object's shard of each day for the files the catalog does not
  // know (a known file costs no request); files no trusted shard describes go the way below.
  const byShards = object ? await locateByShards(cache, liveFiles.filter(isUnknown), object, range, policy) : null;
  const dataFiles = byShards ? liveFiles.filter((f) => !byShards.covered.has(f.key)) : liveFiles;
  const unknown = dataFiles.filter(isUnknown);
  let listCalls = data.calls;
  const rejected: RejectedIndex[] = [...(byShards?.rejected ?? [])];
  let manifestsFetched = 0;
  let filesFromManifests = 0;
  if (unknown.length > 0) {
    const indexes = await listPartitions(store, `${INDEX_PREFIX}${DATA_PREFIX}`, range);
    listCalls += indexes.calls;
    const indexed = new Set(indexes.objects.map((o) => o.key));
    const fromManifests = await indexesFromManifests(cache, indexes.objects, unknown, policy);
    rejected.push(...fromManifests.rejected);
    manifestsFetched = fromManifests.fetched;
    const rest = unknown.filter((f) => {
      const m = fromManifests.byKey.get(f.key);
      // A manifest describes the files of its day when it was built: it may be stale
      // (a rewritten file of another size) or lack files that came later.
      if (!m || m.index.bytes !== f.size) return true;
      catalog.setDecoded(f.key, f.size, m.index, m.bloomBits ? new BloomFilter(m.bloomBits, m.bloomHashes) : null, now);
      filesFromManifests++;
      return false;
    });
    await mapLimit(rest, 32, async (f) => {
      const key = indexKeyOf(f.key);
      const found = indexed.has(key) ? await loadIndex(cache, key, f, policy) : null;
      if (found !== null && 'code' in found) catalog.set(f.key, f.size, null, now, found);
      else catalog.set(f.key, f.size, found, now);
    });
  }
  // Refused indexes are reported on every run that reads their files without them, not only the first.
  for (const f of dataFiles) {
    const r = catalog.get(f.key, f.size)?.rejected;
    if (r) rejected.push(r);
  }
  const objectKey = object ? `${object.type}:${object.id}` : null;

  const selected: Candidate[] = [...(byShards?.candidates ?? [])];
  for (const { key, size } of dataFiles) {
    const entry = catalog.get(key, size)!;
    const index = entry.index;
    if (!index) {
      selected.push({ key, size, index: null });
      continue;
    }
    if (range.since !== null && index.maxOccurredAt < range.since) continue;
    if (range.until !== null && index.minOccurredAt > range.until) continue;
    if (object && objectKey) {
      if (entry.bloom && !entry.bloom.mayContain(objectKey)) continue;
      if (!index.rowGroups.some((rg) => rowGroupMayHold(rg, object.type, object.id))) continue;
    }
    selected.push({ key, size, index });
  }
  return {
    candidates: selected,
    rejectedGenerations,
    stats: {
      filesListed: liveFiles.length,
      filesSelected: selected.length,
      bytesListed: liveFiles.reduce((s, f) => s + f.size, 0),
      listCalls,
      manifestsFetched,
      filesFromManifests,
      shardsFetched: byShards?.fetched ?? 0,
      filesFromShards: byShards?.covered.size ?? 0,
    },
    rejected,
  };
}

type ManifestFile = DayManifest['files'][number];

/**
 * The indexes that the day manifests of the unknown files' days hold (one GET
 * per day instead of one per file). Manifests are fetched fresh every time
 * (they are rewritten as a day gains files) and only when a day has files the
 * local catalog does not know, so a warm lookup fetches none. A manifest that
 * cannot be read, or fails the trust check, is skipped (the latter reported):
 * its files' own indexes are read instead.
 */
async function indexesFromManifests(
  cache: ObjectCache,
  indexObjects: readonly ObjectInfo[],
  unknown: readonly ObjectInfo[],
  policy: TrustPolicy,
): Promise<{ byKey: Map<string, ManifestFile>; fetched: number; rejected: RejectedIndex[] }> {
  const rejected: RejectedIndex[] = [];
  const days = new Set(unknown.map((f) => parseStoredFile(f.key)?.dt));
  const manifests = indexObjects.filter((o) => days.has(manifestDt(o.key) ?? undefined));
  const byKey = new Map<string, ManifestFile>();
  let fetched = 0;
  await mapLimit(manifests, 16, async (m) => {
    try {
      const body = await cache.fetchObject(m.key);
      if (body === null) return; // removed since the listing
      fetched++;
      const dt = manifestDt(m.key);
      for (const f of openDayManifest(policy, body, m.key).files) {
        // Only entries for data files of the manifest's own day.
        if (parseStoredFile(f.index.key)?.dt === dt) byKey.set(f.index.key, f);
      }
    } catch (err) {
      if (err instanceof UntrustedObjectError) rejected.push({ key: m.key, code: err.code, message: err.message });
      // else the store failed: fall back to the per-file indexes
    }
  });
  return { byKey, fetched, rejected };
}
