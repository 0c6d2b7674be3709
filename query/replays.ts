import { createHash, randomUUID } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DuckDBConnection } from '@duckdb/node-api';
import { parquetSource } from './history';

/** A data file of the sql command's view: its store key and size (which identify it) and its local copy. */
export interface ViewFile {
  key: string;
  size: number;
  path: string;
}

/** A row to leave out of the view: a later copy of an event id stored before. */
export interface LaterCopy {
  path: string;
  row: bigint;
}

interface Stored {
  v: 1;
  /** [data key, file_row_number] of each later copy. */
  copies: [string, string][];
}

/**
 * The later copies of replayed events (an event id stored at two Kafka positions: audit-cdc
 * resending an unconfirmed transaction, a producer retry Kafka accepted twice), which the
 * `audit` view leaves out. The first copy wins: lowest Kafka partition, then offset, as
 * `--object` picks; identical positions (the same cut read twice) by file, then row.
 *
 * Finding them means grouping every event id, which costs more than many queries it serves
 * (a count comes from Parquet metadata alone). An event's copies share its `dt=` day (the
 * day of its occurred_at), so days are searched separately and the answer for a day's exact
 * set of files (keys and sizes: files never change) is kept in the query cache: a repeated
 * query searches only the days that gained files since (today, a day with late events).
 */
export class ReplayFinder {
  constructor(
    private readonly dir: string,
    private readonly store: string,
  ) {}

  async laterCopies(conn: DuckDBConnection, files: readonly ViewFile[]): Promise<LaterCopy[]> {
    const byDay = new Map<string, ViewFile[]>();
    for (const f of files) {
      const day = /(?:^|\/)dt=([^/]+)\//.exec(f.key)?.[1] ?? '';
      let list = byDay.get(day);
      if (!list) byDay.set(day, (list = []));
      list.push(f);
    }
    const out: LaterCopy[] = [];
    for (const dayFiles of byDay.values()) {
      const pathOf = new Map(dayFiles.map((f) => [f.key, f.path]));
      const cachePath = this.cachePath(dayFiles);
      let copies = await this.load(cachePath);
      if (copies === null) {
        copies = await search(conn, dayFiles);
        await this.save(cachePath, copies);
      }
      for (const [key, row] of copies) {
        const path = pathOf.get(key);
        if (path !== undefined) out.push({ path, row: BigInt(row) });
      }
    }
    return out;
  }

  private cachePath(files: readonly ViewFile[]): string {
    const h = createHash('sha256').update(this.store);
    for (const id of files.map((f) => `${f.key}\u0000${f.size}`).sort()) h.update(`\u0001${id}`);
    const hex = h.digest('hex');
    return join(this.dir, 'replays', hex.slice(0, 2), `${hex.slice(2, 40)}.json`);
  }

  private async load(path: string): Promise<[string, string][] | null> {
    try {
      const s = JSON.parse(await readFile(path, 'utf8')) as Stored;
      return s.v === 1 && Array.isArray(s.copies) ? s.copies : null;
    } catch {
      return null;
    }
  }

  private async save(path: string, copies: [string, string][]): Promise<void> {
    const tmp = `${path}.${randomUUID()}.tmp`;
    try {
      await mkdir(join(path, '..'), { recursive: true });
      await writeFile(tmp, JSON.stringify({ v: 1, copies } satisfies Stored));
      await rename(tmp, path);
    } catch {
      await rm(tmp, { force: true }); // a cache only: never fail a query for it
    }
  }
}

/** One day's later copies, by data key and row; the ids are grouped first from the event_id column alone. */
async function search(conn: DuckDBConnection, files: readonly ViewFile[]): Promise<[string, string][]> {
  const paths = files.map((f) => f.path);
  const keyOf = new Map(files.map((f) => [f.path, f.key]));
  const src = parquetSource(paths);
  const positioned = src.replace(/\)$/, ', filename = true, file_row_number = true)');
  const reader = await conn.runAndReadAll(
    `SELECT filename, file_row_number FROM (
       SELECT filename, file_row_number,
              row_number() OVER (PARTITION BY event_id ORDER BY kafka_partition, kafka_offset, filename, file_row_number) AS copy
       FROM ${positioned}
       WHERE event_id IN (SELECT event_id FROM ${src} GROUP BY event_id HAVING count(*) > 1)
     ) WHERE copy > 1`,
  );
  return reader.getRowObjects().map((r) => [keyOf.get(String(r.filename)) ?? String(r.filename), String(r.file_row_number)]);
}
