/**
 * Walking skeleton, end to end on the real broker and the real S3 server:
 * AuditClient -> Kafka -> audit-consumer --drain -> Parquet on S3 -> audit-query,
 * on each S3 server (MinIO and versitygw).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditClient } from '../../producer';
import { openStore, parseDataKey } from '../../storage';
import { envOf, isolatedEnv, runCli, S3_SERVERS } from '../helpers/infra';
import { readParquetRows, uuidText } from '../helpers/parquet-interop';
import { mapLimit } from '../../query/concurrency';

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
