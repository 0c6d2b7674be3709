/**
 * Walking skeleton, end to end on the real broker and the real S3 server:
 * AuditClient -> Kafka -> audit-consumer --drain -> Parquet on S3 -> audit-query,
 * on each S3 server (MinIO and versitygw).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { AuditClient } from '../../producer';
import { openStore, parseDataKey } from '../../storage';
import { envOf, isolatedEnv, runCli, S3_SERVERS } from '../helpers/infra';
import { readParquetRows, uuidText } from '../helpers/parquet-interop';
import { mapLimit } from '../../storage/concurrency';

const OBJECTS = 100;
const EVENTS_PER_OBJECT = 100;
const DAY0 = Date.UTC(2026, 2, 1);
const SPAN_MS = 3 * 86_400_000 - 60_000;

describe.each(S3_SERVERS)('pipeline end to end (real Kafka, real S3: $name)', ({ name, endpoint }) => {
  const vars = isolatedEnv(`e2e-${name}`, { AUDIT_FLUSH_MAX_RECORDS: '1500', AUDIT_S3_ENDPOINT: endpoint });
  const produced = new Map<string, string[]>(); // object id -> event ids in order

  beforeAll(async () => {
    const client = new AuditClient({ brokers: [vars.AUDIT_KAFKA_BROKERS!], topic: vars.AUDIT_TOPIC, sourceService: 'e2e-test' });
    // Interleave objects so every file holds many objects, as in real traffic.
    for (let seq = 0; seq < EVENTS_PER_OBJECT; seq++) {
      for (let o = 0; o < OBJECTS; o++) {
        const eventId = `00000000-0000-4000-8000-${String(o * 1000 + seq).padStart(12, '0')}`;
        const ids = produced.get(String(o)) ?? [];
        ids.push(eventId);
        produced.set(String(o), ids);
        void client.record({
          eventId,
          objectType: 'invoice',
          objectId: o,
          action: seq === 0 ? 'create' : 'update',
          occurredAt: DAY0 + Math.floor((seq * SPAN_MS) / EVENTS_PER_OBJECT) + o,
          actorId: `user-${o % 7}`,
          changes: seq === 0 ? undefined : { seq: { old: seq - 1, new: seq } },
          after: { seq, total: o * 10 },
          metadata: { seq: String(seq) },
        });
      }
    }
    expect(await client.flush(60_000)).toBe(true);
    await client.close();
    expect(client.stats()).toMatchObject({ delivered: OBJECTS * EVENTS_PER_OBJECT, dropped: 0, invalid: 0 });

    const run = await runCli('consumer', ['--drain'], vars, 180_000);
    if (run.code !== 0) throw new Error(`audit-consumer --drain exited ${run.code}: ${run.stderr.slice(-3000)}`);
  }, 300_000);

  // One CLI run per object is the slow part: a second server answers for every
  // fifth object (its ranged reads are the same code path); the next test audits
  // every stored row on every server.
  const everyObject = name === S3_SERVERS[0]!.name;
  it(`returns ${everyObject ? 'every object history' : 'the histories of every fifth object'} complete, ordered and without duplicates through audit-query`, async () => {
    const ids = [...produced.keys()].filter((_, i) => everyObject || i % 5 === 0);
    await mapLimit(ids, 4, async (o) => {
      const res = await runCli('query', ['--object', `invoice:${o}`, '--format', 'ndjson'], vars);
      expect({ code: res.code, stderr: res.code === 0 ? '' : res.stderr }).toEqual({ code: 0, stderr: '' });
      const events = res.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event_id: string; occurred_at: string; metadata: { seq: string } });
      expect(events.map((e) => e.event_id)).toEqual(produced.get(o));
      expect(events.map((e) => Number(e.metadata.seq))).toEqual([...Array(EVENTS_PER_OBJECT).keys()]);
      const times = events.map((e) => e.occurred_at);
      expect([...times].sort()).toEqual(times);
    });
  }, 300_000);

  it('stores real Parquet files under the dt= of each event, readable by parquetjs-lite', async () => {
    const store = openStore(envOf(vars));
    const dir = await mkdtemp(join(tmpdir(), 'e2e-parquet-'));
    try {
      const seen = new Set<string>();
      const dts = new Set<string>();
      let files = 0;
      for await (const obj of store.list('dt=')) {
        const ref = parseDataKey(obj.key);
        expect(ref).not.toBeNull();
        files++;
        dts.add(ref!.dt);
        const local = join(dir, `f${files}.parquet`);
        await store.download(obj.key, local);
        const rows = await readParquetRows(local);
        expect(rows.length).toBeGreaterThan(0);
        for (const row of rows) {
          const at = row.occurred_at as Date;
          expect(at).toBeInstanceOf(Date);
          expect(at.toISOString().slice(0, 10)).toBe(ref!.dt);
          expect(Number(row.kafka_partition)).toBe(ref!.partition);
          const offset = BigInt(row.kafka_offset as bigint);
          expect(offset >= BigInt(ref!.firstOffset) && offset <= BigInt(ref!.lastOffset)).toBe(true);
          const id = uuidText(row.event_id);
          expect(seen.has(id)).toBe(false);
          seen.add(id);
        }
      }
      expect(seen.size).toBe(OBJECTS * EVENTS_PER_OBJECT);
      // parquetjs-lite reads event_id (a UUID column) back as exactly the ids the app produced.
      expect([...seen].sort()).toEqual([...produced.values()].flat().sort());
      expect([...dts].sort()).toEqual(['2026-03-01', '2026-03-02', '2026-03-03']);
      expect(files).toBeGreaterThan(3);
    } finally {
      store.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000);
});

/**
 * What a new user hit (issue 12), end to end through the consumer's fast path and audit-query:
 * backfilled old history is stored (not dead-lettered), an `after` with one 2 MB field keeps its
 * other fields (so --as-of rebuilds the state), and `__proto__` keys of changes/metadata survive.
 */
describe('producer fixes, end to end (real Kafka, real S3)', () => {
  const vars = isolatedEnv('e2e-fixes');
  const id = randomUUID().slice(0, 8);
  const OLD = `old-${id}`;
  const BIG = `big-${id}`;
  const PROTO = `proto-${id}`;
  const at = (iso: string) => Date.parse(iso);
  const query = async (args: string[]) => {
    const res = await runCli('query', args, vars);
    expect({ code: res.code, stderr: res.code === 0 ? '' : res.stderr }).toEqual({ code: 0, stderr: '' });
    return res.stdout;
  };
  let stats: ReturnType<AuditClient['stats']>;

  beforeAll(async () => {
    const client = new AuditClient({ brokers: [vars.AUDIT_KAFKA_BROKERS!], topic: vars.AUDIT_TOPIC, sourceService: 'e2e-fixes' });
    await client.record({ objectType: 'contract', objectId: OLD, action: 'create', occurredAt: '1970-01-01T00:00:00Z', after: { status: 'signed' } });
    await client.record({ objectType: 'contract', objectId: OLD, action: 'update', occurredAt: '1999-01-01T12:00:00Z', changes: { status: { old: 'signed', new: 'renewed' } } });
    // Refused in record(), never sent: the consumer would dead-letter it.
    await client.record({ objectType: 'contract', objectId: OLD, action: 'update', occurredAt: '1969-12-31T23:59:59Z' });
    await client.record({
      objectType: 'invoice', objectId: BIG, action: 'create', occurredAt: at('2026-03-01T10:00:00Z'),
      after: { status: 'paid', total: 1350, scan: { name: 'scan.pdf', data: 'A'.repeat(2 * 1024 * 1024) } },
    });
    await client.record({
      objectType: 'doc', objectId: PROTO, action: 'update', occurredAt: at('2026-03-01T11:00:00Z'),
      changes: JSON.parse('{"__proto__":{"old":"a","new":"b"},"title":{"old":"x","new":"y"}}') as Record<string, { old: unknown; new: unknown }>,
      metadata: JSON.parse('{"__proto__":"kept","source":"form"}') as Record<string, string>,
    });
    expect(await client.flush(30_000)).toBe(true);
    await client.close();
    stats = client.stats();
    const run = await runCli('consumer', ['--drain'], vars, 180_000);
    if (run.code !== 0) throw new Error(`audit-consumer --drain exited ${run.code}: ${run.stderr.slice(-3000)}`);
  }, 300_000);

  it('stores backfilled history from 1970 on, and the producer refuses what the consumer would dead-letter', async () => {
    expect(stats).toMatchObject({ delivered: 4, invalid: 1, truncated: 1, dropped: 0 });
    const events = (await query(['--object', `contract:${OLD}`, '--format', 'ndjson'])).trim().split('\n').map((l) => JSON.parse(l) as { occurred_at: string });
    expect(events.map((e) => e.occurred_at)).toEqual(['1970-01-01T00:00:00.000000Z', '1999-01-01T12:00:00.000000Z']);
    const state = JSON.parse(await query(['--object', `contract:${OLD}`, '--as-of', '2000-01-01', '--format', 'json'])) as { state: unknown }[];
    expect(state[0]!.state).toEqual({ status: 'renewed' });
    // Nothing was dead-lettered.
    const kafka = new Kafka({ clientId: 'e2e-fixes', brokers: [vars.AUDIT_KAFKA_BROKERS!], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const topics = await admin.listTopics();
      const dlq = `${vars.AUDIT_TOPIC}.dlq`;
      const offsets = topics.includes(dlq) ? await admin.fetchTopicOffsets(dlq) : [];
      expect(offsets.reduce((n, p) => n + Number(p.high), 0)).toBe(0);
    } finally {
      await admin.disconnect();
    }
  });

  it('keeps the other fields of an after with one 2 MB field, so --as-of rebuilds the state', async () => {
    const [event] = (await query(['--object', `invoice:${BIG}`, '--format', 'ndjson'])).trim().split('\n').map((l) => JSON.parse(l) as { metadata: Record<string, string> });
    expect(event!.metadata['audit.truncated']).toBe('after.scan.data');
    const [asOf] = JSON.parse(await query(['--object', `invoice:${BIG}`, '--as-of', '2026-03-02', '--format', 'json'])) as { state: { status: string; total: number; scan: { name: string; data: string } } }[];
    expect(asOf!.state).toMatchObject({ status: 'paid', total: 1350, scan: { name: 'scan.pdf' } });
    expect(asOf!.state.scan.data).toMatch(/^A+…\[truncated \d+ bytes\]$/);
    expect(asOf!.state.scan.data.length).toBeLessThan(16 * 1024);
  });

  it('keeps "__proto__" keys of changes and metadata through the consumer and audit-query', async () => {
    const line = (await query(['--object', `doc:${PROTO}`, '--format', 'ndjson'])).trim();
    const event = JSON.parse(line) as { changes: Record<string, unknown>; metadata: Record<string, unknown> };
    expect(Object.keys(event.changes).sort()).toEqual(['__proto__', 'title']);
    expect(Object.getOwnPropertyDescriptor(event.changes, '__proto__')?.value).toEqual({ old: 'a', new: 'b' });
    expect(Object.getOwnPropertyDescriptor(event.metadata, '__proto__')?.value).toBe('kept');
    expect(event.metadata.source).toBe('form');
  });
});
