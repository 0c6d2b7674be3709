import { readFile } from 'node:fs/promises';
import {
  BloomFilter,
  type FileIndex,
  type ObjectStore,
  DATA_PREFIX,
  INDEX_PREFIX,
  dtOfMicros,
  parseDataKey,
  parseFileIndex,
  rowGroupMayContain,
} from '../storage';
import type { ObjectCache } from './cache';
import { mapLimit } from './concurrency';

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
  /** The file's index, when the consumer wrote one (files without one are always read). */
  index: FileIndex | null;
}

export interface LocateStats {
  filesListed: number;
  filesSelected: number;
}

async function listKeys(store: ObjectStore, prefix: string, range: TimeRange, strip: string): Promise<string[]> {
  const fromDt = range.since === null ? null : dtOfMicros(range.since);
  const toDt = range.until === null ? null : dtOfMicros(range.until);
  const keys: string[] = [];
  for await (const obj of store.list(prefix)) {
    const rel = obj.key.slice(strip.length);
    const dt = rel.slice(3, 13);
    if ((fromDt && dt < fromDt) || (toDt && dt > toDt)) continue;
    keys.push(rel);
  }
  return keys;
}

/**
 * Finds the data files that can hold an object's events in a time range:
 * partition pruning by `dt`, then each file's index (time bounds, Bloom filter
 * of objects, row-group key statistics). Indexes are immutable and cached.
 */
export async function locateFiles(
  store: ObjectStore,
  cache: ObjectCache,
  object: ObjectRef | null,
  range: TimeRange,
): Promise<{ candidates: Candidate[]; stats: LocateStats }> {
  const [dataKeys, indexKeys] = await Promise.all([
    listKeys(store, DATA_PREFIX, range, ''),
    listKeys(store, `${INDEX_PREFIX}${DATA_PREFIX}`, range, INDEX_PREFIX),
  ]);
  const indexed = new Set(indexKeys.map((k) => k.replace(/\.json$/, '.parquet')));
  const dataFiles = dataKeys.filter((k) => parseDataKey(k) !== null);
  const objectKey = object ? `${object.type}:${object.id}` : null;

  const candidates = await mapLimit(dataFiles, 16, async (key): Promise<Candidate | null> => {
    if (!indexed.has(key)) return { key, index: null };
    const indexKey = INDEX_PREFIX + key.replace(/\.parquet$/, '.json');
    const index = parseFileIndex(await readFile(await cache.file(indexKey), 'utf8'), indexKey);
    if (range.since !== null && index.maxOccurredAt < range.since) return null;
    if (range.until !== null && index.minOccurredAt > range.until) return null;
    if (object && objectKey) {
      if (index.bloom && index.bloomHashes && !BloomFilter.fromBase64(index.bloom, index.bloomHashes).mayContain(objectKey)) {
        return null;
      }
      if (!index.rowGroups.some((rg) => rowGroupMayContain(rg, object.type, object.id))) return null;
    }
    return { key, index };
  });
  const selected = candidates.filter((c): c is Candidate => c !== null);
  return { candidates: selected, stats: { filesListed: dataFiles.length, filesSelected: selected.length } };
}
