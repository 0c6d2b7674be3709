import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { CURRENT_SCHEMA_ID, encodeRecord } from '../../schemas';
import { FileObjectStore, parseDataKey } from '../../storage';
import { createMetrics } from '../../consumer/metrics';
import { ParquetWriter } from '../../consumer/parquet-writer';
import { AuditSink, type DeadLetter, type InboundMessage, type SinkLimits } from '../../consumer/sink';
import { AvroStagingTranscoder } from '../../consumer/staging/avro-transcoder';
import { LineArena } from '../../consumer/staging/line-arena';
import { heldBytes } from '../../consumer/staging/staged-row';
import { openDuckDb } from '../../query/history';
import { sampleRecord } from '../helpers/records';
import { ExpiredDays } from '../../consumer/expired-days';
import { DigestSigner, generateSigningKey } from '../../trust/signer';
import { TrustedKeys } from '../../trust/trusted-keys';
import type { TrustPolicy } from '../../trust/trust-policy';

const DAY = 86_400_000_000;
const T0 = Date.UTC(2026, 0, 10) * 1000;

function messages(from: number, count: number, dayOf: (i: number) => number = () => 0): InboundMessage[] {
  return Array.from({ length: count }, (_, k) => {
    const i = from + k;
    const rec = sampleRecord({ event_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, object_id: String(i % 5), occurred_at: T0 + dayOf(i) * DAY + i });
    return { offset: String(i), key: Buffer.from(`invoice:${i % 5}`), value: encodeRecord(rec) };
  });
}

/** Memory the memory bound counts for these messages once staged (see heldBytes). */
function held(batch: InboundMessage[]): number {
  const transcoder = new AvroStagingTranscoder(CURRENT_SCHEMA_ID);
  const arena = new LineArena();
  return batch.reduce((sum, m) => sum + heldBytes(transcoder.transcode(m.value!, 0, m.offset, arena)!), 0);
}

describe('AuditSink (file store, fake commits)', () => {
  let dir: string;
  let store: FileObjectStore;
  let writer: ParquetWriter;
  let commits: Array<[number, string]>;
  let letters: DeadLetter[];
  let sinks: AuditSink[];

  const limits = (over: Partial<SinkLimits> = {}): SinkLimits => ({
    maxRecords: 1000, maxBytes: 1 << 30, maxAgeMs: 1 << 30, memoryMaxBytes: 1 << 30, storeRetryMs: 0, ...over,
  });

  function sink(l: SinkLimits, commit?: (p: number, o: string) => Promise<void>) {
    const created = new AuditSink({
      topic: 'audit.events',
      store,
      writer,
      commit: commit ?? (async (p, o) => void commits.push([p, o])),
      deadLetter: async (l2) => void letters.push(l2),
      log: pino({ level: 'silent' }),
      metrics: createMetrics(),
      limits: l,
      workDir: join(dir, 'work'),
      owner: 'test',
    });
    sinks.push(created);
    return created;
  }

  async function storedKeys(): Promise<string[]> {
    const keys: string[] = [];
    for await (const o of store.list('dt=')) keys.push(o.key);
    return keys.sort();
  }

  async function storedEventIds(): Promise<string[]> {
    const { conn } = await openDuckDb();
    const keys = await storedKeys();
    const r = await conn.runAndReadAll(`SELECT event_id FROM read_parquet([${keys.map((k) => `'${join(dir, 'store', k)}'`).join(',')}])`);
    return r.getRowObjects().map((x) => String(x.event_id));
  }

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'sink-'));
    store = new FileObjectStore(join(dir, 'store'));
    writer = await ParquetWriter.create({ rowGroupRows: 1024 });
    commits = [];
    letters = [];
    sinks = [];
  });
  afterEach(async () => {
    // A test may end while a cut is still being stored: let it finish before its directory goes.
    await Promise.allSettled(sinks.map((s) => s.settle()));
    writer.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('cuts on the record limit into one file per event date, then commits the next offset', async () => {
    const s = sink(limits({ maxRecords: 100 }));
    await s.append(0, messages(0, 250, (i) => i % 3));
    await s.settle();
    expect(commits).toEqual([[0, '100'], [0, '200']]);
    expect(await s.flushAll('shutdown')).toBe(true);
    expect(commits.at(-1)).toEqual([0, '250']);
    const keys = await storedKeys();
    expect(keys.map((k) => parseDataKey(k)!.dt).sort()).toEqual(expect.arrayContaining(['2026-01-10', '2026-01-11', '2026-01-12']));
    expect(keys).toHaveLength(9);
    expect(new Set(await storedEventIds()).size).toBe(250);
    // Each data file has its index beside it.
    for (const k of keys) expect(await store.get(`_index/${k.replace('.parquet', '.json')}`)).not.toBeNull();
  });

  it('a replay after a crash between upload and commit lands on the same keys, even with other limits', async () => {
    const failing = sink(limits({ maxRecords: 100 }), async () => {
      throw new Error('crash before commit');
    });
    await failing.append(0, messages(0, 150));
    await expect(failing.settle()).rejects.toThrow('crash before commit');
    const afterCrash = await storedKeys();
    expect(afterCrash).toHaveLength(1);

    // The new owner reads from the last committed offset (0) with a larger limit: it must adopt the claimed cut.
    const replay = sink(limits({ maxRecords: 1000 }));
    await replay.append(0, messages(0, 150));
    await replay.flushAll('shutdown');
    const keys = await storedKeys();
    expect(keys).toContain(afterCrash[0]);
    expect(keys).toHaveLength(2);
    const ids = await storedEventIds();
    expect(ids).toHaveLength(150);
    expect(new Set(ids).size).toBe(150);
    expect(commits).toEqual([[0, '100'], [0, '150']]);
  });

  it('waits to reach a claimed cut that ends beyond what is buffered', async () => {
    const first = sink(limits({ maxRecords: 100 }), async () => {
      throw new Error('crash');
    });
    await first.append(0, messages(0, 100));
    await expect(first.settle()).rejects.toThrow('crash');
    const replay = sink(limits({ maxRecords: 10 }));
    await replay.append(0, messages(0, 50)); // due by count, but the claim says 0..99
    await replay.settle();
    expect(commits).toEqual([]);
    await replay.append(0, messages(50, 60));
    await replay.settle();
    expect(commits[0]).toEqual([0, '100']);
    await replay.flushAll('shutdown');
    expect(new Set(await storedEventIds()).size).toBe(110);
  });

  it('sends poison messages to the dead-letter queue and still commits past them', async () => {
    const s = sink(limits({ maxRecords: 1000 }));
    const batch = messages(0, 10);
    batch[3] = { offset: '3', key: null, value: Buffer.from('not avro') };
    batch[7] = { offset: '7', key: null, value: encodeRecord(sampleRecord({ event_id: 'not-a-uuid' })) };
    await s.append(1, batch);
    await s.flushAll('shutdown');
    expect(letters.map((l) => [l.partition, l.offset])).toEqual([[1, '3'], [1, '7']]);
    expect(letters[1]!.error.message).toMatch(/event_id is not a UUID/);
    expect(commits).toEqual([[1, '10']]);
    expect(await storedEventIds()).toHaveLength(8);
  });

  it('keeps the rows of a cut whose upload failed, and stores them on the next try', async () => {
    const s = sink(limits({ maxRecords: 100 }));
    const put = store.putFile.bind(store);
    let failures = 1;
    store.putFile = async (k, p) => {
      if (failures-- > 0) throw new Error('storage down');
      return put(k, p);
    };
    await s.append(0, messages(0, 100));
    await expect(s.settle()).rejects.toThrow('storage down');
    expect(commits).toEqual([]);
    expect(s.bufferedRecords).toBe(100);
    expect(s.isIdle).toBe(false);
    expect(await s.flushAll('shutdown')).toBe(true);
    expect(commits).toEqual([[0, '100']]);
    expect(new Set(await storedEventIds()).size).toBe(100);
  });

  it('ignores redelivered offsets', async () => {
    const s = sink(limits());
    await s.append(0, messages(0, 20));
    await s.append(0, messages(10, 20));
    await s.flushAll('shutdown');
    expect(await storedEventIds()).toHaveLength(30);
  });

  it('bounds memory across partitions by cutting the largest buffer', async () => {
    const one = held(messages(0, 1));
    const s = sink(limits({ memoryMaxBytes: one * 150 }));
    await s.append(0, messages(0, 100));
    await s.append(1, messages(0, 100));
    // Sealed cuts count until committed: reading waited for them.
    expect(s.heldBytes).toBeLessThanOrEqual(one * 150);
    expect(commits.length).toBeGreaterThan(0);
  });

  it('starts a cut once a partition holds its share of the memory budget and the writer is free', async () => {
    const one = held(messages(0, 1));
    const s = sink(limits({ memoryMaxBytes: 2 * held(messages(0, 100)) }));
    await s.append(0, messages(0, 99));
    await s.settle();
    expect(commits).toEqual([]); // under half the budget: keep filling
    await s.append(0, messages(99, 1));
    await s.settle();
    expect(commits).toEqual([[0, '100']]); // half the budget (one partition): written while the next cut fills
  });

  it('under memory pressure, a partition whose cut is still being stored is not cut again batch by batch', async () => {
    const one = held(messages(0, 1));
    const put = store.putFile.bind(store);
    store.putFile = async (k, p) => {
      await new Promise((r) => setTimeout(r, 20)); // storage slower than reading
      return put(k, p);
    };
    const s = sink(limits({ maxRecords: 10_000, memoryMaxBytes: one * 150 }));
    const feed = async (partition: number) => {
      for (let i = 0; i < 300; i += 10) await s.append(partition, messages(i, 10));
    };
    await Promise.all([feed(0), feed(1), feed(2)]);
    expect(await s.flushAll('shutdown')).toBe(true);
    for (const p of [0, 1, 2]) {
      const ends = commits.filter(([q]) => q === p).map(([, o]) => Number(o));
      const sizes = ends.map((end, i) => end - (i === 0 ? 0 : ends[i - 1]!));
      expect(ends.at(-1)).toBe(300);
      // Cutting on every batch while the other partitions kept memory full made cuts of one batch (10).
      expect(Math.min(...sizes.slice(0, -1))).toBeGreaterThanOrEqual(20);
    }
    expect(await storedEventIds()).toHaveLength(900);
  }, 30_000);

  it('two partitions over the memory limit at once both make progress (no lock-order deadlock)', async () => {
    const one = held(messages(0, 1));
    // Slow claims and quick uploads: a partition often waits on its claim while the other's cut is already stored.
    const claim = store.putIfAbsent.bind(store);
    store.putIfAbsent = async (k, body) => {
      await new Promise((r) => setTimeout(r, 15));
      return claim(k, body);
    };
    const s = sink(limits({ maxRecords: 1000, memoryMaxBytes: one * 80 }));
    const feed = async (partition: number) => {
      for (let i = 0; i < 300; i += 25) await s.append(partition, messages(i, 25));
    };
    await Promise.all([feed(0), feed(1)]);
    expect(await s.flushAll('shutdown')).toBe(true);
    const last = (p: number) => commits.filter(([q]) => q === p).at(-1)?.[1];
    expect([last(0), last(1)]).toEqual(['300', '300']);
    expect(await storedEventIds()).toHaveLength(600);
  }, 30_000);

  it('over the memory limit, a buffer that must first reach an adopted claim is skipped, not retried for ever', async () => {
    const one = held(messages(0, 1));
    const first = sink(limits({ maxRecords: 100 }), async () => {
      throw new Error('crash');
    });
    await first.append(0, messages(0, 100));
    await expect(first.settle()).rejects.toThrow('crash');
    const replay = sink(limits({ maxRecords: 1000, memoryMaxBytes: one * 60 }));
    await replay.append(0, messages(0, 50)); // the claim says 0..99: nothing of partition 0 can be sealed yet
    await replay.append(1, messages(0, 20)); // over the limit: partition 1 is sealed and stored, partition 0 waits
    expect(replay.bufferedRecords).toBe(50);
    await replay.append(0, messages(50, 60));
    expect(await replay.flushAll('shutdown')).toBe(true);
    expect(commits).toEqual(expect.arrayContaining([[0, '100'], [0, '110'], [1, '20']]));
    expect(await storedEventIds()).toHaveLength(130); // both partitions' rows (their event ids overlap by construction)
  });

  it('keeps reading while a sealed cut is stored, and commits cuts strictly in order', async () => {
    const put = store.putFile.bind(store);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let uploads = 0;
    store.putFile = async (k, p) => {
      if (uploads++ === 0) await gate; // the first cut's upload hangs until released
      return put(k, p);
    };
    const s = sink(limits({ maxRecords: 100 }));
    await s.append(0, messages(0, 100)); // sealed; its upload hangs
    await s.append(0, messages(100, 100)); // read and sealed meanwhile
    expect(s.bufferedRecords).toBe(200);
    expect(commits).toEqual([]); // the second cut may be stored, but not committed before the first
    release();
    await s.settle();
    expect(commits).toEqual([[0, '100'], [0, '200']]);
    expect(s.isIdle).toBe(true);
  });

  it('reports a failed cut once through onError and commits nothing after it in that partition', async () => {
    const reported: string[] = [];
    const s = new AuditSink({
      topic: 'audit.events',
      store,
      writer,
      commit: async (p, o) => void commits.push([p, o]),
      deadLetter: async () => undefined,
      log: pino({ level: 'silent' }),
      metrics: createMetrics(),
      limits: limits({ maxRecords: 50 }),
      workDir: join(dir, 'work'),
      owner: 'test',
      onError: (err, p) => void reported.push(`${p}:${err.message}`),
    });
    const put = store.putFile.bind(store);
    store.putFile = async (k, p) => {
      if (k.includes('audit.events-0-0-')) throw new Error('storage down'); // only the first cut's files
      return put(k, p);
    };
    await s.append(0, messages(0, 120));
    await expect(s.settle()).rejects.toThrow('storage down');
    expect(reported).toEqual(['0:storage down']);
    expect(commits).toEqual([]);
    expect(s.bufferedRecords).toBe(120);
  });
  it('dead-letters events dated inside a day removed by retention (signed digest), and ignores a planted digest', async () => {
    const maintainer = DigestSigner.fromPem(generateSigningKey().privateKeyPem, 'test');
    const trust: TrustPolicy = { mode: 'pinned', keys: new TrustedKeys([TrustedKeys.keyFromPem(maintainer.publicKeyPem, 'test')]), notice: null };
    const removed = '2026-01-11';
    await store.put(`_digests/retention/dt=${removed}.json`, maintainer.seal({ kind: 'retention', dt: removed, retentionMs: 1, writtenAt: new Date().toISOString(), writer: 'm' }));
    // Written with bucket rights but no trusted key: must not divert 2026-01-12's events.
    await store.put('_digests/retention/dt=2026-01-12.json', JSON.stringify({ kind: 'retention', dt: '2026-01-12', retentionMs: 1, writtenAt: 'x', writer: 'attacker' }));
    const metrics = createMetrics();
    const s = new AuditSink({
      topic: 'audit.events', store, writer, commit: async (p, o) => void commits.push([p, o]), deadLetter: async (l2) => void letters.push(l2),
      log: pino({ level: 'silent' }), metrics, limits: limits(), workDir: join(dir, 'work'), owner: 'test',
      expiredDays: new ExpiredDays({ store, trust, log: pino({ level: 'silent' }), now: Date.now, refreshMs: 60_000 }),
    });
    sinks.push(s);
    await s.append(0, messages(0, 30, (i) => i % 3));
    expect(await s.flushAll('shutdown')).toBe(true);
    await s.settle();
    expect(letters.map((l) => Number(l.offset))).toEqual(Array.from({ length: 10 }, (_, k) => 3 * k + 1));
    expect(new Set(letters.map((l) => l.error.name))).toEqual(new Set(['ExpiredDayError']));
    expect(letters[0]!.error.message).toContain(`dated ${removed}, a day removed by retention`);
    expect(await metrics.expiredDayLetters.get()).toMatchObject({ values: [{ value: 10 }] });
    expect((await storedKeys()).map((k) => k.slice(0, 13))).toEqual(['dt=2026-01-10', 'dt=2026-01-12']);
    expect(commits.at(-1)).toEqual([0, '30']);
  });
});
