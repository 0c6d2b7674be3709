/**
 * Object shards (storage/object-shards.ts): a cold object lookup GETs one
 * small shard per day instead of the day's manifest, fetches only the row
 * groups the shard's filters allow, returns exactly what reading the whole
 * files returns (also after every unfetched byte is overwritten with garbage),
 * and reads around a shard that is missing, stale, damaged, moved or signed by
 * a key it does not trust.
 */
import { mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ParquetWriter, type StoredRow } from '../../consumer/parquet-writer';
import { storeDataFile, type StoredFile } from '../../bench/lib/store-writer';
import { FileObjectStore } from '../../storage';
import { OBJECT_SHARDS, objectShardKey, objectShardOf, openObjectShard } from '../../storage/object-shards';
import { AuditQuery } from '../../query/query';
import { ObjectCache } from '../../query/cache';
import { openDuckDb, readHistory } from '../../query/history';
import type { ObjectRef } from '../../query/locate';
import { buildObjectShards } from '../../query/object-shards-build';
import { locateByShards } from '../../query/shard-locate';
import { UntrustedObjectError } from '../../trust/signed-object';
import { DigestSigner, generateSigningKey } from '../../trust/signer';
import { TrustedKeys } from '../../trust/trusted-keys';
import type { TrustPolicy } from '../../trust/trust-policy';
import { sampleRecord } from '../helpers/records';
import { unsignedTrust } from '../helpers/trust';

const TOPIC = 'audit.events';
const DAYS = ['2026-07-01', '2026-07-02', '2026-07-03'];
const ALL = { since: null, until: null };
const UNSIGNED = { policy: unsignedTrust(), signer: null };

describe('object shards (local store, real DuckDB)', () => {
  let dir: string;
  let storeDir: string;
  let store: FileObjectStore;
  let writer: ParquetWriter;
  const files: StoredFile[] = [];
  const expected = new Map<string, string[]>();
  const timeOf = new Map<string, number>();
  let offset = 0;
  let n = 0;
  let caches = 0;
  const freshCache = () => join(dir, `cache-${++caches}`);
  const env = (cache: string) => ({ AUDIT_STORE_URL: `file://${storeDir}`, AUDIT_S3_REGION: 'us-east-1', AUDIT_CACHE_DIR: cache });

  async function addFile(dt: string, partition: number, objects: ObjectRef[]): Promise<StoredFile> {
    const rows: StoredRow[] = [];
    const base = Date.parse(`${dt}T00:00:00Z`) * 1000;
    for (const o of objects) {
      for (let k = 0; k < 2; k++) {
        n++;
        const eventId = `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
        const record = sampleRecord({ event_id: eventId, object_type: o.type, object_id: o.id, occurred_at: base + n * 1_000_000, after: JSON.stringify({ n }) });
        rows.push({ record, partition, offset: String(++offset), size: 100 });
        const key = `${o.type}\u0000${o.id}`;
        expected.set(key, [...(expected.get(key) ?? []), eventId]);
        timeOf.set(eventId, record.occurred_at);
      }
    }
    const f = await storeDataFile(store, writer, { topic: TOPIC, partition, dt, rows, workDir: join(dir, 'work') });
    files.push(f);
    return f;
  }

  async function lookup(cache: string, ref: ObjectRef, resultCache = false) {
    const q = new AuditQuery(env(cache), undefined, { resultCache });
    try {
      const events = await q.history({ object: ref, range: ALL, actor: null, action: null });
      return { events, ids: events.map((e) => e.event_id), stats: q.summary() };
    } finally {
      q.close();
    }
  }

  async function build(policy: TrustPolicy = UNSIGNED.policy, signer: DigestSigner | null = null) {
    const { instance, conn } = await openDuckDb();
    try {
      return await buildObjectShards(store, conn, { since: null, until: null }, { policy, signer });
    } finally {
      conn.closeSync();
      instance.closeSync();
    }
  }

  /** Overwrites every byte of the cached sparse files that was never fetched. */
  async function fillHolesWithGarbage(cache: string): Promise<number> {
    let filled = 0;
    for (const sub of await readdir(cache, { withFileTypes: true })) {
      if (!sub.isDirectory()) continue;
      for (const name of await readdir(join(cache, sub.name))) {
        if (!name.endsWith('.sparse')) continue;
        const path = join(cache, sub.name, name);
        const size = (await stat(path)).size;
        let pos = 0;
        const holes: [number, number][] = [];
        for (const [s, e] of await ObjectCache.presentRanges(path)) {
          if (s > pos) holes.push([pos, s]);
          pos = Math.max(pos, e);
        }
        if (pos < size) holes.push([pos, size]);
        const fh = await open(path, 'r+');
        for (const [s, e] of holes) {
          await fh.write(Buffer.alloc(e - s, 0xab), 0, e - s, s);
          filled += e - s;
        }
        await fh.close();
      }
    }
    return filled;
  }

  const invoices = (from: number, count: number): ObjectRef[] => Array.from({ length: count }, (_, i) => ({ type: 'invoice', id: `inv-${String(from + i).padStart(4, '0')}` }));
  const probes: ObjectRef[] = [...invoices(0, 2), ...invoices(2100, 2), ...invoices(4499, 1), { type: 'order', id: '7' }, { type: 'invoice', id: 'absent' }];
  const expectedIds = (ref: ObjectRef) => [...(expected.get(`${ref.type}\u0000${ref.id}`) ?? [])].sort((a, b) => timeOf.get(a)! - timeOf.get(b)!);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'query-shards-'));
    storeDir = join(dir, 'store');
    store = new FileObjectStore(storeDir);
    // 9,000 rows per invoice file: five row groups (DuckDB's smallest is 2,048 rows), so a lookup can skip most of a file.
    writer = await ParquetWriter.create({ rowGroupRows: 2048 });
    for (const dt of DAYS) {
      await addFile(dt, 0, invoices(0, 4500));
      await addFile(dt, 1, Array.from({ length: 300 }, (_, i) => ({ type: 'order', id: String(i) })));
    }
  }, 120_000);

  afterAll(async () => {
    writer.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('splits objects evenly over the shards, independently of the Bloom hashes', () => {
    const counts = new Array<number>(OBJECT_SHARDS).fill(0);
    for (let i = 0; i < 32_000; i++) counts[objectShardOf('invoice', String(i))]!++;
    expect(Math.min(...counts)).toBeGreaterThan(380);
    expect(Math.max(...counts)).toBeLessThan(620);
  });

  it('index build writes every shard of every day, and a re-run rewrites nothing', async () => {
    const first = await build();
    expect(first).toMatchObject({ days: 3, written: 3, unchanged: 0, files: files.length, skipped: 0, rejected: 0 });
    expect(first.bytesRead).toBe(files.reduce((s, f) => s + f.bytes, 0));
    const shard = openObjectShard(UNSIGNED.policy, (await store.get(objectShardKey(DAYS[0]!, 5)))!, objectShardKey(DAYS[0]!, 5), DAYS[0]!, 5);
    expect(shard.body.files.map((f) => f.key).sort()).toEqual(files.filter((f) => f.dt === DAYS[0]).map((f) => f.key).sort());
    const again = await build();
    expect(again).toMatchObject({ days: 3, written: 0, unchanged: 3, bytesRead: 0, bytes: 0 });
  }, 60_000);

  it('a cold lookup reads one shard per day and only the row groups that may hold the object, with the results of whole files, through garbage holes', async () => {
    const { instance, conn } = await openDuckDb();
    try {
      const fullPaths = files.map((f) => join(storeDir, f.key));
      for (const ref of probes) {
        const want = await readHistory(conn, fullPaths, { object: ref, range: ALL, actor: null, action: null });
        expect(want.map((e) => e.event_id)).toEqual(expectedIds(ref));
        const cache = freshCache();
        const cold = await lookup(cache, ref);
        expect({ ref, events: cold.events }).toEqual({ ref, events: want });
        expect(cold.stats).toMatchObject({ shardsFetched: DAYS.length, filesFromShards: files.length, manifestsFetched: 0, fallbacks: 0, indexesRejected: 0 });
        // The shards are the only whole objects fetched: no manifest, no per-file index.
        expect(cold.stats.objectsFetched).toBe(DAYS.length);
        // Only files holding the object are read, one row group of each (the invoice files have five).
        const holding = ref.type === 'invoice' && ref.id !== 'absent' ? DAYS.length : ref.type === 'order' ? DAYS.length : 0;
        expect(cold.stats.filesRead).toBeLessThanOrEqual(holding + 1);
        if (ref.type === 'invoice' && ref.id !== 'absent') {
          const file = files.find((f) => f.index.rowGroups.length >= 4)!;
          const biggest = Math.max(...file.index.rowGroups.map((g) => g.length));
          const tail = file.bytes - Math.max(...file.index.rowGroups.map((g) => g.offset + g.length));
          expect(cold.stats.dataBytesFetched).toBeLessThanOrEqual(cold.stats.filesRead * (tail + biggest + 8192));
        }
        if (want.length > 0) expect(await fillHolesWithGarbage(cache)).toBeGreaterThan(0);
        const warm = await lookup(cache, ref);
        expect({ ref, events: warm.events }).toEqual({ ref, events: want });
        expect(warm.stats).toMatchObject({ requests: 0, bytesFetched: 0, fallbacks: 0, shardsFetched: 0 });
      }
    } finally {
      conn.closeSync();
      instance.closeSync();
    }
  }, 120_000);

  it('reads around a damaged, moved or stale shard, and files a shard does not describe', async () => {
    const ref = invoices(421, 1)[0]!;
    const s = objectShardOf(ref.type, ref.id);
    const day = DAYS[1]!;
    const key = objectShardKey(day, s);
    const original = (await store.get(key))!;
    const dayFiles = files.filter((f) => f.dt === day).length;
    try {
      // Damaged: flipped filter bits no longer match the hash in the body.
      const flipped = Buffer.from(original);
      flipped[flipped.length - 1]! ^= 0xff;
      await store.put(key, flipped);
      let r = await lookup(freshCache(), ref);
      expect(r.ids).toEqual(expectedIds(ref));
      expect(r.stats).toMatchObject({ indexesRejected: 1, filesFromShards: files.length - dayFiles, fallbacks: 0 });

      // Another day's shard (or another shard of the day) copied over it: refused by what it says it is.
      await store.put(key, (await store.get(objectShardKey(DAYS[0]!, s)))!);
      r = await lookup(freshCache(), ref);
      expect(r.ids).toEqual(expectedIds(ref));
      expect(r.stats).toMatchObject({ indexesRejected: 1, filesFromShards: files.length - dayFiles });
      await store.put(key, (await store.get(objectShardKey(day, (s + 1) % OBJECT_SHARDS)))!);
      r = await lookup(freshCache(), ref);
      expect(r.ids).toEqual(expectedIds(ref));
      expect(r.stats.indexesRejected).toBe(1);
    } finally {
      await store.put(key, original);
    }
    // A late file the shards do not describe yet: read through its own index, shards used for the rest.
    const late = await addFile(day, 0, [ref]);
    try {
      const r = await lookup(freshCache(), ref);
      expect(r.ids).toEqual(expectedIds(ref));
      expect(r.stats).toMatchObject({ filesFromShards: files.length - 1, indexesRejected: 0 });
      expect(await build()).toMatchObject({ written: 1, unchanged: 2 });
      expect((await lookup(freshCache(), ref)).stats.filesFromShards).toBe(files.length);
    } finally {
      await store.delete(late.key);
      await store.delete(`_index/${late.key.replace(/\.parquet$/, '.json')}`);
      files.splice(files.indexOf(late), 1);
      const k = `${ref.type}\u0000${ref.id}`;
      expect(expected.get(k)!.splice(-2)).toHaveLength(2);
      await build();
    }
  }, 120_000);

  it('on a signed store, trusts only shards signed by a trusted key', async () => {
    const signer = DigestSigner.fromPem(generateSigningKey().privateKeyPem, 'test');
    const policy: TrustPolicy = { mode: 'pinned', keys: new TrustedKeys([TrustedKeys.keyFromPem(signer.publicKeyPem, 'test')]), notice: null };
    const ref = invoices(0, 1)[0]!;
    const listed = files.map((f) => ({ key: f.key, size: f.bytes }));
    // The unsigned shards written above: refused under the signed policy, every file left to the caller.
    const cache = new ObjectCache(freshCache(), store);
    const unsignedRead = await locateByShards(cache, listed, ref, ALL, policy);
    expect(unsignedRead.covered.size).toBe(0);
    expect(unsignedRead.rejected.map((r) => r.code)).toEqual(DAYS.map(() => 'unsigned'));

    // Rebuilt with the trusted key: every file covered, only the files holding the object are candidates.
    expect(await build(policy, signer)).toMatchObject({ written: 3, rejected: 3 });
    const signedRead = await locateByShards(new ObjectCache(freshCache(), store), listed, ref, ALL, policy);
    expect(signedRead.rejected).toEqual([]);
    expect(signedRead.covered.size).toBe(files.length);
    expect(signedRead.candidates.map((c) => c.key).sort()).toEqual(files.filter((f) => f.index.rowGroups.length >= 4).map((f) => f.key).sort());
    for (const c of signedRead.candidates) expect(c.rowGroups).toEqual([0]);

    // Signed by another key: refused.
    const other = DigestSigner.fromPem(generateSigningKey().privateKeyPem, 'other');
    const key = objectShardKey(DAYS[0]!, objectShardOf(ref.type, ref.id));
    const byOther = await (async () => {
      const { instance, conn } = await openDuckDb();
      try {
        const scratch = new FileObjectStore(join(dir, 'other-store'));
        for (const f of files.filter((x) => x.dt === DAYS[0])) await scratch.put(f.key, (await store.get(f.key))!);
        await buildObjectShards(scratch, conn, { since: null, until: null }, { policy: unsignedTrust(), signer: other });
        return (await scratch.get(key))!;
      } finally {
        conn.closeSync();
        instance.closeSync();
      }
    })();
    expect(() => openObjectShard(policy, byOther, key, DAYS[0]!, objectShardOf(ref.type, ref.id))).toThrow(UntrustedObjectError);
    await build(unsignedTrust(), null);
  }, 120_000);
});
