/**
 * Day index manifests (`audit-query index build`): a cold lookup reads one
 * manifest per day instead of one index per data file, and returns exactly
 * what it returns without them, also when a manifest is missing, stale,
 * damaged, or describes another version of a file.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ParquetWriter, type StoredRow } from '../../consumer/parquet-writer';
import { storeDataFile, type StoredFile } from '../../bench/lib/store-writer';
import { BLOOM_HASH, FileObjectStore, indexKey } from '../../storage';
import { decodeDayManifest, encodeDayManifest, manifestDt, manifestKey } from '../../catalog';
import { AuditQuery } from '../../query/query';
import { buildDayManifests } from '../../catalog/day-manifest-build';
import { TrustedKeys } from '../../trust/trusted-keys';
import type { ObjectRef } from '../../query/locate';
import { sampleRecord } from '../helpers/records';
import { unsignedTrust } from '../helpers/trust';

const TOPIC = 'audit.events';
const DAYS = ['2026-07-01', '2026-07-02', '2026-07-03'];
const ALL = { since: null, until: null };
/** This store has no keys: manifests are written and read unsigned, as before signing. */
const UNSIGNED = { policy: { mode: 'unsigned' as const, keys: new TrustedKeys(), notice: null }, signer: null };

describe('day index manifests (local store, real DuckDB)', () => {
  let dir: string;
  let storeDir: string;
  let store: FileObjectStore;
  let writer: ParquetWriter;
  const files: StoredFile[] = [];
  /** type\0id -> event ids in the order a lookup returns them. */
  const expected = new Map<string, string[]>();
  /** Data key -> the event ids it holds. */
  const idsOfFile = new Map<string, Set<string>>();
  const timeOf = new Map<string, number>();
  let offset = 0;
  let n = 0;

  const env = (cache: string) => ({ AUDIT_STORE_URL: `file://${storeDir}`, AUDIT_S3_REGION: 'us-east-1', AUDIT_CACHE_DIR: cache });
  let caches = 0;
  const freshCache = () => join(dir, `cache-${++caches}`);

  /** One data file (and its index unless told otherwise) of `count` events per object, on a day. */
  async function addFile(dt: string, partition: number, objects: ObjectRef[], opts: { withIndex?: boolean } = {}): Promise<StoredFile> {
    const rows: StoredRow[] = [];
    const ids = new Set<string>();
    const base = Date.parse(`${dt}T00:00:00Z`) * 1000;
    for (const o of objects) {
      for (let k = 0; k < 2; k++) {
        n++;
        const eventId = `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
        const record = sampleRecord({ event_id: eventId, object_type: o.type, object_id: o.id, occurred_at: base + n * 1_000_000, after: JSON.stringify({ n }) });
        rows.push({ record, partition, offset: String(++offset), size: 100 });
        const key = `${o.type}\u0000${o.id}`;
        expected.set(key, [...(expected.get(key) ?? []), eventId]);
        ids.add(eventId);
        timeOf.set(eventId, record.occurred_at);
      }
    }
    const f = await storeDataFile(store, writer, { topic: TOPIC, partition, dt, rows, workDir: join(dir, 'work'), withIndex: opts.withIndex });
    files.push(f);
    idsOfFile.set(f.key, ids);
    return f;
  }

  async function lookup(cache: string, ref: ObjectRef) {
    const q = new AuditQuery(env(cache), undefined, { resultCache: false });
    try {
      const events = await q.history({ object: ref, range: ALL, actor: null, action: null });
      return { ids: events.map((e) => e.event_id), stats: q.summary() };
    } finally {
      q.close();
    }
  }

  const invoices = (from: number, count: number): ObjectRef[] => Array.from({ length: count }, (_, i) => ({ type: 'invoice', id: `inv-${String(from + i).padStart(4, '0')}` }));
  const probes: ObjectRef[] = [...invoices(0, 3), ...invoices(590, 3), { type: 'order', id: '7' }, { type: 'invoice', id: 'absent' }];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'query-manifest-'));
    storeDir = join(dir, 'store');
    store = new FileObjectStore(storeDir);
    writer = await ParquetWriter.create({ rowGroupRows: 1024 });
    // Per day, two files (two partitions); invoice histories span every day.
    for (const dt of DAYS) {
      await addFile(dt, 0, invoices(0, 600));
      await addFile(dt, 1, [...Array.from({ length: 300 }, (_, i) => ({ type: 'order', id: String(i) }))]);
    }
  }, 120_000);

  afterAll(async () => {
    writer.close();
    await rm(dir, { recursive: true, force: true });
  });

  // Oldest first, as a lookup returns them (event times are unique here).
  const expectedIds = (ref: ObjectRef) => [...(expected.get(`${ref.type}\u0000${ref.id}`) ?? [])].sort((a, b) => timeOf.get(a)! - timeOf.get(b)!);

  it('encodes and decodes a day of indexes, keeping the Bloom bits and dropping filters of another hash family', () => {
    const [a, b] = files.filter((f) => f.dt === DAYS[0]);
    const foreign = { ...b!.index, bloomHash: 'other-hash' };
    const decoded = decodeDayManifest(encodeDayManifest(DAYS[0]!, [a!.index, foreign]), 'm');
    expect(decoded.dt).toBe(DAYS[0]);
    expect(decoded.files.map((f) => f.index.key)).toEqual([a!.key, b!.key]);
    const { bloom, bloomHashes, bloomHash, ...meta } = a!.index;
    expect(decoded.files[0]!.index).toEqual(meta);
    expect(Buffer.from(decoded.files[0]!.bloomBits!).toString('base64')).toBe(bloom);
    expect([decoded.files[0]!.bloomHashes, bloomHash]).toEqual([bloomHashes, BLOOM_HASH]);
    expect(decoded.files[1]!.bloomBits).toBeNull();
    expect(manifestDt(manifestKey('2026-07-02'))).toBe('2026-07-02');
    expect(manifestDt(indexKey('2026-07-02', 'x.parquet'))).toBeNull();
  });

  it('rejects damaged manifests instead of trusting them', () => {
    const good = encodeDayManifest(DAYS[0]!, [files[0]!.index]);
    expect(() => decodeDayManifest(Buffer.from('not a manifest'), 'm')).toThrow(/not a manifest/);
    expect(() => decodeDayManifest(good.subarray(0, 20), 'm')).toThrow(/truncated/);
    // Bloom bits cut off: the filter range points past the end.
    expect(() => decodeDayManifest(good.subarray(0, good.length - 1), 'm')).toThrow(/filter range/);
  });

  it('index build writes one manifest per day, and a re-run rewrites nothing', async () => {
    const first = await buildDayManifests(store, { since: null, until: '2026-07-02' }, UNSIGNED);
    expect(first).toMatchObject({ days: 2, written: 2, unchanged: 0, files: 4, skipped: 0 });
    const rest = await buildDayManifests(store, { since: null, until: null }, UNSIGNED);
    expect(rest).toMatchObject({ days: 3, written: 1, unchanged: 2, files: 6 });
    const again = await buildDayManifests(store, { since: null, until: null }, UNSIGNED);
    expect(again).toMatchObject({ days: 3, written: 0, unchanged: 3, bytes: 0 });
    for (const dt of DAYS) {
      const m = decodeDayManifest((await store.get(manifestKey(dt)))!, dt);
      expect(m.files.map((f) => f.index.key).sort()).toEqual(files.filter((f) => f.dt === dt).map((f) => f.key).sort());
    }
  });

  it('a cold lookup reads the manifests instead of the per-file indexes, with the same results', async () => {
    for (const ref of probes) {
      const r = await lookup(freshCache(), ref);
      expect(r.ids).toEqual(expectedIds(ref));
      expect(r.stats).toMatchObject({ manifestsFetched: DAYS.length, filesFromManifests: files.length });
      // Manifests are the only whole objects fetched: no per-file index GET.
      expect(r.stats.objectsFetched).toBe(DAYS.length);
    }
    // Warm: the catalog knows every file, so no manifest is fetched again.
    const cache = freshCache();
    await lookup(cache, probes[0]!);
    expect((await lookup(cache, probes[1]!)).stats).toMatchObject({ manifestsFetched: 0, indexBytesFetched: 0 });
  });

  it('reads files a stale manifest does not list through their own index, or whole without one', async () => {
    const late = [await addFile(DAYS[1]!, 0, invoices(0, 2)), await addFile(DAYS[2]!, 0, invoices(1, 1), { withIndex: false })];
    try {
      const ref = invoices(1, 1)[0]!;
      const r = await lookup(freshCache(), ref);
      expect(r.ids).toEqual(expectedIds(ref));
      expect(r.stats).toMatchObject({ manifestsFetched: DAYS.length, filesFromManifests: files.length - 2, filesWhole: 1 });
      expect(r.stats.objectsFetched).toBe(DAYS.length + 1); // + the late file's own index
      // Built again, the manifest lists the indexed late file; the other waits for its index.
      const rebuilt = await buildDayManifests(store, { since: null, until: null }, UNSIGNED);
      expect(rebuilt).toMatchObject({ written: 1, unchanged: 2, skipped: 1 });
      const after = await lookup(freshCache(), ref);
      expect(after.ids).toEqual(expectedIds(ref));
      expect(after.stats).toMatchObject({ filesFromManifests: files.length - 1, objectsFetched: DAYS.length });
    } finally {
      for (const f of late) {
        await store.delete(f.key);
        await store.delete(indexKey(f.dt, f.key.slice(f.key.lastIndexOf('/') + 1)));
        const gone = idsOfFile.get(f.key)!;
        for (const [k, ids] of expected) expected.set(k, ids.filter((id) => !gone.has(id)));
        files.splice(files.indexOf(f), 1);
      }
      await buildDayManifests(store, { since: null, until: null }, UNSIGNED);
    }
  });

  it('ignores a damaged manifest and entries describing another version of a file', async () => {
    const ref = invoices(2, 1)[0]!;
    const day = DAYS[0]!;
    const dayFiles = files.filter((f) => f.dt === day);
    try {
      await store.put(manifestKey(day), Buffer.from('garbage'));
      const damaged = await lookup(freshCache(), ref);
      expect(damaged.ids).toEqual(expectedIds(ref));
      expect(damaged.stats.filesFromManifests).toBe(files.length - dayFiles.length);

      // An entry whose size is not the file's (a rewritten file, or a wrong manifest), and an
      // entry for a file of another day: both ignored, the per-file indexes used instead.
      const wrongSize = { ...dayFiles[0]!.index, bytes: dayFiles[0]!.index.bytes + 1 };
      const otherDay = files.find((f) => f.dt === DAYS[1])!;
      await store.put(manifestKey(day), encodeDayManifest(day, [wrongSize, { ...otherDay.index }]));
      const stale = await lookup(freshCache(), ref);
      expect(stale.ids).toEqual(expectedIds(ref));
      expect(stale.stats.filesFromManifests).toBe(files.length - dayFiles.length);
    } finally {
      await rm(join(storeDir, manifestKey(day)), { force: true });
      await buildDayManifests(store, { since: null, until: null }, UNSIGNED);
    }
    // Missing manifest for a day: that day's per-file indexes.
    await rm(join(storeDir, manifestKey(day)), { force: true });
    const missing = await lookup(freshCache(), ref);
    expect(missing.ids).toEqual(expectedIds(ref));
    expect(missing.stats).toMatchObject({ manifestsFetched: DAYS.length - 1, filesFromManifests: files.length - dayFiles.length });
  });
});
