import { mkdir, rename, stat } from 'node:fs/promises';
import { createHash, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { ObjectStore } from '../storage';

/**
 * A local cache of immutable objects (data files and their indexes never change
 * once written: a replay rewrites identical content under the same key).
 * Entries are keyed by store location + key, written atomically.
 */
export class ObjectCache {
  bytesFetched = 0;
  objectsFetched = 0;
  hits = 0;

  constructor(
    private readonly dir: string,
    private readonly store: ObjectStore,
  ) {}

  private pathFor(key: string): string {
    const h = createHash('sha256').update(`${this.store.description}\u0000${key}`).digest('hex');
    const base = key.split('/').pop() ?? 'object';
    return join(this.dir, h.slice(0, 2), `${h.slice(2, 20)}-${base}`);
  }

  /** Local path of the object, fetching it on a miss. */
  async file(key: string): Promise<string> {
    const path = this.pathFor(key);
    try {
      await stat(path);
      this.hits++;
      return path;
    } catch {
      // miss: fetch below
    }
    await mkdir(join(path, '..'), { recursive: true });
    const tmp = `${path}.${randomUUID()}.tmp`;
    await this.store.download(key, tmp);
    const size = (await stat(tmp)).size;
    await rename(tmp, path);
    this.bytesFetched += size;
    this.objectsFetched++;
    return path;
  }
}
