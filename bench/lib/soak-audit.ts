/**
 * The soak's final audit, reading the store directly: the live data files (the same
 * live-set rules as every reader, under the soak's own key), downloaded and counted by
 * DuckDB. App events carry ids the audit recomputes (soakEventId): per app, the stored
 * ids must be exactly 0..n-1, each once. Captured row changes (audit-cdc) are counted by
 * the row they describe: every inserted row once, by a single event id.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type ObjectInfo, liveDataFiles, openStore } from '../../storage';
import { openDuckDb } from '../../query/history';
import { sqlString } from '../../storage/sql';
import { resolveTrust } from '../../trust/trust-policy';
import { readEnv } from '../../config/env';

export interface AppAudit {
  app: number;
  expected: number;
  rows: number;
  distinct: number;
  /** Highest sequence stored (hex id suffix), -1 when none. */
  maxSeq: number;
  lost: number;
  duplicated: number;
  unexpected: number;
}

export interface CdcAudit {
  expectedRows: number;
  storedEvents: number;
  distinctEventIds: number;
  distinctRows: number;
  /** Rows described by more than one event id: a change captured twice as two changes. */
  rowsWithSeveralIds: number;
  /** Stored copies of an event id beyond the first: a replay after a kill of audit-cdc re-sends the same change under the same id. */
  replayedCopies: number;
  lost: number;
}

export interface StoreAuditResult {
  files: number;
  bytes: number;
  rows: number;
  rejectedGenerations: number;
  apps: AppAudit[];
  cdc: CdcAudit;
  otherRows: number;
  seconds: number;
}

export async function auditSoakStore(
  vars: Record<string, string>,
  publicKeyPem: string,
  apps: { app: number; expected: number }[],
  cdc: { objectType: string; expectedRows: number },
  scratch: string,
): Promise<StoreAuditResult> {
  const t0 = Date.now();
  const store = openStore(readEnv(vars));
  const dir = await mkdtemp(join(scratch, 'audit-'));
  const { instance, conn } = await openDuckDb();
  try {
    const listed: ObjectInfo[] = [];
    for await (const obj of store.list('dt=')) listed.push(obj);
    const policy = await resolveTrust({ pinned: [{ pem: publicKeyPem, source: 'the soak signing key' }], store, role: 'soak audit' });
    const live = await liveDataFiles(listed, { policy, store, get: (key) => store.get(key) });
    const paths: string[] = [];
    let bytes = 0;
    // A few downloads at a time: thousands of small cuts one by one would take minutes.
    const queue = [...live.files];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let f = queue.shift(); f; f = queue.shift()) {
          const local = join(dir, `${paths.length}-${f.key.replace(/[^A-Za-z0-9.-]/g, '_')}`);
          paths.push(local);
          bytes += f.size;
          await store.download(f.key, local);
        }
      }),
    );
    const files = paths.length === 0 ? "['/dev/null']" : `[${paths.map(sqlString).join(',')}]`;
    await conn.run(`CREATE TABLE ev AS SELECT CAST(event_id AS VARCHAR) AS id, source_service AS src, object_type, object_id FROM read_parquet(${files})`);
    const rows = Number((await conn.runAndReadAll('SELECT count(*)::BIGINT AS n FROM ev')).getRowObjects()[0]!.n);
    const appRows = (
      await conn.runAndReadAll(
        `SELECT src, count(*)::BIGINT AS n, count(DISTINCT id)::BIGINT AS d, max(right(id, 12)) AS mx FROM ev WHERE src LIKE 'soak-app-%' GROUP BY src`,
      )
    ).getRowObjects();
    const appAudits: AppAudit[] = apps.map(({ app, expected }) => {
      const r = appRows.find((x) => x.src === `soak-app-${app}`);
      const n = r ? Number(r.n) : 0;
      const d = r ? Number(r.d) : 0;
      const maxSeq = r ? parseInt(String(r.mx), 16) : -1;
      // Ids are generated only as 0..expected-1; with the highest below `expected`, `d` distinct of them
      // means expected - d lost, and n - d copies beyond the first.
      return { app, expected, rows: n, distinct: d, maxSeq, lost: expected - d, duplicated: n - d, unexpected: maxSeq >= expected ? 1 : 0 };
    });
    const c = (
      await conn.runAndReadAll(
        `SELECT count(*)::BIGINT AS n, count(DISTINCT id)::BIGINT AS d, count(DISTINCT object_id)::BIGINT AS r FROM ev WHERE object_type = ${sqlString(cdc.objectType)}`,
      )
    ).getRowObjects()[0]!;
    const several = Number(
      (
        await conn.runAndReadAll(
          `SELECT count(*)::BIGINT AS n FROM (SELECT object_id FROM ev WHERE object_type = ${sqlString(cdc.objectType)} GROUP BY object_id HAVING count(DISTINCT id) > 1)`,
        )
      ).getRowObjects()[0]!.n,
    );
    const cdcAudit: CdcAudit = {
      expectedRows: cdc.expectedRows,
      storedEvents: Number(c.n),
      distinctEventIds: Number(c.d),
      distinctRows: Number(c.r),
      rowsWithSeveralIds: several,
      replayedCopies: Number(c.n) - Number(c.d),
      lost: cdc.expectedRows - Number(c.r),
    };
    const known = appAudits.reduce((a, x) => a + x.rows, 0) + cdcAudit.storedEvents;
    return { files: paths.length, bytes, rows, rejectedGenerations: live.rejected.length, apps: appAudits, cdc: cdcAudit, otherRows: rows - known, seconds: (Date.now() - t0) / 1000 };
  } finally {
    conn.closeSync();
    instance.closeSync();
    store.close();
    await rm(dir, { recursive: true, force: true });
  }
}
