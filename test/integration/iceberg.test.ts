/**
 * The store as an Iceberg table, read by an engine that is not ours:
 * pyiceberg's StaticTable on the real S3 server, after the real consumer and
 * `audit-admin maintain`, must return what `audit-query` returns, round after
 * round (new events, late events, compaction), and travel back to a snapshot
 * whose files the grace period still keeps; and registered in a JDBC catalog
 * (pyiceberg's SqlCatalog on SQLite), read there, and re-pointed after a pass.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openStore, readDay } from '../../storage';
import { asTableStore, loadTable, newestSnapshotFiles } from '../../maintenance/iceberg/table-io';
import { produceEvents } from '../helpers/audit-store';
import { ROOT, envOf, isolatedEnv, runCli, runCliOk } from '../helpers/infra';
import { unsignedTrust } from '../helpers/trust';

const run = promisify(execFile);
const SMALL_CUTS = { AUDIT_FLUSH_MAX_RECORDS: '40', AUDIT_FLUSH_MAX_AGE_MS: '500' };
const HOPS = 7 * 3_600_000 + 1_234;

/** Reads the table with pyiceberg: count, event ids, one object's ids, and each snapshot's row count. */
const READER = `
import json, sys, uuid
from pyiceberg.table import StaticTable
from pyiceberg.expressions import And, EqualTo
t = StaticTable.from_metadata(sys.argv[2], properties={
    's3.endpoint': sys.argv[1], 's3.access-key-id': 'minioadmin', 's3.secret-access-key': 'minioadmin', 's3.region': 'us-east-1'})
def ids(tbl):
    out = []
    for v in tbl.column('event_id').to_pylist():
        out.append(str(uuid.UUID(bytes=v)) if isinstance(v, bytes) else str(v))
    return sorted(out)
current = t.scan(selected_fields=('event_id',)).to_arrow()
obj = t.scan(row_filter=And(EqualTo('object_type', 'order'), EqualTo('object_id', '7')), selected_fields=('event_id',)).to_arrow()
snaps = {str(s.snapshot_id): t.scan(snapshot_id=s.snapshot_id, selected_fields=('event_id',)).to_arrow().num_rows for s in t.metadata.snapshots}
print(json.dumps({'count': current.num_rows, 'ids': ids(current), 'object': ids(obj), 'snapshots': snaps,
                  'current': str(t.metadata.current_snapshot_id)}))
`;

/**
 * Iceberg's JDBC catalog, as pyiceberg's SqlCatalog implements it (the same
 * \`iceberg_tables\` rows as Java's JdbcCatalog), on SQLite: registers the
 * table's metadata file (argv[4] = register | re-register | read) and reads it.
 */
const CATALOG = `
import json, sys, uuid
from pyiceberg.catalog.sql import SqlCatalog
cat = SqlCatalog('audit', uri='sqlite:///' + sys.argv[2], **{
    's3.endpoint': sys.argv[1], 's3.access-key-id': 'minioadmin', 's3.secret-access-key': 'minioadmin', 's3.region': 'us-east-1'})
cat.create_namespace_if_not_exists('audit')
if sys.argv[4] == 're-register':
    cat.drop_table('audit.events')  # the catalog row only; purge_table would delete files
if sys.argv[4] != 'read':
    cat.register_table('audit.events', sys.argv[3])
t = cat.load_table('audit.events')
rows = t.scan(selected_fields=('event_id',)).to_arrow().column('event_id').to_pylist()
print(json.dumps({'metadata': t.metadata_location, 'count': len(rows),
                  'ids': sorted(str(uuid.UUID(bytes=v)) if isinstance(v, bytes) else str(v) for v in rows)}))
`;

interface IcebergView {
  count: number;
  ids: string[];
  object: string[];
  snapshots: Record<string, number>;
  current: string;
}

async function drain(vars: Record<string, string>): Promise<void> {
  await runCliOk('consumer', ['--drain'], vars);
}

async function maintain(vars: Record<string, string>): Promise<string> {
  return (await runCliOk('maintenance', ['maintain', '--once'], vars)).stdout;
}

async function auditQueryIds(vars: Record<string, string>, where = ''): Promise<string[]> {
  const r = await runCli('query', ['sql', `SELECT event_id::VARCHAR AS event_id FROM audit ${where}`, '--format', 'ndjson'], vars, 120_000);
  expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { event_id: string }).event_id).sort();
}

describe('the store as an Iceberg table (real Kafka, MinIO, pyiceberg)', () => {
  let python: string;
  beforeAll(async () => {
    python = process.env.AUDIT_TEST_PYTHON ?? (await run('bash', [join(ROOT, 'infra', 'pytools.sh')], { timeout: 600_000 })).stdout.trim();
  }, 600_000);

  async function readTable(vars: Record<string, string>): Promise<IcebergView> {
    const store = openStore(envOf(vars));
    try {
      const table = await loadTable(asTableStore(store)!);
      expect(table).not.toBeNull();
      const out = await run(python, ['-c', READER, vars.AUDIT_S3_ENDPOINT!, store.uri!(table!.key)], { maxBuffer: 64 << 20 });
      return JSON.parse(out.stdout) as IcebergView;
    } finally {
      store.close();
    }
  }

  async function catalog(vars: Record<string, string>, db: string, action: 'register' | 're-register' | 'read'): Promise<{ metadata: string; count: number; ids: string[] }> {
    const store = openStore(envOf(vars));
    try {
      const table = (await loadTable(asTableStore(store)!))!;
      const out = await run(python, ['-c', CATALOG, vars.AUDIT_S3_ENDPOINT!, db, store.uri!(table.key), action], { maxBuffer: 64 << 20 });
      return JSON.parse(out.stdout) as { metadata: string; count: number; ids: string[] };
    } finally {
      store.close();
    }
  }

  /** The newest snapshot's files equal the live set of every day (what verify will check). */
  async function expectSnapshotIsLiveSet(vars: Record<string, string>): Promise<void> {
    const store = openStore(envOf(vars));
    try {
      const days = (await store.listPrefixes('')).filter((p) => p.startsWith('dt=')).map((p) => p.slice(3, -1));
      const live = (await Promise.all(days.map(async (dt) => (await readDay(store, dt, unsignedTrust())).live.map((f) => f.key)))).flat().sort();
      expect((await newestSnapshotFiles(asTableStore(store)!))?.files).toEqual(live);
    } finally {
      store.close();
    }
  }

  it('reads what audit-query reads after new events, late events and compaction, and travels back within the grace period', async () => {
    const vars = isolatedEnv('iceberg', SMALL_CUTS);
    const eager = { ...vars, AUDIT_COMPACT_MIN_AGE: '0s', AUDIT_COMPACT_GRACE: '0s' };

    // Round 1: consumer files, compacted at once.
    await produceEvents(vars, 0, 500, { days: 2, stepMs: HOPS });
    await drain(vars);
    expect(await maintain(eager)).toMatch(/iceberg v1: snapshot \d+ \(append/);
    const r1 = await readTable(vars);
    const q1 = await auditQueryIds(vars);
    expect({ count: r1.count, ids: r1.ids }).toEqual({ count: 500, ids: q1 });
    expect(r1.object).toEqual(await auditQueryIds(vars, "WHERE object_type = 'order' AND object_id = '7'"));
    expect(r1.object.length).toBeGreaterThan(0);
    await expectSnapshotIsLiveSet(vars);

    // Round 2: late events for the same days, left uncompacted (min age): appended, and the previous snapshot stays readable.
    await produceEvents(vars, 500, 300, { days: 2, stepMs: HOPS });
    await drain(vars);
    expect(await maintain({ ...vars, AUDIT_COMPACT_MIN_AGE: '1d', AUDIT_COMPACT_GRACE: '1h' })).toMatch(/iceberg v2: snapshot \d+ \(append/);
    const r2 = await readTable(vars);
    expect({ count: r2.count, ids: r2.ids }).toEqual({ count: 800, ids: await auditQueryIds(vars) });
    expect(r2.snapshots[r1.current]).toBe(500); // time travel to round 1
    await expectSnapshotIsLiveSet(vars);

    // Round 3: compaction replaces them; with no grace the inputs are deleted in the pass, and older snapshots expire with them.
    const out3 = await maintain(eager);
    expect(out3).toMatch(/iceberg v3: snapshot \d+ \((replace|overwrite)/);
    const r3 = await readTable(vars);
    expect({ count: r3.count, ids: r3.ids }).toEqual({ count: 800, ids: await auditQueryIds(vars) });
    expect(r3.object).toEqual(await auditQueryIds(vars, "WHERE object_type = 'order' AND object_id = '7'"));
    expect(Object.keys(r3.snapshots)).toEqual([r3.current]);
    await expectSnapshotIsLiveSet(vars);

    // Registered in a JDBC catalog: the catalog holds a fixed metadata file, which stays readable (and
    // reads the snapshot it named) after later passes until re-registered with the newest one.
    const catalogDir = await mkdtemp(join(tmpdir(), 'iceberg-jdbc-'));
    try {
      const db = join(catalogDir, 'catalog.db');
      const registered = await catalog(vars, db, 'register');
      expect({ count: registered.count, ids: registered.ids }).toEqual({ count: 800, ids: r3.ids });
      await produceEvents(vars, 800, 100, { days: 2, stepMs: HOPS });
      await drain(vars);
      expect(await maintain({ ...vars, AUDIT_COMPACT_MIN_AGE: '1d', AUDIT_COMPACT_GRACE: '1h' })).toMatch(/iceberg v4: snapshot \d+ \(append/);
      const stale = await catalog(vars, db, 'read');
      expect({ metadata: stale.metadata, count: stale.count }).toEqual({ metadata: registered.metadata, count: 800 });
      const repointed = await catalog(vars, db, 're-register');
      expect(repointed.metadata).toMatch(/\/v4\.metadata\.json$/);
      expect({ count: repointed.count, ids: repointed.ids }).toEqual({ count: 900, ids: await auditQueryIds(vars) });
    } finally {
      await rm(catalogDir, { recursive: true, force: true });
    }
  }, 600_000);
});
