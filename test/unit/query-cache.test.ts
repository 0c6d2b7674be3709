import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileObjectStore, StorageError, buildFileIndex, objectKeyBloom, compareUtf8, indexDataEnd, rowGroupMayHold, type ObjectInfo, type ObjectStore } from '../../storage';
import { ObjectCache } from '../../query/cache';
import { Limiter } from '../../storage/concurrency';
import { DeadlineStore } from '../../query/deadline-store';
import { footerStartOf, layoutFromIndex, rangesForObject, rowRuns, selectRowGroups, sortedByObject } from '../../query/plan';
import type { FooterLayout } from '../../query/cache';
import { createProgress } from '../../query/progress';
import { finishHistory, type HistoryEvent, type ObjectRow } from '../../query/history';
import { coversRange, mergeRanges, subtractRanges, totalBytes } from '../../query/ranges';

describe('byte ranges', () => {
  it('merges overlapping, touching and nearby ranges, dropping empty ones', () => {
    expect(mergeRanges([[10, 20], [0, 5], [5, 8], [30, 30], [19, 25]])).toEqual([[0, 8], [10, 25]]);
    expect(mergeRanges([[0, 5], [9, 12]], 4)).toEqual([[0, 12]]);
    expect(mergeRanges([[0, 5], [10, 12]], 4)).toEqual([[0, 5], [10, 12]]);
    expect(mergeRanges([])).toEqual([]);
  });

  it('subtracts what is present', () => {
    expect(subtractRanges([[0, 100]], [[10, 20], [50, 60]])).toEqual([[0, 10], [20, 50], [60, 100]]);
    expect(subtractRanges([[0, 10], [20, 30]], [[0, 30]])).toEqual([]);
    expect(subtractRanges([[5, 15]], [[0, 6], [14, 20]])).toEqual([[6, 14]]);
    expect(subtractRanges([[5, 15]], [])).toEqual([[5, 15]]);
    expect(totalBytes([[0, 10], [20, 25]])).toBe(15);
    expect(coversRange([[0, 10], [10, 20]], 0, 20)).toBe(true);
    expect(coversRange([[0, 10], [11, 20]], 0, 20)).toBe(false);
  });
});

describe('Limiter', () => {
  it('never runs more than its limit at once, and runs everything', async () => {
    const limiter = new Limiter(3);
    let active = 0;
    let peak = 0;
    const done: number[] = [];
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        limiter.run(async () => {
          active++;
          peak = Math.max(peak, active);
          await new Promise((r) => setTimeout(r, (i * 7) % 5));
          active--;
          done.push(i);
        }),
      ),
    );
    expect(peak).toBe(3);
    expect(done.sort((a, b) => a - b)).toEqual([...Array(40).keys()]);
  });

  it('frees the slot of a failed task', async () => {
    const limiter = new Limiter(1);
    await expect(limiter.run(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(limiter.run(() => Promise.resolve(7))).resolves.toBe(7);
  });
});

describe('progress', () => {
  it('draws on a terminal only, for queries over many files', () => {
    const out: string[] = [];
    expect(createProgress({ isTTY: false, write: (s) => out.push(s) })).toBeUndefined();
    const p = createProgress({ isTTY: true, write: (s) => out.push(s) })!;
    p.update(1, 3);
    expect(out).toEqual([]);
    p.update(1, 10);
    p.update(10, 10);
    expect(out.join('')).toBe('\r\x1b[Kreading 1/10 files\r\x1b[Kreading 10/10 files\n');
    out.length = 0;
    p.update(4, 9);
    p.clear();
    expect(out.join('')).toBe('\r\x1b[Kreading 4/9 files\r\x1b[K');
  });
});

describe('pruning in UTF-8 byte order', () => {
  it('orders like Parquet statistics, not like JavaScript strings', () => {
    expect('\u{1F600}' < '\uFF21').toBe(true); // UTF-16 code units
    expect(compareUtf8('\u{1F600}', '\uFF21')).toBeGreaterThan(0); // bytes: F0.. > EF..
    expect(compareUtf8('a', 'a')).toBe(0);
    expect(compareUtf8('a', 'ab')).toBeLessThan(0);
  });

  it('checks type and id bounds independently, unknown bounds mean maybe', () => {
    const rg = { typeMin: 'account', typeMax: 'invoice', idMin: '10', idMax: '20' };
    expect(rowGroupMayHold(rg, 'customer', '15')).toBe(true);
    expect(rowGroupMayHold(rg, 'customer', '30')).toBe(false); // id out of range even in a mixed-type group
    expect(rowGroupMayHold(rg, 'zeta', '15')).toBe(false);
    expect(rowGroupMayHold({ typeMin: null, typeMax: null, idMin: null, idMax: null }, 'x', 'y')).toBe(true);
  });
});

describe('plans', () => {
  const written = {
    rows: 3,
    bytes: 1000,
    minOccurredAt: 1,
    maxOccurredAt: 2,
    rowGroups: [
      { offset: 4, length: 296, rows: 1, typeMin: 'a', typeMax: 'a', idMin: '1', idMax: '5' },
      { offset: 300, length: 300, rows: 1, typeMin: 'a', typeMax: 'b', idMin: '5', idMax: '9' },
      { offset: 600, length: 200, rows: 1, typeMin: 'b', typeMax: 'b', idMin: '1', idMax: '3' },
    ],
  };
  const index = buildFileIndex('dt=2026-01-01/t-0-0-2.parquet', written, objectKeyBloom(['a:1', 'a:5', 'b:2', 'b:2']));

  it('builds the index the sink writes', () => {
    expect(index).toMatchObject({ version: 1, key: 'dt=2026-01-01/t-0-0-2.parquet', rows: 3, bytes: 1000, rowGroups: written.rowGroups });
    expect(typeof index.bloom).toBe('string');
    expect(indexDataEnd(index)).toBe(800);
  });

  it('asks for the tail and the row groups that may hold the object', () => {
    const layout = layoutFromIndex(index, 1000)!;
    expect(rangesForObject(layout, 1000, { type: 'a', id: '2' })).toEqual([[4, 300], [800, 1000]]);
    expect(rangesForObject(layout, 1000, { type: 'a', id: '5' })).toEqual([[4, 600], [800, 1000]]);
    expect(rangesForObject(layout, 1000, { type: 'b', id: '2' })).toEqual([[600, 1000]]);
    expect(rangesForObject(layout, 1000, { type: 'c', id: '1' })).toEqual([[800, 1000]]);
  });

  it('excludes the row group where one type ends and the next begins, using its sorted neighbours', () => {
    const g = (rows: number, typeMin: string, typeMax: string, idMin: string, idMax: string) => ({ start: 0, end: 1, rows, typeMin, typeMax, idMin, idMax });
    const layout: FooterLayout = {
      v: 2,
      tailStart: 10,
      rowGroups: [
        g(100, 'document', 'document', '0a', '7f'),
        g(100, 'document', 'invoice', 'INV-100', 'ff'), // document 80..ff, then invoices up to INV-104
        g(100, 'invoice', 'invoice', 'INV-104', 'INV-300'),
        g(100, 'invoice', 'order', '7000', 'INV-999'), // invoices INV-300..INV-999, then orders 7000..
        g(100, 'order', 'order', '7100', '7900'),
      ],
    };
    expect(sortedByObject(layout.rowGroups)).toBe(true);
    // Without the neighbours, the mixed groups' id ranges would admit every invoice.
    expect(selectRowGroups(layout, { type: 'invoice', id: 'INV-200' })).toEqual([2]);
    expect(selectRowGroups(layout, { type: 'invoice', id: 'INV-104' })).toEqual([1, 2]); // may span the boundary
    expect(selectRowGroups(layout, { type: 'invoice', id: 'INV-102' })).toEqual([1]);
    expect(selectRowGroups(layout, { type: 'invoice', id: 'INV-300' })).toEqual([2, 3]);
    expect(selectRowGroups(layout, { type: 'invoice', id: 'INV-500' })).toEqual([3]);
    expect(selectRowGroups(layout, { type: 'document', id: 'a0' })).toEqual([1]);
    expect(selectRowGroups(layout, { type: 'order', id: '7050' })).toEqual([3]);
    expect(selectRowGroups(layout, { type: 'order', id: '7500' })).toEqual([4]);
    expect(rowRuns(layout, [1, 2, 4])).toEqual([[100, 299], [400, 499]]);
    expect(rowRuns(layout, [])).toEqual([]);

    // A file whose statistics are not in order is pruned by each group's own statistics only.
    const unsorted = { ...layout, rowGroups: [layout.rowGroups[2]!, layout.rowGroups[1]!, layout.rowGroups[0]!] };
    expect(sortedByObject(unsorted.rowGroups)).toBe(false);
    expect(selectRowGroups(unsorted, { type: 'invoice', id: 'INV-200' })).toEqual([0, 1]);
  });

  it('distrusts an index that cannot describe the file', () => {
    expect(layoutFromIndex(index, 500)).toBeNull();
    expect(layoutFromIndex({ ...index, rowGroups: [] }, 1000)).toBeNull();
    expect(layoutFromIndex({ ...index, rowGroups: [{ ...written.rowGroups[0]!, offset: 0 }] }, 1000)).toBeNull();
  });

  it('finds the footer from the last 8 bytes', () => {
    const last8 = Buffer.concat([Buffer.from([100, 0, 0, 0]), Buffer.from('PAR1')]);
    expect(footerStartOf(last8, 1000)).toBe(892);
    expect(footerStartOf(Buffer.from('12345678'), 1000)).toBeNull();
    expect(footerStartOf(Buffer.concat([Buffer.from([255, 255, 0, 0]), Buffer.from('PAR1')]), 1000)).toBeNull();
  });
});

/** A store that counts requests, over a local directory. */
class CountingStore extends FileObjectStore {
  gets = 0;
  ranges: [string, number, number][] = [];
  override async get(key: string): Promise<Buffer | null> {
    this.gets++;
    return super.get(key);
  }
  override async getRange(key: string, start: number, end: number): Promise<Buffer> {
    this.ranges.push([key, start, end]);
    return super.getRange(key, start, end);
  }
}

describe('ObjectCache', () => {
  let dir: string;
  let store: CountingStore;
  const body = Buffer.from(Array.from({ length: 100_000 }, (_, i) => i % 251));

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'query-cache-'));
    store = new CountingStore(join(dir, 'store'));
    await store.put('dt=2026-01-01/f.parquet', body);
    await store.put('_index/x.json', '{"a":1}');
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes ranges at their offsets into a sparse file of the full size, and remembers them', async () => {
    const cache = new ObjectCache(join(dir, 'cache'), store);
    const e = await cache.dataFile('dt=2026-01-01/f.parquet', body.length);
    expect(e.present).toEqual([]);
    expect(await cache.ensure(e, [[10, 20], [20_000, 20_100], [20_100, 21_000], [60_000, 60_010]])).toBe(10 + 1000 + 10);
    expect(store.ranges.map(([, s, t]) => [s, t])).toEqual([[10, 20], [20_000, 21_000], [60_000, 60_010]]);
    const local = await readFile(e.path);
    expect(local.length).toBe(body.length);
    expect(local.subarray(20_000, 21_000)).toEqual(body.subarray(20_000, 21_000));
    expect(local.subarray(0, 10)).toEqual(Buffer.alloc(10)); // a hole
    // Sparse on disk: far fewer blocks than the apparent size.
    expect((await stat(e.path)).blocks * 512).toBeLessThan(body.length);

    // A new cache object (another process) sees the same ranges and fetches only what is missing.
    const again = new ObjectCache(join(dir, 'cache'), store);
    const e2 = await again.dataFile('dt=2026-01-01/f.parquet', body.length);
    expect(e2.present).toEqual([[10, 20], [20_000, 21_000], [60_000, 60_010]]);
    store.ranges = [];
    expect(await again.ensure(e2, [[15, 20], [20_500, 22_000]])).toBe(1000);
    expect(store.ranges.map(([, s, t]) => [s, t])).toEqual([[21_000, 22_000]]);
    expect(again.counters).toMatchObject({ requests: 1, rangesFetched: 1, dataBytesFetched: 1000 });
    // Holes closer than 8 KiB are fetched as one request, re-reading the small present ranges between them.
    expect(await again.ensure(e2, [[0, body.length]])).toBe(body.length);
    expect(ObjectCache.isComplete(e2)).toBe(true);
    expect(await readFile(e2.path)).toEqual(body);
  });

  it('merges ranges separated by small gaps into one request', async () => {
    const cache = new ObjectCache(join(dir, 'cache'), store);
    const e = await cache.dataFile('dt=2026-01-01/f.parquet', body.length);
    await cache.ensure(e, [[0, 100], [1000, 1100], [60_000, 60_100]]);
    expect(store.ranges.map(([, s, t]) => [s, t])).toEqual([[0, 1100], [60_000, 60_100]]);
  });

  it('keys entries by size: another version of an object never mixes with old bytes', async () => {
    const cache = new ObjectCache(join(dir, 'cache'), store);
    const e = await cache.dataFile('dt=2026-01-01/f.parquet', body.length);
    await cache.ensure(e, [[0, 100]]);
    const other = await cache.dataFile('dt=2026-01-01/f.parquet', body.length - 1);
    expect(other.path).not.toBe(e.path);
    expect(other.present).toEqual([]);
  });

  it('ignores a ranges log whose data file is gone, a torn last line and a foreign log', async () => {
    const cache = new ObjectCache(join(dir, 'cache'), store);
    const e = await cache.dataFile('dt=2026-01-01/f.parquet', body.length);
    await cache.ensure(e, [[0, 100]]);
    await rm(e.path);
    expect((await cache.dataFile('dt=2026-01-01/f.parquet', body.length)).present).toEqual([]);
    await cache.ensure(await cache.dataFile('dt=2026-01-01/f.parquet', body.length), [[0, 100]]);
    // A line cut short by a crash is skipped; a log of another object is ignored.
    await writeFile(`${e.path}.ranges`, '{"v":1,"store":"x","key":"y","size":1}\n[0,100]\n');
    expect((await cache.dataFile('dt=2026-01-01/f.parquet', body.length)).present).toEqual([]);
    await writeFile(`${e.path}.ranges`, '[0,100]\n[200,3');
    expect((await cache.dataFile('dt=2026-01-01/f.parquet', body.length)).present).toEqual([[0, 100]]);
    await cache.ensure(await cache.dataFile('dt=2026-01-01/f.parquet', body.length), [[200, 300]]);
    expect((await cache.dataFile('dt=2026-01-01/f.parquet', body.length)).present).toEqual([[0, 100], [200, 300]]);
  });

  it('fails loudly when the store returns fewer bytes than asked (object changed)', async () => {
    const cache = new ObjectCache(join(dir, 'cache'), store);
    const e = await cache.dataFile('dt=2026-01-01/f.parquet', body.length + 50);
    await expect(cache.ensure(e, [[body.length - 10, body.length + 50]])).rejects.toThrow(StorageError);
  });

  it('caches whole small objects, and refetches on request', async () => {
    const cache = new ObjectCache(join(dir, 'cache'), store);
    const p = await cache.file('_index/x.json');
    expect(await readFile(p, 'utf8')).toBe('{"a":1}');
    await cache.file('_index/x.json');
    expect(store.gets).toBe(1);
    await cache.file('_index/x.json', { refresh: true });
    expect(store.gets).toBe(2);
    expect(cache.counters).toMatchObject({ hits: 1, objectsFetched: 2, indexBytesFetched: 14 });
  });
});

describe('DeadlineStore', () => {
  const silent: ObjectStore = {
    description: 's3://silent/',
    putFile: () => Promise.resolve(),
    put: () => Promise.resolve(),
    putIfAbsent: () => Promise.resolve(true),
    get: () => new Promise(() => undefined),
    getRange: () => new Promise(() => undefined),
    download: () => Promise.resolve(),
    list: (): AsyncIterable<ObjectInfo> => ({ [Symbol.asyncIterator]: () => ({ next: () => new Promise(() => undefined) }) }),
    listPrefixes: () => new Promise(() => undefined),
    delete: () => Promise.resolve(),
    check: () => new Promise(() => undefined),
    close: () => undefined,
  };

  it('turns a silent store into a StorageError within the deadline', async () => {
    const store = new DeadlineStore(silent, { checkMs: 50, requestMs: 80, perMiBMs: 10 });
    const t0 = Date.now();
    await expect(store.check()).rejects.toThrow(/open s3:\/\/silent\/ failed: no answer within 0 s/);
    await expect(store.get('k')).rejects.toThrow(StorageError);
    await expect(store.getRange('k', 0, 10)).rejects.toThrow(StorageError);
    const it = store.list('dt=')[Symbol.asyncIterator]();
    await expect(it.next()).rejects.toThrow(/list/);
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

describe('finishHistory (the SQL filter, de-duplication and order, over cached rows)', () => {
  const ev = (id: string, actor: string, action: string) =>
    ({ event_id: id, occurred_at: '', object_type: 't', object_id: 'i', action, actor_id: actor }) as unknown as HistoryEvent;
  const row = (id: string, us: number, partition: number, offset: number, actor = 'a', action = 'update'): ObjectRow => ({
    event: { ...ev(id, actor, action), kafka: `${partition}/${offset}` } as HistoryEvent,
    partition,
    offset: String(offset),
    occurredUs: String(us),
  });

  it('keeps the first stored copy of an event (by Kafka position) and orders by time, then position', () => {
    const rows = [row('e2', 200, 1, 50), row('e1', 100, 0, 9), row('e1', 100, 0, 7), row('e3', 200, 0, 99), row('e1', 100, 2, 1)];
    const out = finishHistory(rows, { range: { since: null, until: null }, actor: null, action: null });
    expect(out.map((e) => `${e.event_id}@${(e as unknown as { kafka: string }).kafka}`)).toEqual(['e1@0/7', 'e3@0/99', 'e2@1/50']);
  });

  it('filters before de-duplicating, like the SQL (WHERE, then the window)', () => {
    const rows = [row('e1', 100, 0, 7, 'bob'), row('e1', 100, 0, 9, 'alice'), row('e2', 300, 0, 10, 'alice', 'delete'), row('e3', 50, 0, 1, 'alice')];
    expect(finishHistory(rows, { range: { since: null, until: null }, actor: 'alice', action: null }).map((e) => e.event_id)).toEqual(['e3', 'e1', 'e2']);
    expect(finishHistory(rows, { range: { since: 100, until: 299 }, actor: null, action: null }).map((e) => e.event_id)).toEqual(['e1']);
    expect(finishHistory(rows, { range: { since: 100, until: 300 }, actor: null, action: 'delete' }).map((e) => e.event_id)).toEqual(['e2']);
    // Microsecond bounds are exact, also beyond 2^53.
    const big = [row('x', 0, 0, 0)].map((r) => ({ ...r, occurredUs: '9007199254740993' }));
    expect(finishHistory(big, { range: { since: 9007199254740992, until: null }, actor: null, action: null })).toHaveLength(1);
  });
});
