/**
 * Signed per-file indexes and day manifests (issue 19), in-process on a local
 * store with real DuckDB: every index or manifest that fails the check (forged,
 * edited, moved to another file or day, signed by another key, unsigned on a
 * signed store, kept after its file changed size) is ignored, the lookup
 * returns exactly the unindexed result, and the failure is reported; verify's
 * index check names it; a repair rebuilds the same index from the data file.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ParquetWriter, type StoredRow } from '../../consumer/parquet-writer';
import { storeDataFile, type StoredFile } from '../../bench/lib/store-writer';
import { Compactor } from '../../maintenance/compactor';
import { type DayState, FileObjectStore, type FileIndex, encodeDayManifest, indexKey, manifestKey, readDay } from '../../storage';
import { buildDayManifest, buildDayManifests } from '../../storage/day-manifest-build';
import { encodeFileIndex, openFileIndex } from '../../storage/signed-index';
import { AuditQuery } from '../../query/query';
import type { ObjectRef } from '../../query/locate';
import { DigestSigner, generateSigningKey } from '../../trust/signer';
import { TrustedKeys } from '../../trust/trusted-keys';
import type { TrustPolicy } from '../../trust/trust-policy';
import { checkIndexes } from '../../trust/verify-indexes';
import { sampleRecord } from '../helpers/records';

const TOPIC = 'audit.events';
const A = '2026-08-01'; // per-file indexes only
const B = '2026-08-02'; // also a signed manifest
const ALL = { since: null, until: null };
const signerOf = () => DigestSigner.fromPem(generateSigningKey().privateKeyPem, 'test');

describe('signed lookup indexes (local store, real DuckDB)', () => {
  let dir: string;
  let storeDir: string;
  let store: FileObjectStore;
  let trustFile: string;
  const signer = signerOf();
  const mallory = signerOf();
  const policy: TrustPolicy = { mode: 'pinned', keys: new TrustedKeys([TrustedKeys.keyFromPem(signer.publicKeyPem, 'test')]), notice: null };
  const files: StoredFile[] = [];
  const expected = new Map<string, string[]>();
  let caches = 0;
  const ref: ObjectRef = { type: 'invoice', id: 'inv-7' };
  const nameOf = (f: StoredFile) => f.key.slice(f.key.lastIndexOf('/') + 1);
  const ixKey = (f: StoredFile) => indexKey(f.dt, nameOf(f));
  /** What no row group can hold and no filter admits: the attacker's "this object is not here". */
  const looksEmpty = (ix: FileIndex): FileIndex => ({ ...ix, rowGroups: ix.rowGroups.map((rg) => ({ ...rg, typeMin: 'zzz', typeMax: 'zzz' })), bloom: Buffer.alloc(64).toString('base64'), bloomHashes: 3 });

  async function lookup(object: ObjectRef = ref) {
    const q = new AuditQuery({ AUDIT_STORE_URL: `file://${storeDir}`, AUDIT_S3_REGION: 'us-east-1', AUDIT_CACHE_DIR: join(dir, `cache-${++caches}`), AUDIT_TRUSTED_KEYS_FILE: trustFile }, undefined, { resultCache: false });
    try {
      const events = await q.history({ object, range: ALL, actor: null, action: null });
      return { ids: events.map((e) => e.event_id), stats: q.summary(), rejected: q.rejected() };
    } finally {
      q.close();
    }
  }
  const want = (o: ObjectRef = ref) => expected.get(`${o.type}:${o.id}`) ?? [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'index-trust-'));
    storeDir = join(dir, 'store');
    store = new FileObjectStore(storeDir);
    trustFile = join(dir, 'trusted.json');
    await writeFile(trustFile, JSON.stringify([{ publicKey: signer.publicKeyPem }]));
    const writer = await ParquetWriter.create({ rowGroupRows: 64 });
    let n = 0;
    for (const [dt, partition] of [[A, 0], [A, 1], [B, 0], [B, 1]] as const) {
      const rows: StoredRow[] = [];
      const base = Date.parse(`${dt}T00:00:00Z`) * 1000;
      for (let i = 0; i < 200; i++) {
        n++;
        const eventId = `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
        const id = `inv-${i % 40}`;
        rows.push({ record: sampleRecord({ event_id: eventId, object_type: 'invoice', object_id: id, occurred_at: base + n * 1_000_000 }), partition, offset: String(n), size: 100 });
        expected.set(`invoice:${id}`, [...(expected.get(`invoice:${id}`) ?? []), eventId]);
      }
      const f = await storeDataFile(store, writer, { topic: TOPIC, partition, dt, rows, workDir: join(dir, 'work') });
      // As the consumer writes it with a key.
      await store.put(ixKey(f), encodeFileIndex(f.index, signer));
      files.push(f);
    }
    writer.close();
    await buildDayManifest(store, B, { policy, signer });
  }, 60_000);

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a clean signed store: lookups use the signed indexes and manifest, nothing is rejected', async () => {
    const r = await lookup();
    expect(r.ids).toEqual(want());
    expect(r.stats).toMatchObject({ trust: 'pinned', indexesRejected: 0, manifestsFetched: 1, filesFromManifests: 2, filesWhole: 0 });
    expect(r.rejected).toEqual([]);
  });

  const target = () => files[0]!;
  const indexCases: { name: string; code: string; forge: () => Promise<Buffer | string> }[] = [
    { name: 'forged unsigned', code: 'unsigned', forge: async () => JSON.stringify(looksEmpty(target().index)) },
    { name: 'previous-release unsigned (correct content)', code: 'unsigned', forge: async () => JSON.stringify(target().index) },
    {
      name: 'edited signed body',
      code: 'bad-signature',
      forge: async () => {
        const env = JSON.parse(encodeFileIndex(target().index, signer)) as { body: string };
        const body = JSON.parse(env.body) as { rowGroups: { typeMin: string; typeMax: string }[] };
        for (const rg of body.rowGroups) rg.typeMin = rg.typeMax = 'zzz';
        return JSON.stringify({ ...env, body: JSON.stringify(body) });
      },
    },
    { name: 'moved from another file', code: 'malformed', forge: async () => (await store.get(ixKey(files[1]!)))! },
    { name: 'signed by an untrusted key', code: 'untrusted-key', forge: async () => encodeFileIndex(looksEmpty(target().index), mallory) },
    { name: 'kept after its file changed size', code: 'malformed', forge: async () => encodeFileIndex({ ...looksEmpty(target().index), bytes: target().bytes + 10 }, signer) },
    { name: 'garbage', code: 'unsigned', forge: async () => Buffer.from([0xff, 0x00, 0x13]) },
  ];
  it.each(indexCases)('a per-file index $name is read around and reported ($code)', async ({ code, forge }) => {
    const original = (await store.get(ixKey(target())))!;
    await store.put(ixKey(target()), await forge());
    try {
      const r = await lookup();
      expect(r.ids).toEqual(want());
      expect(r.rejected).toEqual([expect.objectContaining({ key: ixKey(target()), code })]);
      expect(r.stats).toMatchObject({ indexesRejected: 1, filesWhole: 1 });
      const found = await checkIndexes(store, policy, [await readDay(store, A, policy)], 4);
      expect(found.findings).toEqual([expect.objectContaining({ code: 'index-invalid', key: ixKey(target()) })]);
    } finally {
      await store.put(ixKey(target()), original);
    }
  });

  const manifestCases: { name: string; code: string; forge: (good: Buffer) => Buffer }[] = [
    { name: 'forged unsigned (AQM1)', code: 'unsigned', forge: () => encodeDayManifest(B, files.filter((f) => f.dt === B).map((f) => looksEmpty(f.index))) },
    { name: 'signed by an untrusted key', code: 'untrusted-key', forge: () => encodeDayManifest(B, files.filter((f) => f.dt === B).map((f) => looksEmpty(f.index)), { signer: mallory }) },
    {
      name: 'with its filter bits zeroed',
      code: 'malformed',
      forge: (good) => {
        const len = good.readUInt32LE(4);
        const out = Buffer.from(good);
        out.fill(0, 8 + len);
        return out;
      },
    },
    {
      name: 'with its signed header edited',
      code: 'bad-signature',
      forge: (good) => {
        const len = good.readUInt32LE(4);
        const env = JSON.parse(good.toString('utf8', 8, 8 + len)) as { body: string };
        const edited = Buffer.from(JSON.stringify({ ...env, body: env.body.replace(/"typeMin":"invoice"/g, '"typeMin":"zzz"') }), 'utf8');
        const head = Buffer.alloc(8);
        good.copy(head, 0, 0, 4);
        head.writeUInt32LE(edited.length, 4);
        return Buffer.concat([head, edited, good.subarray(8 + len)]);
      },
    },
    { name: 'moved from another day', code: 'malformed', forge: () => encodeDayManifest(A, files.filter((f) => f.dt === A).map((f) => f.index), { signer }) },
  ];
  it.each(manifestCases)('a day manifest $name is read around and reported ($code)', async ({ code, forge }) => {
    const good = (await store.get(manifestKey(B)))!;
    await store.put(manifestKey(B), forge(good));
    try {
      const r = await lookup();
      expect(r.ids).toEqual(want());
      expect(r.rejected).toEqual([expect.objectContaining({ key: manifestKey(B), code })]);
      // Read around: the day's own (valid) per-file indexes instead.
      expect(r.stats).toMatchObject({ indexesRejected: 1, filesFromManifests: 0, filesWhole: 0 });
      const found = await checkIndexes(store, policy, [await readDay(store, B, policy)], 4);
      expect(found.findings).toEqual([expect.objectContaining({ code: 'manifest-invalid', key: manifestKey(B) })]);
    } finally {
      await store.put(manifestKey(B), good);
    }
  });

  it('every object returns the unindexed result with every index and manifest forged', async () => {
    const originals = new Map<string, Buffer>();
    for (const f of files) originals.set(ixKey(f), (await store.get(ixKey(f)))!);
    originals.set(manifestKey(B), (await store.get(manifestKey(B)))!);
    try {
      for (const f of files) await store.put(ixKey(f), JSON.stringify(looksEmpty(f.index)));
      await store.put(manifestKey(B), encodeDayManifest(B, files.filter((f) => f.dt === B).map((f) => looksEmpty(f.index))));
      for (const id of ['inv-0', 'inv-7', 'inv-39', 'absent']) {
        const o = { type: 'invoice', id };
        const r = await lookup(o);
        expect(r.ids).toEqual(want(o));
        expect(r.stats).toMatchObject({ indexesRejected: files.length + 1, filesWhole: files.length });
      }
    } finally {
      for (const [k, v] of originals) await store.put(k, v);
    }
  });

  it('the maintainer\'s repair rebuilds a failed index from its data file, the same index, signed, and the day manifest with it', async () => {
    const compactor = await Compactor.create({ rowGroupRows: 64, compression: 'zstd', zstdLevel: 3, memoryLimit: '128MB', threads: 1, spillDir: join(dir, 'spill') });
    const f = target();
    await store.put(ixKey(f), JSON.stringify(looksEmpty(f.index)));
    try {
      const days: DayState[] = [await readDay(store, A, policy)];
      expect((await checkIndexes(store, policy, days, 4)).findings).toHaveLength(1);
      const result = await buildDayManifest(store, A, {
        policy,
        signer,
        repair: async (file) => {
          const local = join(dir, 'repair.parquet');
          await store.download(file.key, local);
          const index = await compactor.indexOf(local, file.key);
          await store.put(indexKey(A, file.key.slice(file.key.lastIndexOf('/') + 1)), encodeFileIndex(index, signer));
          return index;
        },
      });
      expect(result).toMatchObject({ written: true, rebuilt: 1, skipped: 0 });
      expect(result.rejected.map((e) => e.key)).toEqual([ixKey(f)]);
      expect((await checkIndexes(store, policy, days, 4)).findings).toEqual([]);
      const r = await lookup();
      expect(r.ids).toEqual(want());
      expect(r.stats).toMatchObject({ indexesRejected: 0, filesWhole: 0, manifestsFetched: 2 });
      // The rebuilt index is the one the writer had made.
      const rebuilt = openFileIndex(policy, (await store.get(ixKey(f)))!, ixKey(f), { key: f.key, size: f.bytes }).index;
      expect(rebuilt).toEqual(f.index);
      // The next pass records the rebuilt index's listing; from then on a pass opens no index of the day.
      expect(await buildDayManifest(store, A, { policy, signer })).toMatchObject({ rejected: [], rebuilt: 0 });
      const get = jest.spyOn(store, 'get');
      expect(await buildDayManifest(store, A, { policy, signer })).toMatchObject({ written: false, rejected: [], rebuilt: 0 });
      expect(get.mock.calls.map(([k]) => k).filter((k) => k.endsWith('.json') && k.startsWith('_index/'))).toEqual([]);
      get.mockRestore();
    } finally {
      compactor.close();
      await store.delete(manifestKey(A));
      await store.put(ixKey(f), encodeFileIndex(f.index, signer));
    }
  });

  it('index build refuses to write an unsigned manifest over a signed store\'s', async () => {
    const env = { AUDIT_STORE_URL: `file://${storeDir}`, AUDIT_S3_REGION: 'us-east-1', AUDIT_CACHE_DIR: join(dir, 'cache-build'), AUDIT_TRUSTED_KEYS_FILE: trustFile };
    const keyless = new AuditQuery(env);
    // The run resolves one policy, its own signing key included, and builds under it.
    const q = new AuditQuery(env, undefined, { signer });
    try {
      await expect(keyless.buildIndexManifests({ since: null, until: null })).rejects.toThrow(/the store is signed/);
      const built = await q.buildIndexManifests({ since: null, until: null });
      expect(built).toMatchObject({ days: 2, rejected: 0 });
      expect(await q.trust()).toBe(await q.trust());
    } finally {
      keyless.close();
      q.close();
      await store.delete(manifestKey(A));
    }
    // An unsigned policy (a store without keys) still builds as before.
    const unsigned: TrustPolicy = { mode: 'unsigned', keys: new TrustedKeys(), notice: null };
    expect(await buildDayManifests(store, { since: A, until: A }, { policy: unsigned, signer: null })).toMatchObject({ written: 1 });
    await store.delete(manifestKey(A));
  });
});
