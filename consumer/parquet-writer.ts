import { open, rm, stat } from 'node:fs/promises';
import { DuckDBConnection, DuckDBInstance } from '@duckdb/node-api';
import { BloomFilter } from '../storage/bloom';
import { rowHashOfFile } from '../trust/row-hash';
import type { RowGroupIndex } from '../storage/file-index';
import { type SubjectFilters, readSubjectFilters } from '../storage/subject-filters';
import { COLUMN_TYPES, STAGING_KEYS, type StagedRow, type StoredRow, compareStaged, stageRow } from './staging/staged-row';

export type { StagedRow, StoredRow } from './staging/staged-row';

/** ZSTD (default) compresses best; SNAPPY is readable by every Parquet reader, even minimal ones. */
export type ParquetCompression = 'zstd' | 'snappy' | 'gzip' | 'uncompressed';

/** A row group's byte range and key statistics, as the per-file index stores them. */
export type RowGroupInfo = RowGroupIndex;

export interface WrittenFile {
  path: string;
  rows: number;
  bytes: number;
  minOccurredAt: number;
  maxOccurredAt: number;
  rowGroups: RowGroupInfo[];
  /** Bloom filter of the file's `object_type:object_id` keys, for its index. */
  objectBloom: BloomFilter;
  /** How many distinct objects the file holds. */
  objects: number;
  /** actor_id / tenant_id filters for the index (issue 20). */
  subjects: SubjectFilters;
}

/**
 * Writes audit rows as Parquet files with DuckDB. Rows arrive as staging lines
 * (newline-delimited JSON made by the Avro transcoder, kept in arena chunks).
 * They are put in file order here by sorting row references (cheap: no row is
 * copied), and copied to a staging file in 1 MiB blocks;
 * DuckDB then streams the lines into ZSTD Parquet on its own threads, keeping
 * their order. Measured per 100k rows, this costs about 0.55 s of CPU against
 * 0.75 s for loading the lines into a DuckDB table and sorting there (a sort
 * moves every column), and DuckDB's memory stays small because nothing is held.
 */
export class ParquetWriter {
  /** Files being written, and writes waiting for a slot (see writeFile). */
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly rowGroupRows: number,
    private readonly compression: ParquetCompression,
    private readonly zstdLevel: number,
    private readonly slots: number,
  ) {}

  static async create(opts: {
    rowGroupRows: number;
    compression?: ParquetCompression;
    /** 1 (fastest) .. 22 (smallest); default DEFAULT_ZSTD_LEVEL. */
    zstdLevel?: number;
    /** Files written at once (default 2); each COPY takes DuckDB threads and memory of its own. */
    concurrentWrites?: number;
    threads?: number;
    memoryLimit?: string;
    /** Where DuckDB may spill a large sort instead of failing (default: its own temp dir). */
    spillDir?: string;
  }): Promise<ParquetWriter> {
    const instance = await DuckDBInstance.create(':memory:', {
      threads: String(opts.threads ?? 1),
      memory_limit: opts.memoryLimit ?? '256MB',
      ...(opts.spillDir ? { temp_directory: opts.spillDir } : {}),
      // Never reach out to the network for extensions (air-gapped sites).
      autoinstall_known_extensions: 'false',
      autoload_known_extensions: 'false',
      // Every file it reads (a staging file, a written file hashed for its digest) is read once
      // and deleted: caching them only grows memory (see maintenance/compactor.ts).
      enable_external_file_cache: 'false',
    });
    return new ParquetWriter(instance, opts.rowGroupRows, opts.compression ?? 'zstd', opts.zstdLevel ?? DEFAULT_ZSTD_LEVEL, Math.max(1, opts.concurrentWrites ?? 2));
  }

  /** True when a file written now would start at once rather than wait for another write. */
  get hasFreeSlot(): boolean {
    return this.active < this.slots;
  }

  async write(rows: readonly StoredRow[], path: string): Promise<WrittenFile> {
    return this.writeStaged(rows.map(stageRow), path);
  }

  async writeStaged(rows: readonly StagedRow[], path: string): Promise<WrittenFile> {
    return this.writeFile(path, rows);
  }

  /**
   * At most `slots` files at a time (two by default, with one DuckDB thread
   * each). Measured on the consumer benchmark (2 cores): two single-threaded
   * COPYs kept both cores busier than one COPY on two threads (1M events in
   * 10.5 s against 12 s); each COPY also holds buffers of its own (tens of MB
   * for the JSON reader and the row group being encoded), and three at once, or
   * two on two threads each, ran out of a 128 MB DuckDB memory limit.
   */
  private async writeFile(path: string, rows: readonly StagedRow[]): Promise<WrittenFile> {
    if (this.active < this.slots) this.active++;
    else await new Promise<void>((resolve) => this.waiting.push(resolve)); // the slot is handed over
    try {
      return await this.writeFileNow(path, rows);
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }

  private async writeFileNow(path: string, rows: readonly StagedRow[]): Promise<WrittenFile> {
    if (rows.length === 0) throw new Error('refusing to write an empty Parquet file');
    const staging = `${path}.ndjson`;
    const conn = await this.instance.connect();
    try {
      const sorted = [...rows].sort(compareStaged);
      await writeLines(staging, sorted);
      let longest = 0;
      for (let i = 0; i < sorted.length; i++) longest = Math.max(longest, sorted[i]!.end - sorted[i]!.start);
      // Insertion order is preserved (DuckDB's default), so the file keeps the staging order.
      await conn.run(
        `COPY (SELECT ${SELECT_STAGED} FROM read_ndjson(${sqlString(staging)}, columns = {${STAGED_COLUMNS}}, maximum_object_size = ${jsonObjectLimit(longest)}))
         TO ${sqlString(path)} (FORMAT parquet, COMPRESSION ${this.compression}${this.compression === 'zstd' ? `, COMPRESSION_LEVEL ${this.zstdLevel}` : ''}, ROW_GROUP_SIZE ${this.rowGroupRows})`,
      );
      return await this.describe(conn, path, sorted);
    } finally {
      conn.closeSync();
      await rm(staging, { force: true });
    }
  }

  /** Row-group byte ranges and key statistics, for the per-file index the query side prunes with; `rows` in file order. */
  private async describe(conn: DuckDBConnection, path: string, rows: readonly StagedRow[]): Promise<WrittenFile> {
    const rowGroups = await readRowGroups(conn, path);
    let minT = Infinity;
    let maxT = -Infinity;
    // Rows are in file order: an object's rows are adjacent, so distinct keys need no set.
    let objects = 0;
    for (let i = 0; i < rows.length; i++) {
      const { occurredAt } = rows[i]!;
      if (occurredAt < minT) minT = occurredAt;
      if (occurredAt > maxT) maxT = occurredAt;
      if (startsObject(rows, i)) objects++;
    }
    const objectBloom = BloomFilter.forItems(objects);
    for (let i = 0; i < rows.length; i++) if (startsObject(rows, i)) objectBloom.addObjectKey(rows[i]!.objectType, rows[i]!.objectId);
    const subjects = await readSubjectFilters(conn, path);
    return { path, rows: rows.length, bytes: (await stat(path)).size, minOccurredAt: minT, maxOccurredAt: maxT, rowGroups, objectBloom, objects, subjects };
  }

  /** Rows and order-independent row hash of a written file (its digest entry, trust/row-hash.ts). */
  async rowHash(path: string): Promise<{ rows: number; rowHash: string }> {
    const conn = await this.instance.connect();
    try {
      return await rowHashOfFile(conn, path);
    } finally {
      conn.closeSync();
    }
  }

  close(): void {
    this.instance.closeSync();
  }
}

/**
 * Row-group byte ranges and object key statistics of a Parquet file, as the
 * per-file index stores them (the consumer's files and compacted ones alike).
 */
export async function readRowGroups(conn: DuckDBConnection, path: string): Promise<RowGroupInfo[]> {
  const reader = await conn.runAndReadAll(
    `SELECT row_group_id,
            any_value(row_group_num_rows) AS rows,
            min(coalesce(dictionary_page_offset, data_page_offset)) AS start,
            max(coalesce(dictionary_page_offset, data_page_offset) + total_compressed_size) AS stop,
            max(CASE WHEN path_in_schema = 'object_type' THEN stats_min_value END) AS type_min,
            max(CASE WHEN path_in_schema = 'object_type' THEN stats_max_value END) AS type_max,
            max(CASE WHEN path_in_schema = 'object_id' THEN stats_min_value END) AS id_min,
            max(CASE WHEN path_in_schema = 'object_id' THEN stats_max_value END) AS id_max
     FROM parquet_metadata(${sqlString(path)}) GROUP BY row_group_id ORDER BY row_group_id`,
  );
  return reader.getRowObjects().map((g) => {
    const start = Number(g.start as bigint);
    return {
      offset: start,
      length: Number(g.stop as bigint) - start,
      rows: Number(g.rows as bigint),
      typeMin: nullableString(g.type_min),
      typeMax: nullableString(g.type_max),
      idMin: nullableString(g.id_min),
      idMax: nullableString(g.id_max),
    };
  });
}

/** Is row i the first of its object (rows in file order)? */
function startsObject(rows: readonly StagedRow[], i: number): boolean {
  if (i === 0) return true;
  const a = rows[i - 1]!;
  const b = rows[i]!;
  return a.objectId !== b.objectId || a.objectType !== b.objectType;
}

/** How DuckDB's JSON reader is told to read a staging line's keys. */
const STAGED_COLUMNS = COLUMN_TYPES.map(([n, t]) => `'${STAGING_KEYS.get(n)}': '${t === 'TIMESTAMPTZ' ? 'BIGINT' : t}'`).join(', ');

/** Staging keys back to column names, event time to a timestamp. */
const SELECT_STAGED = COLUMN_TYPES.map(([n, t]) => {
  const key = `"${STAGING_KEYS.get(n)}"`;
  return `${t === 'TIMESTAMPTZ' ? `make_timestamptz(${key})` : key} AS ${n}`;
}).join(', ');

/**
 * Writes the rows' lines in order. Each line is copied from its arena chunk into
 * a 1 MiB block, written when full: measured against gathering a Buffer view
 * per line for writev, this saves making the views and is no slower to write.
 */
async function writeLines(path: string, rows: readonly StagedRow[]): Promise<void> {
  const fh = await open(path, 'w');
  try {
    let block = Buffer.allocUnsafeSlow(WRITE_BLOCK);
    let used = 0;
    // Indexed: an iterator in an async loop allocates a result object per row.
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const n = row.end - row.start;
      if (used + n > block.length) {
        if (used > 0) await fh.write(block, 0, used);
        used = 0;
        if (n > block.length) block = Buffer.allocUnsafeSlow(n);
      }
      used += row.chunk.copy(block, used, row.start, row.end);
    }
    if (used > 0) await fh.write(block, 0, used);
  } finally {
    await fh.close();
  }
}

const WRITE_BLOCK = 1 << 20;

/**
 * DuckDB's JSON reader fails on a line longer than `maximum_object_size`; a value
 * below its default (16 MiB) is raised to it (DuckDB takes the larger), so this
 * only matters for files holding longer lines. Each read allocates twice that
 * (32 MiB by default), of which only what the file fills is touched.
 */
function jsonObjectLimit(longestLine: number): number {
  return Math.max(1 << 20, 2 ** Math.ceil(Math.log2(longestLine + 1)));
}

/**
 * Default ZSTD level of the data files: DuckDB's own (3). Measured on 200k query
 * benchmark rows (4,096-row groups): level 3 54.9 bytes/row, 9: 51.0, 15: 48.9,
 * 19: 48.8; on the consumer benchmark's rows 9 saved 1-2 % of bytes for 1.5-2.3x
 * the compression CPU, which the consumer's event loop shares two cores with.
 * AUDIT_PARQUET_ZSTD_LEVEL trades the other way where storage costs more than CPU.
 */
export const DEFAULT_ZSTD_LEVEL = 3;

function nullableString(v: unknown): string | null {
  return v === null || v === undefined ? null : String(v);
}

export function sqlString(s: string): string {
  return `'${s.replace(/'/g, "''")}'`;
}
