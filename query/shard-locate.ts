import { readFile } from 'node:fs/promises';
import { BloomFilter } from '../storage/bloom';
import { mapLimit } from '../storage/concurrency';
import { parseStoredFile } from '../storage/live-set';
import type { ObjectInfo } from '../storage/object-store';
import { type ObjectShard, objectShardKey, objectShardOf, openObjectShard } from '../storage/object-shards';
import { UntrustedObjectError } from '../trust/signed-object';
import type { TrustPolicy } from '../trust/trust-policy';
import type { ObjectCache } from './cache';
import type { Candidate, ObjectRef, RejectedIndex, TimeRange } from './locate';

export interface ShardLocateResult {
  /** Listed data files a trusted shard describes (key and size), and the candidates among them. */
  covered: Set<string>;
  candidates: Candidate[];
  rejected: RejectedIndex[];
  /** Shards fetched from the store (the rest came from the local cache). */
  fetched: number;
}

/**
 * Prunes an object lookup's files with the object's shard of each day
 * (storage/object-shards.ts): one small GET per day instead of the day's whole
 * manifest, and the row groups that may hold the object rather than only the
 * files. Shards are cached locally and re-opened (checked) on every use; a
 * cached one that no longer describes every listed file of its day is fetched
 * again once. Files no trusted shard describes are left to the caller.
 */
export async function locateByShards(cache: ObjectCache, files: readonly ObjectInfo[], object: ObjectRef, range: TimeRange, policy: TrustPolicy): Promise<ShardLocateResult> {
  const byDay = new Map<string, ObjectInfo[]>();
  for (const f of files) {
    const dt = parseStoredFile(f.key)?.dt;
    if (!dt) continue;
    const list = byDay.get(dt);
    if (list) list.push(f);
    else byDay.set(dt, [f]);
  }
  const shard = objectShardOf(object.type, object.id);
  const objectKey = `${object.type}:${object.id}`;
  const out: ShardLocateResult = { covered: new Set(), candidates: [], rejected: [], fetched: 0 };
  const fetchedBefore = cache.counters.objectsFetched;
  await mapLimit([...byDay], 32, async ([dt, dayFiles]) => {
    const key = objectShardKey(dt, shard);
    const describes = (s: ObjectShard) => dayFiles.every((f) => s.body.files.some((e) => e.key === f.key && e.bytes === f.size));
    let opened: ObjectShard | null = null;
    let refused: UntrustedObjectError | null = null;
    for (const refresh of [false, true]) {
      const path = await cache.fileIfExists(key, { refresh });
      if (path === null) break;
      try {
        opened = openObjectShard(policy, await readFile(path), key, dt, shard);
        refused = null;
      } catch (err) {
        if (!(err instanceof UntrustedObjectError)) throw err;
        opened = null;
        refused = err;
      }
      if (opened && describes(opened)) break;
    }
    if (refused) out.rejected.push({ key, code: refused.code, message: refused.message });
    if (!opened) return;
    const entries = new Map(opened.body.files.map((e) => [e.key, e]));
    for (const f of dayFiles) {
      const e = entries.get(f.key);
      if (!e || e.bytes !== f.size) continue;
      out.covered.add(f.key);
      if (range.since !== null && e.maxOccurredAt < range.since) continue;
      if (range.until !== null && e.minOccurredAt > range.until) continue;
      const bits = opened.bits;
      const groups: number[] = [];
      e.rowGroups.forEach(([, , , at, length, hashes], k) => {
        if (new BloomFilter(bits.subarray(at, at + length), hashes).mayContain(objectKey)) groups.push(k);
      });
      if (groups.length === 0) continue;
      out.candidates.push({
        key: f.key,
        size: f.size,
        // Byte layout only: the shard's filters stand in for the key statistics (unknown = may).
        index: {
          version: 1,
          key: e.key,
          rows: e.rows,
          bytes: e.bytes,
          minOccurredAt: e.minOccurredAt,
          maxOccurredAt: e.maxOccurredAt,
          rowGroups: e.rowGroups.map(([offset, length, rows]) => ({ offset, length, rows, typeMin: null, typeMax: null, idMin: null, idMax: null })),
        },
        rowGroups: groups,
        describedBy: key,
      });
    }
  });
  out.fetched = cache.counters.objectsFetched - fetchedBefore;
  return out;
}
