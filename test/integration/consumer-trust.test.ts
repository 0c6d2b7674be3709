/**
 * Issue 19, the consumer's side, on the real Kafka and MinIO, with the
 * consumer's own least-privilege user (infra/s3-admin.sh) as the attacker: it
 * can PutObject under the store's prefix but holds no signing key. A chain head
 * or a cut claim it plants (unsigned, or signed by a key of its own that it
 * also publishes in the bucket) stops `audit-consumer --drain`: exit 1, one log
 * line naming the object, nothing committed past what is stored. Once the
 * object is removed, a restart stores every produced event exactly once.
 * Then verify's keys: validity from the trust file only, validFrom enforced,
 * a planted key not trusted, and a chain restarted after a wipe found with --kafka.
 */
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { Kafka, logLevel } from 'kafkajs';
import pino from 'pino';
import { AuditConsumerService } from '../../consumer/service';
import { openStore } from '../../storage';
import { type ChainDigest, DigestSigner, type PublishedKey, UntrustedObjectError, chainKey, generateSigningKey, keyObjectKey } from '../../trust';
import { auditStore, compareWithProduced, produceEvents } from '../helpers/audit-store';
import { KAFKA_BROKERS, S3_BUCKET, envOf, isolatedEnv, runCli } from '../helpers/infra';
import { type Keys, type Role, asUser, createUsers, removeUsers, s3Client } from '../helpers/s3-admin';
import { runVerify, signingKeyFile } from '../helpers/trust';

const BATCH = 150;

interface Head {
  partition: number;
  seq: number;
  to: bigint;
}

describe('what the consumer acts on from the bucket must be signed by a trusted key (MinIO, the consumer user as attacker)', () => {
  const suffix = `-ct-${randomUUID().slice(0, 8)}`;
  const base = isolatedEnv('ctrust', { AUDIT_FLUSH_MAX_RECORDS: '50', AUDIT_FLUSH_MAX_AGE_MS: '500' });
  const prefix = base.AUDIT_STORE_URL!.slice(`s3://${S3_BUCKET}/`.length);
  const topic = base.AUDIT_TOPIC!;
  let keys: Record<Role, Keys>;
  let key: { path: string; publicPem: string };
  const produced: string[] = [];
  let mallory: DigestSigner;
  /** When the first drain had finished: digests before it, digests after it. */
  let firstDrainDone: Date;
  const asConsumer = () => ({ ...base, ...asUser(keys.consumer) });

  /** The newest genuine digest of each partition (read as root: what the test knows to be true). */
  async function heads(): Promise<Head[]> {
    const store = openStore(envOf(base));
    const out = new Map<number, Head>();
    try {
      for await (const o of store.list(`_digests/chain/${topic}/`)) {
        const m = /\/(\d+)\/(\d{12})\.json$/.exec(o.key)!;
        const partition = Number(m[1]);
        const seq = Number(m[2]);
        if ((out.get(partition)?.seq ?? -1) > seq) continue;
        const body = JSON.parse((JSON.parse((await store.get(o.key))!.toString()) as { body: string }).body) as ChainDigest;
        out.set(partition, { partition, seq, to: BigInt(body.to) });
      }
    } finally {
      store.close();
    }
    return [...out.values()].sort((a, b) => a.partition - b.partition);
  }

  async function committed(): Promise<Map<number, bigint>> {
    const admin = new Kafka({ clientId: 'ct-test', brokers: [KAFKA_BROKERS], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      const [t] = await admin.fetchOffsets({ groupId: base.AUDIT_CONSUMER_GROUP!, topics: [topic] });
      return new Map(t!.partitions.map((p) => [p.partition, BigInt(p.offset)]));
    } finally {
      await admin.disconnect();
    }
  }

  /** PutObject with the consumer user's keys: what the attacker can do. */
  async function plant(objectKey: string, body: string): Promise<void> {
    const s3 = s3Client(keys.consumer);
    try {
      await s3.send(new PutObjectCommand({ Bucket: S3_BUCKET, Key: `${prefix}/${objectKey}`, Body: body }));
    } finally {
      s3.destroy();
    }
  }

  /** Removal with the admin's keys: what the operator does after the halt. */
  async function remove(objectKeys: string[]): Promise<void> {
    const store = openStore(envOf(base));
    try {
      for (const k of objectKeys) await store.delete(k);
    } finally {
      store.close();
    }
  }

  async function drainExact(): Promise<void> {
    const r = await runCli('consumer', ['--drain'], asConsumer(), 180_000);
    expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
    expect(compareWithProduced(await auditStore(base), produced)).toEqual({ expected: produced.length, stored: produced.length, lost: 0, duplicated: 0, unexpected: 0 });
  }

  beforeAll(async () => {
    key = await signingKeyFile();
    // Pinned: the consumer trusts the keys of this file, whatever the bucket publishes.
    const trustFile = join(dirname(key.path), 'trusted.json');
    await writeFile(trustFile, JSON.stringify([{ publicKeyFile: 'public.pem' }]));
    Object.assign(base, { AUDIT_SIGNING_KEY_FILE: key.path, AUDIT_TRUSTED_KEYS_FILE: trustFile });
    keys = await createUsers(S3_BUCKET, prefix, suffix);
    mallory = DigestSigner.fromPem(generateSigningKey().privateKeyPem, 'mallory');
    produced.push(...(await produceEvents(base, 0, BATCH, { objects: 30 })));
    await drainExact();
    firstDrainDone = new Date();
    // The attacker publishes a key of its own: bucket content, never trusted by the consumer.
    const published: PublishedKey = { format: 'audit-key/1', keyId: mallory.keyId, algorithm: 'ed25519', publicKey: mallory.publicKeyPem, role: 'consumer', validFrom: new Date(0).toISOString() };
    await plant(keyObjectKey(mallory.keyId), JSON.stringify(published));
  }, 300_000);

  afterAll(() => removeUsers(suffix));

  const forgedHead = (h: Head) => ({
    kind: 'chain', topic, partition: h.partition, seq: h.seq + 1, from: String(h.to + 1n), to: '999999999999', files: [], deadLetters: [],
    skipped: [[String(h.to + 1n), '999999999999']], prev: null, writtenAt: new Date().toISOString(), writer: 'mallory',
  });
  const forgedClaim = (h: Head) => ({
    kind: 'cut', topic, partition: h.partition, first: String(h.to + 1n), last: '999999999999', owner: 'mallory', claimedAt: new Date().toISOString(), writtenAt: new Date().toISOString(),
  });

  it.each([
    { name: 'a chain head with a huge `to`, unsigned', object: 'chain-head', reason: 'unsigned', at: (h: Head) => chainKey(topic, h.partition, h.seq + 1), body: (h: Head) => JSON.stringify(forgedHead(h)) },
    { name: 'a chain head with a huge `to`, signed by the attacker key published in the bucket', object: 'chain-head', reason: 'untrusted-key', at: (h: Head) => chainKey(topic, h.partition, h.seq + 1), body: (h: Head) => mallory.seal(forgedHead(h)) },
    { name: 'a cut claim with a huge `last`, unsigned', object: 'cut-claim', reason: 'unsigned', at: (h: Head) => `_cuts/${topic}/${h.partition}/${h.to + 1n}.json`, body: (h: Head) => JSON.stringify(forgedClaim(h)) },
    { name: 'a cut claim with a huge `last`, signed by the attacker key published in the bucket', object: 'cut-claim', reason: 'untrusted-key', at: (h: Head) => `_cuts/${topic}/${h.partition}/${h.to + 1n}.json`, body: (h: Head) => mallory.seal(forgedClaim(h)) },
  ])('$name: --drain exits 1 naming it, commits nothing past what is stored; removed, every event is stored once', async ({ object, reason, at, body }) => {
    const genuine = await heads();
    expect(genuine.length).toBeGreaterThan(0);
    const planted = genuine.map(at);
    for (const h of genuine) await plant(at(h), body(h));
    produced.push(...(await produceEvents(base, produced.length, BATCH, { objects: 30 })));

    const halted = await runCli('consumer', ['--drain'], asConsumer(), 180_000);
    expect(halted.code).toBe(1);
    const lines = halted.stderr.split('\n').filter((l) => l !== '');
    const halts = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { level: number; object?: string; key?: string; reason?: string }).filter((l) => l.object !== undefined);
    expect(halts).toEqual([expect.objectContaining({ object, reason, key: expect.stringMatching(new RegExp(`^(${planted.map((k) => k.replace(/[.*]/g, '\\$&')).join('|')})$`)) })]);
    expect(lines.at(-1)).toMatch(new RegExp(`^audit-consumer: ${halts[0]!.key!.replace(/[.*]/g, '\\$&')}: `));
    // Nothing committed past the genuine chain: the planted offsets were neither stored nor skipped.
    const offsets = await committed();
    for (const h of genuine) expect({ partition: h.partition, committed: offsets.get(h.partition) }).toEqual({ partition: h.partition, committed: h.to + 1n });

    await remove(planted);
    await drainExact();
  }, 420_000);

  it('verify: the pinned keys and their validity come from configuration; a planted key is not trusted', async () => {
    const dir = dirname(key.path);
    const trustWith = async (name: string, validity: Record<string, string>) => {
      const file = join(dir, name);
      await writeFile(file, JSON.stringify([{ publicKeyFile: 'public.pem', ...validity }]));
      return { ...base, AUDIT_TRUSTED_KEYS_FILE: file };
    };
    const auditor = { ...asUser(keys.auditor) };
    const clean = await runVerify({ ...base, ...auditor }, ['--trust', key.publicPem]);
    expect({ code: clean.code, findings: clean.findings, stderr: clean.stderr }).toEqual({ code: 0, findings: [], stderr: '' });
    // Without configured keys: as before, the store's keys, and one line of warning.
    const unpinned: Record<string, string> = { ...base };
    delete unpinned.AUDIT_TRUSTED_KEYS_FILE;
    const warned = await runVerify({ ...unpinned, ...auditor });
    expect(warned.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^audit-query verify: warning: neither --trust nor AUDIT_TRUSTED_KEYS_FILE/)]);

    // validUntil from the trust file (the bucket's key object has none): digests written after it are refused.
    const retired = await runVerify({ ...(await trustWith('retired.json', { validUntil: firstDrainDone.toISOString() })), ...auditor });
    expect(retired.code).toBe(1);
    const late = retired.messages.filter((f) => f.code === 'untrusted-key');
    expect(late.length).toBeGreaterThan(0);
    expect(late.every((f) => /after key \w+ was retired/.test(f.message))).toBe(true);
    // validFrom enforced: the digests of the first drain are refused, the later ones accepted.
    const notYet = await runVerify({ ...(await trustWith('later.json', { validFrom: firstDrainDone.toISOString() })), ...auditor });
    const early = notYet.messages.filter((f) => f.code === 'untrusted-key');
    expect({ code: notYet.code, early: early.length > 0 && early.every((f) => /before key \w+ was valid/.test(f.message)) }).toEqual({ code: 1, early: true });
    // Each digest is refused under exactly one of the two windows.
    const lateKeys = new Set(late.map((f) => f.key));
    expect(early.filter((f) => lateKeys.has(f.key))).toEqual([]);

    // A digest signed by the planted key, at the head of a chain: named, whatever the bucket publishes.
    const [h] = await heads();
    const forged = chainKey(topic, h!.partition, h!.seq + 1);
    await plant(forged, mallory.seal(forgedHead(h!)));
    const pinned = await runVerify({ ...base, ...auditor }, ['--trust', key.publicPem]);
    expect({ code: pinned.code, findings: pinned.findings }).toEqual({ code: 1, findings: [`untrusted-key ${forged}`] });
    await remove([forged]);
  }, 300_000);

  it('verify --kafka: a store wiped and started again (chain from seq 0 at a high offset) names the offsets in no digest', async () => {
    const wiped = { ...base, AUDIT_STORE_URL: `${base.AUDIT_STORE_URL}-wiped` };
    const more = await produceEvents(base, produced.length, 30, { objects: 30 });
    produced.push(...more);
    const r = await runCli('consumer', ['--drain'], wiped, 180_000);
    expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
    const v = await runVerify(wiped, ['--kafka']);
    expect(v.code).toBe(1);
    const restarted = v.messages.filter((f) => f.code === 'offsets-unaccounted' && f.message.includes('the chain starts at'));
    expect(restarted.length).toBeGreaterThan(0);
    for (const f of restarted) {
      expect(f.key).toMatch(new RegExp(`^_digests/chain/${topic.replace(/\./g, '\\.')}/\\d+/000000000000\\.json$`));
      expect(f.message).toMatch(/the chain starts at offset \d+ but Kafka still holds offsets from 0: offsets 0-\d+ are in no digest/);
    }
    expect((await runVerify(wiped)).code).toBe(0);
  }, 300_000);
});

describe('the halt, in process: typed error out of run(), the metric counted once', () => {
  it('a planted head: run() rejects with UntrustedObjectError and audit_consumer_trust_failures_total{object="chain-head",reason="unsigned"} is 1', async () => {
    const key = await signingKeyFile();
    const vars = isolatedEnv('ctrust-inproc', {
      AUDIT_STORE_URL: `file://${dirname(key.path)}/store`, AUDIT_SIGNING_KEY_FILE: key.path, AUDIT_FLUSH_MAX_RECORDS: '20', AUDIT_TRANSCODE_WORKERS: '0',
      // In process under jest's CommonJS runtime, which cannot load @platformatic/kafka's ES module build.
      AUDIT_KAFKA_CLIENT: 'kafkajs',
    });
    const service = () => new AuditConsumerService(envOf(vars), { drain: true, log: pino({ level: 'silent' }) });
    await produceEvents(vars, 0, 40, { objects: 30 });
    await service().run();
    const store = openStore(envOf(vars));
    const planted: string[] = [];
    try {
      for (const p of await store.listPrefixes(`_digests/chain/${vars.AUDIT_TOPIC}/`)) {
        let seq = 0;
        for await (const o of store.list(p)) seq = Math.max(seq, Number(/(\d{12})\.json$/.exec(o.key)![1]) + 1);
        planted.push(`${p}${String(seq).padStart(12, '0')}.json`);
        await store.put(planted.at(-1)!, JSON.stringify({ kind: 'chain', to: '999999999999' }));
      }
    } finally {
      store.close();
    }
    expect(planted.length).toBeGreaterThan(0);
    await produceEvents(vars, 40, 40, { objects: 30 });
    const halted = service();
    const failure = await halted.run().then(() => null, (err: unknown) => err);
    expect(failure).toBeInstanceOf(UntrustedObjectError);
    expect(planted).toContain((failure as UntrustedObjectError).key);
    const metric = await halted.metrics.registry.getSingleMetric('audit_consumer_trust_failures_total')!.get();
    expect(metric.values).toEqual([expect.objectContaining({ value: 1, labels: { object: 'chain-head', reason: 'unsigned' } })]);
  }, 180_000);
});
