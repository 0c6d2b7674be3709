/**
 * S3 Object Lock for real, on MinIO: a bucket made by infra/s3-admin.sh
 * (versioning + Object Lock + default retention), the real consumer storing into
 * it, the real maintainer compacting on it, audit-query reading it back, and the
 * server refusing to delete a locked version and keeping it through an overwrite.
 * The processes run as the least-privilege users of infra/iam/ (the production
 * set-up): the consumer and the auditor cannot delete, the maintainer can only add
 * delete markers, and it must see each object's retention to keep locked days.
 *
 * What MinIO answers (checked below): an overwrite (PUT on an existing key) is
 * accepted and makes a new version, the locked one stays readable by version id;
 * a DeleteObject with a VersionId of a locked version is refused with HTTP 400
 * InvalidRequest "Object is WORM protected and cannot be overwritten" (AWS S3
 * answers 403 AccessDenied); a DeleteObject without a VersionId is accepted and
 * adds a delete marker. In GOVERNANCE mode a caller with the bypass permission (the
 * root user here) may still delete a version with x-amz-bypass-governance-retention;
 * in COMPLIANCE mode nobody can before the retention date.
 */
import { randomUUID } from 'node:crypto';
import {
  DeleteObjectCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  GetObjectLockConfigurationCommand,
  HeadObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { type ObjectInfo, openStore, parseDataKey } from '../../storage';
import { liveDataFiles } from '../../catalog';
import { resolveTrust } from '../../trust/trust-policy';
import { auditStore, compareWithProduced, produceEvents } from '../helpers/audit-store';
import { envOf, isolatedEnv, runCli } from '../helpers/infra';
import { type Keys, type Role, asUser, createUsers, removeUsers, s3Admin, s3Client, s3Refusal } from '../helpers/s3-admin';
import { runVerify, signingKeyFile } from '../helpers/trust';

const OBJECTS = 20;
const EVENTS = 1200;
const DAY_MS = 86_400_000;

async function listData(vars: Record<string, string>): Promise<ObjectInfo[]> {
  const store = openStore(envOf(vars));
  const out: ObjectInfo[] = [];
  for await (const o of store.list('dt=')) out.push(o);
  store.close();
  return out;
}

async function liveKeys(vars: Record<string, string>): Promise<string[]> {
  const store = openStore(envOf(vars));
  try {
    const policy = await resolveTrust({ store, role: 'test' });
    return (await liveDataFiles(await listData(vars), { policy, store, get: (k) => store.get(k) })).files.map((f) => f.key).sort();
  } finally {
    store.close();
  }
}

/** Every version and delete marker under a prefix, by key. */
async function versionsOf(s3: S3Client, bucket: string, prefix: string) {
  const byKey = new Map<string, { versions: { id: string; latest: boolean }[]; markers: { id: string; latest: boolean }[] }>();
  const entry = (k: string) => byKey.get(k) ?? byKey.set(k, { versions: [], markers: [] }).get(k)!;
  let keyMarker: string | undefined;
  let versionMarker: string | undefined;
  do {
    const out = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker: keyMarker, VersionIdMarker: versionMarker }));
    for (const v of out.Versions ?? []) entry(v.Key!).versions.push({ id: v.VersionId!, latest: v.IsLatest === true });
    for (const m of out.DeleteMarkers ?? []) entry(m.Key!).markers.push({ id: m.VersionId!, latest: m.IsLatest === true });
    keyMarker = out.IsTruncated ? out.NextKeyMarker : undefined;
    versionMarker = out.IsTruncated ? out.NextVersionIdMarker : undefined;
  } while (keyMarker);
  return byKey;
}

async function bodyOf(s3: S3Client, bucket: string, key: string, versionId?: string): Promise<Buffer> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key, VersionId: versionId }));
  return Buffer.from(await out.Body!.transformToByteArray());
}

async function history(vars: Record<string, string>, object: string): Promise<{ event_id: string; occurred_at: string }[]> {
  const r = await runCli('query', ['--object', object, '--format', 'ndjson'], vars);
  expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
  return r.stdout.trim() === '' ? [] : r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { event_id: string; occurred_at: string });
}

describe('S3 Object Lock on MinIO (infra/s3-admin.sh lock-bucket; real Kafka, consumer, maintainer, audit-query)', () => {
  const id = randomUUID().slice(0, 8);
  const bucket = `audit-lock-${id}`;
  const prefix = 'trail';
  const vars = isolatedEnv('objlock', { AUDIT_STORE_URL: `s3://${bucket}/${prefix}`, AUDIT_FLUSH_MAX_RECORDS: '100', AUDIT_FLUSH_MAX_AGE_MS: '500' });
  const s3 = s3Client();
  let produced: string[] = [];
  /** Event ids of object order:3, as produced (object = index % OBJECTS). */
  let object3: string[] = [];
  let lockOutput = '';
  let keys: Record<Role, Keys>;
  const as = (role: Role, extra: Record<string, string> = {}) => ({ ...vars, ...asUser(keys[role]), ...extra });

  beforeAll(async () => {
    vars.AUDIT_SIGNING_KEY_FILE = (await signingKeyFile()).path;
    lockOutput = (await s3Admin(['lock-bucket', bucket], { AUDIT_S3_LOCK_MODE: 'GOVERNANCE', AUDIT_S3_LOCK_DAYS: '1' })).stdout;
    keys = await createUsers(bucket, prefix, `-${id}`);
    // Spread over three days (May 2026), so compaction and retention act on several day partitions.
    produced = await produceEvents(vars, 0, EVENTS, { objects: OBJECTS, days: 3, stepMs: (3 * DAY_MS) / EVENTS + 1 });
    object3 = produced.filter((_, i) => i % OBJECTS === 3);
    const r = await runCli('consumer', ['--drain'], as('consumer'), 180_000);
    if (r.code !== 0) throw new Error(`audit-consumer --drain exited ${r.code}: ${r.stderr.slice(-3000)}`);
  }, 240_000);

  afterAll(async () => {
    s3.destroy();
    await removeUsers(`-${id}`);
  });

  it('lock-bucket makes a versioned bucket with Object Lock and the default retention asked for, idempotently', async () => {
    expect(lockOutput).toMatch(new RegExp(`^${bucket} +locked +s3://${bucket} +versioning on, default retention GOVERNANCE 1d$`, 'm'));
    // A second run changes nothing and says the same.
    const again = await s3Admin(['lock-bucket', bucket], { AUDIT_S3_LOCK_MODE: 'GOVERNANCE', AUDIT_S3_LOCK_DAYS: '1' });
    expect(again.stdout).toBe(lockOutput);
    expect(again.stderr).not.toMatch(/created|set to/);
    expect((await s3.send(new GetBucketVersioningCommand({ Bucket: bucket }))).Status).toBe('Enabled');
    const lock = await s3.send(new GetObjectLockConfigurationCommand({ Bucket: bucket }));
    expect(lock.ObjectLockConfiguration).toEqual({ ObjectLockEnabled: 'Enabled', Rule: { DefaultRetention: { Mode: 'GOVERNANCE', Days: 1 } } });
    // A bucket that exists without Object Lock cannot get it: the script says so.
    await expect(s3Admin(['lock-bucket', 'audit'])).rejects.toMatchObject({ stderr: expect.stringMatching(/bucket audit exists without Object Lock/) });
  });

  it('the consumer stores every event into the locked bucket, each file locked; audit-query reads them back', async () => {
    expectExactStore(compareWithProduced(await auditStore(vars), produced), EVENTS);
    const files = (await listData(vars)).filter((o) => parseDataKey(o.key) !== null);
    expect(files.length).toBeGreaterThan(3);
    const now = Date.now();
    for (const f of files) {
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}/${f.key}` }));
      expect(head.ObjectLockMode).toBe('GOVERNANCE');
      // The bucket default (1 day) applied at upload.
      expect(head.ObjectLockRetainUntilDate!.getTime()).toBeGreaterThan(now + DAY_MS - 3_600_000);
    }
    const events = await history(as('auditor'), 'order:3');
    expect(events.map((e) => e.event_id).sort()).toEqual([...object3].sort());
    expect(events.map((e) => e.occurred_at)).toEqual(events.map((e) => e.occurred_at).sort());
  });

  it('the maintainer compacts on it: superseded files get delete markers over their locked versions, queries unchanged', async () => {
    const before = await liveKeys(vars);
    const r = await runCli('maintenance', ['maintain', '--once'], as('maintainer', { AUDIT_COMPACT_MIN_AGE: '0s', AUDIT_COMPACT_GRACE: '0s' }), 180_000);
    expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(/^compacted dt=/m);
    const after = await liveKeys(vars);
    const superseded = before.filter((k) => !after.includes(k));
    expect(superseded.length).toBeGreaterThan(0);
    // Compaction left one live file per day and Kafka partition, and every event exactly once.
    expect(after.length).toBeLessThan(before.length);
    expectExactStore(compareWithProduced(await auditStore(vars), produced), EVENTS);

    const versions = await versionsOf(s3, bucket, `${prefix}/dt=`);
    for (const key of superseded) {
      const v = versions.get(`${prefix}/${key}`);
      // The maintainer's plain DeleteObject added a delete marker (the key is gone from listings) ...
      expect(v?.markers.filter((m) => m.latest)).toHaveLength(1);
      // ... and the server kept the locked version itself.
      expect(v?.versions).toHaveLength(1);
      const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `${prefix}/${key}`, VersionId: v!.versions[0]!.id }));
      expect(head.ObjectLockMode).toBe('GOVERNANCE');
    }
    // Live files are plain current versions.
    for (const key of after) expect(versions.get(`${prefix}/${key}`)?.versions.some((x) => x.latest)).toBe(true);

    const events = await history(as('auditor'), 'order:3');
    expect(events.map((e) => e.event_id).sort()).toEqual([...object3].sort());
    // The signed digests of the consumer's cuts and of the compaction check out, read with the auditor's keys.
    const verify = await runVerify(as('auditor'));
    expect({ code: verify.code, findings: verify.findings, stderr: verify.code === 0 ? '' : verify.stderr.slice(-1000) }).toEqual({ code: 0, findings: [], stderr: '' });
  }, 240_000);

  it('retention shorter than the lock: the maintainer, with its keys, sees each retention and keeps the locked days whole', async () => {
    // The events are of May 2026, so a 30-day retention has expired all three days; the lock has not.
    const r = await runCli('maintenance', ['maintain', '--once'], as('maintainer', { AUDIT_RETENTION: '30d', AUDIT_COMPACT_MIN_AGE: '0s', AUDIT_COMPACT_GRACE: '0s' }), 180_000);
    expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
    expect(r.stdout.match(/^locked dt=2026-05-0[123]: past retention \(30d\), kept: \d+ of \d+ objects under Object Lock \(until 20\d\d-/gm)).toHaveLength(3);
    expect(r.stdout).not.toMatch(/^expired dt=/m);
    expectExactStore(compareWithProduced(await auditStore(vars), produced), EVENTS);
  }, 240_000);

  it('refuses to delete a locked version and keeps it through an overwrite (GOVERNANCE, even for the root user without bypass)', async () => {
    const [key] = await liveKeys(vars);
    const full = `${prefix}/${key!}`;
    const original = await bodyOf(s3, bucket, full);
    const v0 = (await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: full }))).VersionId!;

    // Overwrite: accepted, as a new version; the locked one is untouched.
    const put = await s3.send(new PutObjectCommand({ Bucket: bucket, Key: full, Body: 'PAR1 forged' }));
    expect(put.VersionId).toBeDefined();
    expect(put.VersionId).not.toBe(v0);
    expect((await bodyOf(s3, bucket, full)).toString()).toBe('PAR1 forged');
    expect((await bodyOf(s3, bucket, full, v0)).equals(original)).toBe(true);
    // The lock keeps the original; the digests tell that the current bytes are not it.
    const verify = await runVerify(as('auditor'));
    expect(verify.code).toBe(1);
    expect(verify.findings).toContain(`file-modified ${key!}`);

    // Deleting the locked version: refused.
    const refused = await s3Refusal(s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: full, VersionId: v0 })));
    expect(refused).toMatchObject({ name: 'InvalidRequest', status: 400, message: expect.stringMatching(/WORM protected/) });
    expect((await bodyOf(s3, bucket, full, v0)).equals(original)).toBe(true);

    // A delete without a version id: a delete marker, the locked version stays.
    const del = await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: full }));
    expect(del.DeleteMarker).toBe(true);
    expect(await s3Refusal(bodyOf(s3, bucket, full))).toMatchObject({ name: 'NoSuchKey', status: 404 });
    expect((await bodyOf(s3, bucket, full, v0)).equals(original)).toBe(true);

    // GOVERNANCE lets a caller holding s3:BypassGovernanceRetention (root) remove it on purpose;
    // none of the three pipeline policies grants that permission.
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: full, VersionId: v0, BypassGovernanceRetention: true }));
    expect(await s3Refusal(bodyOf(s3, bucket, full, v0))).toMatchObject({ status: 404 });
  });

  it('COMPLIANCE: not even the root user with the governance bypass can delete a locked version', async () => {
    const strict = `audit-lock-c-${id}`;
    const out = await s3Admin(['lock-bucket', strict], { AUDIT_S3_LOCK_MODE: 'COMPLIANCE', AUDIT_S3_LOCK_DAYS: '1' });
    expect(out.stdout).toMatch(/default retention COMPLIANCE 1d/);
    // One small object: COMPLIANCE data cannot be removed before its day is over, by anyone.
    const put = await s3.send(new PutObjectCommand({ Bucket: strict, Key: 'evidence.txt', Body: 'kept' }));
    const head = await s3.send(new HeadObjectCommand({ Bucket: strict, Key: 'evidence.txt' }));
    expect(head.ObjectLockMode).toBe('COMPLIANCE');
    const refused = await s3Refusal(
      s3.send(new DeleteObjectCommand({ Bucket: strict, Key: 'evidence.txt', VersionId: put.VersionId, BypassGovernanceRetention: true })),
    );
    expect(refused).toMatchObject({ name: 'InvalidRequest', status: 400, message: expect.stringMatching(/WORM protected/) });
    expect((await bodyOf(s3, strict, 'evidence.txt', put.VersionId)).toString()).toBe('kept');
  });
});

function expectExactStore(result: ReturnType<typeof compareWithProduced>, expected: number) {
  expect(result).toEqual({ expected, stored: expected, lost: 0, duplicated: 0, unexpected: 0 });
}
