import { BLOOM_HASH, type FileIndex, parseFileIndex } from './file-index';
import { INDEX_PREFIX, isDt } from './layout';

/**
 * A day's index manifest, `_index/dt=YYYY-MM-DD/_manifest.bin`: the per-file
 * indexes of that day's data files in one object, so a cold lookup over a
 * month GETs ~30 manifests instead of one index per data file (272 in the
 * 10M-event benchmark). Written by `audit-admin maintain` after each pass over a day
 * and by `audit-query index build` (storage/day-manifest-build.ts), never by the
 * consumer, so it is an accelerator only: it can be missing, or stale (files
 * written after it was built), and a reader must check each entry against the
 * data listing (key and size) and fall back to the per-file index for any file
 * it does not describe. The per-file indexes stay the source of truth.
 *
 * Layout: "AQM1", uint32 LE header length, header JSON (`ManifestHeader`), then
 * the raw Bloom filter bits of the entries (no base64: a quarter smaller).
 */
export interface ManifestEntry {
  /** The file's index without its Bloom filter fields. */
  index: Omit<FileIndex, 'bloom' | 'bloomHashes' | 'bloomHash'>;
  /** [offset in the bits section, length, hash count], or null when the index had no usable filter. */
  bloom: [offset: number, length: number, hashes: number] | null;
}

interface ManifestHeader {
  version: 1;
  dt: string;
  /** Hash family of every filter in the file (see BLOOM_HASH). */
  bloomHash: string;
  entries: ManifestEntry[];
}

export interface DayManifest {
  dt: string;
  /** Each entry's index with its filter bits (null = none). */
  files: { index: ManifestEntry['index']; bloomBits: Uint8Array | null; bloomHashes: number }[];
}

const MAGIC = 'AQM1';
export const MANIFEST_NAME = '_manifest.bin';

export function manifestKey(dt: string): string {
  return `${INDEX_PREFIX}dt=${dt}/${MANIFEST_NAME}`;
}

/** The dt of a manifest key, or null for any other key. */
export function manifestDt(key: string): string | null {
  const m = /^_index\/dt=(\d{4}-\d{2}-\d{2})\/_manifest\.bin$/.exec(key);
  return m && isDt(m[1]!) ? m[1]! : null;
}

/** Encodes a day's indexes; filters of another hash family are left out (a reader would ignore them). */
export function encodeDayManifest(dt: string, indexes: readonly FileIndex[]): Buffer {
  const parts: Buffer[] = [];
  let offset = 0;
  const entries: ManifestEntry[] = indexes.map((ix) => {
    const { bloom: b64, bloomHashes, bloomHash, ...index } = ix;
    let bloom: ManifestEntry['bloom'] = null;
    if (b64 && bloomHashes && bloomHash === BLOOM_HASH) {
      const bits = Buffer.from(b64, 'base64');
      parts.push(bits);
      bloom = [offset, bits.length, bloomHashes];
      offset += bits.length;
    }
    return { index, bloom };
  });
  const header: ManifestHeader = { version: 1, dt, bloomHash: BLOOM_HASH, entries };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const head = Buffer.alloc(8);
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(json.length, 4);
  return Buffer.concat([head, json, ...parts]);
}

/**
 * Decodes a manifest; throws on anything malformed (the caller then ignores
 * the manifest). Filters of an unknown hash family come back as null (never trusted).
 */
export function decodeDayManifest(buf: Buffer, key: string): DayManifest {
  const bad = (why: string) => new Error(`unusable manifest ${key}: ${why}`);
  if (buf.length < 8 || buf.toString('latin1', 0, 4) !== MAGIC) throw bad('not a manifest');
  const len = buf.readUInt32LE(4);
  if (8 + len > buf.length) throw bad('truncated header');
  const header = JSON.parse(buf.toString('utf8', 8, 8 + len)) as Partial<ManifestHeader>;
  if (header.version !== 1 || typeof header.dt !== 'string' || !Array.isArray(header.entries)) throw bad('unsupported version');
  const bitsStart = 8 + len;
  const trusted = header.bloomHash === BLOOM_HASH;
  const files = header.entries.map((e) => {
    // The same checks as a per-file index (version, key, row groups).
    const index = parseFileIndex(JSON.stringify(e.index), key);
    let bloomBits: Uint8Array | null = null;
    let bloomHashes = 0;
    if (trusted && e.bloom) {
      const [off, n, hashes] = e.bloom;
      if (!Number.isSafeInteger(off) || !Number.isSafeInteger(n) || off < 0 || n <= 0 || bitsStart + off + n > buf.length || !(hashes > 0)) throw bad('bad filter range');
      bloomBits = new Uint8Array(buf.buffer, buf.byteOffset + bitsStart + off, n);
      bloomHashes = hashes;
    }
    return { index, bloomBits, bloomHashes };
  });
  return { dt: header.dt, files };
}
