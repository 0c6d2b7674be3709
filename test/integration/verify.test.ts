/**
 * Signed digests and `audit-query verify` on the real broker and the real S3
 * servers: an untouched store (with dead letters, many cuts, two days, then
 * compaction) verifies clean; each way of tampering with a copy of it is found
 * and named; an untrusted key is refused.
 */
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { Kafka, logLevel } from 'kafkajs';
import { type ObjectStore, openStore, parseStoredFile } from '../../storage';
import { compareWithProduced, auditStore, produceEvents } from '../helpers/audit-store';
import { KAFKA_BROKERS, S3_SERVERS, envOf, isolatedEnv, runCli } from '../helpers/infra';
import { runVerify as verify, signingKeyFile as keyFile } from '../helpers/trust';

const HOPS = 7 * 3_600_000 + 1_234;

function findings(v: Awaited<ReturnType<typeof verify>>): string[] {
  return v.findings;
}

/**
 * A copy of the store under another prefix. The external manifests and the Iceberg table name
 * their files by absolute URI, so they are left out unless asked for: in a copy they would point
 * engines at the original's files (which verify names).
 */
async function copyStore(from: Record<string, string>, name: string, withLocationBound = false): Promise<{ vars: Record<string, string>; store: ObjectStore }> {
  const vars = { ...from, AUDIT_STORE_URL: `${from.AUDIT_STORE_URL}-${name}` };
  const src = openStore(envOf(from));
  const dst = openStore(envOf(vars));
  const keys: string[] = [];
  for await (const o of src.list('')) if (withLocationBound || !/^(_symlink_format_manifest|_iceberg)\//.test(o.key)) keys.push(o.key);
  await Promise.all(keys.map(async (k) => dst.put(k, (await src.get(k))!)));
  src.close();
  return { vars, store: dst };
}

async function keys(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out.sort();
}

/** A valid Parquet file with one field of one row changed (what an editor with write access could do). */
async function withOneRowChanged(bytes: Buffer): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'tamper-'));
  await writeFile(join(dir, 'in.parquet'), bytes);
  const db = await DuckDBInstance.create(':memory:');
  const c = await db.connect();
  await c.run(`COPY (SELECT * REPLACE (CASE WHEN row_number() OVER () = 1 THEN 'mallory' ELSE actor_id END AS actor_id) FROM read_parquet('${join(dir, 'in.parquet')}'))
               TO '${join(dir, 'out.parquet')}' (FORMAT parquet, COMPRESSION zstd)`);
  c.closeSync();
  db.closeSync();
  return readFile(join(dir, 'out.parquet'));
}

describe.each(S3_SERVERS)('signed digests and audit-query verify on $name (real Kafka, real S3)', (server) => {
  it('an untouched store verifies clean, before and after compaction; every tampering is found and named', async () => {
    const key = await keyFile();
    const vars = isolatedEnv('verify', { AUDIT_S3_ENDPOINT: server.endpoint, AUDIT_FLUSH_MAX_RECORDS: '40', AUDIT_SIGNING_KEY_FILE: key.path });
    const produced = await produceEvents(vars, 0, 600, { days: 2, stepMs: HOPS });
    // Two poison messages: dead-lettered, and accounted for by the digests.
    const kafka = new Kafka({ brokers: [KAFKA_BROKERS], logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: vars.AUDIT_TOPIC!, messages: [{ key: 'x', value: 'not avro' }, { key: 'y', value: 'still not avro' }] });
    await producer.disconnect();
    const drained = await runCli('consumer', ['--drain'], vars, 180_000);
    expect({ code: drained.code, stderr: drained.code === 0 ? '' : drained.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
    expect(compareWithProduced(await auditStore(vars), produced)).toMatchObject({ lost: 0, duplicated: 0 });

    const clean = await verify(vars);
    expect({ code: clean.code, findings: findings(clean) }).toEqual({ code: 0, findings: [] });
    expect(clean.stats).toMatchObject({ offsets: '602', deadLetters: 2, skippedOffsets: '0' });
    expect((await verify(vars, ['--kafka'])).code).toBe(0);
    // Pinning the right key works; pinning another key refuses every digest.
    expect((await verify(vars, ['--trust', key.publicPem])).code).toBe(0);
    const other = await keyFile();
    const pinnedOther = await verify(vars, ['--trust', other.publicPem]);
    expect(pinnedOther.code).toBe(1);
    // Indexes and manifests are signed by the same key: manifests are named too (an index only where its file is not already).
    const refusedByKey = /^(untrusted-key|file-unlisted|file-missing|index-invalid|manifest-invalid) /;
    expect(findings(pinnedOther).filter((f) => !refusedByKey.test(f))).toEqual([]);

    const store = openStore(envOf(vars));
    const data = (await keys(store, 'dt=')).filter((k) => parseStoredFile(k) !== null);
    expect(data.length).toBeGreaterThan(6);
    const topic = vars.AUDIT_TOPIC!;
    const chain0 = (await keys(store, `_digests/chain/${topic}/`)).filter((k) => /\/0\/\d{12}\.json$/.test(k));
    expect(chain0.length).toBeGreaterThanOrEqual(3);

    const cases: { name: string; tamper: (s: ObjectStore) => Promise<void>; expect: string[]; args?: string[] }[] = [
      { name: 'deleted', tamper: (s) => s.delete(data[0]!), expect: [`file-missing ${data[0]}`] },
      { name: 'replaced', tamper: async (s) => s.put(data[1]!, (await s.get(data[2]!))!), expect: [`file-modified ${data[1]}`] },
      {
        name: 'forged',
        tamper: async (s) => s.put(`dt=${parseStoredFile(data[0]!)!.dt}/${topic}-0-90000-90039.parquet`, (await s.get(data[0]!))!),
        expect: [`file-unlisted dt=${parseStoredFile(data[0]!)!.dt}/${topic}-0-90000-90039.parquet`],
      },
      { name: 'row', tamper: async (s) => s.put(data[3]!, await withOneRowChanged((await s.get(data[3]!))!)), expect: [`file-modified ${data[3]}`] },
      { name: 'truncated', tamper: async (s) => s.put(data[4]!, (await s.get(data[4]!))!.subarray(0, 100)), expect: [`file-modified ${data[4]}`] },
      { name: 'digest', tamper: (s) => s.delete(chain0[1]!), expect: [`digest-missing ${chain0[1]}`] },
      { name: 'older', tamper: async (s) => s.put(chain0[2]!, (await s.get(chain0[0]!))!), expect: [`bad-digest ${chain0[2]}`] },
    ];
    // A gap: a cut's digest and its files removed together (the thorough attacker); the offsets are named.
    const gapDigest = JSON.parse(JSON.parse((await store.get(chain0[1]!))!.toString()).body) as { from: string; to: string; files: { key: string }[] };
    cases.push({
      name: 'gap',
      tamper: async (s) => {
        await s.delete(chain0[1]!);
        for (const f of gapDigest.files) await s.delete(f.key);
      },
      expect: [`digest-missing ${chain0[1]}`],
    });
    // The newest digest and its files removed together: only the consumer group's committed offset tells (verify --kafka).
    const tail = chain0[chain0.length - 1]!;
    const tailDigest = JSON.parse(JSON.parse((await store.get(tail))!.toString()).body) as { seq: number; files: { key: string }[] };
    cases.push({
      name: 'tail',
      tamper: async (s) => {
        await s.delete(tail);
        for (const f of tailDigest.files) await s.delete(f.key);
      },
      args: ['--kafka'],
      // Named after the digest that should follow the chain's (new) end: the deleted one's number.
      expect: [`offsets-unaccounted ${tail}`],
    });
    for (const c of cases) {
      const copy = await copyStore(vars, c.name);
      await c.tamper(copy.store);
      copy.store.close();
      const v = await verify(copy.vars, c.args);
      expect({ case: c.name, code: v.code }).toEqual({ case: c.name, code: 1 });
      for (const f of c.expect) expect({ case: c.name, findings: findings(v) }).toEqual({ case: c.name, findings: expect.arrayContaining([f]) });
      if (c.name === 'gap') {
        const gap = v.messages.find((f) => f.code === 'digest-missing')!;
        expect(gap.message).toContain(`offsets ${gapDigest.from}-${gapDigest.to} are unaccounted for`);
      }
    }
    // Text output: one finding per line, exit 1.
    const copy = await copyStore(vars, 'text');
    await copy.store.delete(data[0]!);
    copy.store.close();
    const text = await runCli('query', ['verify'], copy.vars, 120_000);
    expect(text.code).toBe(1);
    expect(text.stdout.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^file-missing ${data[0]!.replace(/[.]/g, '\\.')}: `))]);

    // Compaction rewrites files: the store still verifies, the rows proven kept by the compaction digests.
    const maintained = await runCli('maintenance', ['maintain', '--once'], { ...vars, AUDIT_COMPACT_MIN_AGE: '0s', AUDIT_COMPACT_GRACE: '0s' }, 180_000);
    expect({ code: maintained.code, stderr: maintained.code === 0 ? '' : maintained.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
    const compacted = (await keys(store, 'dt=')).filter((k) => parseStoredFile(k)?.kind === 'compacted');
    expect(compacted.length).toBeGreaterThan(0);
    const after = await verify(vars);
    expect({ code: after.code, findings: findings(after) }).toEqual({ code: 0, findings: [] });
    expect(after.stats).toMatchObject({ offsets: '602', compactionDigests: compacted.length });
    const tamperedCompaction = await copyStore(vars, 'compacted');
    await tamperedCompaction.store.put(compacted[0]!, await withOneRowChanged((await tamperedCompaction.store.get(compacted[0]!))!));
    tamperedCompaction.store.close();
    expect(findings(await verify(tamperedCompaction.vars))).toEqual([`file-modified ${compacted[0]}`]);
    // Copied with its external manifests and Iceberg table: they name the original store's files, which an
    // engine reading the copy would read; verify names both and nothing else.
    const moved = await copyStore(vars, 'moved', true);
    moved.store.close();
    const movedFindings = findings(await verify(moved.vars));
    expect(movedFindings.some((f) => f.startsWith('external-manifest-mismatch _symlink_format_manifest/dt='))).toBe(true);
    expect(movedFindings.some((f) => f.startsWith('iceberg-mismatch _iceberg/'))).toBe(true);
    expect(movedFindings.filter((f) => !/^(external-manifest-mismatch|iceberg-mismatch) /.test(f))).toEqual([]);
    store.close();
  }, 600_000);
});

describe('verify and signing: bad input', () => {
  it('exits 2 with one line when it cannot run; services refuse a missing or wrong key where the store is signed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'verify-bad-'));
    const vars = { AUDIT_STORE_URL: `file://${dir}/store`, AUDIT_KAFKA_BROKERS: '127.0.0.1:1', AUDIT_LOG_LEVEL: 'silent' };
    const missing = await runCli('query', ['verify'], vars);
    expect({ code: missing.code, lines: missing.stderr.trim().split('\n') }).toEqual({ code: 2, lines: [`audit-query verify: no store at file://${dir}/store (AUDIT_STORE_URL): ${dir}/store does not exist`] });
    await mkdir(join(dir, 'store'));
    const empty = await runCli('query', ['verify'], vars);
    expect({ code: empty.code, lines: empty.stderr.trim().split('\n') }).toEqual({ code: 2, lines: [expect.stringMatching(/^audit-query verify: the store has no published digest keys/)] });
    const badFormat = await runCli('query', ['verify', '--format', 'xml'], vars);
    expect({ code: badFormat.code, lines: badFormat.stderr.trim().split('\n').length }).toEqual({ code: 2, lines: 1 });

    const key = await keyFile();
    const store = openStore(envOf(vars));
    await store.put('_digests/keys/0000000000000000.json', '{}');
    store.close();
    const unsigned = await runCli('consumer', [], vars);
    expect({ code: unsigned.code, stderr: unsigned.stderr }).toEqual({ code: 2, stderr: expect.stringMatching(/holds signed digests .* AUDIT_SIGNING_KEY_FILE is unset/) });
    const publicOnly = await runCli('consumer', [], { ...vars, AUDIT_SIGNING_KEY_FILE: key.publicPem });
    expect({ code: publicOnly.code, stderr: publicOnly.stderr }).toEqual({ code: 2, stderr: expect.stringMatching(/AUDIT_SIGNING_KEY_FILE .*not a PEM private key/) });
    const maintainer = await runCli('maintenance', ['maintain', '--once'], vars);
    expect({ code: maintainer.code, stderr: maintainer.stderr }).toEqual({ code: 2, stderr: expect.stringMatching(/AUDIT_SIGNING_KEY_FILE is unset/) });
  }, 120_000);
});
