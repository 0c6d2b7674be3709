import { mapLimit } from './concurrency';
import type { ObjectStore } from './object-store';

/** Keys per deleteMany call (S3's DeleteObjects takes at most 1,000). */
const BATCH = 1000;

/**
 * Deletes keys with the store's bulk delete where it has one (a quiet month's
 * cleanup is ~90k deletes: 90 requests instead of 90k), else one by one,
 * `concurrency` at a time.
 */
export async function deleteKeys(store: Pick<ObjectStore, 'delete' | 'deleteMany'>, keys: readonly string[], concurrency: number): Promise<void> {
  if (keys.length === 0) return;
  if (store.deleteMany) {
    const batches: string[][] = [];
    for (let i = 0; i < keys.length; i += BATCH) batches.push(keys.slice(i, i + BATCH));
    await mapLimit(batches, Math.min(4, concurrency), (b) => store.deleteMany!(b));
    return;
  }
  await mapLimit(keys, concurrency, (k) => store.delete(k));
}
