import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { BloomFilter } from '../storage/bloom';
import { Limiter, mapLimit } from '../storage/concurrency';
import { DATA_PREFIX, isDt } from '../storage/layout';
import { readDay } from '../storage/live-set';
import type { ObjectInfo, ObjectStore } from '../storage/object-store';
import { OBJECT_SHARDS, type ShardFile, encodeObjectShard, objectShardKey, objectShardOf, openObjectShard } from '../storage/object-shards';
import { UntrustedObjectError } from '../trust/signed-object';
import type { DigestSigner } from '../trust/signer';
import type { TrustPolicy } from '../trust/trust-policy';
import { readFooterLayouts } from './footer';
import { sqlString } from '../storage/sql';

const SHARD_FALSE_POSITIVE_RATE = 0.001;

export interface ShardBuildOptions {
  since: string | null;
  until: string | null;
  /** Data files downloaded at once (default 4: each is held in memory and read by DuckDB). */
  concurrency?: number;
  log?: (line: string) => void;
}

export interface ShardBuildResult {
  /** Days looked at, days whose shards were written, days already up to date. */
  days: number;
  written: number;
  unchanged: number;
  /** Data files described, data files left out (unreadable, or changed while read), bytes of data read, bytes of shards written. */
  files: number;
  skipped: number;
  bytesRead: number;
  bytes: number;
  /** Existing shards that failed the trust check (rewritten). */
  rejected: number;
}

export interface ShardWriter {
  policy: TrustPolicy;
  signer: DigestSigner | null;
  writer?: string;
}

/** One data file's objects by shard and row group, read from the file itself. */
interface FileObjects {
  entry: Omit<ShardFile, 'rowGroups'> & { rowGroups: [offset: number, length: number, rows: number][] };
  /** shard -> row group -> object keys. */
  keys: Map<number, Map<number, string[]>>;
}

/**
 * Writes every day's object shards (storage/object-shards.ts) from its live
 * data files: downloads each file, reads its footer and its object columns
 * with DuckDB, and writes the day's OBJECT_SHARDS objects, signed with the
 * writer's key. A day whose shard 0 already describes exactly its live files
 * (and passes the trust check) is left as it is, so re-runs read nothing new.
 */
export async function buildObjectShards(store: ObjectStore, conn: DuckDBConnection, opts: ShardBuildOptions, w: ShardWriter): Promise<ShardBuildResult> {
  const days = (await store.listPrefixes(''))
    .filter((p) => p.startsWith(DATA_PREFIX) && isDt(p.slice(DATA_PREFIX.length, -1)))
    .map((p) => p.slice(DATA_PREFIX.length, -1))
    .filter((dt) => (opts.since === null || dt >= opts.since) && (opts.until === null || dt <= opts.until));
  const result: ShardBuildResult = { days: days.length, written: 0, unchanged: 0, files: 0, skipped: 0, bytesRead: 0, bytes: 0, rejected: 0 };
  const scratch = await mkdtemp(join(tmpdir(), 'audit-shards-'));
  // Downloads overlap; the one connection runs one query at a time.
  const duck = new Limiter(1);
  try {
    for (const dt of days) {
      const live = (await readDay(store, dt, w.policy)).live;
      const current = await currentFiles(store, dt, w.policy, result);
      if (current !== null && current.size === live.length && live.every((f) => current.get(f.key) === f.size)) {
        result.unchanged++;
        result.files += live.length;
        continue;
      }
      const read = await mapLimit(live, opts.concurrency ?? 4, (f) => readFileObjects(store, (task) => duck.run(() => task(conn)), scratch, f, result));
      const files = read.filter((r): r is FileObjects => r !== null);
      result.files += files.length;
      result.skipped += live.length - files.length;
      const bodies = Array.from({ length: OBJECT_SHARDS }, (_, shard) => encodeShard(dt, shard, files, w));
      await mapLimit(bodies, 16, (body, shard) => store.put(objectShardKey(dt, shard), body));
      const bytes = bodies.reduce((n, b) => n + b.length, 0);
      result.written++;
      result.bytes += bytes;
      opts.log?.(`dt=${dt}: object shards for ${files.length} files, ${bytes} bytes`);
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  return result;
}

/** The files (key -> bytes) the day's shard 0 describes; null when it is missing or fails the check. */
async function currentFiles(store: ObjectStore, dt: string, policy: TrustPolicy, result: ShardBuildResult): Promise<Map<string, number> | null> {
  const key = objectShardKey(dt, 0);
  const body = await store.get(key);
  if (body === null) return null;
  try {
    return new Map(openObjectShard(policy, body, key, dt, 0).body.files.map((f) => [f.key, f.bytes]));
  } catch (err) {
    if (!(err instanceof UntrustedObjectError)) throw err;
    result.rejected++;
    return null;
  }
}

interface KeyRow {
  object_type: string | null;
  object_id: string | null;
  lo: bigint;
  hi: bigint;
}

type WithConnection = <T>(task: (conn: DuckDBConnection) => Promise<T>) => Promise<T>;

async function readFileObjects(store: ObjectStore, withConn: WithConnection, scratch: string, f: ObjectInfo, result: ShardBuildResult): Promise<FileObjects | null> {
  const body = await store.get(f.key);
  // Removed or rewritten since the listing: left out, lookups read it without a shard.
  if (body === null || body.length !== f.size) return null;
  result.bytesRead += body.length;
  const path = join(scratch, `${randomUUID()}.parquet`);
  await writeFile(path, body);
  try {
    const read = await withConn(async (conn) => {
      const layout = (await readFooterLayouts(conn, [path])).get(path);
      if (layout === undefined || layout instanceof Error) return null;
      const src = `read_parquet(${sqlString(path)}, file_row_number = true)`;
      const span = (await conn.runAndReadAll(`SELECT min(epoch_us(occurred_at))::BIGINT AS lo, max(epoch_us(occurred_at))::BIGINT AS hi, count(*)::BIGINT AS n FROM ${src}`)).getRowObjects()[0]!;
      const rows = (await conn.runAndReadAll(`SELECT object_type, object_id, min(file_row_number)::BIGINT AS lo, max(file_row_number)::BIGINT AS hi FROM ${src} GROUP BY ALL`)).getRowObjects() as unknown as KeyRow[];
      return { layout, span, rows };
    });
    if (read === null) return null;
    const { layout, span, rows } = read;
    const firstRow: number[] = [];
    let n = 0;
    for (const rg of layout.rowGroups) {
      firstRow.push(n);
      n += rg.rows;
    }
    if (n !== Number(span.n) || span.lo === null) return null;
    const groupOf = (row: number) => {
      let k = 0;
      while (k + 1 < firstRow.length && firstRow[k + 1]! <= row) k++;
      return k;
    };
    const keys = new Map<number, Map<number, string[]>>();
    for (const r of rows) {
      // A row without type or id matches no lookup.
      if (r.object_type === null || r.object_id === null) continue;
      const shard = objectShardOf(r.object_type, r.object_id);
      let byGroup = keys.get(shard);
      if (!byGroup) keys.set(shard, (byGroup = new Map()));
      // Every group between the object's first and last row: exact in a sorted file, a superset otherwise.
      for (let k = groupOf(Number(r.lo)), last = groupOf(Number(r.hi)); k <= last; k++) {
        let list = byGroup.get(k);
        if (!list) byGroup.set(k, (list = []));
        list.push(`${r.object_type}:${r.object_id}`);
      }
    }
    return {
      entry: {
        key: f.key,
        bytes: f.size,
        rows: n,
        minOccurredAt: Number(span.lo),
        maxOccurredAt: Number(span.hi),
        rowGroups: layout.rowGroups.map((rg) => [rg.start, rg.end - rg.start, rg.rows]),
      },
      keys,
    };
  } finally {
    await rm(path, { force: true });
  }
}

function encodeShard(dt: string, shard: number, files: readonly FileObjects[], w: ShardWriter): Buffer {
  const parts: Uint8Array[] = [];
  let offset = 0;
  const entries: ShardFile[] = files.map((f) => ({
    ...f.entry,
    rowGroups: f.entry.rowGroups.map(([start, length, rows], k) => {
      const keys = f.keys.get(shard)?.get(k) ?? [];
      // A row group passes on its filter alone (a shard has no key statistics), and a month has
      // ~900 of them: at 1 % that is ~9 needless row groups per lookup, at 0.1 % about one.
      const bloom = BloomFilter.forItems(keys.length, SHARD_FALSE_POSITIVE_RATE);
      for (const key of keys) bloom.add(key);
      parts.push(bloom.bits);
      const at = offset;
      offset += bloom.bits.length;
      return [start, length, rows, at, bloom.bits.length, bloom.hashes];
    }),
  }));
  return encodeObjectShard(dt, shard, OBJECT_SHARDS, entries, Buffer.concat(parts), { signer: w.signer, ...(w.writer ? { writer: w.writer } : {}) });
}
