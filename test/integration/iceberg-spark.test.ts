/**
 * The store as an Iceberg table read by Apache Spark (3.5, Iceberg's runtime, s3a; local
 * mode, jars from Maven Central through infra/spark.sh) on the real S3 server, through a
 * Hadoop catalog over the bucket, i.e. by `version-hint.text`, as a user's Spark would:
 * after each round (consumer files, late events of schema v1 and v2, compaction) Spark's
 * count, distinct event ids and one object's events equal what `audit-query` returns for
 * the live set of that pass, and time travel reaches a snapshot the grace period keeps.
 * One Spark session serves the whole file: its start is most of its cost.
 * AUDIT_TEST_TIMINGS=1 prints Spark's start and per-query times (stderr) at the end.
 */
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { encodeRecord, type AuditRecord } from '../../schemas';
import { eventId, produceEvents } from '../helpers/audit-store';
import { isolatedEnv, KAFKA_BROKERS, runCli, runCliOk } from '../helpers/infra';
import { sampleRecord } from '../helpers/records';
import { sparkTable, startSpark, type SparkSql } from '../helpers/spark';

const SMALL_CUTS = { AUDIT_FLUSH_MAX_RECORDS: '40', AUDIT_FLUSH_MAX_AGE_MS: '500' };
const HOPS = 7 * 3_600_000 + 1_234;
const OBJECT_WHERE = "object_type = 'order' AND object_id = '7'";

async function drain(vars: Record<string, string>): Promise<void> {
  await runCliOk('consumer', ['--drain'], vars);
}

async function maintain(vars: Record<string, string>): Promise<string> {
  return (await runCliOk('maintenance', ['maintain', '--once'], vars)).stdout;
}

async function auditQuery(vars: Record<string, string>, args: string[]): Promise<Record<string, unknown>[]> {
  const r = await runCli('query', [...args, '--format', 'ndjson'], vars, 120_000);
  expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A Spark timestamp literal in the session's zone (infra/spark.sh sets UTC), as a user would write one. */
const timestampLiteral = (ms: number): string => `TIMESTAMP '${new Date(ms).toISOString().replace('T', ' ').replace('Z', '')}'`;

const idsOf = (rows: Record<string, unknown>[]): string[] => rows.map((r) => String(r.event_id)).sort();

/** Schema v1 records (no duration or error fields) straight onto the topic, as an old producer sends them. */
async function produceV1(vars: Record<string, string>, start: number, count: number): Promise<void> {
  const kafka = new Kafka({ clientId: 'v1-producer', brokers: [KAFKA_BROKERS], logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  try {
    const messages = [];
    for (let i = start; i < start + count; i++) {
      const rec = sampleRecord({
        event_id: eventId(i),
        object_type: 'order',
        object_id: String(i % 50),
        occurred_at: (Date.UTC(2026, 4, 1) + ((i * HOPS) % (2 * 86_400_000))) * 1000,
      });
      const { duration_ms, error_type, error_message, error_stack, ...v1 } = rec;
      void duration_ms, error_type, error_message, error_stack;
      messages.push({ key: `order:${rec.object_id}`, value: encodeRecord({ ...v1, schema_version: 1 } as AuditRecord, 1) });
    }
    await producer.send({ topic: vars.AUDIT_TOPIC!, messages });
  } finally {
    await producer.disconnect();
  }
}

describe('the store as an Iceberg table, read by Apache Spark (real Kafka, MinIO, Spark local mode)', () => {
  let spark: Promise<SparkSql> | undefined;
  const queryMs: number[] = [];

  beforeAll(() => {
    // Started now and awaited at the first query, so its start overlaps the first round's producing.
    spark = startSpark();
    spark.catch(() => undefined);
  });

  afterAll(async () => {
    const s = await spark?.catch(() => undefined);
    await s?.close();
    if (s && process.env.AUDIT_TEST_TIMINGS) {
      process.stderr.write(
        `spark: start ${s.startMs} ms (session ${s.sessionMs} ms); ${queryMs.length} queries: ${queryMs.join(', ')} ms\n`,
      );
    }
  }, 120_000);

  it("returns audit-query's answers after new events, late v1 and v2 events and compaction, and travels back within the grace period", async () => {
    const vars = isolatedEnv('iceberg-spark', SMALL_CUTS);
    const eager = { ...vars, AUDIT_COMPACT_MIN_AGE: '0s', AUDIT_COMPACT_GRACE: '0s' };
    const table = sparkTable(vars.AUDIT_STORE_URL!);

    async function rows(sql: string): Promise<Record<string, unknown>[]> {
      const s = await spark!;
      const a = await s.sql(sql);
      queryMs.push(a.ms);
      if (!a.ok) throw new Error(`spark: ${sql}\n${a.error}`);
      return a.rows;
    }
    /** What both sides must agree on after a pass: the count, the distinct ids, every id, one object's ids. */
    async function expectSameAsAuditQuery(expectedCount: number): Promise<void> {
      const counts = await rows(`SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM ${table}`);
      const sparkIds = idsOf(await rows(`SELECT event_id FROM ${table}`));
      const queryIds = idsOf(await auditQuery(vars, ['sql', 'SELECT event_id::VARCHAR AS event_id FROM audit']));
      expect(queryIds).toHaveLength(expectedCount);
      expect({ counts, ids: sparkIds }).toEqual({ counts: [{ n: queryIds.length, ids: new Set(queryIds).size }], ids: queryIds });
      const sparkObject = idsOf(await rows(`SELECT event_id FROM ${table} WHERE ${OBJECT_WHERE}`));
      expect(sparkObject.length).toBeGreaterThan(0);
      expect(sparkObject).toEqual(idsOf(await auditQuery(vars, ['--object', 'order:7'])));
    }
    const snapshots = async (): Promise<{ id: string; at: number }[]> =>
      (await rows(`SELECT CAST(snapshot_id AS STRING) AS id, unix_millis(committed_at) AS at FROM ${table}.snapshots ORDER BY committed_at`)).map(
        (r) => ({ id: String(r.id), at: Number(r.at) }),
      );

    // Round 1: consumer files, compacted at once.
    await produceEvents(vars, 0, 500, { days: 2, stepMs: HOPS });
    await drain(vars);
    expect(await maintain(eager)).toMatch(/iceberg v1: snapshot \d+ \(append/);
    await expectSameAsAuditQuery(500);
    const s1 = await snapshots();
    expect(s1).toHaveLength(1);

    // Round 2: late events for the same days, v2 (with the field v2 added) and v1 (without),
    // left uncompacted (min age): appended, and round 1's snapshot stays readable.
    await produceEvents(vars, 500, 300, { days: 2, stepMs: HOPS, extra: { durationMs: 12.5 } });
    await produceV1(vars, 800, 100);
    await drain(vars);
    expect(await maintain({ ...vars, AUDIT_COMPACT_MIN_AGE: '1d', AUDIT_COMPACT_GRACE: '1h' })).toMatch(/iceberg v2: snapshot \d+ \(append/);
    await expectSameAsAuditQuery(900);
    const bySchema = `SELECT schema_version, count(*) AS n, count(duration_ms) AS with_duration FROM %T GROUP BY schema_version ORDER BY schema_version`;
    const sparkSchemas = await rows(bySchema.replace('%T', table));
    expect(sparkSchemas).toEqual([
      { schema_version: 1, n: 100, with_duration: 0 },
      { schema_version: 2, n: 800, with_duration: 300 },
    ]);
    expect(sparkSchemas).toEqual(
      (await auditQuery(vars, ['sql', bySchema.replace('%T', 'audit')])).map((r) => ({
        schema_version: Number(r.schema_version),
        n: Number(r.n),
        with_duration: Number(r.with_duration),
      })),
    );
    // The v1 events of the object read beside its v2 events, their missing field as null
    // (which Spark's JSON rows leave out).
    const objectRows = await rows(`SELECT schema_version, duration_ms FROM ${table} WHERE ${OBJECT_WHERE}`);
    expect(new Set(objectRows.map((r) => r.schema_version))).toEqual(new Set([1, 2]));
    expect(objectRows.filter((r) => r.schema_version === 1).every((r) => r.duration_ms === undefined)).toBe(true);
    // Time travel to round 1, by snapshot id and by time.
    const s2 = await snapshots();
    expect(s2.map((s) => s.id)).toEqual([s1[0]!.id, expect.any(String)]);
    expect(await rows(`SELECT count(*) AS n FROM ${table} VERSION AS OF ${s1[0]!.id}`)).toEqual([{ n: 500 }]);
    expect(await rows(`SELECT count(*) AS n FROM ${table} TIMESTAMP AS OF ${timestampLiteral(s1[0]!.at)}`)).toEqual([{ n: 500 }]);
    expect(await rows(`SELECT count(*) AS n FROM ${table} TIMESTAMP AS OF ${timestampLiteral(s2[1]!.at)}`)).toEqual([{ n: 900 }]);

    // Round 3: compaction replaces them; with no grace the inputs are deleted in the pass, and
    // the snapshots that named them expire with them: Spark can no longer travel there.
    expect(await maintain(eager)).toMatch(/iceberg v3: snapshot \d+ \((replace|overwrite)/);
    await expectSameAsAuditQuery(900);
    const s3 = await snapshots();
    expect(s3).toHaveLength(1);
    expect(s3[0]!.id).not.toBe(s2[1]!.id);
    const expired = await (await spark!).sql(`SELECT count(*) AS n FROM ${table} VERSION AS OF ${s1[0]!.id}`);
    expect(expired).toMatchObject({ ok: false, error: expect.stringMatching(/Cannot find snapshot/) });
  }, 600_000);
});
