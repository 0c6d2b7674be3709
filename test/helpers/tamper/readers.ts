import { fileURLToPath } from 'node:url';
import { FileObjectStore } from '../../../storage';
import { openDuckDb } from '../../../query/history';
import { sqlString } from '../../../storage/sql';
import { AuditQuery } from '../../../query/query';
import { runVerify } from '../../../query/verify-command';
import { EXTERNAL_MANIFEST_PREFIX } from '../../../maintenance/external-manifest';

export type ReaderName = 'object' | 'sql' | 'external';

/** What one reader returned: event id -> times returned, or why it failed. */
export type ReaderResult = { counts: Map<string, number> } | { error: string };

export interface VerifyOutcome {
  code: number;
  findings: string[];
  /** What verify said on stderr when it could not run (exit 2). */
  stderr: string;
}

/** `audit-query verify --format json --trust KEY.pub` in-process, against `file://storeDir`. */
export async function verifyInProcess(storeDir: string, publicKeyFile: string): Promise<VerifyOutcome> {
  process.env.AUDIT_STORE_URL = `file://${storeDir}`;
  let stdout = '';
  let stderr = '';
  const err = { isTTY: false, write: (s: string) => ((stderr += s), true) } as unknown as NodeJS.WriteStream;
  const code = await runVerify({ format: 'json', trust: [publicKeyFile] }, async (t) => void (stdout += t), err);
  let findings: string[] = [];
  if (code === 0 || code === 1) {
    const report = JSON.parse(stdout) as { findings: { code: string; key: string }[] };
    findings = report.findings.map((f) => `${f.code} ${f.key}`);
  }
  return { code, findings, stderr: stderr.trim() };
}

function tally(ids: Iterable<string>): Map<string, number> {
  const m = new Map<string, number>();
  for (const id of ids) m.set(id, (m.get(id) ?? 0) + 1);
  return m;
}

async function guarded(read: () => Promise<Map<string, number>>): Promise<ReaderResult> {
  try {
    return { counts: await read() };
  } catch (err) {
    return { error: (err as Error).message.split('\n')[0]!.slice(0, 300) };
  }
}

/**
 * The three ways the trail is read: `audit-query --object` for every object
 * (the query/ API), the `sql` view, and the external symlink manifests (the
 * files they list, read as an external engine would). A fresh cache directory
 * per call: nothing read before the mutation may answer after it.
 */
export async function readAll(storeDir: string, cacheDir: string, objectIds: readonly string[]): Promise<Record<ReaderName, ReaderResult>> {
  const env = { AUDIT_STORE_URL: `file://${storeDir}`, AUDIT_S3_REGION: 'us-east-1', AUDIT_CACHE_DIR: cacheDir };
  const range = { since: null, until: null };
  const object = await guarded(async () => {
    const q = new AuditQuery(env);
    try {
      const ids: string[] = [];
      for (const id of objectIds) {
        const events = await q.history({ object: { type: 'invoice', id }, range, actor: null, action: null });
        ids.push(...events.map((e) => e.event_id));
      }
      return tally(ids);
    } finally {
      q.close();
    }
  });
  const sql = await guarded(async () => {
    const q = new AuditQuery(env);
    try {
      const rows = await q.sql('SELECT CAST(event_id AS VARCHAR) AS id, count(*)::INTEGER AS n FROM audit GROUP BY 1', range);
      return new Map(rows.map((r) => [String(r.id), Number(r.n)]));
    } finally {
      q.close();
    }
  });
  const external = await guarded(() => readExternalManifests(storeDir));
  return { object, sql, external };
}

/** Every file every `_symlink_format_manifest/dt=*\/manifest` lists, read with DuckDB: what Athena or Spark would count. */
async function readExternalManifests(storeDir: string): Promise<Map<string, number>> {
  const store = new FileObjectStore(storeDir);
  const paths: string[] = [];
  for await (const o of store.list(EXTERNAL_MANIFEST_PREFIX)) {
    const text = (await store.get(o.key))?.toString('utf8') ?? '';
    for (const line of text.split('\n').filter((l) => l.trim() !== '')) paths.push(fileURLToPath(line.trim()));
  }
  if (paths.length === 0) return new Map();
  const { instance, conn } = await openDuckDb();
  try {
    const r = await conn.runAndReadAll(
      `SELECT CAST(event_id AS VARCHAR) AS id, count(*)::INTEGER AS n FROM read_parquet([${paths.map(sqlString).join(',')}], union_by_name = true) GROUP BY 1`,
    );
    return new Map(r.getRowObjects().map((row) => [String(row.id), Number(row.n)]));
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}
