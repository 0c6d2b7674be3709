import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Env } from '../config/env';
import { openStore, type ObjectStore } from '../storage';
import { ObjectCache } from './cache';
import { mapLimit } from './concurrency';
import { type HistoryEvent, type HistoryFilter, openDuckDb, parquetSource, readHistory } from './history';
import { locateFiles, type TimeRange } from './locate';

export interface QueryProgress {
  (done: number, total: number): void;
}

export interface QueryStats {
  filesListed: number;
  filesRead: number;
  bytesFetched: number;
  objectsFetched: number;
  cacheHits: number;
}

export function defaultCacheDir(env: Pick<Env, 'AUDIT_CACHE_DIR'>): string {
  return env.AUDIT_CACHE_DIR ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'audit-query');
}

/** Reads audit data from a store through a local cache of immutable files. */
export class AuditQuery {
  readonly store: ObjectStore;
  readonly cache: ObjectCache;
  private readonly stats: QueryStats = { filesListed: 0, filesRead: 0, bytesFetched: 0, objectsFetched: 0, cacheHits: 0 };

  constructor(env: Pick<Env, 'AUDIT_STORE_URL' | 'AUDIT_S3_ENDPOINT' | 'AUDIT_S3_REGION' | 'AUDIT_CACHE_DIR'>, private readonly progress?: QueryProgress) {
    this.store = openStore(env);
    this.cache = new ObjectCache(defaultCacheDir(env), this.store);
  }

  private async localFiles(filter: Pick<HistoryFilter, 'object' | 'range'>): Promise<string[]> {
    await this.store.check();
    const { candidates, stats } = await locateFiles(this.store, this.cache, filter.object, filter.range);
    this.stats.filesListed = stats.filesListed;
    this.stats.filesRead = candidates.length;
    let done = 0;
    const paths = await mapLimit(candidates, 16, async (c) => {
      const p = await this.cache.file(c.key);
      this.progress?.(++done, candidates.length);
      return p;
    });
    return paths;
  }

  /** One object's (or all objects') events matching the filter, oldest first. */
  async history(filter: HistoryFilter): Promise<HistoryEvent[]> {
    const paths = await this.localFiles(filter);
    const { instance, conn } = await openDuckDb();
    try {
      return await readHistory(conn, paths, filter);
    } finally {
      conn.closeSync();
      instance.closeSync();
    }
  }

  /** Runs an analyst's SQL with a view `audit` over the files in the time range. */
  async sql(text: string, range: TimeRange): Promise<Record<string, unknown>[]> {
    const paths = await this.localFiles({ object: null, range });
    const { instance, conn } = await openDuckDb();
    try {
      if (paths.length > 0) {
        await conn.run(`CREATE VIEW audit AS SELECT * FROM ${parquetSource(paths)}`);
      } else {
        // An empty store still answers schema-correct queries (with no rows).
        const { PARQUET_COLUMNS } = await import('../consumer/parquet-writer');
        await conn.run(`CREATE TABLE audit (${PARQUET_COLUMNS})`);
      }
      const reader = await conn.runAndReadAll(text);
      return reader.getRowObjectsJson() as Record<string, unknown>[];
    } finally {
      conn.closeSync();
      instance.closeSync();
    }
  }

  summary(): QueryStats {
    return { ...this.stats, bytesFetched: this.cache.bytesFetched, objectsFetched: this.cache.objectsFetched, cacheHits: this.cache.hits };
  }

  close(): void {
    this.store.close();
  }
}
