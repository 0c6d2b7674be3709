import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createHash, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { ObjectRow } from './history';
import type { ObjectRef } from './locate';

interface Stored {
  v: 1;
  store: string;
  type: string;
  id: string;
  /** `<data key>\u0000<size>` -> the object's rows in that file. */
  files: Record<string, ObjectRow[]>;
}

export const fileId = (key: string, size: number) => `${key}\u0000${size}`;

/**
 * Per object, its rows in each data file already read. A data file never
 * changes (key + size identify it), so neither do the rows of one object in
 * it: repeating a lookup (another --format, --diff, --as-of, --since...)
 * reads nothing but this file for the files it has seen. New files (late
 * events, today's data) are read and added. Written atomically; a lost race
 * only means reading a file again.
 */
export class ResultCache {
  constructor(
    private readonly dir: string,
    private readonly store: string,
  ) {}

  private path(object: ObjectRef): string {
    const h = createHash('sha256').update(`${this.store}\u0000${object.type}\u0000${object.id}`).digest('hex');
    return join(this.dir, 'objects', h.slice(0, 2), `${h.slice(2, 40)}.json`);
  }

  async load(object: ObjectRef): Promise<Map<string, ObjectRow[]>> {
    try {
      const s = JSON.parse(await readFile(this.path(object), 'utf8')) as Stored;
      if (s.v !== 1 || s.store !== this.store || s.type !== object.type || s.id !== object.id) return new Map();
      return new Map(Object.entries(s.files));
    } catch {
      return new Map();
    }
  }

  async save(object: ObjectRef, files: ReadonlyMap<string, ObjectRow[]>): Promise<void> {
    const path = this.path(object);
    const stored: Stored = { v: 1, store: this.store, type: object.type, id: object.id, files: Object.fromEntries(files) };
    const tmp = `${path}.${randomUUID()}.tmp`;
    try {
      await mkdir(join(path, '..'), { recursive: true });
      await writeFile(tmp, JSON.stringify(stored));
      await rename(tmp, path);
    } catch {
      await rm(tmp, { force: true }); // a cache only: never fail a query for it
    }
  }
}
