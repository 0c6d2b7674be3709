/**
 * Writes data files and their indexes straight to a store, in exactly the
 * layout the consumer's sink writes (AuditSink.storeFile): one file per
 * (partition, cut, dt), named by its first/last Kafka offsets, sorted and
 * row-grouped by the project's ParquetWriter, with the index built by the shared
 * `buildFileIndex`; data first, index second. For benchmarks and tests that need
 * a big or a very specific store without going through Kafka.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ParquetWriter, StoredRow } from '../../consumer/parquet-writer';
import { withRetry } from '../../consumer/retry';
import { objectKey } from '../../schemas';
import { type FileIndex, type ObjectStore, buildFileIndex, objectKeyBloom, dataFileName, dataKey, dtOfMicros, indexKey } from '../../storage';
import { type FileEntry, sha256Hex } from '../../trust/format';

export interface StoredFile {
  key: string;
  dt: string;
  bytes: number;
  indexBytes: number;
  rows: number;
  index: FileIndex;
  /** With `digest`: the file's digest entry, as the consumer signs it. */
  entry?: FileEntry;
}

/** Rows of one cut grouped by the UTC date of their event time (late events form their own, older, groups). */
export function groupByDt(rows: readonly StoredRow[]): Map<string, StoredRow[]> {
  const out = new Map<string, StoredRow[]>();
  for (const row of rows) {
    const dt = dtOfMicros(row.record.occurred_at);
    let group = out.get(dt);
    if (!group) out.set(dt, (group = []));
    group.push(row);
  }
  return out;
}

/** Writes one dt group of a cut as the sink does. */
export async function storeDataFile(
  store: ObjectStore,
  writer: ParquetWriter,
  opts: { topic: string; partition: number; dt: string; rows: readonly StoredRow[]; workDir: string; withIndex?: boolean; digest?: boolean },
): Promise<StoredFile> {
  let lo = BigInt(opts.rows[0]!.offset);
  let hi = lo;
  for (const r of opts.rows) {
    const o = BigInt(r.offset);
    if (o < lo) lo = o;
    if (o > hi) hi = o;
  }
  const name = dataFileName(opts.topic, opts.partition, lo.toString(), hi.toString());
  await mkdir(opts.workDir, { recursive: true });
  const local = join(opts.workDir, `${process.pid}-${name}`);
  try {
    const written = await writer.write(opts.rows, local);
    const key = dataKey(opts.dt, name);
    const index = buildFileIndex(key, written, objectKeyBloom(opts.rows.map((r) => objectKey(r.record))), written.subjects);
    const indexText = JSON.stringify(index);
    // Retried like the sink does: loading a big store outlasts a shared test server's restart.
    const retry = <T>(op: () => Promise<T>) => withRetry(op, { retries: 10, maxMs: 15_000 });
    await retry(() => store.putFile(key, local));
    if (opts.withIndex !== false) await retry(() => store.put(indexKey(opts.dt, name), indexText));
    const entry: FileEntry | undefined = opts.digest
      ? { key, size: written.bytes, sha256: sha256Hex(await readFile(local)), rows: written.rows, first: lo.toString(), last: hi.toString(), rowHash: (await writer.rowHash(local)).rowHash }
      : undefined;
    return { key, dt: opts.dt, bytes: written.bytes, indexBytes: opts.withIndex === false ? 0 : Buffer.byteLength(indexText), rows: written.rows, index, ...(entry ? { entry } : {}) };
  } finally {
    await rm(local, { force: true });
  }
}

/** Writes a whole cut (all its dt groups). */
export async function storeCut(
  store: ObjectStore,
  writer: ParquetWriter,
  opts: { topic: string; partition: number; rows: readonly StoredRow[]; workDir: string; digest?: boolean },
): Promise<StoredFile[]> {
  const out: StoredFile[] = [];
  for (const [dt, rows] of groupByDt(opts.rows)) out.push(await storeDataFile(store, writer, { ...opts, dt, rows }));
  return out;
}
