import { UntrustedObjectError } from '../trust/signed-object';
import type { DigestSigner } from '../trust/signer';
import { type TrustPolicy, openUnderPolicy } from '../trust/trust-policy';
import { BLOOM_HASH, type FileIndex, parseFileIndex } from '../storage/file-index';
import { INDEX_PREFIX, isDt } from '../storage/layout';
import { sha256Of } from './signed-index';

/**
 * A day's index manifest, `_index/dt=YYYY-MM-DD/_manifest.bin`: the per-file
 * indexes of that day's data files in one object, so a cold lookup over a
 * month GETs ~30 manifests instead of one index per data file (272 in the
 * 10M-event benchmark). Written by `audit-admin maintain` after each pass over a day
 * and by `audit-query index build` (catalog/day-manifest-build.ts), never by the
 * consumer, so it is an accelerator only: it can be missing, or stale (files
 * written after it was built), and a reader must check each entry against the
 * data listing (key and size) and fall back to the per-file index for any file
 * it does not describe. The per-file indexes stay the source of truth.
 *
 * Layout: "AQM1", uint32 LE header length, header JSON (`ManifestHeader`), then
 * the raw Bloom filter bits of the entries (no base64: a quarter smaller).
 *
 * Signed (issue 19), "AQM2": the same, with the header JSON replaced by the
 * digests' envelope around a `SignedManifestBody` (the header plus the SHA-256
 * of the bits section, so the bits are bound to the signature without base64).
 * Written by the maintainer (`audit-admin maintain`) or by `audit-query index
 * build` with a key. A reader opens it under its trust policy and ignores it
 * when the check fails; AQM1 is accepted only on an unsigned store.
 */
export interface ManifestEntry {
  /** The file's index without its Bloom filter fields. */
  index: Omit<FileIndex, 'bloom' | 'bloomHashes' | 'bloomHash'>;
  /** [offset in the bits section, length, hash count], or null when the index had no usable filter. */
  bloom: [offset: number, length: number, hashes: number] | null;
  /**
   * The per-file index object as listed when the manifest was built (size,
   * lastModified epoch ms): the maintainer re-opens an index only when its
   * listing changed, so a rewritten index is found without a GET per file per pass.
   */
  indexObject?: [size: number, lastModified: number];
}

interface ManifestHeader {
  version: 1;
  dt: string;
  /** Hash family of every filter in the file (see BLOOM_HASH). */
  bloomHash: string;
  entries: ManifestEntry[];
}

export const MANIFEST_KIND = 'manifest';

interface SignedManifestBody extends Omit<ManifestHeader, 'version'> {
  kind: typeof MANIFEST_KIND;
  version: 2;
  writtenAt: string;
  writer?: string;
  /** SHA-256 (hex) and length of the bits section that follows the envelope. */
  bitsSha256: string;
  bitsLength: number;
}

export interface DayManifest {
  dt: string;
  /** Each entry's index with its filter bits (null = none). */
  files: { index: ManifestEntry['index']; bloomBits: Uint8Array | null; bloomHashes: number; indexObject: ManifestEntry['indexObject'] }[];
  /** The signer's key id; null for a manifest accepted unsigned. */
  keyId: string | null;
}

const MAGIC = 'AQM1';
const SIGNED_MAGIC = 'AQM2';
export const MANIFEST_NAME = '_manifest.bin';

export function manifestKey(dt: string): string {
  return `${INDEX_PREFIX}dt=${dt}/${MANIFEST_NAME}`;
}

/** The dt of a manifest key, or null for any other key. */
export function manifestDt(key: string): string | null {
  const m = /^_index\/dt=(\d{4}-\d{2}-\d{2})\/_manifest\.bin$/.exec(key);
  return m && isDt(m[1]!) ? m[1]! : null;
}

export interface EncodeManifestOptions {
  /** Signs the manifest (AQM2); null: the unsigned AQM1 of stores without keys. */
  signer?: DigestSigner | null;
  writer?: string;
  now?: Date;
  /** Each data key's index object as listed (see ManifestEntry.indexObject). */
  indexObjects?: ReadonlyMap<string, [size: number, lastModified: number]>;
}

/** Encodes a day's indexes; filters of another hash family are left out (a reader would ignore them). */
export function encodeDayManifest(dt: string, indexes: readonly FileIndex[], opts: EncodeManifestOptions = {}): Buffer {
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
    const listed = opts.indexObjects?.get(ix.key);
    return listed ? { index, bloom, indexObject: listed } : { index, bloom };
  });
  const bits = Buffer.concat(parts);
  let json: Buffer;
  if (opts.signer) {
    const body: SignedManifestBody = {
      kind: MANIFEST_KIND,
      version: 2,
      writtenAt: (opts.now ?? new Date()).toISOString(),
      ...(opts.writer ? { writer: opts.writer } : {}),
      dt,
      bloomHash: BLOOM_HASH,
      entries,
      bitsSha256: sha256Of(bits),
      bitsLength: bits.length,
    };
    json = Buffer.from(opts.signer.seal(body), 'utf8');
  } else {
    const header: ManifestHeader = { version: 1, dt, bloomHash: BLOOM_HASH, entries };
    json = Buffer.from(JSON.stringify(header), 'utf8');
  }
  const head = Buffer.alloc(8);
  head.write(opts.signer ? SIGNED_MAGIC : MAGIC, 0, 'latin1');
  head.writeUInt32LE(json.length, 4);
  return Buffer.concat([head, json, bits]);
}

/**
 * Opens a manifest under the reader's trust policy: a signed AQM2 by a trusted
 * key whose bits match the signed hash and whose day is the key's, or (unsigned
 * stores only) an AQM1. Throws UntrustedObjectError; the caller then reads the
 * day's per-file indexes instead.
 */
export function openDayManifest(policy: TrustPolicy, buf: Buffer, key: string): DayManifest {
  const magic = buf.length >= 8 ? buf.toString('latin1', 0, 4) : '';
  if (magic === MAGIC) {
    if (policy.mode !== 'unsigned') throw new UntrustedObjectError(key, 'unsigned', 'an unsigned manifest (AQM1) on a signed store');
    try {
      return decodeDayManifest(buf, key);
    } catch (err) {
      throw new UntrustedObjectError(key, 'malformed', (err as Error).message);
    }
  }
  if (magic !== SIGNED_MAGIC) throw new UntrustedObjectError(key, 'malformed', 'not a manifest');
  const len = buf.readUInt32LE(4);
  if (8 + len > buf.length) throw new UntrustedObjectError(key, 'malformed', 'truncated header');
  const bits = buf.subarray(8 + len);
  const { body, keyId } = openUnderPolicy<SignedManifestBody>(policy, buf.subarray(8, 8 + len), key, MANIFEST_KIND, () => {
    throw new Error('an AQM2 manifest holds an envelope');
  });
  if (body.version !== 2 || bits.length !== body.bitsLength || sha256Of(bits) !== body.bitsSha256) {
    throw new UntrustedObjectError(key, 'malformed', 'its filter bits are not the ones signed');
  }
  if (manifestDt(key) !== null && body.dt !== manifestDt(key)) throw new UntrustedObjectError(key, 'malformed', `describes dt=${body.dt}, not its own day`);
  try {
    return { ...decodeHeader({ version: 1, dt: body.dt, bloomHash: body.bloomHash, entries: body.entries }, buf, 8 + len, key), keyId };
  } catch (err) {
    throw new UntrustedObjectError(key, 'malformed', (err as Error).message);
  }
}

/**
 * Decodes an unsigned (AQM1) manifest; throws on anything malformed (the caller then ignores
 * the manifest). Filters of an unknown hash family come back as null (never trusted).
 * Readers go through openDayManifest.
 */
export function decodeDayManifest(buf: Buffer, key: string): DayManifest {
  const bad = (why: string) => new Error(`unusable manifest ${key}: ${why}`);
  if (buf.length < 8 || buf.toString('latin1', 0, 4) !== MAGIC) throw bad('not a manifest');
  const len = buf.readUInt32LE(4);
  if (8 + len > buf.length) throw bad('truncated header');
  const header = JSON.parse(buf.toString('utf8', 8, 8 + len)) as Partial<ManifestHeader>;
  return { ...decodeHeader(header, buf, 8 + len, key), keyId: null };
}

function decodeHeader(header: Partial<ManifestHeader>, buf: Buffer, bitsStart: number, key: string): Omit<DayManifest, 'keyId'> {
  const bad = (why: string) => new Error(`unusable manifest ${key}: ${why}`);
  if (header.version !== 1 || typeof header.dt !== 'string' || !Array.isArray(header.entries)) throw bad('unsupported version');
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
    return { index, bloomBits, bloomHashes, indexObject: e.indexObject };
  });
  return { dt: header.dt, files };
}
