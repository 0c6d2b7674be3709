import type { ObjectInfo, ObjectStore } from '../storage';
import { INDEX_PREFIX } from '../storage';
import { deleteKeys } from '../storage/bulk-delete';
import { mapLimit } from '../storage/concurrency';
import { EXTERNAL_MANIFEST_PREFIX } from './external-manifest';

/** Everything stored for one day: data and generations, its indexes, its external manifest. */
export async function dayObjects(store: ObjectStore, dt: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for (const prefix of [`dt=${dt}/`, `${INDEX_PREFIX}dt=${dt}/`, `${EXTERNAL_MANIFEST_PREFIX}dt=${dt}/`]) {
    for await (const o of store.list(prefix)) out.push(o);
  }
  return out;
}

/** The last day kept by a retention period (days before it are removed), as YYYY-MM-DD. */
export function retentionCutoff(now: number, retentionMs: number): string {
  return new Date(now - retentionMs).toISOString().slice(0, 10);
}

/**
 * Objects of a day still under S3 Object Lock (retention not yet over, or a
 * legal hold). A day with any is kept whole: deleting the rest would leave a
 * day that silently lacks events.
 */
export async function lockedObjects(store: ObjectStore, objects: readonly ObjectInfo[], now: number, concurrency: number): Promise<{ count: number; until: number | null }> {
  if (!store.lockStatus) return { count: 0, until: null };
  let count = 0;
  let until: number | null = null;
  await mapLimit(objects, concurrency, async (o) => {
    const lock = await store.lockStatus!(o.key);
    if (!lock) return;
    const retained = lock.retainUntil !== null && lock.retainUntil > now;
    if (retained || lock.legalHold) {
      count++;
      if (retained && (until === null || lock.retainUntil! > until)) until = lock.retainUntil;
    }
  });
  return { count, until };
}

/**
 * Removes a day: data files first, then generations, then indexes and the
 * external manifest, so that a reader in the middle of it sees fewer files of
 * an expired day, never hidden ones come back.
 */
export async function removeDay(store: ObjectStore, objects: readonly ObjectInfo[], concurrency: number): Promise<number> {
  const rank = (key: string) => (key.startsWith('dt=') ? (key.includes('/_live/') ? 1 : 0) : 2);
  const ordered = [...objects].sort((a, b) => rank(a.key) - rank(b.key));
  for (const r of [0, 1, 2]) {
    await deleteKeys(store, ordered.filter((o) => rank(o.key) === r).map((o) => o.key), concurrency);
  }
  return objects.length;
}
