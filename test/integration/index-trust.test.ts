/**
 * Signed lookup indexes on the real broker and MinIO (issue 19): an object's
 * index and its day's manifest rewritten to look empty hide nothing from
 * `audit-query --object` (the data files are read instead, and the run says so),
 * `verify` names both (exit 1), and one `audit-admin maintain --once` pass
 * rebuilds them, signed, after which verify is clean and lookups use them again.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ObjectStore, indexKey, openStore } from '../../storage';
import { encodeDayManifest, manifestKey, parseStoredFile } from '../../catalog';
import { openFileIndex } from '../../catalog/signed-index';
import { TrustedKeys } from '../../trust/trusted-keys';
import { compareWithProduced, auditStore, produceEvents } from '../helpers/audit-store';
import { envOf, isolatedEnv, runCli } from '../helpers/infra';
import { runVerify, signingKeyFile } from '../helpers/trust';

const DAY = '2026-05-01';

async function lookup(vars: Record<string, string>, object: string, cache: string) {
  const r = await runCli('query', ['--object', object, '--format', 'ndjson', '--stats'], { ...vars, AUDIT_CACHE_DIR: cache });
  const lines = r.stderr.trim().split('\n');
  const stats = JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
  return { code: r.code, ids: r.stdout.trim().split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { event_id: string }).event_id).sort(), stats, notes: lines.slice(0, -1).join('\n') };
}

async function keys(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out.sort();
}

describe('signed indexes and manifests on MinIO (real Kafka, real S3)', () => {
  it('an index and a manifest rewritten to look empty hide no event, are named by verify and rebuilt by the maintainer', async () => {
    const key = await signingKeyFile();
    const base = isolatedEnv('index-trust', { AUDIT_FLUSH_MAX_RECORDS: '60', AUDIT_SIGNING_KEY_FILE: key.path, AUDIT_COMPACT_MIN_AGE: '0s', AUDIT_COMPACT_GRACE: '0s' });
    const trustFile = join(base.AUDIT_CACHE_DIR!, '..', `${base.AUDIT_TOPIC}-trusted.json`);
    await writeFile(trustFile, JSON.stringify([{ publicKeyFile: key.publicPem }]));
    // The reader pins the key; the writers sign with it.
    const vars = { ...base, AUDIT_TRUSTED_KEYS_FILE: trustFile };
    const produced = await produceEvents(vars, 0, 600, { objects: 10, days: 1 });
    const drained = await runCli('consumer', ['--drain'], vars, 180_000);
    expect({ code: drained.code, stderr: drained.code === 0 ? '' : drained.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
    const maintained = await runCli('maintenance', ['maintain', '--once'], vars, 180_000);
    expect({ code: maintained.code, stderr: maintained.code === 0 ? '' : maintained.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
    expect(compareWithProduced(await auditStore(vars), produced)).toMatchObject({ lost: 0, duplicated: 0 });
    expect((await runVerify(vars)).findings).toEqual([]);

    const object = 'order:3';
    const cacheDir = (n: string) => join(base.AUDIT_CACHE_DIR!, `lookup-${n}`);
    const before = await lookup(vars, object, cacheDir('before'));
    expect(before.ids).toHaveLength(60);
    expect(before.stats).toMatchObject({ trust: 'pinned', indexesRejected: 0, manifestsFetched: 1 });
    expect(before.notes).toBe('');

    // The attacker (bucket write access, no key): the object's file's index and the day's
    // manifest rewritten so that no row group can hold it and the Bloom filters are empty.
    const store = openStore(envOf(vars));
    const data = (await keys(store, `dt=${DAY}/`)).filter((k) => parseStoredFile(k) !== null);
    expect(data.length).toBeGreaterThan(0);
    const policy = { mode: 'pinned' as const, keys: await TrustedKeys.fromFile(trustFile), notice: null };
    const sizes = new Map<string, number>();
    for await (const o of store.list(`dt=${DAY}/`)) sizes.set(o.key, o.size);
    const empty = [];
    for (const k of data) {
      const ixKey = indexKey(DAY, k.slice(k.lastIndexOf('/') + 1));
      const { index } = openFileIndex(policy, (await store.get(ixKey))!, ixKey, { key: k, size: sizes.get(k)! });
      const looksEmpty = { ...index, rowGroups: index.rowGroups.map((rg) => ({ ...rg, typeMin: 'zzz', typeMax: 'zzz' })), bloom: Buffer.alloc(64).toString('base64'), bloomHashes: 3 };
      empty.push(looksEmpty);
      await store.put(ixKey, JSON.stringify(looksEmpty));
    }
    await store.put(manifestKey(DAY), encodeDayManifest(DAY, empty));
    const forgedIndexes = data.map((k) => indexKey(DAY, k.slice(k.lastIndexOf('/') + 1)));

    const tampered = await lookup(vars, object, cacheDir('tampered'));
    expect(tampered.code).toBe(0);
    expect(tampered.ids).toEqual(before.ids);
    expect(tampered.stats).toMatchObject({ indexesRejected: data.length + 1, filesFromManifests: 0 });
    expect(tampered.notes).toContain('failed the trust check');
    expect(tampered.notes).toContain(manifestKey(DAY));

    const v = await runVerify(vars);
    expect(v.code).toBe(1);
    expect(v.findings.sort()).toEqual([`manifest-invalid ${manifestKey(DAY)}`, ...forgedIndexes.map((k) => `index-invalid ${k}`)].sort());

    const repaired = await runCli('maintenance', ['maintain', '--once'], vars, 180_000);
    expect({ code: repaired.code, stderr: repaired.code === 0 ? '' : repaired.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
    expect(repaired.stdout).toContain(`rebuilt dt=${DAY}: ${data.length} file index(es)`);
    const report = (JSON.parse(repaired.stdout.trim().split('\n').pop()!) as { pass: Record<string, number> }).pass;
    expect(report).toMatchObject({ indexesRejected: data.length + 1, indexesRebuilt: data.length, indexManifestsWritten: 1 });
    expect((await runVerify(vars)).findings).toEqual([]);

    const after = await lookup(vars, object, cacheDir('after'));
    expect(after.ids).toEqual(before.ids);
    expect(after.stats).toMatchObject({ indexesRejected: 0, manifestsFetched: 1, filesFromManifests: data.length, filesRead: before.stats.filesRead });
    expect(after.notes).toBe('');
    store.close();
  }, 300_000);
});
