/**
 * audit-query lookup benchmark: one object's history from a bucket holding a
 * month of events, cold (empty local cache) and warm, with the bytes fetched
 * from S3, side by side with the same lookup on a PostgreSQL audit table.
 *
 *   npm run build && node dist/bench/query-bench.js
 *   (or, with dist/query built: node -r ./bench/lib/register.js bench/query-bench.ts)
 *
 * Needs MinIO and PostgreSQL (bash infra/up.sh s3 postgres) and psql. Not part of `npm test`.
 *
 * Environment (defaults):
 *   BENCH_EVENTS (10000000)  BENCH_DAYS (30)  BENCH_OBJECTS (100000)  BENCH_PARTITIONS (3)
 *   BENCH_CUT_RECORDS (200000)  BENCH_CUT_BYTES (67108864, the consumer's AUDIT_FLUSH_MAX_BYTES default)
 *   AUDIT_PARQUET_ROW_GROUP_ROWS (16384, as the consumer)  BENCH_PROFILE (typical | full: + request/trace ids)
 *   BENCH_LATE_SHARE (0.002)  BENCH_QUERIES (20)  BENCH_SEED (42)
 *   BENCH_PG (1; 0 skips PostgreSQL)  BENCH_FRESH (0; 1 reloads even when the dataset exists)
 *   BENCH_MANIFESTS (1: runs `audit-query index build` before the lookups, timed; 0: deletes the day
 *   manifests first, to measure lookups without them)
 *   BENCH_BASELINE_CLI (unset): another release's dist/query/cli.js, run on the same lookups side by side
 *   (each object cold and warm with this release, then with that one; e.g. /work/prev-release/dist/query/cli.js)
 *   AUDIT_S3_ENDPOINT (http://127.0.0.1:9000)  BENCH_BUCKET (audit)
 * The dataset is kept under s3://<bucket>/bench/query/<id>/ (and table bench_audit_<id>) and
 * reused by later runs with the same parameters.
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
import { EventGenerator, type BenchProfile } from './lib/events';
import { pgTargetFromEnv, psql } from './lib/pg';
import { sqlString } from '../storage/sql';
import { Prng } from './lib/prng';
import { bytes, mean, median, p95, pct, seconds, table } from './lib/stats';
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
  // The consumer's setting and default (3); the published run used 9.
  zstdLevel: num('AUDIT_PARQUET_ZSTD_LEVEL', DEFAULT_ZSTD_LEVEL),
  profile: (process.env.BENCH_PROFILE ?? 'typical') as BenchProfile,
  lateShare: num('BENCH_LATE_SHARE', 0.002),
  queries: num('BENCH_QUERIES', 20),
  seed: num('BENCH_SEED', 42),
  pg: process.env.BENCH_PG !== '0',
  manifests: process.env.BENCH_MANIFESTS !== '0',
  fresh: process.env.BENCH_FRESH === '1',
  endpoint: process.env.AUDIT_S3_ENDPOINT ?? 'http://127.0.0.1:9000',
  bucket: process.env.BENCH_BUCKET ?? 'audit',
  baselineCli: process.env.BENCH_BASELINE_CLI ?? null,
  start: Date.UTC(2026, 8, 1),
};
process.env.AWS_ACCESS_KEY_ID ??= 'minioadmin';
process.env.AWS_SECRET_ACCESS_KEY ??= 'minioadmin';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const log = (msg: string) => process.stderr.write(`${msg}\n`);

/** Bump when the stored files change for the same events (column types, compression), so that datasets are rewritten. */
const FILE_FORMAT = `uuid-zstd${cfg.zstdLevel}`;
const datasetKey = JSON.stringify([FILE_FORMAT, cfg.events, cfg.days, cfg.objects, cfg.partitions, cfg.cutRecords, cfg.cutBytes, cfg.rowGroupRows, cfg.profile, cfg.lateShare, cfg.seed, cfg.start]);
const datasetId = createHash('sha256').update(datasetKey).digest('hex').slice(0, 10);
const prefix = `bench/query/${datasetId}`;
// PostgreSQL holds the same rows whatever the Parquet layout: keyed by the event stream only.
const streamKey = JSON.stringify([cfg.events, cfg.days, cfg.objects, cfg.partitions, cfg.profile, cfg.lateShare, cfg.seed, cfg.start]);
const pgTable = `bench_audit_${createHash('sha256').update(streamKey).digest('hex').slice(0, 10)}`;
const MANIFEST = '_bench/manifest.json';

interface CliRun {
  seconds: number;
  rows: number;
  stats: Record<string, number>;
}

const OUR_CLI = join(ROOT, 'dist', 'bin', 'audit-query.js');

function runQuery(object: string, cacheDir: string, cli = OUR_CLI): Promise<CliRun> {
  const env = {
    ...process.env,
    AUDIT_STORE_URL: `s3://${cfg.bucket}/${prefix}`,
    AUDIT_S3_ENDPOINT: cfg.endpoint,
    AUDIT_CACHE_DIR: cacheDir,
  };
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, [cli, '--object', object, '--format', 'ndjson', '--stats'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let rows = 0;
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      for (const b of d) if (b === 10) rows++;
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) return reject(new Error(`audit-query ${object} exited ${code}: ${stderr}`));
      resolve({ seconds: s, rows, stats: JSON.parse(stderr.trim().split('\n').pop()!) as Record<string, number> });
    });
  });
}

function timeProcess(cmd: string, args: string[]): Promise<{ seconds: number; stdout: string }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, stdout }) : reject(new Error(`${cmd} exited ${code}: ${stderr}`))));
  });
}

async function storedBytes(store: S3ObjectStore): Promise<{ parquet: number; index: number; manifests: number; shards: number; files: number }> {
  let parquet = 0;
  let index = 0;
  let manifests = 0;
  let shards = 0;
  let files = 0;
  for await (const o of store.list('dt=')) {
    parquet += o.size;
    files++;
  }
  for await (const o of store.list('_index/')) {
    if (manifestDt(o.key) !== null) manifests += o.size;
    else if (o.key.includes('/_objects/')) shards += o.size;
    else index += o.size;
  }
  return { parquet, index, manifests, shards, files };
}

/** `audit-query index build` as an operator runs it (timed), or the manifests removed (BENCH_MANIFESTS=0). */
async function prepareManifests(store: S3ObjectStore): Promise<{ seconds: number; result: unknown } | null> {
  if (!cfg.manifests) {
    for await (const o of store.list('_index/')) if (manifestDt(o.key) !== null) await store.delete(o.key);
    return null;
  }
  const env = { ...process.env, AUDIT_STORE_URL: `s3://${cfg.bucket}/${prefix}`, AUDIT_S3_ENDPOINT: cfg.endpoint };
  const t0 = process.hrtime.bigint();
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'bin', 'audit-query.js'), 'index', 'build', '--quiet'], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`audit-query index build exited ${code}`))));
  });
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, result: JSON.parse(out) as unknown };
}

async function ensureDataset(store: S3ObjectStore): Promise<DatasetSummary> {
  const pg = pgTargetFromEnv();
  const existing = cfg.fresh ? null : await store.get(MANIFEST);
  let pgReady = !cfg.pg;
  if (cfg.pg && !cfg.fresh) {
    const ready = (await psql(pg, `SELECT to_regclass(${sqlString(pgTable)}) IS NOT NULL`)) === 't';
    pgReady = ready && Number(await psql(pg, `SELECT count(*) FROM ${pgTable}`)) === cfg.events;
  }
  if (existing && pgReady) {
    log(`reusing dataset s3://${cfg.bucket}/${prefix}${cfg.pg ? ` and table ${pgTable}` : ''} (BENCH_FRESH=1 reloads)`);
    return JSON.parse(existing.toString('utf8')) as DatasetSummary;
  }
  const loadPg = cfg.pg && !pgReady;
  log(`loading ${cfg.events.toLocaleString('en')} events into s3://${cfg.bucket}/${prefix}${loadPg ? ` and PostgreSQL table ${pgTable}` : ''}`);
  const stale: string[] = [];
  for await (const o of store.list('')) stale.push(o.key);
  for (const k of stale) await store.delete(k);
  if (loadPg) await psql(pg, `DROP TABLE IF EXISTS ${pgTable}`);
  const opts: DatasetOptions = {
    ...cfg,
    topic: 'audit.events',
    workDir: workDirFor('query'),
    pg: loadPg ? { target: pg, table: pgTable } : null,
    log,
  };
  const summary = await loadDataset(store, opts);
  await store.put(MANIFEST, JSON.stringify(summary));
  log(`loaded in ${summary.seconds.toFixed(0)} s: ${summary.files} files from ${summary.cuts} cuts`);
  return summary;
}

async function main(): Promise<void> {
  if (!existsSync(join(ROOT, 'dist', 'bin', 'audit-query.js'))) throw new Error('run `npm run build` first (the benchmark times dist/bin/audit-query.js)');
  const store = new S3ObjectStore({ bucket: cfg.bucket, prefix, region: 'us-east-1', endpoint: cfg.endpoint });
  const dataset = await ensureDataset(store);
  const manifestBuild = await prepareManifests(store);
  if (manifestBuild) log(`audit-query index build: ${seconds(manifestBuild.seconds)} ${JSON.stringify(manifestBuild.result)}`);
  const stored = await storedBytes(store);
  store.close();

  // The same objects every run: the generator is deterministic.
  const objects = new EventGenerator({ ...cfg }).objects;
  const rng = new Prng(cfg.seed + 1);
  const picks = Array.from({ length: cfg.queries }, () => objects[rng.int(objects.length)]!).map((o) => `${o.type}:${o.id}`);

  const baseline = await timeProcess(process.execPath, [join(ROOT, 'dist', 'bin', 'audit-query.js'), '--help']);
  log(`audit-query startup floor (--help): ${seconds(baseline.seconds)}`);

  const scratch = await mkdtemp(join(tmpdir(), 'query-bench-'));
  const cold: CliRun[] = [];
  const warm: CliRun[] = [];
  const indexWarm: CliRun[] = [];
  const baseCold: CliRun[] = [];
  const baseWarm: CliRun[] = [];
  const baseStartup = cfg.baselineCli ? await timeProcess(process.execPath, [cfg.baselineCli, '--help']) : null;
  if (baseStartup) log(`baseline ${cfg.baselineCli} startup floor (--help): ${seconds(baseStartup.seconds)}`);
  try {
    for (const [i, object] of picks.entries()) {
      const dir = join(scratch, `cold-${i}`);
      cold.push(await runQuery(object, dir));
      warm.push(await runQuery(object, dir));
      log(`  ${object}: ${cold[i]!.rows} events; cold ${seconds(cold[i]!.seconds)} (${bytes(cold[i]!.stats.bytesFetched!)}), warm ${seconds(warm[i]!.seconds)} (${bytes(warm[i]!.stats.bytesFetched!)})`);
      if (warm[i]!.rows !== cold[i]!.rows) throw new Error(`${object}: warm and cold disagree`);
      await rm(dir, { recursive: true, force: true });
      if (cfg.baselineCli) {
        const bdir = join(scratch, `base-${i}`);
        baseCold.push(await runQuery(object, bdir, cfg.baselineCli));
        baseWarm.push(await runQuery(object, bdir, cfg.baselineCli));
        log(`    baseline: cold ${seconds(baseCold[i]!.seconds)} (${bytes(baseCold[i]!.stats.bytesFetched!)}), warm ${seconds(baseWarm[i]!.seconds)}`);
        if (baseCold[i]!.rows !== cold[i]!.rows) throw new Error(`${object}: the baseline returned ${baseCold[i]!.rows} events, this release ${cold[i]!.rows}`);
        await rm(bdir, { recursive: true, force: true });
      }
    }
    // Steady state of a CLI in daily use: every index cached (primed by one lookup), each object new.
    const shared = join(scratch, 'shared');
    await runQuery('bench-prime:none', shared);
    for (const object of picks) indexWarm.push(await runQuery(object, shared));
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }

  let pgResult: Record<string, unknown> | null = null;
  if (cfg.pg) {
    const pg = pgTargetFromEnv();
    const first: number[] = [];
    const repeat: number[] = [];
    const args = ['-X', '-q', '-A', '-t', '-h', pg.host, '-p', String(pg.port), '-U', pg.user, '-d', pg.database, '-c'];
    for (const [i, object] of picks.entries()) {
      const colon = object.indexOf(':');
      const sql = `SELECT * FROM ${pgTable} WHERE object_type = ${sqlString(object.slice(0, colon))} AND object_id = ${sqlString(object.slice(colon + 1))} ORDER BY occurred_at, kafka_partition, kafka_offset`;
      const a = await timeProcess('psql', [...args, sql]);
      const b = await timeProcess('psql', [...args, sql]);
      first.push(a.seconds);
      repeat.push(b.seconds);
      const rows = a.stdout.split('\n').filter(Boolean).length;
      if (rows !== cold[i]!.rows) throw new Error(`${object}: PostgreSQL has ${rows} events, audit-query returned ${cold[i]!.rows}`);
    }
    const [total, heap, indexes, rows] = (
      await psql(pg, `SELECT pg_total_relation_size('${pgTable}'), pg_relation_size('${pgTable}'), pg_indexes_size('${pgTable}'), (SELECT count(*) FROM ${pgTable})`)
    ).split('|').map(Number) as [number, number, number, number];
    pgResult = {
      firstSeconds: { median: median(first), p95: p95(first) },
      repeatSeconds: { median: median(repeat), p95: p95(repeat) },
      rows,
      totalBytes: total,
      heapBytes: heap,
      indexBytes: indexes,
      bytesPerEvent: total / rows,
    };
  }

  const storedTotal = stored.parquet + stored.index + stored.manifests + stored.shards;
  const share = (r: CliRun) => r.stats.bytesFetched! / storedTotal;
  const result = {
    benchmark: 'query-bench',
    date: new Date().toISOString(),
    node: process.version,
    config: { ...cfg, datasetId, prefix },
    dataset: { ...dataset, storedParquetBytes: stored.parquet, storedIndexBytes: stored.index, storedManifestBytes: stored.manifests, storedShardBytes: stored.shards, dataFiles: stored.files },
    manifestBuild,
    startupFloorSeconds: baseline.seconds,
    queries: picks.map((object, i) => ({
      object,
      events: cold[i]!.rows,
      coldSeconds: cold[i]!.seconds,
      warmSeconds: warm[i]!.seconds,
      indexWarmSeconds: indexWarm[i]!.seconds,
      cold: cold[i]!.stats,
      warm: warm[i]!.stats,
      indexWarm: indexWarm[i]!.stats,
    })),
    summary: {
      eventsPerObject: { median: median(cold.map((r) => r.rows)), max: Math.max(...cold.map((r) => r.rows)) },
      coldSeconds: { median: median(cold.map((r) => r.seconds)), p95: p95(cold.map((r) => r.seconds)) },
      warmSeconds: { median: median(warm.map((r) => r.seconds)), p95: p95(warm.map((r) => r.seconds)) },
      indexWarmSeconds: { median: median(indexWarm.map((r) => r.seconds)), p95: p95(indexWarm.map((r) => r.seconds)) },
      coldFetchedShare: { mean: mean(cold.map(share)), max: Math.max(...cold.map(share)) },
      coldDataFetchedShare: { mean: mean(cold.map((r) => r.stats.dataBytesFetched! / stored.parquet)) },
      coldIndexFetchedBytes: mean(cold.map((r) => r.stats.indexBytesFetched!)),
      wholeFileFetchedShare: { mean: mean(cold.map((r) => (r.stats.bytesCandidates! + r.stats.indexBytesFetched!) / storedTotal)) },
      indexWarmFetchedShare: { mean: mean(indexWarm.map(share)), max: Math.max(...indexWarm.map(share)) },
      warmBytesFetched: Math.max(...warm.map((r) => r.stats.bytesFetched!)),
      filesRead: { median: median(cold.map((r) => r.stats.filesRead!)), of: stored.files },
      parquetBytesPerEvent: stored.parquet / dataset.events,
      indexBytesPerEvent: stored.index / dataset.events,
      manifestBytesPerEvent: stored.manifests / dataset.events,
      shardBytesPerEvent: stored.shards / dataset.events,
      storedBytesPerEvent: storedTotal / dataset.events,
      coldRequests: { median: median(cold.map((r) => r.stats.requests!)) },
      coldMs: {
        locate: median(cold.map((r) => r.stats.msLocate!)),
        fetch: median(cold.map((r) => r.stats.msFetch!)),
        read: median(cold.map((r) => r.stats.msRead!)),
      },
      fallbacks: [...cold, ...warm, ...indexWarm].reduce((s, r) => s + (r.stats.fallbacks ?? 0), 0),
    },
    baseline: cfg.baselineCli
      ? {
          cli: cfg.baselineCli,
          startupFloorSeconds: baseStartup!.seconds,
          coldSeconds: { median: median(baseCold.map((r) => r.seconds)), p95: p95(baseCold.map((r) => r.seconds)) },
          warmSeconds: { median: median(baseWarm.map((r) => r.seconds)), p95: p95(baseWarm.map((r) => r.seconds)) },
          coldFetchedShare: { mean: mean(baseCold.map(share)), max: Math.max(...baseCold.map(share)) },
          coldRequests: { median: median(baseCold.map((r) => r.stats.requests!)) },
          coldMs: {
            locate: median(baseCold.map((r) => r.stats.msLocate!)),
            fetch: median(baseCold.map((r) => r.stats.msFetch!)),
            read: median(baseCold.map((r) => r.stats.msRead!)),
          },
          queries: picks.map((object, i) => ({ object, coldSeconds: baseCold[i]!.seconds, warmSeconds: baseWarm[i]!.seconds, cold: baseCold[i]!.stats })),
        }
      : null,
    postgres: pgResult,
    targets: { coldSeconds: { median: 1, p95: 1.3 }, warmSeconds: { median: 0.35 }, fetchedShare: 0.01, bytesPerEvent: 30 },
  };

  const s = result.summary;
  const pgr = pgResult as { firstSeconds: { median: number; p95: number }; repeatSeconds: { median: number; p95: number }; bytesPerEvent: number } | null;
  const b = result.baseline;
  const base = (f: (x: NonNullable<typeof b>) => string) => (b ? f(b) : '-');
  const rows: string[][] = [
    ['lookup wall time, cold (empty cache), median', seconds(s.coldSeconds.median), base((x) => seconds(x.coldSeconds.median)), pgr ? seconds(pgr.firstSeconds.median) : '-', '≤ 1 s'],
    ['lookup wall time, cold, p95', seconds(s.coldSeconds.p95), base((x) => seconds(x.coldSeconds.p95)), pgr ? seconds(pgr.firstSeconds.p95) : '-', '≤ 1.3 s'],
    ['lookup wall time, warm (same object), median', seconds(s.warmSeconds.median), base((x) => seconds(x.warmSeconds.median)), pgr ? seconds(pgr.repeatSeconds.median) : '-', '≤ 0.35 s'],
    ['lookup wall time, warm, p95', seconds(s.warmSeconds.p95), base((x) => seconds(x.warmSeconds.p95)), pgr ? seconds(pgr.repeatSeconds.p95) : '-', ''],
    ['lookup wall time, indexes cached / new object, median', seconds(s.indexWarmSeconds.median), '-', '-', ''],
    ['lookup wall time, indexes cached / new object, p95', seconds(s.indexWarmSeconds.p95), '-', '-', ''],
    ['fetched from S3, cold, mean share of stored bytes', pct(s.coldFetchedShare.mean), base((x) => pct(x.coldFetchedShare.mean)), '', '≤ 1 %'],
    ['fetched from S3, cold, max share', pct(s.coldFetchedShare.max), base((x) => pct(x.coldFetchedShare.max)), '', ''],
    ['  of which index objects (mean)', bytes(s.coldIndexFetchedBytes), '', '', ''],
    ['  same lookups fetching whole files (old behaviour)', pct(s.wholeFileFetchedShare.mean), '', '', ''],
    ['fetched from S3, indexes cached, mean share', pct(s.indexWarmFetchedShare.mean), '', '', ''],
    ['fetched from S3, warm', bytes(s.warmBytesFetched), '', '', '0'],
    ['stored bytes per event (Parquet)', s.parquetBytesPerEvent.toFixed(1), '', pgr ? pgr.bytesPerEvent.toFixed(1) : '-', '≤ 30'],
    ['stored bytes per event: per-file indexes / day manifests / object shards', `${s.indexBytesPerEvent.toFixed(1)} / ${s.manifestBytesPerEvent.toFixed(1)} / ${s.shardBytesPerEvent.toFixed(1)}`, '', '', ''],
    ['stored bytes per event (all)', s.storedBytesPerEvent.toFixed(1), '', '', ''],
    ['cold lookup: requests; ms locate / fetch / read (medians)', `${s.coldRequests.median}; ${s.coldMs.locate} / ${s.coldMs.fetch} / ${s.coldMs.read}`, base((x) => `${x.coldRequests.median}; ${x.coldMs.locate} / ${x.coldMs.fetch} / ${x.coldMs.read}`), '', ''],
    ['CLI start-up (--help)', seconds(result.startupFloorSeconds), base((x) => seconds(x.startupFloorSeconds)), '', ''],
  ];
  log('');
  log(`${dataset.events.toLocaleString('en')} events, ${stored.files} data files (${bytes(stored.parquet)} Parquet + ${bytes(stored.index)} index + ${bytes(stored.manifests)} day manifests), ${cfg.queries} random objects (median ${s.eventsPerObject.median} events), ${s.filesRead.median} candidate files per lookup (median)`);
  log(`row groups of ${cfg.rowGroupRows} rows, cuts of ${cfg.cutRecords} records / ${bytes(cfg.cutBytes)}, ${cfg.partitions} partitions, profile ${cfg.profile}; audit-query startup floor ${seconds(baseline.seconds)}`);
  process.stdout.write(`\n${table(['metric', 'audit-query (S3)', 'previous release', 'PostgreSQL', 'target'], rows)}\n\n`);
  const out = join(ROOT, 'bench', 'results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'query-bench.json'), `${JSON.stringify(result, null, 2)}\n`);
  log(`written bench/results/query-bench.json`);
}

main().catch((err: unknown) => {
  process.stderr.write(`query-bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
