import { mkdir, rm, stat } from 'node:fs/promises';
import { DuckDBInstance } from '@duckdb/node-api';
import { readRowGroups } from '../storage/parquet-meta';
import { sqlString } from '../storage/sql';
import { BloomFilter, COLUMN_TYPES, type FileIndex, buildFileIndex, readSubjectFilters } from '../storage';
import { ROW_HASH_EXPR, rowHashAggregate, rowHashOfFile } from '../trust/row-hash';

export interface CompactorOptions {
  rowGroupRows: number;
  compression: 'zstd' | 'snappy' | 'gzip' | 'uncompressed';
  zstdLevel: number;
  memoryLimit: string;
  threads: number;
  /** Where DuckDB spills a sort larger than its memory limit. */
  spillDir: string;
}

export interface MergedFile {
  path: string;
  rows: number;
  bytes: number;
  /** Rows dropped because their event id was already stored (a producer retry Kafka accepted twice). */
  duplicates: number;
  /** Kafka offsets of the first and last rows (offset order), for the file name. */
  firstOffset: string;
  lastOffset: string;
  /** The per-file index, keyed once the file has its name. */
  index: (key: string) => FileIndex;
  /** With `hashes`: what the compaction digest proves (trust/format.ts CompactionDigest). */
  hashes?: MergeHashes;
}

export interface MergeHashes {
  /** Per input, in the order given. */
  inputs: { rows: number; rowHash: string; first: string; last: string }[];
  output: string;
  dropped: { offsets: string[]; rowHash: string };
}

export class CompactionError extends Error {
  constructor(
    readonly inputs: readonly string[],
    why: string,
  ) {
    super(`compaction of ${inputs.length} file(s) failed: ${why}`);
    this.name = 'CompactionError';
  }
}

/**
 * Merges Parquet files of one (day, Kafka partition) into one file with DuckDB:
 * each event id kept once (its lowest offset), rows in the consumer's order
 * (object, event time, partition, offset) so an object's events are adjacent and
 * row-group statistics prune lookups, with the consumer's row-group size and
 * compression. The row count is checked against the distinct ids of the
 * inputs before the file is used.
 */
export class Compactor {
  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly opts: CompactorOptions,
  ) {}

  static async create(opts: CompactorOptions): Promise<Compactor> {
    await mkdir(opts.spillDir, { recursive: true });
    const instance = await DuckDBInstance.create(':memory:', {
      threads: String(opts.threads),
      memory_limit: opts.memoryLimit,
      temp_directory: opts.spillDir,
      // Never reach out to the network for extensions (air-gapped sites).
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
      // Each input is read once: DuckDB's cache of read files only grew, about 25 MB per day
      // compacted (peak RSS 434 MB for a 3-day quiet store, 1 GB for 30; 244 MB flat without it).
      enable_external_file_cache: 'false',
    });
    return new Compactor(instance, opts);
  }

  /** `hashes`: also hash every input's rows, the output's and the dropped copies' (for the compaction digest). */
  async merge(inputs: readonly string[], output: string, opts: { hashes?: boolean } = {}): Promise<MergedFile> {
    if (inputs.length === 0) throw new CompactionError(inputs, 'no input');
    const conn = await this.instance.connect();
    try {
      // Read once, in chunks: a small input costs about a millisecond to decode (a count and
      // the COPY would pay it twice), and DuckDB holds buffers per open file (about 0.25 MB:
      // 480 files at once took 122 MB), which chunks keep under the memory limit. Files of
      // older schema versions may lack columns: those are NULL.
      for (const [i, chunk] of chunks(inputs, FILES_PER_READ).entries()) {
        const source = `read_parquet([${chunk.map(sqlString).join(', ')}], union_by_name = true${opts.hashes ? ', filename = true' : ''})`;
        const present = new Set((await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`)).getRowObjects().map((r) => String(r.column_name)));
        const select =
          COLUMN_TYPES.map(([name, type]) => (present.has(name) ? `CAST("${name}" AS ${type}) AS ${name}` : `CAST(NULL AS ${type}) AS ${name}`)).join(', ') +
          (opts.hashes ? ', filename AS merge_source' : '');
        await conn.run(i === 0 ? `CREATE OR REPLACE TEMP TABLE merge_input AS SELECT ${select} FROM ${source}` : `INSERT INTO merge_input SELECT ${select} FROM ${source}`);
      }
      const counted = (await conn.runAndReadAll(`SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM merge_input`)).getRowObjects()[0]!;
      const inputRows = Number(counted.n as bigint);
      const distinct = Number(counted.d as bigint);
      const compression = `COMPRESSION ${this.opts.compression}${this.opts.compression === 'zstd' ? `, COMPRESSION_LEVEL ${this.opts.zstdLevel}` : ''}`;
      const hashes = opts.hashes ? await inputHashes(conn, inputs) : undefined;
      // Two statements, not one: the window that keeps each id's first copy and the sort after it,
      // in one pipeline, held both in memory and failed under the 128MB default past about 1 M
      // rows (a day's partition of a busy store, every pass); each alone spills.
      await conn.run(
        `CREATE OR REPLACE TEMP TABLE merge_kept AS
           SELECT * ${opts.hashes ? 'EXCLUDE (merge_source)' : ''} FROM merge_input
           QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY kafka_partition, kafka_offset) = 1`,
      );
      await conn.run('DROP TABLE merge_input');
      await conn.run(
        `COPY (
           SELECT * FROM merge_kept ORDER BY object_type, object_id, occurred_at, kafka_partition, kafka_offset
         ) TO ${sqlString(output)} (FORMAT parquet, ${compression}, ROW_GROUP_SIZE ${this.opts.rowGroupRows})`,
      );
      await conn.run('DROP TABLE merge_kept');
      const out = sqlString(output);
      const summary = (
        await conn.runAndReadAll(
          `SELECT count(*) AS n, count(DISTINCT event_id) AS d, min(epoch_us(occurred_at)) AS t0, max(epoch_us(occurred_at)) AS t1,
                  min(kafka_offset) AS o0, max(kafka_offset) AS o1 FROM read_parquet(${out})`,
        )
      ).getRowObjects()[0]!;
      const rows = Number(summary.n as bigint);
      if (rows !== distinct || Number(summary.d as bigint) !== distinct) {
        throw new CompactionError(inputs, `wrote ${rows} rows (${String(summary.d)} distinct ids) for ${distinct} distinct input ids`);
      }
      const rowGroups = await readRowGroups(conn, output);
      const bloom = await objectBloomOf(conn, output);
      const subjects = await readSubjectFilters(conn, output);
      const bytes = (await stat(output)).size;
      const written = { rows, bytes, minOccurredAt: Number(summary.t0 as bigint), maxOccurredAt: Number(summary.t1 as bigint), rowGroups };
      return {
        path: output,
        rows,
        bytes,
        duplicates: inputRows - distinct,
        firstOffset: String(summary.o0),
        lastOffset: String(summary.o1),
        index: (key) => buildFileIndex(key, written, bloom, subjects),
        ...(hashes ? { hashes: { ...hashes, output: (await rowHashOfFile(conn, output)).rowHash } } : {}),
      };
    } catch (err) {
      await rm(output, { force: true });
      if (err instanceof CompactionError) throw err;
      throw new CompactionError(inputs, (err as Error).message);
    } finally {
      conn.closeSync();
    }
  }

  /**
   * How a Parquet file stores `event_id` ('uuid' or 'text', null without the column), from a local
   * file holding just its footer (footerOnlyFile): older releases stored it as text.
   */
  async eventIdStorage(path: string): Promise<'uuid' | 'text' | null> {
    const conn = await this.instance.connect();
    try {
      const rows = (await conn.runAndReadAll(`SELECT type, logical_type::VARCHAR AS logical FROM parquet_schema(${sqlString(path)}) WHERE name = 'event_id'`)).getRowObjects();
      if (rows.length === 0) return null;
      const type = String(rows[0]!.type);
      return type === 'FIXED_LEN_BYTE_ARRAY' && /UUID/i.test(String(rows[0]!.logical)) ? 'uuid' : 'text';
    } finally {
      conn.closeSync();
    }
  }

  /**
   * The index of a stored data file, read back from it: how the maintainer
   * rebuilds an index that is missing or failed its trust check.
   */
  async indexOf(path: string, key: string): Promise<FileIndex> {
    const conn = await this.instance.connect();
    try {
      const src = sqlString(path);
      const s = (await conn.runAndReadAll(`SELECT count(*) AS n, min(epoch_us(occurred_at)) AS t0, max(epoch_us(occurred_at)) AS t1 FROM read_parquet(${src})`)).getRowObjects()[0]!;
      const written = {
        rows: Number(s.n as bigint),
        bytes: (await stat(path)).size,
        minOccurredAt: Number(s.t0 as bigint),
        maxOccurredAt: Number(s.t1 as bigint),
        rowGroups: await readRowGroups(conn, path),
      };
      return buildFileIndex(key, written, await objectBloomOf(conn, path), await readSubjectFilters(conn, path));
    } finally {
      conn.closeSync();
    }
  }

  close(): void {
    this.instance.closeSync();
  }
}

/** The Bloom filter of a file's object keys, as the writers build it. */
async function objectBloomOf(conn: import('@duckdb/node-api').DuckDBConnection, path: string): Promise<BloomFilter> {
  const objects = (await conn.runAndReadAll(`SELECT DISTINCT object_type, object_id FROM read_parquet(${sqlString(path)})`)).getRowObjects();
  const bloom = BloomFilter.forItems(objects.length);
  for (const o of objects) bloom.addObjectKey(String(o.object_type), String(o.object_id));
  return bloom;
}

/** Each input's rows and row hash, and the copies the merge drops (every row after an event id's first). */
async function inputHashes(conn: import('@duckdb/node-api').DuckDBConnection, inputs: readonly string[]): Promise<Omit<MergeHashes, 'output'>> {
  const per = new Map(
    (
      await conn.runAndReadAll(
        `SELECT merge_source AS src, count(*) AS n, ${rowHashAggregate()} AS h, min(kafka_offset) AS o0, max(kafka_offset) AS o1 FROM merge_input GROUP BY merge_source`,
      )
    )
      .getRowObjects()
      .map((r) => [String(r.src), { rows: Number(r.n as bigint), rowHash: String(r.h), first: String(r.o0), last: String(r.o1) }]),
  );
  const extra = `SELECT * FROM merge_input QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY kafka_partition, kafka_offset) > 1`;
  const d = (
    await conn.runAndReadAll(`SELECT list(kafka_offset ORDER BY kafka_offset) AS offsets, ${rowHashAggregate(ROW_HASH_EXPR)} AS h FROM (${extra})`)
  ).getRowObjects()[0]!;
  const offsets = (d.offsets as { items?: unknown[] } | null)?.items ?? [];
  return {
    inputs: inputs.map((path) => {
      const h = per.get(path);
      if (!h) throw new CompactionError(inputs, `no rows read from ${path}`);
      return h;
    }),
    dropped: { offsets: offsets.map(String), rowHash: String(d.h) },
  };
}

/** Input files read by one DuckDB scan (see merge). */
const FILES_PER_READ = 128;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
