/**
 * audit-cdc killed with SIGKILL while changes stream, then restarted: every
 * change reaches the store exactly once as the query side sees it (a replayed
 * change keeps its event id, and audit-query shows an event id once). Real
 * PostgreSQL, Kafka, audit-consumer, MinIO and audit-query.
 */
import { Pool } from 'pg';
import { parseLsn } from '../../cdc/lsn';
import { auditStore } from '../helpers/audit-store';
import { runCli } from '../helpers/infra';
import { CdcProcess, cdcEnv, dropCapture, parseJson, PG_URL, RecordReader } from '../helpers/cdc';

const ROWS = 2000;
/** Bulk updates of every row, one transaction each, ~100 ms apart: they go on until the kill and a little after. */
const MAX_UPDATES = 40;
const AFTER_KILL = 3;
const { table, vars } = cdcEnv('crash', { AUDIT_FLUSH_MAX_RECORDS: '5000' });
const pool = new Pool({ connectionString: PG_URL, max: 2 });
const reader = new RecordReader(vars.AUDIT_TOPIC!);
const processes: CdcProcess[] = [];

afterAll(async () => {
  for (const p of processes) await p.stop('SIGKILL').catch(() => undefined);
  await reader.stop();
  await dropCapture(pool, vars, table);
  await pool.end();
});

it('stores every change exactly once after a SIGKILL mid-stream and a restart (full audit through audit-query)', async () => {
  await pool.query(`CREATE TABLE "${table}" (id int PRIMARY KEY, v int NOT NULL)`);
  await reader.start();
  const first = new CdcProcess(vars);
  processes.push(first);
  await first.ready();

  // Changes keep coming until after the kill, so it lands while they stream however fast they are
  // published (a fixed burst could be all on the topic before the reader has seen a quarter of it).
  let killedAt: number | null = null;
  let UPDATES = 0;
  let insertedAt: bigint | null = null;
  const writing = (async () => {
    await pool.query(`INSERT INTO "${table}" SELECT g, 0 FROM generate_series(1, ${ROWS}) g`);
    insertedAt = parseLsn((await pool.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn);
    while (UPDATES < MAX_UPDATES && (killedAt === null || UPDATES < killedAt + AFTER_KILL)) {
      await pool.query(`UPDATE "${table}" SET v = v + 1`);
      UPDATES++;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();

  // Kill while the stream is flowing: some events published and confirmed, some published but not
  // confirmed yet (confirmation trails Kafka's acknowledgements), some not published.
  const confirmed = async () =>
    (await pool.query<{ lsn: string }>('SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1', [vars.AUDIT_CDC_SLOT])).rows[0]!.lsn;
  await reader.waitFor(() => true, ROWS * 2, 120_000);
  // Confirmed past the INSERT: the restart must not replay those events (a transaction without events, such as
  // the CREATE TABLE, is confirmed at once and proves nothing).
  while (insertedAt === null || parseLsn(await confirmed()) < insertedAt) await new Promise((r) => setTimeout(r, 20));
  const killed = await first.stop('SIGKILL');
  killedAt = UPDATES;
  expect(killed.signal).toBe('SIGKILL');
  expect(UPDATES).toBeLessThan(MAX_UPDATES);
  // Everything the killed process got onto the topic, not just what the reader had read by then.
  await reader.caughtUp();
  const beforeRestart = reader.records.length;
  await writing;
  const EXPECTED = ROWS * (1 + UPDATES);

  const second = new CdcProcess(vars);
  processes.push(second);
  await second.ready();
  const distinct = () => new Set(reader.records.map((r) => r.event_id)).size;
  const deadline = Date.now() + 180_000;
  while (distinct() < EXPECTED && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  expect(distinct()).toBe(EXPECTED);
  expect(await second.stop('SIGTERM')).toEqual({ code: 0, signal: null });
  await reader.caughtUp();
  const published = reader.records.length;
  // The restart resumed from the confirmed position: it replayed only part of what was published before the kill.
  expect(beforeRestart).toBeLessThan(EXPECTED);
  expect(published - EXPECTED).toBeLessThan(beforeRestart);

  const drain = await runCli('consumer', ['--drain'], vars, 240_000);
  expect({ code: drain.code, stderr: drain.code === 0 ? '' : drain.stderr.slice(-3000) }).toEqual({ code: 0, stderr: '' });

  const q = await runCli('query', ['sql', 'SELECT event_id::VARCHAR AS event_id, object_id, action, after FROM audit', '--format', 'ndjson'], vars, 120_000);
  expect({ code: q.code, stderr: q.code === 0 ? '' : q.stderr }).toEqual({ code: 0, stderr: '' });
  const rows = q.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event_id: string; object_id: string; action: string; after: string });
  // Every published record is stored, replays included (read from the files themselves), and the
  // sql view shows each event id once, as --object does.
  const stored = await auditStore(vars);
  expect(stored.rows).toBe(published);
  expect(stored.counts.size).toBe(EXPECTED);
  expect(rows).toHaveLength(EXPECTED);
  expect(new Set(rows.map((r) => r.event_id)).size).toBe(EXPECTED);

  // Each event id names one change; each change has one event id; every expected change is there.
  const changeOf = new Map<string, string>();
  const idOf = new Map<string, string>();
  for (const r of rows) {
    const change = `${r.object_id}@${parseJson<{ v: number }>(r.after)!.v}:${r.action}`;
    const seen = changeOf.get(r.event_id);
    if (seen !== undefined) expect(seen).toBe(change);
    changeOf.set(r.event_id, change);
    const id = idOf.get(change);
    if (id !== undefined) expect(id).toBe(r.event_id);
    idOf.set(change, r.event_id);
  }
  const expected = new Set<string>();
  for (let id = 1; id <= ROWS; id++) {
    expected.add(`${id}@0:create`);
    for (let u = 1; u <= UPDATES; u++) expected.add(`${id}@${u}:update`);
  }
  expect(idOf.size).toBe(EXPECTED);
  expect([...idOf.keys()].filter((c) => !expected.has(c))).toEqual([]);

  // And through the usual lookup: one object's history, each change once, in order.
  for (const id of [1, Math.floor(ROWS / 2), ROWS]) {
    const h = await runCli('query', ['--object', `${table}:${id}`, '--format', 'ndjson'], vars);
    expect(h.code).toBe(0);
    const versions = h.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { after: { v: number } }).after.v);
    expect(versions).toEqual([...Array(UPDATES + 1).keys()]);
  }
  process.stdout.write(`cdc crash test: ${published} records published for ${EXPECTED} changes (${published - EXPECTED} replayed after SIGKILL at ${beforeRestart})\n`);
}, 600_000);
