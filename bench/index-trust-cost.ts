/**
 * What the index checks of issue 19 cost a cold `audit-query --object` lookup:
 * the same small store written twice on S3, unsigned (the previous release's
 * indexes and manifests) and signed (signed indexes and manifests), looked up
 * cold, side by side in one run, by the previous release's bin (BENCH_BASE_BIN,
 * unsigned store) and this one (both stores; the signed one pinned by
 * AUDIT_TRUSTED_KEYS_FILE). Time and requests from `--stats`.
 *
 *   npm run build && BENCH_BASE_BIN=/path/to/previous/dist/query/cli.js (the previous release's audit-query) node dist/bench/index-trust-cost.js
 *
 * Environment (defaults): BENCH_MANIFESTS (1) BENCH_DAYS (7) BENCH_FILES_PER_DAY (12) BENCH_ROWS_PER_FILE (2000) BENCH_ROUNDS (5)
 *   AUDIT_S3_ENDPOINT (http://127.0.0.1:9000) BENCH_BUCKET (audit)
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ParquetWriter, type StoredRow } from '../consumer/parquet-writer';
import { indexKey, openStore } from '../storage';
import { buildDayManifests } from '../storage/day-manifest-build';
import { encodeFileIndex } from '../storage/signed-index';
import { DigestSigner, generateSigningKey } from '../trust/signer';
import { TrustedKeys } from '../trust/trusted-keys';
import { storeDataFile } from './lib/store-writer';
import { envNumber, projectRoot } from './lib/env';
import { median } from './lib/stats';
import { sampleRecordFor } from './lib/index-trust-records';

const ROOT = projectRoot(__dirname);
const endpoint = process.env.AUDIT_S3_ENDPOINT ?? 'http://127.0.0.1:9000';
const bucket = process.env.BENCH_BUCKET ?? 'audit';
const days = envNumber('BENCH_DAYS', 7);
const filesPerDay = envNumber('BENCH_FILES_PER_DAY', 12);
const rowsPerFile = envNumber('BENCH_ROWS_PER_FILE', 2000);
const rounds = envNumber('BENCH_ROUNDS', 5);

interface Run {
  ms: number;
  stats: Record<string, number | string | null>;
}

function lookup(bin: string, env: Record<string, string>, object: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, [bin, '--object', object, '--format', 'ndjson', '--stats'], { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code !== 0) return reject(new Error(`${bin} exited ${code}: ${err.slice(-500)}`));
      const last = err.trim().split('\n').pop()!;
      resolve({ ms, stats: JSON.parse(last) as Run['stats'] });
    });
  });
}

async function main(): Promise<void> {
  const id = randomUUID().slice(0, 8);
  const work = await mkdtemp(join(tmpdir(), 'index-trust-cost-'));
  const signer = DigestSigner.fromPem(generateSigningKey().privateKeyPem, 'bench');
  const trustFile = join(work, 'trusted.json');
  await writeFile(trustFile, JSON.stringify([{ publicKey: signer.publicKeyPem }]));
  const urls = { unsigned: `s3://${bucket}/bench/index-trust/${id}-unsigned`, signed: `s3://${bucket}/bench/index-trust/${id}-signed` };
  const open = (url: string) => openStore({ AUDIT_STORE_URL: url, AUDIT_S3_ENDPOINT: endpoint, AUDIT_S3_REGION: 'us-east-1' });
  const stores = { unsigned: open(urls.unsigned), signed: open(urls.signed) };
  const writer = await ParquetWriter.create({ rowGroupRows: 512 });
  let offset = 0;
  for (let d = 0; d < days; d++) {
    const dt = new Date(Date.UTC(2026, 8, 1 + d)).toISOString().slice(0, 10);
    for (let f = 0; f < filesPerDay; f++) {
      const rows: StoredRow[] = [];
      for (let i = 0; i < rowsPerFile; i++) rows.push({ record: sampleRecordFor(dt, ++offset), partition: f % 3, offset: String(offset), size: 200 });
      for (const kind of ['unsigned', 'signed'] as const) {
        const stored = await storeDataFile(stores[kind], writer, { topic: 'bench.events', partition: f % 3, dt, rows, workDir: work });
        if (kind === 'signed') await stores.signed.put(indexKey(dt, stored.key.slice(stored.key.lastIndexOf('/') + 1)), encodeFileIndex(stored.index, signer));
      }
    }
  }
  writer.close();
  const all = { since: null, until: null };
  // BENCH_MANIFESTS=0: no day manifests, so a cold lookup opens (and checks) every per-file index.
  if (envNumber('BENCH_MANIFESTS', 1) !== 0) {
    await buildDayManifests(stores.unsigned, all, { policy: { mode: 'unsigned', keys: new TrustedKeys(), notice: null }, signer: null });
    await buildDayManifests(stores.signed, all, { policy: { mode: 'own-key', keys: new TrustedKeys([TrustedKeys.keyFromPem(signer.publicKeyPem, 'bench')]), notice: null }, signer });
  }

  const base = process.env.BENCH_BASE_BIN;
  const current = join(ROOT, 'dist', 'bin', 'audit-query.js');
  const env = (url: string, extra: Record<string, string> = {}) => ({ AUDIT_STORE_URL: url, AUDIT_S3_ENDPOINT: endpoint, AUDIT_S3_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'minioadmin', AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'minioadmin', ...extra });
  const variants: { name: string; bin: string; url: string; extra?: Record<string, string> }[] = [
    ...(base ? [{ name: 'previous release, unsigned store', bin: base, url: urls.unsigned }] : []),
    { name: 'this branch, unsigned store', bin: current, url: urls.unsigned },
    { name: 'this branch, signed store, pinned keys', bin: current, url: urls.signed, extra: { AUDIT_TRUSTED_KEYS_FILE: trustFile } },
  ];
  const results = new Map<string, Run[]>(variants.map((v) => [v.name, []]));
  for (let r = 0; r < rounds; r++) {
    const object = `invoice:inv-${(r * 37) % 500}`;
    for (const v of variants) {
      const cache = await mkdtemp(join(work, 'cache-'));
      results.get(v.name)!.push(await lookup(v.bin, env(v.url, { AUDIT_CACHE_DIR: cache, ...v.extra }), object));
      await rm(cache, { recursive: true, force: true });
    }
  }
  console.log(`cold --object lookups, ${days} days x ${filesPerDay} files x ${rowsPerFile} rows, ${rounds} rounds (median)`);
  console.log('variant | wall ms | msLocate | requests | objectsFetched | listCalls | indexBytes | filesRead | indexesRejected');
  for (const v of variants) {
    const runs = results.get(v.name)!;
    const m = (k: string) => median(runs.map((x) => Number(x.stats[k] ?? 0)));
    console.log(`${v.name} | ${median(runs.map((x) => x.ms)).toFixed(0)} | ${m('msLocate')} | ${m('requests')} | ${m('objectsFetched')} | ${m('listCalls')} | ${m('indexBytesFetched')} | ${m('filesRead')} | ${m('indexesRejected')}`);
  }
  for (const s of Object.values(stores)) s.close();
  await rm(work, { recursive: true, force: true });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
