import { createReadStream } from 'node:fs';
import { copyFile, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { randomUUID } from 'node:crypto';
import { StorageError } from './errors';
import type { ObjectInfo, ObjectStore } from './object-store';

/** A directory used as an object store: keys are relative paths; writes are atomic (temp file + rename). */
export class FileObjectStore implements ObjectStore {
  readonly description: string;

  constructor(private readonly root: string) {
    this.description = `file://${root}`;
  }

  private path(key: string): string {
    const p = join(this.root, key);
    if (relative(this.root, p).startsWith('..')) throw new StorageError('resolve', key, new Error('key escapes the store'));
    return p;
  }

  private async atomicWrite(key: string, write: (tmp: string) => Promise<void>): Promise<void> {
    const target = this.path(key);
    const tmp = `${target}.${randomUUID()}.tmp`;
    try {
      await mkdir(dirname(target), { recursive: true });
      await write(tmp);
      const fh = await open(tmp, 'r');
      await fh.sync();
      await fh.close();
      await rename(tmp, target);
    } catch (err) {
      await rm(tmp, { force: true });
      throw new StorageError('write', target, err);
    }
  }

  async putFile(key: string, localPath: string): Promise<void> {
    await this.atomicWrite(key, (tmp) => copyFile(localPath, tmp));
  }

  async put(key: string, body: Buffer | string): Promise<void> {
    await this.atomicWrite(key, (tmp) => writeFile(tmp, body));
  }

  async putIfAbsent(key: string, body: Buffer | string): Promise<boolean> {
    const target = this.path(key);
    try {
      await mkdir(dirname(target), { recursive: true });
      const fh = await open(target, 'wx');
      await fh.writeFile(body);
      await fh.sync();
      await fh.close();
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw new StorageError('create', target, err);
    }
  }

  async get(key: string): Promise<Buffer | null> {
    try {
      return await readFile(this.path(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw new StorageError('read', this.path(key), err);
    }
  }

  async getRange(key: string, start: number, end: number): Promise<Buffer> {
    if (end <= start) return Buffer.alloc(0);
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of createReadStream(this.path(key), { start, end: end - 1 })) chunks.push(chunk as Buffer);
    } catch (err) {
      throw new StorageError('read', this.path(key), err);
    }
    return Buffer.concat(chunks);
  }

  async download(key: string, localPath: string): Promise<void> {
    try {
      await copyFile(this.path(key), localPath);
    } catch (err) {
      throw new StorageError('read', this.path(key), err);
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Walk only the deepest directory named by the prefix, then filter by the rest.
    const base = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/') + 1) : '';
    const stack = [this.path(base)];
    const found: ObjectInfo[] = [];
    while (stack.length > 0) {
      const dir = stack.pop()!;
      let entries;
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw new StorageError('list', dir, err);
      }
      for (const e of entries) {
        const full = join(dir, e.name);
        if (e.isDirectory()) stack.push(full);
        else if (e.isFile() && !e.name.endsWith('.tmp')) {
          const key = relative(this.root, full).split(sep).join('/');
          if (key.startsWith(prefix)) {
            const st = await stat(full);
            found.push({ key, size: st.size, lastModified: st.mtimeMs });
          }
        }
      }
    }
    found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    yield* found;
  }

  async listPrefixes(prefix: string): Promise<string[]> {
    try {
      const entries = await readdir(this.path(prefix), { withFileTypes: true });
      return entries.filter((e) => e.isDirectory()).map((e) => `${prefix}${e.name}/`).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new StorageError('list', this.path(prefix), err);
    }
  }

  /** The URI of a key, as an engine outside the project names the file. */
  uri(key: string): string {
    return `file://${resolve(this.path(key))}`;
  }

  async delete(key: string): Promise<void> {
    await rm(this.path(key), { force: true });
  }

  async check(mode: 'create' | 'existing' = 'create'): Promise<void> {
    if (mode === 'existing') {
      const found = await stat(this.root).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return null;
        throw new StorageError('open', this.root, err);
      });
      if (found === null || !found.isDirectory()) throw new StorageError('open', this.description, new Error(`${resolve(this.root)} ${found === null ? 'does not exist' : 'is not a directory'}`), 'NoSuchStore');
      return;
    }
    try {
      await mkdir(this.root, { recursive: true });
    } catch (err) {
      throw new StorageError('open', this.root, err);
    }
  }

  close(): void {}
}
