/**
 * event_id is stored as a Parquet UUID (16 bytes). The query side prints it
 * as the usual lowercase text, reads files of the earlier format (VARCHAR)
 * together with new ones, and still returns an event stored in both once.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ParquetWriter, type StoredRow } from '../../consumer/parquet-writer';
import { storeDataFile } from '../../bench/lib/store-writer';
import { DATA_PREFIX, FileObjectStore, dataFileName, dataKey } from '../../storage';
import { AuditQuery } from '../../query/query';
import { openDuckDb } from '../../query/history';
import { sqlString } from '../../storage/sql';
import { readParquetRows, uuidText } from '../helpers/parquet-interop';
import { sampleRecord } from '../helpers/records';

const DT = '2026-08-01';
const AT = Date.parse(`${DT}T10:00:00Z`) * 1000;

describe('event_id as a Parquet UUID', () => {
  let dir: string;
  let store: FileObjectStore;
  const env = (cache: string) => ({ AUDIT_STORE_URL: `file://${join(dir, 'store')}`, AUDIT_S3_REGION: 'us-east-1', AUDIT_CACHE_DIR: join(dir, cache) });

  const row = (eventId: string, offset: number, at: number): StoredRow => ({
    record: sampleRecord({ event_id: eventId, object_type: 'invoice', object_id: 'U-1', occurred_at: at }),
    partition: 0,
    offset: String(offset),
    size: 100,
  });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'uuid-column-'));
    store = new FileObjectStore(join(dir, 'store'));
    const writer = await ParquetWriter.create({ rowGroupRows: 1024 });
    try {
      // New format; one id in upper case (the producer's validation accepts either case).
      const f = await storeDataFile(store, writer, {
        topic: 'audit.events',
        partition: 0,
        dt: DT,
        rows: [row('0a000000-0000-4000-8000-000000000001', 10, AT), row('0A000000-0000-4000-8000-0000000000FF', 11, AT + 2)],
        workDir: join(dir, 'work'),
      });
      // The earlier format (event_id VARCHAR), without an index (read whole): one event of its own,
      // and a second copy of the first event above (a replay stored under both formats).
      const old = join(dir, 'old.parquet');
      const { instance, conn } = await openDuckDb();
      try {
        const newPath = join(dir, 'new.parquet');
        await store.download(f.key, newPath);
        await conn.run(
          `COPY (SELECT * REPLACE (CASE WHEN kafka_offset = 11 THEN '0a000000-0000-4000-8000-000000000002' ELSE event_id::VARCHAR END AS event_id,
                                   CASE WHEN kafka_offset = 11 THEN occurred_at + INTERVAL 1 MICROSECOND ELSE occurred_at END AS occurred_at,
                                   kafka_offset + 100 AS kafka_offset)
                 FROM read_parquet(${sqlString(newPath)}))
           TO ${sqlString(old)} (FORMAT parquet)`,
        );
      } finally {
        conn.closeSync();
        instance.closeSync();
      }
      await store.putFile(dataKey(DT, dataFileName('audit.events', 1, '110', '111')), old);
    } finally {
      writer.close();
    }
  }, 60_000);

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('stores 16-byte UUIDs that parquetjs-lite reads back', async () => {
    let local = '';
    for await (const o of store.list(DATA_PREFIX)) if (o.key.includes('-0-10-11')) local = join(dir, 'store', o.key);
    const rows = await readParquetRows(local);
    expect(rows.map((r) => (r.event_id as Buffer).length)).toEqual([16, 16]);
    expect(rows.map((r) => uuidText(r.event_id))).toEqual(['0a000000-0000-4000-8000-000000000001', '0a000000-0000-4000-8000-0000000000ff']);
  });

  it('a lookup over old (text) and new (UUID) files prints lowercase ids and returns a doubly stored event once', async () => {
    const q = new AuditQuery(env('cache'), undefined, { resultCache: false });
    try {
      const events = await q.history({ object: { type: 'invoice', id: 'U-1' }, range: { since: null, until: null }, actor: null, action: null });
      expect(events.map((e) => e.event_id)).toEqual([
        '0a000000-0000-4000-8000-000000000001',
        '0a000000-0000-4000-8000-0000000000ff',
        '0a000000-0000-4000-8000-000000000002',
      ]);
      const stats = q.summary();
      expect([stats.filesSparse, stats.filesWhole]).toEqual([1, 1]);
    } finally {
      q.close();
    }
  });

  it('the sql view has one event_id column over both formats, comparable with text, each event once', async () => {
    const q = new AuditQuery(env('cache-sql'));
    try {
      const rows = await q.sql(
        "SELECT count(*)::INTEGER AS n, count(DISTINCT event_id)::INTEGER AS ids, count(*) FILTER (WHERE event_id = '0a000000-0000-4000-8000-000000000001')::INTEGER AS dup FROM audit",
        { since: null, until: null },
      );
      // The event stored in both formats is one event: the view shows it once, as the lookup does.
      expect(rows).toEqual([{ n: 3, ids: 3, dup: 1 }]);
    } finally {
      q.close();
    }
  });
});
