import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { ParquetWriter, type StoredRow } from '../../consumer/parquet-writer';
import { Compactor } from '../../maintenance/compactor';
import { sampleRecord } from '../helpers/records';
import { eventId } from '../helpers/audit-store';

describe('Compactor', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'compactor-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('merges more files than one read takes, keeps each event id once (lowest offset), fills columns older files lack, in the consumer order', async () => {
    const writer = await ParquetWriter.create({ rowGroupRows: 4096 });
    const inputs: string[] = [];
    let offset = 0;
    const row = (n: number): StoredRow => ({
      record: sampleRecord({ event_id: eventId(n), object_id: `o-${n % 7}`, occurred_at: (Date.UTC(2026, 0, 5) + n * 1000) * 1000, duration_ms: 1.5 }),
      partition: 0,
      offset: String(offset++),
      size: 300,
    });
    for (let f = 0; f < 300; f++) {
      const path = join(dir, `in-${f}.parquet`);
      await writer.write([row(2 * f), row(2 * f + 1)], path);
      inputs.push(path);
    }
    writer.close();
    // A producer retry stored again at a later offset, in a file of its own.
    const retry = join(dir, 'retry.parquet');
    const w2 = await ParquetWriter.create({ rowGroupRows: 4096 });
    await w2.write([{ ...row(10), offset: '9999' }], retry);
    w2.close();
    // A file of an older schema version, without the v2 columns.
    const old = join(dir, 'old.parquet');
    const db = await DuckDBInstance.create(':memory:');
    const conn = await db.connect();
    await conn.run(
      `COPY (SELECT * EXCLUDE (duration_ms, error_type, error_message, error_stack) REPLACE (CAST('00000000-0000-4000-8000-0000000fffff' AS UUID) AS event_id, 5000 AS kafka_offset)
             FROM read_parquet('${inputs[0]}') LIMIT 1) TO '${old}' (FORMAT parquet)`,
    );
    const compactor = await Compactor.create({ rowGroupRows: 4096, compression: 'zstd', zstdLevel: 3, memoryLimit: '128MB', threads: 1, spillDir: join(dir, 'spill') });
    const out = join(dir, 'out.parquet');
    const merged = await compactor.merge([...inputs, retry, old], out);
    compactor.close();
    expect({ rows: merged.rows, duplicates: merged.duplicates, first: merged.firstOffset, last: merged.lastOffset }).toEqual({ rows: 601, duplicates: 1, first: '0', last: '5000' });
    const check = (
      await conn.runAndReadAll(
        `SELECT count(*) AS n, count(DISTINCT event_id) AS d, max(kafka_offset) FILTER (WHERE event_id = '${eventId(10)}') AS kept,
                count(*) FILTER (WHERE duration_ms IS NULL) AS nulls,
                bool_and(ordered) AS ordered
         FROM (SELECT *, (object_type, object_id, occurred_at) >= lag((object_type, object_id, occurred_at)) OVER () OR lag(object_id) OVER () IS NULL AS ordered FROM read_parquet('${out}'))`,
      )
    ).getRowObjects()[0]!;
    expect({ n: Number(check.n), d: Number(check.d), kept: Number(check.kept), nulls: Number(check.nulls), ordered: check.ordered }).toEqual({ n: 601, d: 601, kept: 10, nulls: 1, ordered: true });
    const index = merged.index('dt=2026-01-05/x.parquet');
    expect(index.rows).toBe(601);
    expect(index.rowGroups.reduce((s, g) => s + g.rows, 0)).toBe(601);
    conn.closeSync();
    db.closeSync();
  }, 60_000);
});
