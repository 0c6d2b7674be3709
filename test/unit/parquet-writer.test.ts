import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeRecord } from '../../schemas';
import { objectKeyBloom } from '../../storage';
import { ParquetWriter } from '../../consumer/parquet-writer';
import { AvroStagingTranscoder } from '../../consumer/staging/avro-transcoder';
import { LineArena } from '../../consumer/staging/line-arena';
import type { StagedRow } from '../../consumer/staging/staged-row';
import { openDuckDb } from '../../query/history';
import { sampleRecord } from '../helpers/records';

// Characters whose UTF-16 order differs from their UTF-8 (byte) order, plus plain ones.
const TYPES = ['invoice', 'customer', 'zé', '\uff01bang', '😀'];
const IDS = ['1', '10', '2', 'a', 'A', '\uffff', '😀', '\ue000', 'é', "o'q", 'x"y'];

describe('ParquetWriter', () => {
  let dir: string;
  let writer: ParquetWriter;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pw-'));
    writer = await ParquetWriter.create({ rowGroupRows: 1024 });
  });
  afterAll(async () => {
    writer.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('writes rows in (object_type, object_id, occurred_at, partition, offset) order, comparing text as UTF-8 bytes like DuckDB', async () => {
    const transcoder = new AvroStagingTranscoder(2);
    const arena = new LineArena();
    const rows: StagedRow[] = [];
    const t0 = Date.UTC(2026, 0, 1) * 1000;
    for (let i = 0; i < 5000; i++) {
      const rec = sampleRecord({
        object_type: TYPES[(i * 7) % TYPES.length]!,
        object_id: IDS[(i * 13) % IDS.length]!,
        // Equal times for some rows, so the offset decides.
        occurred_at: t0 + ((i * 7919) % 50),
      });
      rows.push(transcoder.transcode(encodeRecord(rec), i % 3, String(10_000 + i), arena)!);
    }
    const path = join(dir, 'sorted.parquet');
    const written = await writer.writeStaged(rows, path);
    expect(written.rows).toBe(5000);
    expect(written.rowGroups.length).toBeGreaterThan(1);

    const { conn } = await openDuckDb();
    const cols = 'object_type, object_id, epoch_us(occurred_at) AS t, kafka_partition AS p, kafka_offset AS o';
    const inFile = (await conn.runAndReadAll(`SELECT ${cols} FROM read_parquet('${path}') ORDER BY file_row_number`)).getRows();
    const byDuckDb = (
      await conn.runAndReadAll(`SELECT ${cols} FROM read_parquet('${path}') ORDER BY object_type, object_id, occurred_at, kafka_partition, kafka_offset`)
    ).getRows();
    expect(inFile.map(String)).toEqual(byDuckDb.map(String));
    // The same order computed independently, on UTF-8 bytes.
    const byBytes = [...inFile].sort(
      (a, b) =>
        Buffer.compare(Buffer.from(String(a[0])), Buffer.from(String(b[0]))) ||
        Buffer.compare(Buffer.from(String(a[1])), Buffer.from(String(b[1]))) ||
        Number(a[2]) - Number(b[2]) ||
        Number(a[3]) - Number(b[3]) ||
        Number(a[4]) - Number(b[4]),
    );
    expect(inFile.map(String)).toEqual(byBytes.map(String));

    // Every object of the file is in its Bloom filter, counted once; the filter is the one a key-by-key build gives.
    const keys = [...new Set(inFile.map((r) => `${String(r[0])}:${String(r[1])}`))];
    expect(written.objects).toBe(keys.length);
    for (const k of keys) expect(written.objectBloom.mayContain(k)).toBe(true);
    expect(written.objectBloom.toBase64()).toBe(objectKeyBloom(keys).toBase64());
  });

  it('writes several files of one cut at once (as the sink does), each with its own rows only', async () => {
    const transcoder = new AvroStagingTranscoder(2);
    const arena = new LineArena();
    const day = 86_400_000_000;
    const t0 = Date.UTC(2026, 0, 1) * 1000;
    const rows = Array.from({ length: 300 }, (_, i) =>
      transcoder.transcode(encodeRecord(sampleRecord({ object_id: String(i), occurred_at: t0 + (i % 3) * day + i })), 0, String(i), arena)!,
    );
    const files = [0, 1, 2].map((d) => ({ path: join(dir, `day-${d}.parquet`), rows: rows.filter((_, i) => i % 3 === d) }));
    const written = await Promise.all(files.map((f) => writer.writeStaged(f.rows, f.path)));
    const { conn } = await openDuckDb();
    for (let d = 0; d < 3; d++) {
      expect(written[d]!.rows).toBe(100);
      const ids = (await conn.runAndReadAll(`SELECT object_id FROM read_parquet('${files[d]!.path}')`)).getRows().map((r) => Number(r[0]));
      expect(ids.every((id) => id % 3 === d)).toBe(true);
      expect(new Set(ids).size).toBe(100);
    }
  });
});
