import { UntrustedObjectError } from '../trust/signed-object';
import type { DigestSigner } from '../trust/signer';
import { type TrustPolicy, openUnderPolicy } from '../trust/trust-policy';
import { BLOOM_HASH } from './file-index';
import { INDEX_PREFIX, isDt } from './layout';
import { sha256Of } from './signed-index';

/**
 * A day's object filter, split by object into shards:
 * `_index/dt=YYYY-MM-DD/_objects/NN.bin`, one object per shard.
 *
 * The day manifest holds a Bloom filter of every object of every file, so a
 * cold lookup over a month downloads every filter of the month (4.3 MiB in the
 * 10M-event benchmark) to test one key in each. Here the objects of the day are
 * split into SHARDS groups by a hash of `type:id`; shard N holds, for each data
 * file of the day and each of its row groups, a Bloom filter of only that
 * group's objects that fall in shard N, with the file's byte layout (row-group
 * offsets, lengths, rows) and event-time bounds. A lookup GETs one shard per
 * day, about 1/SHARDS of the filters, and learns which row groups (not only
 * which files) may hold the object.
 *
 * It is derived from the data files themselves (the maintainer reads their
 * object columns), signed like a manifest, and only an accelerator: a reader
 * uses an entry only when it names a listed data file and its size, and reads
 * every file a shard lacks (or a shard that fails the check) as it would
 * without one. Other per-row-group filters can be added later as optional
 * fields of `ShardFile` (readers ignore what they do not know).
 *
 * Layout: "AQS1", uint32 LE length, the body (a signed envelope, or bare JSON
 * on a store without keys), then the filter bits, whose SHA-256 the body holds.
 */
export const OBJECT_SHARD_KIND = 'object-shard';
export const OBJECT_SHARDS = 64;
const MAGIC = 'AQS1';

/** A row group: [byte offset, byte length, rows, filter offset in the bits, filter length, hash count]. */
export type ShardRowGroup = [offset: number, length: number, rows: number, bitsOffset: number, bitsLength: number, hashes: number];

export interface ShardFile {
  /** The data file, relative to the store prefix, and its byte size. */
  key: string;
  bytes: number;
  rows: number;
  /** Event time bounds, microseconds UTC. */
  minOccurredAt: number;
  maxOccurredAt: number;
  rowGroups: ShardRowGroup[];
}

export interface ObjectShardBody {
  kind: typeof OBJECT_SHARD_KIND;
  version: 1;
  writtenAt: string;
  writer?: string;
  dt: string;
  shard: number;
  shards: number;
  /** Hash family of the filters (storage/bloom.ts). */
  bloomHash: string;
  files: ShardFile[];
  bitsSha256: string;
  bitsLength: number;
}

export interface ObjectShard {
  body: ObjectShardBody;
  bits: Uint8Array;
  keyId: string | null;
}

export function objectShardKey(dt: string, shard: number): string {
  return `${INDEX_PREFIX}dt=${dt}/_objects/${String(shard).padStart(2, '0')}.bin`;
}

/**
 * The shard of an object key: FNV-1a, then Murmur3's finaliser, so the shard
 * is independent of the Bloom filter's own hashes (a correlated split would
 * leave most of each shard's filter bits unused).
 */
export function objectShardOf(type: string, id: string, shards = OBJECT_SHARDS): number {
  let h = 0x9747b28c;
  for (const s of [type, ':', id]) {
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) % shards;
}

export interface EncodeShardOptions {
  signer: DigestSigner | null;
  writer?: string;
  now?: Date;
}

/** Encodes one shard: `files` with row-group filter ranges into `bits`. */
export function encodeObjectShard(dt: string, shard: number, shards: number, files: ShardFile[], bits: Uint8Array, opts: EncodeShardOptions): Buffer {
  const body: ObjectShardBody = {
    kind: OBJECT_SHARD_KIND,
    version: 1,
    writtenAt: (opts.now ?? new Date()).toISOString(),
    ...(opts.writer ? { writer: opts.writer } : {}),
    dt,
    shard,
    shards,
    bloomHash: BLOOM_HASH,
    files,
    bitsSha256: sha256Of(bits),
    bitsLength: bits.length,
  };
  const json = Buffer.from(opts.signer ? opts.signer.seal(body) : JSON.stringify(body), 'utf8');
  const head = Buffer.alloc(8);
  head.write(MAGIC, 0, 'latin1');
  head.writeUInt32LE(json.length, 4);
  return Buffer.concat([head, json, bits]);
}

const int = (v: unknown, min = 0) => Number.isSafeInteger(v) && (v as number) >= min;

/**
 * Opens a shard under the reader's trust policy and checks it is the one its
 * key names (day, shard number, shard count), that its bits are the signed
 * ones and that every filter range lies inside them. Throws UntrustedObjectError.
 */
export function openObjectShard(policy: TrustPolicy, buf: Buffer, key: string, dt: string, shard: number): ObjectShard {
  if (buf.length < 8 || buf.toString('latin1', 0, 4) !== MAGIC) throw new UntrustedObjectError(key, 'malformed', 'not an object shard');
  const len = buf.readUInt32LE(4);
  if (8 + len > buf.length) throw new UntrustedObjectError(key, 'malformed', 'truncated header');
  const bits = buf.subarray(8 + len);
  const { body, keyId } = openUnderPolicy<ObjectShardBody>(policy, buf.subarray(8, 8 + len), key, OBJECT_SHARD_KIND, (b) => {
    const bare = JSON.parse(b.toString('utf8')) as ObjectShardBody;
    if (bare?.kind !== OBJECT_SHARD_KIND) throw new Error('not an object shard body');
    return bare;
  });
  const bad = (why: string) => new UntrustedObjectError(key, 'malformed', why);
  if (body.version !== 1 || !Array.isArray(body.files)) throw bad(`unsupported shard body (version ${String(body.version)})`);
  if (body.dt !== dt || !isDt(body.dt) || body.shard !== shard || body.shards !== OBJECT_SHARDS) {
    throw bad(`describes shard ${String(body.shard)}/${String(body.shards)} of dt=${String(body.dt)}, not ${shard}/${OBJECT_SHARDS} of dt=${dt}`);
  }
  if (body.bloomHash !== BLOOM_HASH) throw bad(`filters of another hash family (${String(body.bloomHash)})`);
  if (bits.length !== body.bitsLength || sha256Of(bits) !== body.bitsSha256) throw bad('its filter bits are not the ones signed');
  for (const f of body.files) {
    const ok =
      typeof f?.key === 'string' &&
      int(f.bytes, 1) &&
      int(f.rows) &&
      Number.isSafeInteger(f.minOccurredAt) &&
      Number.isSafeInteger(f.maxOccurredAt) &&
      Array.isArray(f.rowGroups) &&
      f.rowGroups.every((rg) => Array.isArray(rg) && rg.length === 6 && int(rg[0], 4) && int(rg[1], 1) && int(rg[2], 1) && int(rg[3]) && int(rg[4], 1) && int(rg[5], 1) && rg[0] + rg[1] <= f.bytes && rg[3] + rg[4] <= bits.length) &&
      f.rowGroups.reduce((n, rg) => n + rg[2], 0) === f.rows;
    if (!ok) throw bad(`a malformed entry${typeof f?.key === 'string' ? ` for ${f.key}` : ''}`);
  }
  return { body, bits, keyId };
}
