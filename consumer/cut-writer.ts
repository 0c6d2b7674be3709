import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { type ObjectStore, buildFileIndex, dataFileName, dataKey, dtOfMicros, indexKey } from '../storage';
import { encodeFileIndex } from '../storage/signed-index';
import type { DigestSigner } from '../trust/signer';
import { type FileEntry, sha256Hex } from '../trust/format';
import type { ParquetWriter } from './parquet-writer';
import type { StagedRow } from './staging/staged-row';

export interface CutWriterDeps {
  topic: string;
  store: Pick<ObjectStore, 'put' | 'putFile'>;
  writer: ParquetWriter;
  workDir: string;
  /** Runs a storage or write step under the sink's retry budget. */
  retry: <T>(what: string, op: () => Promise<T>) => Promise<T>;
  /** Also hash each file's bytes and rows, for its digest entry. */
  digests: boolean;
  /** Signs each file's index, bound to the file (storage/signed-index.ts); null = unsigned store. */
  signer: DigestSigner | null;
  /** Names this process in signed indexes. */
  owner?: string;
}

export interface CutFiles {
  files: FileEntry[];
  /** Bytes stored. */
  bytes: number;
}

/**
 * Writes one cut's rows as Parquet (one file per event date) and uploads them
 * with their indexes: the writing half of storing a cut; committing is the
 * queue's (consumer/cut-queue.ts). The files of a cut are written and uploaded
 * side by side (the Parquet writer bounds how many DuckDB writes run at once),
 * so one file's upload overlaps the next one's write.
 */
export class CutWriter {
  private fileSeq = 0;

  constructor(private readonly deps: CutWriterDeps) {}

  async write(partition: number, rows: readonly StagedRow[]): Promise<CutFiles> {
    const byDate = new Map<string, StagedRow[]>();
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const dt = dtOfMicros(row.occurredAt);
      let group = byDate.get(dt);
      if (!group) byDate.set(dt, (group = []));
      group.push(row);
    }
    await mkdir(this.deps.workDir, { recursive: true });
    const files = [...byDate].map(([dt, group]) => {
      const name = dataFileName(this.deps.topic, partition, group[0]!.offset, group[group.length - 1]!.offset);
      return { dt, name, path: join(this.deps.workDir, `${process.pid}-${++this.fileSeq}-${name}`), rows: group };
    });
    const outcomes = await Promise.allSettled(files.map((f) => this.writeOne(f)));
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw failed.reason;
    const entries = outcomes.map((o) => (o as PromiseFulfilledResult<FileEntry>).value);
    return { files: entries, bytes: entries.reduce((n, e) => n + e.size, 0) };
  }

  private async writeOne({ dt, name, path, rows }: { dt: string; name: string; path: string; rows: StagedRow[] }): Promise<FileEntry> {
    try {
      // Local failures (DuckDB out of memory while other files are written, a full disk) pass too.
      const written = await this.deps.retry('write', () => this.deps.writer.writeStaged(rows, path));
      const key = dataKey(dt, name);
      const index = buildFileIndex(key, written, written.objectBloom, written.subjects);
      const entry: FileEntry = { key, size: (await stat(path)).size, sha256: '', rows: written.rows, first: rows[0]!.offset, last: rows[rows.length - 1]!.offset, rowHash: '' };
      if (this.deps.digests) {
        entry.sha256 = sha256Hex(await readFile(path));
        entry.rowHash = (await this.deps.writer.rowHash(path)).rowHash;
      }
      // Data first, index second: a reader that finds an index can trust the file is there.
      await this.deps.retry('upload', () => this.deps.store.putFile(key, path));
      const stored = encodeFileIndex(index, this.deps.signer, { ...(this.deps.owner ? { writer: this.deps.owner } : {}), ...(entry.sha256 ? { sha256: entry.sha256 } : {}) });
      await this.deps.retry('upload index', () => this.deps.store.put(indexKey(dt, name), stored));
      return entry;
    } finally {
      await rm(path, { force: true });
    }
  }
}
