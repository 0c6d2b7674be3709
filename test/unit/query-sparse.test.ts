/**
 * The sparse cache returns exactly what reading the whole files returns, and
 * DuckDB never reads a byte range that was not fetched: after a lookup, every
 * hole of the cached files is overwritten with garbage and the lookup is run
 * again (from the cache, without any request) with identical results.
 */
import { mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ParquetWriter, type StoredRow } from '../../consumer/parquet-writer';
import { storeDataFile, type StoredFile } from '../../bench/lib/store-writer';
import { FileObjectStore, INDEX_PREFIX, compareUtf8, rowGroupMayContain, rowGroupMayHold } from '../../storage';
import { AuditQuery } from '../../query/query';
import { ObjectCache } from '../../query/cache';
import { openDuckDb, readHistory, type HistoryEvent } from '../../query/history';
import type { ObjectRef, TimeRange } from '../../query/locate';
import { sampleRecord } from '../helpers/records';

const DAY = Date.UTC(2026, 5, 10);
const TOPIC = 'audit.events';
const ALL: TimeRange = { since: null, until: null };

// Ids whose UTF-16 order differs from their UTF-8 (byte) order, so row-group
// boundaries fall between them: U+FF01.. (fullwidth) sorts after U+1F600.. in
// UTF-16 code units but before it in bytes.
const FULLWIDTH = Array.from({ length: 1200 }, (_, i) => `\uFF21${String(i).padStart(4, '0')}`);
const ASTRAL = Array.from({ length: 1200 }, (_, i) => `\u{1F600}${String(i).padStart(4, '0')}`);
const HOSTILE = ["a'b", 'a"b', 'a\\b', "1' OR '1'='1", '%', '_', 'a_c', 'abc', 'a:b:c', 'x/y', 'é', 'e\u0301', '\u202Eevil', 'שלום', '🙂‍↔️', 'l'.repeat(3000)];

interface Expected {
  ref: ObjectRef;
  ids: string[];
}

function rowsFor(): { rows: StoredRow[]; byObject: Map<string, string[]> } {
  const objects: ObjectRef[] = [];
  for (let i = 0; i < 40; i++) objects.push({ type: 'account', id: `acc-${String(i).padStart(3, '0')}` });
  for (let i = 0; i < 5000; i++) objects.push({ type: 'invoice', id: `inv-${String(i).padStart(5, '0')}` });
  for (const id of [...FULLWIDTH, ...ASTRAL]) objects.push({ type: 'uni', id });
  for (const id of HOSTILE) objects.push({ type: 'doc', id });
  for (let i = 0; i < 30; i++) objects.push({ type: 'zeta', id: String(i) });
  const rows: StoredRow[] = [];
  const byObject = new Map<string, string[]>();
  let n = 0;
  objects.forEach((o, i) => {
    // 1..5 events per object, so row-group boundaries land everywhere.
    const count = 1 + ((i * 7) % 5);
    for (let k = 0; k < count; k++) {
      n++;
      const eventId = `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
      const record = sampleRecord({
        event_id: eventId,
        object_type: o.type,
        object_id: o.id,
        action: k === 0 ? 'create' : 'update',
        // Unique, increasing per object, spread over the day.
        // (zeta events, stored without an index, happened the day before.)
        occurred_at: DAY * 1000 + ((n * 7919) % 80_000_000) * 1000 + k - (o.type === 'zeta' ? 86_400_000_000 : 0),
        actor_id: `user-${n % 11}`,
        changes: k === 0 ? {} : { n: { old: String(k - 1), new: String(k) } },
        after: JSON.stringify({ n: k, id: o.id }),
      });
      rows.push({ record, partition: 0, offset: String(n), size: 200 });
      const key = `${o.type}\u0000${o.id}`;
      byObject.set(key, [...(byObject.get(key) ?? []), eventId]);
    }
  });
  // Event ids in the order the query returns them (time, then offset).
  const at = new Map(rows.map((r) => [r.record.event_id, r.record.occurred_at]));
  for (const ids of byObject.values()) ids.sort((a, b) => at.get(a)! - at.get(b)! || (a < b ? -1 : 1));
  return { rows, byObject };
}

describe('sparse byte-range cache (local store, real DuckDB)', () => {
  let dir: string;
  let storeDir: string;
  let fullDir: string;
  let files: StoredFile[];
  let byObject: Map<string, string[]>;
  const probes: Expected[] = [];

  const env = (cache: string) => ({ AUDIT_STORE_URL: `file://${storeDir}`, AUDIT_S3_REGION: 'us-east-1', AUDIT_CACHE_DIR: cache });
  const expectedIds = (ref: ObjectRef) => byObject.get(`${ref.type}\u0000${ref.id}`) ?? [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'query-sparse-'));
    storeDir = join(dir, 'store');
    fullDir = join(dir, 'full');
    const store = new FileObjectStore(storeDir);
    const writer = await ParquetWriter.create({ rowGroupRows: 2048 });
    const built = rowsFor();
    byObject = built.byObject;
    // Two "partitions" (alternating objects would split histories; split by type instead) and a third file without index.
    const part = (r: StoredRow) => (r.record.object_type === 'invoice' ? 0 : r.record.object_type === 'zeta' ? 2 : 1);
    files = [];
    for (const p of [0, 1, 2]) {
      const rows = built.rows.filter((r) => part(r) === p).map((r) => ({ ...r, partition: p }));
      const dt = p === 2 ? '2026-06-09' : '2026-06-10';
      files.push(await storeDataFile(store, writer, { topic: TOPIC, partition: p, dt, rows, workDir: join(dir, 'work'), withIndex: p !== 2 }));
    }
    writer.close();
    // Whole copies, for reading "the full file" directly.
    for (const f of files) {
      const body = await store.get(f.key);
      await rm(join(fullDir, f.key), { force: true });
      await new FileObjectStore(fullDir).put(f.key, body!);
    }

    // Probe objects: first/last of each file and of each row group, both sides of every boundary, absent ones.
    const add = (type: string, id: string) => {
      if (!probes.some((p) => p.ref.type === type && p.ref.id === id)) probes.push({ ref: { type, id }, ids: expectedIds({ type, id }) });
    };
    for (const f of files.slice(0, 2)) {
      for (const rg of f.index.rowGroups) {
        if (rg.typeMin && rg.idMin) add(rg.typeMin, rg.idMin);
        if (rg.typeMax && rg.idMax) add(rg.typeMax, rg.idMax);
      }
    }
    add('account', 'acc-000');
    add('zeta', '29');
    for (const id of HOSTILE) add('doc', id);
    add('uni', FULLWIDTH[0]!);
    add('uni', FULLWIDTH[FULLWIDTH.length - 1]!);
    add('uni', ASTRAL[0]!);
    add('uni', ASTRAL[ASTRAL.length - 1]!);
    // Absent: before everything, after everything, between neighbours, a type of its own, near misses.
    add('aaa', '1');
    add('zzzz', '1');
    add('invoice', 'inv-00000x');
    add('invoice', 'inv-');
    add('uni', '\uFF21');
    add('doc', "a''b");
    add('doc', '1');
    add('doc', 'ab');
    add('doc', 'l'.repeat(2999));
  }, 120_000);

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function lookup(cache: string, ref: ObjectRef, range: TimeRange = ALL, resultCache = true) {
    const q = new AuditQuery(env(cache), undefined, { resultCache });
    try {
      const events = await q.history({ object: ref, range, actor: null, action: null });
      return { events, stats: q.summary() };
    } finally {
      q.close();
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
        const fh = await open(path, 'r+');
        let pos = 0;
        const holes: [number, number][] = [];
        for (const [s, e] of await ObjectCache.presentRanges(path)) {
          if (s > pos) holes.push([pos, s]);
          pos = Math.max(pos, e);
        }
        if (pos < size) holes.push([pos, size]);
        for (const [s, e] of holes) {
          await fh.write(Buffer.alloc(e - s, 0xab), 0, e - s, s);
          filled += e - s;
        }
        await fh.close();
      }
    }
    return filled;
  }

  it('writes files with many row groups, mixed-type groups and UTF-8/UTF-16 order conflicts', () => {
    expect(files[0]!.index.rowGroups.length).toBeGreaterThanOrEqual(3);
    expect(files[1]!.index.rowGroups.length).toBeGreaterThanOrEqual(3);
    expect(files[1]!.index.rowGroups.some((rg) => rg.typeMin !== rg.typeMax)).toBe(true);
    // The old JavaScript comparison would skip a row group that holds an astral id.
    const straddling = files[1]!.index.rowGroups.filter((rg) => rg.typeMin === 'uni' && rg.typeMax === 'uni' && rg.idMin!.startsWith('\uFF21') && rg.idMax!.startsWith('\u{1F600}'));
    expect(straddling.length).toBeGreaterThan(0);
    const rg = straddling[0]!;
    expect(compareUtf8(rg.idMin!, rg.idMax!)).toBeLessThan(0);
    expect(rowGroupMayHold(rg, 'uni', rg.idMax!)).toBe(true);
    expect(rowGroupMayContain(rg, 'uni', rg.idMax!)).toBe(false); // the bug rowGroupMayHold fixes
  });

  it('returns the same events as reading the whole files, and DuckDB reads no range that was not fetched', async () => {
    const { instance, conn } = await openDuckDb();
    try {
      const fullPaths = files.map((f) => join(fullDir, f.key));
      for (const probe of probes) {
        const cache = join(dir, 'cache-probe', String(probes.indexOf(probe)));
        const want: HistoryEvent[] = await readHistory(conn, fullPaths, { object: probe.ref, range: ALL, actor: null, action: null });
        expect(want.map((e) => e.event_id)).toEqual(probe.ids);

        const cold = await lookup(cache, probe.ref);
        expect({ probe: probe.ref, events: cold.events }).toEqual({ probe: probe.ref, events: want });
        expect(cold.stats.fallbacks).toBe(0);

        // Every byte never fetched becomes garbage; the warm read must not notice.
        const garbage = await fillHolesWithGarbage(cache);
        if (probe.ids.length > 0 && probe.ref.type !== 'zeta') expect(garbage).toBeGreaterThan(0);
        // (Without the result cache, so that DuckDB reads the files again.)
        const warm = await lookup(cache, probe.ref, ALL, false);
        expect({ probe: probe.ref, events: warm.events }).toEqual({ probe: probe.ref, events: want });
        expect(warm.stats).toMatchObject({ fallbacks: 0, requests: 0, bytesFetched: 0, filesFromResultCache: 0 });
        // And from the result cache: the same events without reading anything.
        const cached = await lookup(cache, probe.ref);
        expect(cached.events).toEqual(want);
        expect(cached.stats).toMatchObject({ requests: 0, filesFromResultCache: cached.stats.filesRead });
      }
    } finally {
      conn.closeSync();
      instance.closeSync();
    }
  }, 300_000);

  it('fetches only the tail and the row groups that may hold the object', async () => {
    const cache = join(dir, 'cache-bytes');
    // (From the 10th on: the unindexed file of the 9th, always read whole, is out of range.)
    const { stats } = await lookup(cache, { type: 'invoice', id: 'inv-00700' }, { since: DAY * 1000, until: null });
    expect(stats.filesListed).toBe(2);
    expect(stats.filesSparse).toBe(1); // only the invoice file passes the Bloom filter
    expect(stats.filesWhole).toBe(0);
    const file = files[0]!;
    const biggestGroup = Math.max(...file.index.rowGroups.map((g) => g.length));
    const tail = file.bytes - Math.max(...file.index.rowGroups.map((g) => g.offset + g.length));
    expect(stats.dataBytesFetched).toBeLessThanOrEqual(tail + 2 * biggestGroup + 8192);
    expect(stats.dataBytesFetched).toBeLessThan(file.bytes / 2);
    expect(stats.rangesFetched).toBeLessThanOrEqual(3);
  });

  it('reads files without an index whole, and the sql command completes sparse files', async () => {
    const cache = join(dir, 'cache-whole');
    const zeta = await lookup(cache, { type: 'zeta', id: '7' });
    expect(zeta.events.map((e) => e.event_id)).toEqual(expectedIds({ type: 'zeta', id: '7' }));
    expect(zeta.stats.filesWhole).toBe(1); // the unindexed file
    await lookup(cache, { type: 'invoice', id: 'inv-01000' }); // leaves the invoice file sparse

    const q = new AuditQuery(env(cache));
    try {
      const rows = await q.sql('SELECT count(*)::INTEGER AS n, count(DISTINCT event_id)::INTEGER AS d FROM audit', ALL);
      const total = files.reduce((s, f) => s + f.rows, 0);
      expect(rows).toEqual([{ n: total, d: total }]);
      // The sparse file was completed with its missing ranges only.
      expect(q.summary().dataBytesFetched).toBeLessThan(files.reduce((s, f) => s + f.bytes, 0));
    } finally {
      q.close();
    }
  });

  it('corrects a plan from a wrong index with the real footer', async () => {
    // An index whose row-group offsets are wrong (but whose size matches): the footer check must win.
    const store = new FileObjectStore(storeDir);
    const f = files[1]!;
    const indexKey = `${INDEX_PREFIX}${f.key.replace(/\.parquet$/, '.json')}`;
    const original = (await store.get(indexKey))!;
    const bad = JSON.parse(original.toString('utf8')) as typeof f.index;
    bad.rowGroups = bad.rowGroups.map((g) => ({ ...g, offset: g.offset + 100_000_000 }));
    await store.put(indexKey, JSON.stringify(bad));
    try {
      for (const id of [HOSTILE[0]!, ASTRAL[600]!, 'l'.repeat(3000)]) {
        const ref = { type: id.startsWith('\u{1F600}') ? 'uni' : 'doc', id };
        const { events, stats } = await lookup(join(dir, 'cache-badindex', String(id.length)), ref);
        expect(events.map((e) => e.event_id)).toEqual(expectedIds(ref));
        expect(stats.fallbacks).toBe(0);
      }
    } finally {
      await store.put(indexKey, original);
    }
  });

  it('shares one cache between concurrent queries', async () => {
    const cache = join(dir, 'cache-shared');
    const refs: ObjectRef[] = [
      { type: 'invoice', id: 'inv-00010' },
      { type: 'invoice', id: 'inv-01490' },
      { type: 'uni', id: ASTRAL[3]! },
      { type: 'doc', id: '%' },
      { type: 'account', id: 'acc-039' },
    ];
    const results = await Promise.all([...refs, ...refs].map((ref) => lookup(cache, ref)));
    results.forEach((r, i) => expect(r.events.map((e) => e.event_id)).toEqual(expectedIds(refs[i % refs.length]!)));
    const again = await Promise.all(refs.map((ref) => lookup(cache, ref)));
    for (const r of again) expect(r.stats.requests).toBe(0);
  });

  it('finds data files added after the cache was warmed (late events), with or without an index', async () => {
    const cache = join(dir, 'cache-late');
    const ref = { type: 'invoice', id: 'inv-00123' };
    const before = await lookup(cache, ref);
    expect(before.events.map((e) => e.event_id)).toEqual(expectedIds(ref));
    const warm = await lookup(cache, ref);
    expect(warm.stats).toMatchObject({ requests: 0, listCalls: 1 }); // the data listing only

    // A late event for the same object lands in an older day, in a new file (indexed), and another in a file
    // whose index is not uploaded yet.
    const store = new FileObjectStore(storeDir);
    const writer = await ParquetWriter.create({ rowGroupRows: 2048 });
    const late = (n: number, at: number) =>
      sampleRecord({ event_id: `ffffffff-0000-4000-8000-${String(n).padStart(12, '0')}`, object_type: ref.type, object_id: ref.id, occurred_at: at });
    const added: StoredFile[] = [];
    try {
      added.push(await storeDataFile(store, writer, { topic: TOPIC, partition: 0, dt: '2026-06-08', rows: [{ record: late(1, (DAY - 2 * 86_400_000) * 1000), partition: 0, offset: '900001', size: 1 }], workDir: join(dir, 'work') }));
      added.push(await storeDataFile(store, writer, { topic: TOPIC, partition: 0, dt: '2026-06-07', rows: [{ record: late(2, (DAY - 3 * 86_400_000) * 1000), partition: 0, offset: '900002', size: 1 }], workDir: join(dir, 'work'), withIndex: false }));
    } finally {
      writer.close();
    }
    try {
      const after = await lookup(cache, ref);
      expect(after.events.map((e) => e.event_id)).toEqual([late(2, 0).event_id, late(1, 0).event_id, ...expectedIds(ref)]);
      expect(after.stats.listCalls).toBe(2); // new files: the index listing too
      const again = await lookup(cache, ref);
      expect(again.stats).toMatchObject({ requests: 0, listCalls: 1 });
    } finally {
      for (const f of added) {
        await store.delete(f.key);
        await store.delete(`${INDEX_PREFIX}${f.key.replace(/\.parquet$/, '.json')}`);
      }
    }
  });

  it('filters by time range, actor and action on sparse files', async () => {
    const ref = { type: 'invoice', id: 'inv-00004' };
    const all = await lookup(join(dir, 'cache-filters'), ref);
    expect(all.events.length).toBeGreaterThan(2);
    const t1 = Date.parse(all.events[1]!.occurred_at) * 1000;
    const since = await lookup(join(dir, 'cache-filters'), ref, { since: t1, until: null });
    expect(since.events.map((e) => e.event_id)).toEqual(all.events.filter((e) => Date.parse(e.occurred_at) * 1000 >= t1).map((e) => e.event_id));
    const q = new AuditQuery(env(join(dir, 'cache-filters')));
    try {
      const actor = all.events[0]!.actor_id;
      const byActor = await q.history({ object: ref, range: ALL, actor, action: null });
      expect(byActor.map((e) => e.event_id)).toEqual(all.events.filter((e) => e.actor_id === actor).map((e) => e.event_id));
      const creates = await q.history({ object: ref, range: ALL, actor: null, action: 'create' });
      expect(creates.map((e) => e.action)).toEqual(['create']);
    } finally {
      q.close();
    }
  });
});
