/**
 * audit-admin maintain on the real broker and the real S3 server: compaction
 * of small and late files, the generation commit under kills, races and a
 * consumer writing meanwhile, external readers, retention and Object Lock.
 * Every scenario ends with a full audit of the live files' event ids.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  CreateBucketCommand,
  ListObjectsV2Command,
  PutObjectLockConfigurationCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Kafka, logLevel } from 'kafkajs';
import { ParquetWriter } from '../../consumer/parquet-writer';
import { type ObjectInfo, openStore } from '../../storage';
import { parseStoredFile, readDay } from '../../catalog';
import { resolveTrust } from '../../trust/trust-policy';
import { storeCut } from '../../bench/lib/store-writer';
import { auditStore, compareWithProduced, eventId, produceEvents } from '../helpers/audit-store';
import { KAFKA_BROKERS, ROOT, S3_ENDPOINT, S3_SERVERS, envOf, isolatedEnv, runCli, startCli, waitExit } from '../helpers/infra';
import { sampleRecord } from '../helpers/records';
import { expectVerified, signingKeyFile } from '../helpers/trust';

const run = promisify(execFile);
const SMALL_CUTS = { AUDIT_FLUSH_MAX_RECORDS: '40', AUDIT_FLUSH_MAX_AGE_MS: '500' };
const NOW_ALL = { AUDIT_COMPACT_MIN_AGE: '0s' };
/** Event times hopping between days, so every cut also holds late events of earlier days. */
const HOPS = 7 * 3_600_000 + 1_234;

async function drain(vars: Record<string, string>): Promise<void> {
  const r = await runCli('consumer', ['--drain'], vars, 180_000);
  expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
}

async function maintain(vars: Record<string, string>, args: string[] = ['--once']) {
  const r = await runCli('maintenance', ['maintain', ...args], vars, 180_000);
  expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
  return r;
}

async function listAll(vars: Record<string, string>, prefix = ''): Promise<ObjectInfo[]> {
  const store = openStore(envOf(vars));
  const out: ObjectInfo[] = [];
  for await (const o of store.list(prefix)) out.push(o);
  store.close();
  return out;
}

/** Live files per day: how many per (topic, partition), and of which kind. */
async function liveShape(vars: Record<string, string>) {
  const store = openStore(envOf(vars));
  const days = (await store.listPrefixes('')).filter((p) => p.startsWith('dt=')).map((p) => p.slice(3, -1));
  const shape: Record<string, { files: number; compacted: number; perPartition: number }> = {};
  for (const dt of days) {
    const day = await readDay(store, dt, await resolveTrust({ trustedKeysFile: vars.AUDIT_TRUSTED_KEYS_FILE, store, role: 'test' }));
    const perPartition = new Map<number, number>();
    for (const f of day.live) perPartition.set(f.ref.partition, (perPartition.get(f.ref.partition) ?? 0) + 1);
    shape[dt] = { files: day.live.length, compacted: day.live.filter((f) => f.ref.kind === 'compacted').length, perPartition: Math.max(...perPartition.values()) };
  }
  store.close();
  return shape;
}

function expectExact(result: ReturnType<typeof compareWithProduced>, expected: number) {
  expect(result).toEqual({ expected, stored: expected, lost: 0, duplicated: 0, unexpected: 0 });
}

describe.each(S3_SERVERS)('audit-admin maintain on $name (real Kafka, real S3)', (server) => {
  const onServer = (vars: Record<string, string>): Record<string, string> => ({ ...vars, AUDIT_S3_ENDPOINT: server.endpoint });

  it('compacts small and late files into one file per day and partition, drops extra copies, dry run changes nothing, external readers count each event once', async () => {
    const vars = onServer(isolatedEnv('compact', SMALL_CUTS));
    const produced = await produceEvents(vars, 0, 3_000, { days: 3, stepMs: HOPS });
    // A producer retry that Kafka accepted twice: the same 150 events again, at new offsets.
    await produceEvents(vars, 0, 150, { days: 3, stepMs: HOPS });
    await drain(vars);
    const before = await listAll(vars);
    const rawAudit = await auditStore(vars);
    expect(rawAudit.rows).toBe(3_150); // stored twice before compaction
    expect(Object.values(await liveShape(vars)).every((d) => d.perPartition > 5)).toBe(true);

    const dry = await maintain({ ...vars, ...NOW_ALL }, ['--dry-run']);
    expect(dry.stdout).toMatch(/would compact dt=2026-05-0\d /);
    expect(await listAll(vars)).toEqual(before);

    const pass = await maintain({ ...vars, ...NOW_ALL });
    const report = JSON.parse(pass.stdout.trim().split('\n').pop()!).pass;
    expect(report.duplicatesDropped).toBe(150);
    expect(report.rowsWritten).toBe(3_000);
    const shape = await liveShape(vars);
    expect(Object.keys(shape).length).toBe(3);
    for (const d of Object.values(shape)) expect(d).toEqual({ files: d.compacted, compacted: d.compacted, perPartition: 1 });
    expectExact(compareWithProduced(await auditStore(vars), produced), 3_000);

    // audit-query reads the live files only (superseded ones are still there: grace period).
    const q = await runCli('query', ['--object', 'order:7', '--format', 'ndjson'], vars);
    expect(q.code).toBe(0);
    const rows = q.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event_id: string });
    expect(rows.map((r) => r.event_id).sort()).toEqual(produced.filter((_, i) => i % 50 === 7).sort());

    // An engine outside the project: pyarrow reads the Hive symlink manifests (what Athena/Trino/Spark read).
    const python = process.env.AUDIT_TEST_PYTHON ?? (await run('bash', [join(ROOT, 'infra', 'pytools.sh')])).stdout.trim();
    const script = `
import sys, pyarrow.fs as pafs, pyarrow.parquet as pq
fs = pafs.S3FileSystem(endpoint_override=sys.argv[1], scheme='http', access_key='minioadmin', secret_key='minioadmin', region='us-east-1')
base = sys.argv[2]
files = []
for info in fs.get_file_info(pafs.FileSelector(base + '/_symlink_format_manifest', recursive=True)):
    if info.is_file:
        with fs.open_input_stream(info.path) as f:
            files += [l[len('s3://'):] for l in f.read().decode().split('\\n') if l]
t = pq.ParquetDataset(files, filesystem=fs).read(columns=['event_id'])
ids = t.column('event_id').to_pylist()
print(len(files), len(ids), len(set(ids)))
`;
    const url = new URL(vars.AUDIT_STORE_URL!);
    const out = await run(python, ['-c', script, server.endpoint.replace(/^https?:\/\//, ''), `${url.host}${url.pathname}`]);
    const [files, count, distinct] = out.stdout.trim().split(' ').map(Number);
    expect({ files: files! <= 9, count, distinct }).toEqual({ files: true, count: 3_000, distinct: 3_000 });

    // After the grace period the superseded files go; the day still reads the same.
    await maintain({ ...vars, ...NOW_ALL, AUDIT_COMPACT_GRACE: '0s' });
    const left = await listAll(vars, 'dt=');
    expect(left.filter((o) => parseStoredFile(o.key)?.kind === 'raw')).toEqual([]);
    expectExact(compareWithProduced(await auditStore(vars), produced), 3_000);
  }, 300_000);

  it('is exact after being SIGKILLed at each step and re-run, with the consumer adding late events to the same days between passes', async () => {
    const vars = onServer(isolatedEnv('crash', { ...SMALL_CUTS, AUDIT_SIGNING_KEY_FILE: (await signingKeyFile()).path }));
    const produced: string[] = [];
    let next = 0;
    for (const crashAt of ['after-upload', 'before-commit', 'after-commit', 'mid-cleanup']) {
      produced.push(...(await produceEvents(vars, next, 600, { days: 2, stepMs: HOPS })));
      next += 600;
      await drain(vars);
      const killed = await runCli('maintenance', ['maintain', '--once'], { ...vars, ...NOW_ALL, AUDIT_COMPACT_GRACE: '0s', AUDIT_TEST_CRASH_AT: crashAt }, 120_000);
      expect({ crashAt, signal: killed.signal }).toEqual({ crashAt, signal: 'SIGKILL' });
      expectExact(compareWithProduced(await auditStore(vars), produced), produced.length);
      await maintain({ ...vars, ...NOW_ALL, AUDIT_COMPACT_GRACE: '0s' });
      expectExact(compareWithProduced(await auditStore(vars), produced), produced.length);
      // Killed passes leave orphans and unsigned merges behind; none of it makes the store fail verify.
      await expectVerified(vars, produced.length);
    }
    for (const d of Object.values(await liveShape(vars))) expect(d.perPartition).toBe(1);
  }, 400_000);

});

describe('audit-admin maintain beside a running consumer (real Kafka, real S3)', () => {
  it('two maintainers at once while a consumer writes late events into the days being compacted: every event exactly once', async () => {
    const vars = isolatedEnv('race', SMALL_CUTS);
    const produced = await produceEvents(vars, 0, 2_000, { days: 2, stepMs: HOPS });
    await drain(vars);
    const consumer = startCli('consumer', [], vars);
    const consumerExit = waitExit(consumer, 240_000);
    const late = produceEvents(vars, 2_000, 2_000, { days: 2, stepMs: HOPS });
    const [a, b] = await Promise.all([
      runCli('maintenance', ['maintain', '--once'], { ...vars, ...NOW_ALL }, 180_000),
      runCli('maintenance', ['maintain', '--once'], { ...vars, ...NOW_ALL }, 180_000),
    ]);
    produced.push(...(await late));
    expect([a.code, b.code]).toEqual([0, 0]);
    // Mid-stream, whatever is stored so far is stored once (the rest is still being read).
    const mid = compareWithProduced(await auditStore(vars), produced);
    expect({ duplicated: mid.duplicated, unexpected: mid.unexpected }).toEqual({ duplicated: 0, unexpected: 0 });
    expect(mid.stored).toBeGreaterThanOrEqual(2_000);
    consumer.kill('SIGTERM');
    expect((await consumerExit).code).toBe(0);
    await drain(vars);
    await maintain({ ...vars, ...NOW_ALL });
    expectExact(compareWithProduced(await auditStore(vars), produced), 4_000);
    for (const d of Object.values(await liveShape(vars))) expect(d.perPartition).toBe(1);
  }, 400_000);

  it('a consumer replaying adopted cuts after compaction brings back no copies; claims go once the group has committed past them', async () => {
    const vars = isolatedEnv('replay', { ...SMALL_CUTS, AUDIT_SIGNING_KEY_FILE: (await signingKeyFile()).path });
    const produced = await produceEvents(vars, 0, 1_500, { days: 2, stepMs: HOPS });
    await drain(vars);
    // As if the consumer had crashed before committing anything: the group starts over, the claims stay.
    const kafka = new Kafka({ clientId: 'test-reset', brokers: [KAFKA_BROKERS], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.resetOffsets({ groupId: vars.AUDIT_CONSUMER_GROUP!, topic: vars.AUDIT_TOPIC!, earliest: true });
    const claimsBefore = (await listAll(vars, '_cuts/')).length;
    expect(claimsBefore).toBeGreaterThan(10);
    await maintain({ ...vars, ...NOW_ALL });
    expect((await listAll(vars, '_cuts/')).length).toBe(claimsBefore); // nothing committed past them
    await drain(vars); // replays every cut: adopts the claims; their digests show them stored, so it only commits
    const raw = (await listAll(vars, 'dt=')).filter((o) => parseStoredFile(o.key)?.kind === 'raw');
    expect(raw.length).toBeGreaterThan(10);
    expectExact(compareWithProduced(await auditStore(vars), produced), 1_500);
    const offsets = await admin.fetchOffsets({ groupId: vars.AUDIT_CONSUMER_GROUP!, topics: [vars.AUDIT_TOPIC!] });
    await admin.disconnect();
    expect(offsets[0]!.partitions.every((p) => Number(p.offset) > 0)).toBe(true);
    await maintain({ ...vars, ...NOW_ALL, AUDIT_COMPACT_GRACE: '0s' });
    expect(await listAll(vars, '_cuts/')).toEqual([]);
    expect((await listAll(vars, 'dt=')).filter((o) => parseStoredFile(o.key)?.kind === 'raw')).toEqual([]);
    expectExact(compareWithProduced(await auditStore(vars), produced), 1_500);
    await expectVerified(vars, 1_500);
  }, 300_000);
});

describe('audit-admin: bad input', () => {
  it('names the bad setting or argument in one line and exits 2; a missing bucket exits 1 naming it', async () => {
    const vars = isolatedEnv('admin-args');
    const badEnv = await runCli('maintenance', ['maintain', '--once'], { ...vars, AUDIT_RETENTION: '7 years' });
    expect({ code: badEnv.code, lines: badEnv.stderr.trim().split('\n').length }).toEqual({ code: 2, lines: 1 });
    expect(badEnv.stderr).toMatch(/AUDIT_RETENTION: "7 years" is not a duration/);
    const badDay = await runCli('maintenance', ['maintain', '--once', '--since', '2026-13-01'], vars);
    expect(badDay.code).toBe(2);
    expect(badDay.stderr).toMatch(/--since.*YYYY-MM-DD/);
    expect((await runCli('maintenance', ['forget', '--subject', 'invoice:1'], vars)).code).toBe(2);
    expect((await runCli('maintenance', [], vars)).code).toBe(2);
    const noBucket = await runCli('maintenance', ['maintain', '--once'], { ...vars, AUDIT_STORE_URL: 's3://no-such-bucket-here/x' });
    expect(noBucket.code).toBe(1);
    expect(noBucket.stderr).toMatch(/^audit-admin: .*no-such-bucket-here.*does not exist/m);
  }, 60_000);
});

describe('retention (real S3)', () => {
  const DAY = 86_400_000;

  /** Writes 40 events into each of the given days, straight into the store as the consumer would. */
  async function writeDays(vars: Record<string, string>, days: number[]): Promise<void> {
    const store = openStore(envOf(vars));
    const writer = await ParquetWriter.create({ rowGroupRows: 4096 });
    const workDir = await mkdtemp(join(tmpdir(), 'retention-'));
    try {
      let offset = 0;
      for (const t of days) {
        const rows = Array.from({ length: 40 }, (_, i) => ({
          record: sampleRecord({ event_id: eventId(offset + i), occurred_at: (t + i * 60_000) * 1000, object_id: `r-${i % 5}` }),
          partition: 0,
          offset: String(offset + i),
          size: 300,
        }));
        offset += rows.length;
        await storeCut(store, writer, { topic: 'audit.events', partition: 0, rows, workDir });
      }
    } finally {
      writer.close();
      store.close();
      await rm(workDir, { recursive: true, force: true });
    }
  }

  it('removes exactly the days past AUDIT_RETENTION, data and indexes together; dry run removes nothing', async () => {
    const vars = isolatedEnv('retention');
    const today = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate());
    const old = [today - 500 * DAY, today - 450 * DAY, today - 401 * DAY];
    const recent = [today - 399 * DAY, today - DAY];
    await writeDays(vars, [...old, ...recent]);
    await maintain(vars); // index and external manifests for every day
    const dt = (t: number) => new Date(t).toISOString().slice(0, 10);
    const before = await listAll(vars);
    const retained = { ...vars, AUDIT_RETENTION: '400d' };
    const dry = await maintain(retained, ['--dry-run']);
    expect(dry.stdout.split('\n').filter((l) => l.startsWith('would expire')).map((l) => l.split(' ')[2])).toEqual(old.map((t) => `dt=${dt(t)}:`));
    expect(await listAll(vars)).toEqual(before);
    await maintain(retained);
    // The Iceberg table's metadata is rewritten by every pass (its retention is a delete snapshot, tested with the table).
    const notTable = (l: typeof before) => l.filter((o) => !o.key.startsWith('_iceberg/'));
    const after = notTable(await listAll(vars));
    const daysLeft = [...new Set(after.filter((o) => !o.key.startsWith('_cuts/')).map((o) => /dt=(\d{4}-\d{2}-\d{2})/.exec(o.key)?.[1]))].sort();
    expect(daysLeft).toEqual(recent.map(dt));
    // Nothing of the recent days was touched.
    expect(after).toEqual(notTable(before).filter((o) => recent.some((t) => o.key.includes(`dt=${dt(t)}/`)) || o.key.startsWith('_cuts/')));
  }, 120_000);

  it('leaves and reports days under S3 Object Lock, pass after pass, without failing', async () => {
    const bucket = `audit-lock-${Date.now().toString(36)}`;
    const s3 = new S3Client({ endpoint: S3_ENDPOINT, forcePathStyle: true, region: 'us-east-1' });
    await s3.send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true }));
    await s3.send(
      new PutObjectLockConfigurationCommand({
        Bucket: bucket,
        ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 1 } } },
      }),
    );
    const vars = isolatedEnv('locked', { AUDIT_STORE_URL: `s3://${bucket}/locked` });
    const today = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate());
    await writeDays(vars, [today - 500 * DAY]);
    const before = await listAll(vars);
    for (let pass = 0; pass < 2; pass++) {
      const r = await maintain({ ...vars, AUDIT_RETENTION: '400d' });
      expect(r.stdout).toMatch(/^locked dt=\d{4}-\d{2}-\d{2}: past retention \(400d\), kept: \d+ of \d+ objects under Object Lock \(until 20\d\d-/m);
      expect(JSON.parse(r.stdout.trim().split('\n').pop()!).pass.daysLocked).toBe(1);
    }
    const after = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'locked/dt=' }));
    expect((after.Contents ?? []).length).toBe(before.filter((o) => o.key.startsWith('dt=')).length);
    s3.destroy();
  }, 120_000);
});
