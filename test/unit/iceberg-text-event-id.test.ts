/**
 * Files of releases that stored `event_id` as text, beside the Iceberg table
 * whose `event_id` is `uuid` (Iceberg has no string-to-uuid promotion): the
 * maintainer tells them from their footer alone, leaves them out of the table
 * with a line naming each, and compaction
 * rewrites them as UUID, after which they are published.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ParquetWriter, type StoredRow } from '../../consumer/parquet-writer';
import { storeDataFile } from '../../bench/lib/store-writer';
import { Compactor } from '../../maintenance/compactor';
import { eventIdStorage } from '../../maintenance/iceberg/file-columns';
import { IcebergPublisher } from '../../maintenance/iceberg/publisher';
import { newestSnapshotFiles } from '../../maintenance/iceberg/table-io';
import { FileObjectStore, LIVE_FORMAT, dataFileName, dataKey, encodeGeneration, generationKey, indexKey, readDay } from '../../storage';
import { openDuckDb } from '../../query/history';
import { sqlString } from '../../storage/sql';
import { sampleRecord } from '../helpers/records';
import { unsignedTrust } from '../helpers/trust';

const DT = '2026-08-01';
const AT = Date.parse(`${DT}T10:00:00Z`) * 1000;

describe('event_id stored as text by older releases, and the Iceberg table', () => {
  let dir: string;
  let store: FileObjectStore;
  let compactor: Compactor;
  let newKey: string;
  const oldKey = dataKey(DT, dataFileName('audit.events', 1, '110', '111'));
  const work = () => join(dir, 'work');
  const check = (file: { key: string; size: number }) => eventIdStorage(store, (p) => compactor.eventIdStorage(p), file, work());
  const sizeOf = async (key: string) => (await store.get(key))!.length;

  const row = (eventId: string, offset: number, at: number): StoredRow => ({
    record: sampleRecord({ event_id: eventId, object_type: 'invoice', object_id: 'U-1', occurred_at: at }),
    partition: 0,
    offset: String(offset),
    size: 100,
  });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'iceberg-text-id-'));
    store = new FileObjectStore(join(dir, 'store'));
    compactor = await Compactor.create({ rowGroupRows: 1024, compression: 'zstd', zstdLevel: 3, memoryLimit: '128MB', threads: 1, spillDir: join(dir, 'spill') });
    const writer = await ParquetWriter.create({ rowGroupRows: 1024 });
    try {
      const f = await storeDataFile(store, writer, {
        topic: 'audit.events', partition: 0, dt: DT, workDir: work(),
        rows: [row('0a000000-0000-4000-8000-000000000001', 10, AT), row('0a000000-0000-4000-8000-000000000002', 11, AT + 2)],
      });
      newKey = f.key;
      // The earlier shape: the same columns with event_id as VARCHAR, other ids, partition 1.
      const newPath = join(dir, 'new.parquet');
      const oldPath = join(dir, 'old.parquet');
      await store.download(f.key, newPath);
      const { instance, conn } = await openDuckDb();
      try {
        await conn.run(
          `COPY (SELECT * REPLACE (replace(event_id::VARCHAR, '0a', '0b') AS event_id, 1 AS kafka_partition, kafka_offset + 100 AS kafka_offset)
                 FROM read_parquet(${sqlString(newPath)}))
           TO ${sqlString(oldPath)} (FORMAT parquet)`,
        );
      } finally {
        conn.closeSync();
        instance.closeSync();
      }
      await store.putFile(oldKey, oldPath);
      const oldName = oldKey.slice(oldKey.lastIndexOf('/') + 1);
      await store.put(indexKey(DT, oldName), JSON.stringify({ ...f.index, key: oldKey, bytes: await sizeOf(oldKey) }));
    } finally {
      writer.close();
    }
  }, 60_000);

  afterAll(async () => {
    compactor.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('tells the storage of event_id from the footer alone', async () => {
    expect(await check({ key: newKey, size: await sizeOf(newKey) })).toBe('uuid');
    expect(await check({ key: oldKey, size: await sizeOf(oldKey) })).toBe('text');
  });

  it('leaves a text file out of the table, with a line, and publishes it once compaction has rewritten it as UUID', async () => {
    const lines: string[] = [];
    const publisher = () =>
      new IcebergPublisher({ store, trust: unsignedTrust(), graceMs: 0, concurrency: 4, log: pino({ level: 'silent' }), say: (l) => lines.push(l), eventIdStorage: check });
    const p1 = publisher();
    p1.observe(await readDay(store, DT, unsignedTrust()));
    const r1 = await p1.commit(() => true, Date.now());
    expect(r1).toMatchObject({ filesAdded: 1, filesExcluded: 1 });
    expect(lines.filter((l) => l.startsWith('iceberg: left out'))).toEqual([expect.stringContaining(`${oldKey}: event_id stored as text`)]);
    expect((await newestSnapshotFiles(store))!.files).toEqual([newKey]);

    // Compaction casts to UUID: its output is published like any file.
    const oldPath = join(dir, 'old-again.parquet');
    await store.download(oldKey, oldPath);
    const merged = await compactor.merge([oldPath], join(dir, 'merged.parquet'));
    const mergedKey = dataKey(DT, dataFileName('audit.events', 1, merged.firstOffset, merged.lastOffset).replace('.parquet', '.c1-aaaa0001.parquet'));
    expect(await compactor.eventIdStorage(merged.path)).toBe('uuid');
    await store.putFile(mergedKey, merged.path);
    await store.put(indexKey(DT, mergedKey.slice(mergedKey.lastIndexOf('/') + 1)), JSON.stringify(merged.index(mergedKey)));
    // Committed as compaction commits it: the generation names the output and hides the input's range.
    await store.put(generationKey(DT, 1), encodeGeneration({
      format: LIVE_FORMAT, dt: DT, generation: 1, committedAt: Date.now(),
      files: [{ key: mergedKey, size: merged.bytes, rows: merged.rows, topic: 'audit.events', partition: 1, first: merged.firstOffset, last: merged.lastOffset }],
      replaced: { 'audit.events/1': [['110', '111', Date.now()]] },
      retired: [],
    }));
    const p2 = publisher();
    p2.observe(await readDay(store, DT, unsignedTrust()));
    const r2 = await p2.commit(() => true, Date.now() + 1);
    expect(r2).toMatchObject({ filesAdded: 1, filesExcluded: 0 });
    expect((await newestSnapshotFiles(store))!.files.sort()).toEqual([mergedKey, newKey].sort());
  }, 60_000);
});
