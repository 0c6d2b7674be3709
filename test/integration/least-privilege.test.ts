/**
 * Least privilege for real, on MinIO: the three users of infra/s3-admin.sh, each
 * with its policy from infra/iam/ scoped to one store prefix, run the real
 * processes. The consumer (put/get/list, never delete) survives a SIGKILL and
 * stores every event exactly once with its own keys; the maintainer (adds delete)
 * compacts; the auditor (get/list) queries, and every write with its keys is
 * refused by the server; the consumer's own keys cannot write what only the
 * maintainer writes (generations, compaction and retention digests, day and
 * external manifests, table metadata). Signed digests are on: `audit-query verify` with the
 * auditor's keys finds the trail intact after the consumer's SIGKILL and after compaction.
 */
import { randomUUID } from 'node:crypto';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { Kafka, logLevel } from 'kafkajs';
import { type ObjectInfo, openStore } from '../../storage';
import { auditStore, compareWithProduced, produceEvents } from '../helpers/audit-store';
import { KAFKA_BROKERS, S3_BUCKET, envOf, isolatedEnv, runCli, startCli, waitExit } from '../helpers/infra';
import { type Keys, type Role, asUser, createUsers, removeUsers, s3Client, s3Refusal } from '../helpers/s3-admin';
import { runVerify, signingKeyFile } from '../helpers/trust';

const EVENTS = 3000;
const OBJECTS = 30;

const ACCESS_DENIED = { name: 'AccessDenied', status: 403 };

async function dataFiles(vars: Record<string, string>): Promise<ObjectInfo[]> {
  const store = openStore(envOf(vars));
  const out: ObjectInfo[] = [];
  try {
    for await (const o of store.list('dt=')) if (o.key.endsWith('.parquet')) out.push(o);
  } finally {
    store.close();
  }
  return out;
}

function expectExact(result: ReturnType<typeof compareWithProduced>) {
  expect(result).toEqual({ expected: EVENTS, stored: EVENTS, lost: 0, duplicated: 0, unexpected: 0 });
}

describe('least privilege on MinIO: consumer, maintainer and auditor users from infra/s3-admin.sh', () => {
  const suffix = `-lp-${randomUUID().slice(0, 8)}`;
  const base = isolatedEnv('leastpriv', { AUDIT_FLUSH_MAX_RECORDS: '300', AUDIT_FLUSH_MAX_AGE_MS: '500' });
  /** The store prefix inside the bucket, e.g. tests/leastpriv-1a2b3c4d. */
  const prefix = base.AUDIT_STORE_URL!.slice(`s3://${S3_BUCKET}/`.length);
  let keys: Record<Role, Keys>;
  const as = (role: Role, extra: Record<string, string> = {}) => ({ ...base, ...asUser(keys[role]), ...extra });
  let produced: string[] = [];

  beforeAll(async () => {
    base.AUDIT_SIGNING_KEY_FILE = (await signingKeyFile()).path;
    keys = await createUsers(S3_BUCKET, prefix, suffix);
    produced = await produceEvents(base, 0, EVENTS, { objects: OBJECTS, days: 3 });
  }, 120_000);

  afterAll(() => removeUsers(suffix));

  it('users are created idempotently: a second run converges on the same keys', async () => {
    expect(await createUsers(S3_BUCKET, prefix, suffix)).toEqual(keys);
    expect(keys.consumer.accessKeyId).toBe(`audit-consumer${suffix}`);
  });

  it('the consumer, with its own keys, survives a SIGKILL mid-stream: every event stored once, offsets committed', async () => {
    const child = startCli('consumer', [], as('consumer'));
    const exited = waitExit(child, 120_000);
    // Kill it once it has stored something (so the drain below resumes mid-stream and
    // must adopt or redo cuts without any delete permission).
    const deadline = Date.now() + 60_000;
    while ((await dataFiles(base)).length === 0) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the consumer stored nothing: ${child.exitCode}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    child.kill('SIGKILL');
    expect((await exited).signal).toBe('SIGKILL');

    const drain = await runCli('consumer', ['--drain'], as('consumer'), 180_000);
    expect({ code: drain.code, stderr: drain.code === 0 ? '' : drain.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
    expectExact(compareWithProduced(await auditStore(base), produced));

    const admin = new Kafka({ clientId: 'lp-test', brokers: [KAFKA_BROKERS], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      const ends = await admin.fetchTopicOffsets(base.AUDIT_TOPIC!);
      const [committed] = await admin.fetchOffsets({ groupId: base.AUDIT_CONSUMER_GROUP!, topics: [base.AUDIT_TOPIC!] });
      const byPartition = new Map(committed!.partitions.map((p) => [p.partition, p.offset]));
      for (const end of ends) expect({ partition: end.partition, committed: byPartition.get(end.partition) }).toEqual({ partition: end.partition, committed: end.high });
    } finally {
      await admin.disconnect();
    }
  }, 240_000);

  it('the consumer user cannot delete, nor read or list outside its prefix', async () => {
    const [file] = await dataFiles(base);
    const s3 = s3Client(keys.consumer);
    try {
      const key = `${prefix}/${file!.key}`;
      expect(await s3Refusal(s3.send(new DeleteObjectCommand({ Bucket: S3_BUCKET, Key: key })))).toMatchObject(ACCESS_DENIED);
      expect((await s3.send(new GetObjectCommand({ Bucket: S3_BUCKET, Key: key }))).ContentLength).toBe(file!.size);
      expect(await s3Refusal(s3.send(new ListObjectsV2Command({ Bucket: S3_BUCKET, Prefix: 'tests/' })))).toMatchObject(ACCESS_DENIED);
      expect(await s3Refusal(s3.send(new PutObjectCommand({ Bucket: S3_BUCKET, Key: `${prefix}-other/x`, Body: 'x' })))).toMatchObject(ACCESS_DENIED);
    } finally {
      s3.destroy();
    }
  });

  it('the auditor runs audit-query (history, sql, verify) with its keys; every write with them is refused', async () => {
    const asRoot = await runCli('query', ['--object', 'order:7', '--format', 'ndjson'], base);
    const asAuditor = await runCli('query', ['--object', 'order:7', '--format', 'ndjson'], as('auditor'));
    expect({ code: asAuditor.code, stderr: asAuditor.stderr }).toEqual({ code: 0, stderr: '' });
    const ids = asAuditor.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { event_id: string }).event_id);
    expect(ids.sort()).toEqual(produced.filter((_, i) => i % OBJECTS === 7).sort());
    expect(asAuditor.stdout).toBe(asRoot.stdout);
    const sql = await runCli('query', ['sql', 'SELECT count(*) AS n FROM audit', '--format', 'json'], as('auditor'));
    expect({ code: sql.code, stderr: sql.stderr }).toEqual({ code: 0, stderr: '' });
    expect(sql.stdout).toContain(String(EVENTS));
    const verify = await runVerify(as('auditor'));
    expect({ code: verify.code, findings: verify.findings, stderr: verify.code === 0 ? '' : verify.stderr.slice(-1000) }).toEqual({ code: 0, findings: [], stderr: '' });
    expect(verify.stats.offsets).toBe(String(EVENTS));

    const [file] = await dataFiles(base);
    const key = `${prefix}/${file!.key}`;
    const s3 = s3Client(keys.auditor);
    try {
      expect(await s3Refusal(s3.send(new PutObjectCommand({ Bucket: S3_BUCKET, Key: `${prefix}/dt=2026-05-01/forged.parquet`, Body: 'PAR1' })))).toMatchObject(ACCESS_DENIED);
      expect(await s3Refusal(s3.send(new PutObjectCommand({ Bucket: S3_BUCKET, Key: key, Body: 'PAR1' })))).toMatchObject(ACCESS_DENIED);
      expect(await s3Refusal(s3.send(new PutObjectCommand({ Bucket: S3_BUCKET, Key: `${prefix}/_cuts/x`, Body: '{}', IfNoneMatch: '*' })))).toMatchObject(ACCESS_DENIED);
      expect(await s3Refusal(s3.send(new DeleteObjectCommand({ Bucket: S3_BUCKET, Key: key })))).toMatchObject(ACCESS_DENIED);
      expect((await s3.send(new GetObjectCommand({ Bucket: S3_BUCKET, Key: key }))).ContentLength).toBe(file!.size);
    } finally {
      s3.destroy();
    }
    // The writing processes refuse to start with the auditor's keys, before touching any data.
    const consumer = await runCli('consumer', ['--drain'], as('auditor'), 60_000);
    expect(consumer.code).not.toBe(0);
    expect(consumer.stderr).toMatch(/AccessDenied|access denied/i);
    const maintainer = await runCli('maintenance', ['maintain', '--once'], as('auditor', { AUDIT_COMPACT_MIN_AGE: '0s' }), 60_000);
    expect(maintainer.code).not.toBe(0);
    expect(maintainer.stderr).toMatch(/AccessDenied|access denied/i);
    expectExact(compareWithProduced(await auditStore(base), produced));
  }, 180_000);

  it('the maintainer compacts with its keys (and cleans up: it may delete); the auditor still reads every event', async () => {
    const before = (await dataFiles(base)).length;
    const r = await runCli('maintenance', ['maintain', '--once'], as('maintainer', { AUDIT_COMPACT_MIN_AGE: '0s', AUDIT_COMPACT_GRACE: '0s' }), 180_000);
    expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(/^compacted dt=/m);
    // Grace 0s: the superseded consumer files were deleted in the same pass, with the maintainer's keys.
    expect((await dataFiles(base)).length).toBeLessThan(before);
    expectExact(compareWithProduced(await auditStore(base), produced));
    const q = await runCli('query', ['--object', 'order:7', '--format', 'ndjson'], as('auditor'));
    expect(q.code).toBe(0);
    expect(q.stdout.trim().split('\n')).toHaveLength(EVENTS / OBJECTS);
    const verify = await runVerify(as('auditor'));
    expect({ code: verify.code, findings: verify.findings, stderr: verify.code === 0 ? '' : verify.stderr.slice(-1000) }).toEqual({ code: 0, findings: [], stderr: '' });
  }, 240_000);

  it('what only the maintainer writes is denied to the consumer user (new keys and overwrites); the maintainer writes it', async () => {
    const store = openStore(envOf(base));
    const existing: string[] = [];
    try {
      for await (const o of store.list('')) existing.push(o.key);
    } finally {
      store.close();
    }
    // The maintainer's pass above wrote one of each, with its keys.
    const written = {
      generation: existing.find((k) => /^dt=[^/]+\/_live\/\d{10}\.json$/.test(k)),
      compactionDigest: existing.find((k) => k.startsWith('_digests/compaction/')),
      dayManifest: existing.find((k) => /^_index\/dt=[^/]+\/_manifest\.bin$/.test(k)),
      externalManifest: existing.find((k) => k.startsWith('_symlink_format_manifest/')),
    };
    for (const [what, key] of Object.entries(written)) expect({ what, written: key !== undefined }).toEqual({ what, written: true });
    const denied = [
      ...Object.values(written).map((k) => k!),
      'dt=2026-01-01/_live/0000000099.json',
      '_digests/compaction/dt=2026-01-01/t-0-0-9.c1-abc.json',
      '_digests/retention/dt=2000-01-01.json',
      '_index/dt=2026-01-01/_manifest.bin',
      '_symlink_format_manifest/dt=2026-01-01/manifest',
      '_iceberg/metadata/v1.metadata.json',
    ];
    const consumer = s3Client(keys.consumer);
    const maintainer = s3Client(keys.maintainer);
    try {
      for (const key of denied) {
        for (const ifNoneMatch of [undefined, '*']) {
          const put = consumer.send(new PutObjectCommand({ Bucket: S3_BUCKET, Key: `${prefix}/${key}`, Body: '{}', ...(ifNoneMatch ? { IfNoneMatch: ifNoneMatch } : {}) }));
          expect({ key, ifNoneMatch, refusal: await s3Refusal(put) }).toEqual({ key, ifNoneMatch, refusal: expect.objectContaining(ACCESS_DENIED) as unknown });
        }
      }
      // The maintainer may write every maintainer-only class (new keys, removed again with its own keys).
      const fresh = denied.slice(Object.keys(written).length);
      for (const key of fresh) {
        await maintainer.send(new PutObjectCommand({ Bucket: S3_BUCKET, Key: `${prefix}/${key}`, Body: '{}' }));
        await maintainer.send(new DeleteObjectCommand({ Bucket: S3_BUCKET, Key: `${prefix}/${key}` }));
      }
    } finally {
      consumer.destroy();
      maintainer.destroy();
    }
    // `audit-query index build` writes day manifests: a maintainer's job now. One
    // removed, so the build has something to write.
    const remover = s3Client(keys.maintainer);
    await remover.send(new DeleteObjectCommand({ Bucket: S3_BUCKET, Key: `${prefix}/${written.dayManifest!}` })).finally(() => remover.destroy());
    const asConsumer = await runCli('query', ['index', 'build', '--quiet'], as('consumer'));
    expect({ code: asConsumer.code, denied: /AccessDenied|access denied/i.test(asConsumer.stderr) }).toEqual({ code: 2, denied: true });
    const asMaintainer = await runCli('query', ['index', 'build', '--quiet'], as('maintainer'));
    expect({ code: asMaintainer.code, stderr: asMaintainer.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(asMaintainer.stdout)).toMatchObject({ written: 1 });
    expectExact(compareWithProduced(await auditStore(base), produced));
  }, 120_000);
});
