/**
 * Actor and tenant search benchmark (issue 20): `audit-query --actor` and
 * `--tenant` on a month of events whose actors and tenants cluster like real
 * ones (bench/lib/search-events.ts), cold (empty local cache) and warm, side by
 * side with `audit-query sql` answering the same question in the same run.
 *
 *   npm run bench:search
 *
 * Needs MinIO. Not part of `npm test`.
 *
 * Environment (defaults):
 *   BENCH_EVENTS (10000000)  BENCH_DAYS (30)  BENCH_OBJECTS (100000)  BENCH_PARTITIONS (3)
 *   BENCH_CUT_RECORDS (200000)  BENCH_CUT_BYTES (67108864)  AUDIT_PARQUET_ROW_GROUP_ROWS (16384)
 *   BENCH_SEED (42)  BENCH_FRESH (0; 1 reloads)  BENCH_LOAD_ONLY (0; 1 loads the dataset and exits)
 *   BENCH_RUNS (3: cold and warm runs per question, medians reported)
 *   AUDIT_S3_ENDPOINT (http://127.0.0.1:9000)  BENCH_BUCKET (audit)
 * The dataset is kept under s3://<bucket>/bench/search/<id>/ and reused by later runs.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_ZSTD_LEVEL } from '../consumer/parquet-writer';
import { S3ObjectStore, manifestDt } from '../storage';
import { loadDataset, workDirFor, type DatasetOptions, type DatasetSummary } from './lib/dataset';
import { ClusteredEventGenerator, POWER_ACTOR, RARE_ACTORS } from './lib/search-events';
import { bytes, median, seconds, table } from './lib/stats';
import { envNumber, projectRoot } from './lib/env';

const ROOT = projectRoot(__dirname);
const num = envNumber;
const cfg = {
  events: num('BENCH_EVENTS', 10_000_000),
  days: num('BENCH_DAYS', 30),
  objects: num('BENCH_OBJECTS', 100_000),
  partitions: num('BENCH_PARTITIONS', 3),
  cutRecords: num('BENCH_CUT_RECORDS', 200_000),
  cutBytes: num('BENCH_CUT_BYTES', 64 * 1024 * 1024),
  rowGroupRows: num('AUDIT_PARQUET_ROW_GROUP_ROWS', 16_384),
  zstdLevel: num('AUDIT_PARQUET_ZSTD_LEVEL', DEFAULT_ZSTD_LEVEL),
  profile: 'typical' as const,
  lateShare: 0.002,
  seed: num('BENCH_SEED', 42),
  runs: num('BENCH_RUNS', 3),
  fresh: process.env.BENCH_FRESH === '1',
  loadOnly: process.env.BENCH_LOAD_ONLY === '1',
  endpoint: process.env.AUDIT_S3_ENDPOINT ?? 'http://127.0.0.1:9000',
  bucket: process.env.BENCH_BUCKET ?? 'audit',
  start: Date.UTC(2026, 8, 1),
};
process.env.AWS_ACCESS_KEY_ID ??= 'minioadmin';
process.env.AWS_SECRET_ACCESS_KEY ??= 'minioadmin';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const log = (msg: string) => process.stderr.write(`${msg}\n`);

/** Bump when the stored files or indexes change for the same events. */
const FILE_FORMAT = `uuid-zstd${cfg.zstdLevel}-subjects1-clustered1`;
const datasetKey = JSON.stringify([FILE_FORMAT, cfg.events, cfg.days, cfg.objects, cfg.partitions, cfg.cutRecords, cfg.cutBytes, cfg.rowGroupRows, cfg.lateShare, cfg.seed, cfg.start]);
const datasetId = createHash('sha256').update(datasetKey).digest('hex').slice(0, 10);
const prefix = `bench/search/${datasetId}`;
const MANIFEST = '_bench/manifest.json';
const CLI = join(ROOT, 'dist', 'bin', 'audit-query.js');

interface Run {
  seconds: number;
  rows: number;
  pages: number;
  stats: Record<string, number> | null;
}

function spawnCli(args: string[], cacheDir: string): Promise<{ seconds: number; stdout: string; stderr: string }> {
  const env = { ...process.env, AUDIT_STORE_URL: `s3://${cfg.bucket}/${prefix}`, AUDIT_S3_ENDPOINT: cfg.endpoint, AUDIT_CACHE_DIR: cacheDir };
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) return reject(new Error(`audit-query ${args.join(' ')} exited ${code}: ${stderr}`));
      resolve({ seconds: s, stdout, stderr });
    });
  });
}

/** A search, following cursors until `pages` pages (or the end); time summed over the pages. */
async function search(args: string[], cacheDir: string, pages: number): Promise<Run & { ids: string[] }> {
  let cursor: string | null = null;
  let total = 0;
  let n = 0;
  let stats: Record<string, number> | null = null;
  const ids: string[] = [];
  do {
    const r = await spawnCli([...args, '--format', 'ndjson', '--stats', ...(cursor ? ['--cursor', cursor] : [])], cacheDir);
    total += r.seconds;
    n++;
    for (const line of r.stdout.split('\n')) if (line) ids.push((JSON.parse(line) as { event_id: string }).event_id);
    const lines = r.stderr.trim().split('\n');
    stats = JSON.parse(lines.pop()!) as Record<string, number>;
    cursor = lines.map((l) => /^next-cursor: (\S+)$/.exec(l)?.[1]).find((c) => c !== undefined) ?? null;
  } while (cursor !== null && n < pages);
  return { seconds: total, rows: ids.length, pages: n, stats, ids };
}

async function sqlScan(where: string, limit: number | null, cacheDir: string): Promise<Run & { ids: string[] }> {
  const text = `SELECT event_id FROM audit WHERE ${where} ORDER BY occurred_at, kafka_partition, kafka_offset, event_id${limit ? ` LIMIT ${limit}` : ''}`;
  const r = await spawnCli(['sql', text, '--format', 'ndjson', '--stats', '--since', isoDay(0), '--until', isoDay(cfg.days - 1)], cacheDir);
  const ids = r.stdout.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { event_id: string }).event_id);
  return { seconds: r.seconds, rows: ids.length, pages: 1, stats: JSON.parse(r.stderr.trim().split('\n').pop()!) as Record<string, number>, ids };
}

const isoDay = (d: number) => new Date(cfg.start + d * 86_400_000).toISOString().slice(0, 10);
const sqlLit = (s: string) => `'${s.replace(/'/g, "''")}'`;

async function storedBytes(store: S3ObjectStore): Promise<{ parquet: number; index: number; manifests: number; files: number }> {
  let parquet = 0;
  let index = 0;
  let manifests = 0;
  let files = 0;
  for await (const o of store.list('dt=')) {
    parquet += o.size;
    files++;
  }
  for await (const o of store.list('_index/')) {
    if (manifestDt(o.key) !== null) manifests += o.size;
    else index += o.size;
  }
  return { parquet, index, manifests, files };
}

async function ensureDataset(store: S3ObjectStore, gen: ClusteredEventGenerator): Promise<DatasetSummary> {
  const existing = cfg.fresh ? null : await store.get(MANIFEST);
  if (existing) {
    log(`reusing dataset s3://${cfg.bucket}/${prefix} (BENCH_FRESH=1 reloads)`);
    return JSON.parse(existing.toString('utf8')) as DatasetSummary;
  }
  log(`loading ${cfg.events.toLocaleString('en')} events into s3://${cfg.bucket}/${prefix}`);
  const stale: string[] = [];
  for await (const o of store.list('')) stale.push(o.key);
  for (const k of stale) await store.delete(k);
  const opts: DatasetOptions = { ...cfg, topic: 'audit.events', workDir: workDirFor('search'), pg: null, log, generator: gen };
  const summary = await loadDataset(store, opts);
  log(`loaded in ${summary.seconds.toFixed(0)} s: ${summary.files} files from ${summary.cuts} cuts; building the day manifests`);
  await spawnCli(['index', 'build', '--quiet'], join(tmpdir(), `search-bench-build-${process.pid}`));
  await store.put(MANIFEST, JSON.stringify(summary));
  return summary;
}

interface Question {
  name: string;
  args: string[];
  pages: number;
  limit: number | null;
  where: string;
}

async function main(): Promise<void> {
  if (!existsSync(CLI)) throw new Error('run `npm run build` first (the benchmark times dist/bin/audit-query.js)');
  const store = new S3ObjectStore({ bucket: cfg.bucket, prefix, region: 'us-east-1', endpoint: cfg.endpoint });
  const gen = new ClusteredEventGenerator({ ...cfg });
  const dataset = await ensureDataset(store, gen);
  if (cfg.loadOnly) {
    store.close();
    return;
  }
  const stored = await storedBytes(store);
  store.close();
  const since = isoDay(0);
  const until = isoDay(cfg.days - 1);
  const bigTenant = gen.tenantsBySize[0]!;
  const questions: Question[] = [
    { name: `--actor ${POWER_ACTOR} (user actor, full result)`, args: ['--actor', POWER_ACTOR, '--since', since, '--until', until, '--limit', '1000'], pages: 100, limit: null, where: `actor_id = ${sqlLit(POWER_ACTOR)}` },
    { name: `--actor ${RARE_ACTORS[0]} (rare actor)`, args: ['--actor', RARE_ACTORS[0]!, '--since', since, '--until', until], pages: 100, limit: null, where: `actor_id = ${sqlLit(RARE_ACTORS[0]!)}` },
    { name: `--tenant ${bigTenant} (biggest tenant, first page of 100)`, args: ['--tenant', bigTenant, '--since', since, '--until', until, '--limit', '100'], pages: 1, limit: 100, where: `tenant_id = ${sqlLit(bigTenant)}` },
    { name: `--tenant ${gen.powerTenant} (rank-20 tenant, first page of 100)`, args: ['--tenant', gen.powerTenant, '--since', since, '--until', until, '--limit', '100'], pages: 1, limit: 100, where: `tenant_id = ${sqlLit(gen.powerTenant)}` },
  ];
  // What any audit-query run costs on this host right now (process start, imports).
  const floor = await spawnCli(['--help'], join(tmpdir(), `search-bench-floor-${process.pid}`));
  log(`audit-query startup floor (--help): ${seconds(floor.seconds)}`);
  const scratch = await mkdtemp(join(tmpdir(), 'search-bench-'));
  const results = [];
  try {
    for (const q of questions) {
      const cold: Run[] = [];
      const warm: Run[] = [];
      const sqlCold: Run[] = [];
      const sqlWarm: Run[] = [];
      for (let i = 0; i < cfg.runs; i++) {
        const dir = join(scratch, `s-${results.length}-${i}`);
        const c = await search(q.args, dir, q.pages);
        const w = await search(q.args, dir, q.pages);
        const sdir = join(scratch, `q-${results.length}-${i}`);
        const sc = await sqlScan(q.where, q.limit, sdir);
        const sw = await sqlScan(q.where, q.limit, sdir);
        if (c.ids.join() !== sc.ids.join() || w.ids.join() !== sc.ids.join()) throw new Error(`${q.name}: search (${c.rows} events) and sql (${sc.rows}) disagree`);
        cold.push(c);
        warm.push(w);
        sqlCold.push(sc);
        sqlWarm.push(sw);
        await rm(dir, { recursive: true, force: true });
        await rm(sdir, { recursive: true, force: true });
        log(`  ${q.name}: ${c.rows} events in ${c.pages} page(s); cold ${seconds(c.seconds)}, warm ${seconds(w.seconds)}; sql cold ${seconds(sc.seconds)}, warm ${seconds(sw.seconds)}`);
      }
      const first = cold[0]!.stats ?? {};
      results.push({
        question: q.name,
        events: cold[0]!.rows,
        pages: cold[0]!.pages,
        coldSeconds: median(cold.map((r) => r.seconds)),
        warmSeconds: median(warm.map((r) => r.seconds)),
        sqlColdSeconds: median(sqlCold.map((r) => r.seconds)),
        sqlWarmSeconds: median(sqlWarm.map((r) => r.seconds)),
        coldLastPageStats: first,
        warmLastPageStats: warm[0]!.stats,
        sqlColdStats: sqlCold[0]!.stats,
      });
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const result = {
    benchmark: 'search-bench',
    date: new Date().toISOString(),
    node: process.version,
    config: { ...cfg, datasetId, prefix },
    dataset: { ...dataset, storedParquetBytes: stored.parquet, storedIndexBytes: stored.index, storedManifestBytes: stored.manifests, dataFiles: stored.files },
    startupFloorSeconds: floor.seconds,
    clustering: { tenants: 500, zipfS: 1.1, users: 5000, userActiveDays: '1-6', powerActor: POWER_ACTOR, powerTenant: gen.powerTenant, rareActors: RARE_ACTORS, biggestTenant: bigTenant },
    questions: results,
    targets: { coldSeconds: 2 },
  };
  const rows = results.map((r) => [r.question, String(r.events), seconds(r.coldSeconds), seconds(r.warmSeconds), seconds(r.sqlColdSeconds), seconds(r.sqlWarmSeconds), `${r.coldLastPageStats.filesRead ?? '-'} / ${stored.files}`, '≤ 2 s cold']);
  log('');
  log(`audit-query startup floor ${seconds(floor.seconds)} per run (a full result of N pages pays it N times)`);
  log(`${dataset.events.toLocaleString('en')} events, ${stored.files} data files (${bytes(stored.parquet)} Parquet + ${bytes(stored.index)} index + ${bytes(stored.manifests)} day manifests)`);
  process.stdout.write(`\n${table(['question', 'events', 'search cold', 'search warm', 'sql cold', 'sql warm', 'files read (last page)', 'target'], rows)}\n\n`);
  const out = join(ROOT, 'bench', 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'search-bench.json'), `${JSON.stringify(result, null, 2)}\n`);
  log('written bench/results/search-bench.json');
}

main().catch((err: unknown) => {
  process.stderr.write(`search-bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
