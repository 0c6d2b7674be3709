import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createHash, randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { BLOOM_HASH, BloomFilter, type FileIndex } from '../storage';

/** An index without its Bloom filter (kept as raw bits beside it). */
export type IndexMeta = Omit<FileIndex, 'bloom' | 'bloomHashes' | 'bloomHash'>;

export interface CatalogEntry {
  key: string;
  size: number;
  /** null: the data file had no index when last checked (at `checkedAt`, epoch ms). */
  index: IndexMeta | null;
  bloom: BloomFilter | null;
  checkedAt: number;
  /** Why the file's index was refused (trust check, or another file's index); reported on each run while the entry lasts. */
  rejected?: { key: string; code: string; message: string };
}

interface HeaderEntry {
  key: string;
  size: number;
  index: IndexMeta | null;
  bloom: [offset: number, length: number, hashes: number] | null;
  checkedAt: number;
  rejected?: CatalogEntry['rejected'];
}

// AQC2: entries are only what passed the trust check named in the header (AQC1 catalogs held unchecked indexes).
const MAGIC = 'AQC2';

/**
 * Every index of a store seen so far, in one local file: what a lookup needs
 * to prune files (time bounds, row-group statistics, Bloom filter bits) read
 * with one readFile instead of one JSON parse per data file. Entries are keyed
 * by data key + size (an index describes one version of its file). The
 * per-index JSON files of the cache stay the source; this is an accelerator,
 * rewritten atomically when entries are added (concurrent writers: the last
 * one wins, and what it lacks is added again later).
 *
 * Entries were accepted under one trust policy (its mode and keys, `trust`):
 * a catalog of another is dropped, so an index accepted on an unsigned store is
 * not used once keys are pinned.
 *
 * Layout: "AQC2", uint32 LE header length, header JSON, then the Bloom bits.
 */
export class IndexCatalog {
  private readonly entries = new Map<string, CatalogEntry>();
  private dirty = false;

  private constructor(
    private readonly path: string,
    private readonly trust: string,
  ) {}

  static async load(cacheDir: string, storeDescription: string, trust = ''): Promise<IndexCatalog> {
    const h = createHash('sha256').update(storeDescription).digest('hex').slice(0, 20);
    const catalog = new IndexCatalog(join(cacheDir, `catalog-${h}.bin`), trust);
    try {
      const buf = await readFile(catalog.path);
      if (buf.toString('latin1', 0, 4) !== MAGIC) return catalog;
      const len = buf.readUInt32LE(4);
      const header = JSON.parse(buf.toString('utf8', 8, 8 + len)) as { store: string; trust?: string; entries: HeaderEntry[] };
      if (header.store !== storeDescription || header.trust !== trust) return catalog;
      const blob = 8 + len;
      for (const e of header.entries) {
        const bloom = e.bloom ? new BloomFilter(new Uint8Array(buf.buffer, buf.byteOffset + blob + e.bloom[0], e.bloom[1]), e.bloom[2]) : null;
        catalog.entries.set(e.key, { key: e.key, size: e.size, index: e.index, bloom, checkedAt: e.checkedAt, ...(e.rejected ? { rejected: e.rejected } : {}) });
      }
    } catch {
      // none yet, or damaged: rebuilt from the cached index files
    }
    return catalog;
  }

  get(key: string, size: number): CatalogEntry | undefined {
    const e = this.entries.get(key);
    return e && e.size === size ? e : undefined;
  }

  set(key: string, size: number, index: FileIndex | null, now = Date.now(), rejected?: CatalogEntry['rejected']): CatalogEntry {
    let meta: IndexMeta | null = null;
    let bloom: BloomFilter | null = null;
    if (index) {
      const { bloom: b64, bloomHashes, bloomHash, ...rest } = index;
      meta = rest;
      // A filter of another (or an unrecorded) hash family would give false negatives: skip it.
      if (b64 && bloomHashes && bloomHash === BLOOM_HASH) bloom = BloomFilter.fromBase64(b64, bloomHashes);
    }
    const entry: CatalogEntry = { key, size, index: meta, bloom, checkedAt: now, ...(rejected ? { rejected } : {}) };
    this.entries.set(key, entry);
    this.dirty = true;
    return entry;
  }

  /** An entry from a day manifest (index without filter fields, filter bits already decoded). */
  setDecoded(key: string, size: number, index: IndexMeta, bloom: BloomFilter | null, now = Date.now()): CatalogEntry {
    const { bloom: _b, bloomHashes: _h, bloomHash: _f, ...meta } = index as FileIndex;
    const entry: CatalogEntry = { key, size, index: meta, bloom, checkedAt: now };
    this.entries.set(key, entry);
    this.dirty = true;
    return entry;
  }

  async save(storeDescription: string): Promise<void> {
    if (!this.dirty) return;
    const parts: Buffer[] = [];
    let offset = 0;
    const header: HeaderEntry[] = [];
    for (const e of this.entries.values()) {
      let bloom: HeaderEntry['bloom'] = null;
      if (e.bloom) {
        const bits = Buffer.from(e.bloom.bits.buffer, e.bloom.bits.byteOffset, e.bloom.bits.byteLength);
        parts.push(bits);
        bloom = [offset, bits.length, e.bloom.hashes];
        offset += bits.length;
      }
      header.push({ key: e.key, size: e.size, index: e.index, bloom, checkedAt: e.checkedAt, ...(e.rejected ? { rejected: e.rejected } : {}) });
    }
    const json = Buffer.from(JSON.stringify({ store: storeDescription, trust: this.trust, entries: header }), 'utf8');
    const head = Buffer.alloc(8);
    head.write(MAGIC, 0, 'latin1');
    head.writeUInt32LE(json.length, 4);
    const tmp = `${this.path}.${randomUUID()}.tmp`;
    try {
      await mkdir(join(this.path, '..'), { recursive: true });
      await writeFile(tmp, Buffer.concat([head, json, ...parts]));
      await rename(tmp, this.path);
      this.dirty = false;
    } catch {
      await rm(tmp, { force: true }); // an accelerator only: never fail a query for it
    }
  }
}
