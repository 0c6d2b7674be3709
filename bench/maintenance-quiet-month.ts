/**
 * "A quiet month": 30 days of trickle traffic written as ~1,440 small cuts a
 * day (3 partitions x 480 cuts of a few events, what a quiet app gets with the
 * consumer's 60 s age limit), then one `audit-admin maintain --once` pass;
 * side by side with the same events written as one cut per partition and day
 * (`audit-query index build` run on it, its best layout). Reports, for each
 * store: objects, stored bytes/event, cold and warm `audit-query --object`
 * over the 30 days (median, p95, requests); and the pass's events/s, CPU
 * seconds and peak RSS (GNU time), then the cleanup pass after the grace period.
 *
 *   npm run bench:maintenance   (needs the S3 server: infra/up.sh s3)
 *
 * Settings (environment): BENCH_DAYS (30), BENCH_PARTITIONS (3), BENCH_CUTS_PER_DAY
 * (1440, over all partitions), BENCH_EVENTS_PER_CUT (5), BENCH_OBJECTS (2000),
 * BENCH_QUERIES (12), BENCH_QUERIES_BEFORE (3: lookups on the uncompacted store, slow),
 * BENCH_FRESH (1: rewrite the stores), BENCH_S3_ENDPOINT, BENCH_BUCKET.
 * The pass runs with the service's defaults but AUDIT_COMPACT_MIN_AGE=0s.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3ObjectStore, parseStoredFile, readDay } from '../storage';
import { resolveTrust } from '../trust/trust-policy';
import { type DatasetSummary, loadDataset, workDirFor } from './lib/dataset';
import { envNumber, projectRoot } from './lib/env';
import { EventGenerator } from './lib/events';
import { Prng } from './lib/prng';
import { bytes, median, p95, seconds, table } from './lib/stats';

const ROOT = projectRoot(__dirname);
const cfg = {
  days: envNumber('BENCH_DAYS', 30),
  partitions: envNumber('BENCH_PARTITIONS', 3),
  cutsPerDay: envNumber('BENCH_CUTS_PER_DAY', 1440),
  eventsPerCut: envNumber('BENCH_EVENTS_PER_CUT', 5),
  objects: envNumber('BENCH_OBJECTS', 2000),
  queries: envNumber('BENCH_QUERIES', 12),
  queriesBefore: envNumber('BENCH_QUERIES_BEFORE', 3),
  fresh: process.env.BENCH_FRESH === '1',
  endpoint: process.env.BENCH_S3_ENDPOINT ?? 'http://127.0.0.1:9000',
  bucket: process.env.BENCH_BUCKET ?? 'audit',
  seed: 42,
};
const events = cfg.days * cfg.cutsPerDay * cfg.eventsPerCut;
const datasetId = `d${cfg.days}-p${cfg.partitions}-c${cfg.cutsPerDay}-e${cfg.eventsPerCut}-o${cfg.objects}`;
const base = `bench/quiet-month/${datasetId}`;
const log = (msg: string) => process.stderr.write(`${msg}\n`);

process.env.AWS_ACCESS_KEY_ID ??= 'minioadmin';
process.env.AWS_SECRET_ACCESS_KEY ??= 'minioadmin';

function storeEnv(prefix: string, cacheDir?: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    AUDIT_STORE_URL: `s3://${cfg.bucket}/${prefix}`,
    AUDIT_S3_ENDPOINT: cfg.endpoint,
    AUDIT_LOG_LEVEL: 'warn',
    ...(cacheDir ? { AUDIT_CACHE_DIR: cacheDir } : {}),
  };
}

interface Proc {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

function runProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Proc> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr, seconds: Number(process.hrtime.bigint() - t0) / 1e9 }));
  });
}

interface Lookup {
  seconds: number;
  rows: number;
  requests: number;
  bytesFetched: number;
}

/**
 * The S3 server of a development machine is shared with test runs that stop it on purpose
 * (fault tests): a command that failed on a refused connection is run again, and only
 * the run that succeeded is counted.
 */
async function runStable(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Proc> {
  for (let attempt = 1; ; attempt++) {
    const r = await runProcess(cmd, args, env);
    if (r.code === 0 || attempt === 6 || !/ECONNREFUSED/.test(r.stderr)) return r;
    log(`  (the S3 server refused a connection; running again in 10 s)`);
    await new Promise((resolve) => setTimeout(resolve, 10_000));
  }
}

async function lookup(prefix: string, object: string, cacheDir: string): Promise<Lookup> {
  const r = await runStable(process.execPath, [join(ROOT, 'dist', 'bin', 'audit-query.js'), '--object', object, '--format', 'ndjson', '--stats'], storeEnv(prefix, cacheDir));
  if (r.code !== 0) throw new Error(`audit-query ${object} on ${prefix} exited ${r.code}: ${r.stderr.slice(-2000)}`);
  const stats = JSON.parse(r.stderr.trim().split('\n').pop()!) as Record<string, number>;
  return { seconds: r.seconds, rows: r.stdout.split('\n').filter(Boolean).length, requests: (stats.requests ?? 0) + (stats.listCalls ?? 0), bytesFetched: stats.bytesFetched ?? 0 };
}

async function lookups(prefix: string, picks: readonly string[]) {
  const scratch = await mkdtemp(join(tmpdir(), 'quiet-month-'));
  const cold: Lookup[] = [];
  const warm: Lookup[] = [];
  try {
    for (const [i, object] of picks.entries()) {
      const dir = join(scratch, String(i));
      cold.push(await lookup(prefix, object, dir));
      warm.push(await lookup(prefix, object, dir));
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  const sum = (v: Lookup[]) => ({
    seconds: { median: median(v.map((l) => l.seconds)), p95: p95(v.map((l) => l.seconds)) },
    requests: { median: median(v.map((l) => l.requests)), max: Math.max(...v.map((l) => l.requests)) },
    bytesFetched: { median: median(v.map((l) => l.bytesFetched)) },
  });
  return { rows: cold.map((l) => l.rows), cold: sum(cold), warm: sum(warm) };
}

interface StoreShape {
  objects: number;
  storedBytes: number;
  /** Data files a reader uses (live), their bytes, and bytes per event. */
  liveFiles: number;
  liveBytes: number;
  bytesPerEvent: number;
  /** Everything stored (data, indexes, manifests, generations) per event. */
  allBytesPerEvent: number;
}

async function shape(prefix: string): Promise<StoreShape> {
  const store = new S3ObjectStore({ bucket: cfg.bucket, prefix, region: 'us-east-1', endpoint: cfg.endpoint });
  let objects = 0;
  let storedBytes = 0;
  const days: string[] = [];
  for await (const o of store.list('')) {
    objects++;
    storedBytes += o.size;
    const ref = parseStoredFile(o.key);
    if (ref && !days.includes(ref.dt)) days.push(ref.dt);
  }
  let liveFiles = 0;
  const policy = await resolveTrust({ trustedKeysFile: process.env.AUDIT_TRUSTED_KEYS_FILE, store, role: 'bench' });
  let liveBytes = 0;
  for (const dt of days) {
    const day = await readDay(store, dt, policy);
    liveFiles += day.live.length;
    liveBytes += day.live.reduce((s, f) => s + f.size, 0);
  }
  store.close();
  return { objects, storedBytes, liveFiles, liveBytes, bytesPerEvent: liveBytes / events, allBytesPerEvent: storedBytes / events };
}

async function ensureStore(prefix: string, eventsPerCut: number): Promise<DatasetSummary> {
  const store = new S3ObjectStore({ bucket: cfg.bucket, prefix, region: 'us-east-1', endpoint: cfg.endpoint });
  try {
    const marker = cfg.fresh ? null : await store.get('_bench.json');
    if (marker) {
      // Back to the consumer's files: what a previous run's maintenance added is removed (the raw files stay through the grace period).
      let removed = 0;
      for await (const o of store.list('')) {
        const ref = parseStoredFile(o.key);
        const derived =
          o.key.includes('/_live/') || o.key.startsWith('_symlink_format_manifest/') || o.key.endsWith('/_manifest.bin') ||
          ref?.kind === 'compacted' || /\.c\d+-[0-9a-z]+\.json$/.test(o.key);
        if (derived) {
          await store.delete(o.key);
          removed++;
        }
      }
      const summary = JSON.parse(marker.toString('utf8')) as DatasetSummary;
      let files = 0;
      for await (const o of store.list('dt=')) if (parseStoredFile(o.key)?.kind === 'raw') files++;
      if (files === summary.files) {
        log(`reusing s3://${cfg.bucket}/${prefix} (${removed} maintenance objects removed; BENCH_FRESH=1 rewrites it)`);
        return summary;
      }
      log(`s3://${cfg.bucket}/${prefix} lost files (a cleanup pass ran): rewriting it`);
    }
    const stale: string[] = [];
    for await (const o of store.list('')) stale.push(o.key);
    for (const k of stale) await store.delete(k);
    log(`writing ${events.toLocaleString('en')} events to s3://${cfg.bucket}/${prefix}, ${eventsPerCut.toLocaleString('en')} per cut`);
    const summary = await loadDataset(store, {
      events,
      days: cfg.days,
      objects: cfg.objects,
      start: Date.UTC(2026, 0, 1),
      seed: cfg.seed,
      lateShare: 0.01,
      profile: 'typical',
      topic: 'audit.events',
      partitions: cfg.partitions,
      cutRecords: eventsPerCut,
      cutBytes: Number.MAX_SAFE_INTEGER,
      rowGroupRows: 16_384,
      zstdLevel: 3,
      workDir: workDirFor('quiet-month'),
      pg: null,
      log,
      cutsInFlight: 16,
    });
    await store.put('_bench.json', JSON.stringify(summary));
    log(`  ${summary.files.toLocaleString('en')} files from ${summary.cuts.toLocaleString('en')} cuts in ${seconds(summary.seconds)}`);
    return summary;
  } finally {
    store.close();
  }
}

interface Timed {
  seconds: number;
  cpuSeconds: number;
  peakRssBytes: number;
  report: Record<string, number>;
}

/** One `audit-admin maintain --once` under GNU time (CPU and peak RSS of the whole process, DuckDB included). */
async function maintainPass(prefix: string, extra: Record<string, string>): Promise<Timed> {
  const env = { ...storeEnv(prefix), AUDIT_COMPACT_MIN_AGE: '0s', AUDIT_KAFKA_BROKERS: process.env.AUDIT_KAFKA_BROKERS ?? 'localhost:9092', ...extra };
  const r = await runStable('/usr/bin/time', ['-f', 'TIME %e %U %S %M', process.execPath, join(ROOT, 'dist', 'maintenance', 'cli.js'), 'maintain', '--once'], env);
  if (r.code !== 0) throw new Error(`audit-admin maintain exited ${r.code}: ${r.stderr.slice(-3000)}`);
  const t = /TIME (\S+) (\S+) (\S+) (\d+)/.exec(r.stderr);
  if (!t) throw new Error(`no GNU time line in: ${r.stderr.slice(-500)}`);
  const report = (JSON.parse(r.stdout.trim().split('\n').pop()!) as { pass: Record<string, number> }).pass;
  return { seconds: Number(t[1]), cpuSeconds: Number(t[2]) + Number(t[3]), peakRssBytes: Number(t[4]) * 1024, report };
}

/** What the maintainer's default download concurrency is (AUDIT_MAINTAIN_CONCURRENCY). */
const AUDIT_CONCURRENCY = 16;

/**
 * The floor of any pass that reads each small file: every data file fetched once with
 * the maintainer's concurrency, in this process, and dropped. Side by side with the pass.
 */
async function getEveryDataFile(prefix: string): Promise<{ files: number; seconds: number; cpuSeconds: number }> {
  const store = new S3ObjectStore({ bucket: cfg.bucket, prefix, region: 'us-east-1', endpoint: cfg.endpoint });
  const keys: string[] = [];
  for await (const o of store.list('dt=')) if (parseStoredFile(o.key)) keys.push(o.key);
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  let next = 0;
  await Promise.all(
    Array.from({ length: AUDIT_CONCURRENCY }, async () => {
      while (next < keys.length) await store.get(keys[next++]!);
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  store.close();
  return { files: keys.length, seconds: Number(process.hrtime.bigint() - t0) / 1e9, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

async function main(): Promise<void> {
  const small = `${base}/small-cuts`;
  const oneCut = `${base}/one-cut`;
  const perPartitionDay = Math.ceil(events / (cfg.days * cfg.partitions));
  const smallSummary = await ensureStore(small, cfg.eventsPerCut);
  const oneSummary = await ensureStore(oneCut, perPartitionDay);
  const build = await runProcess(process.execPath, [join(ROOT, 'dist', 'bin', 'audit-query.js'), 'index', 'build', '--quiet'], storeEnv(oneCut));
  if (build.code !== 0) throw new Error(`index build: ${build.stderr}`);

  const gen = new EventGenerator({ events, days: cfg.days, objects: cfg.objects, start: Date.UTC(2026, 0, 1), seed: cfg.seed, lateShare: 0.01, profile: 'typical' });
  const rng = new Prng(cfg.seed + 7);
  const picks = Array.from({ length: cfg.queries }, () => gen.objects[rng.int(gen.objects.length)]!).map((o) => `${o.type}:${o.id}`);

  log('the one-cut store');
  const oneShape = await shape(oneCut);
  const oneLookups = await lookups(oneCut, picks);
  log('the small-cut store, before the pass');
  const beforeShape = await shape(small);
  const beforeLookups = await lookups(small, picks.slice(0, cfg.queriesBefore));

  log('baseline: GET every data file of the small-cut store, nothing else');
  const getOnly = await getEveryDataFile(small);
  log('maintenance pass');
  const pass = await maintainPass(small, {});
  const afterShape = await shape(small);
  const afterLookups = await lookups(small, picks);
  for (const [i, rows] of afterLookups.rows.entries()) {
    if (rows !== oneLookups.rows[i]) throw new Error(`${picks[i]}: ${rows} events after compaction, ${oneLookups.rows[i]} in the one-cut store`);
  }
  for (const [i, rows] of beforeLookups.rows.entries()) {
    if (rows !== oneLookups.rows[i]) throw new Error(`${picks[i]}: ${rows} events before compaction, ${oneLookups.rows[i]} in the one-cut store`);
  }
  log('cleanup pass (grace period over)');
  const cleanup = await maintainPass(small, { AUDIT_COMPACT_GRACE: '0s' });
  const cleanShape = await shape(small);
  const cleanLookups = await lookups(small, picks);

  const inputRows = pass.report.rowsWritten! + pass.report.duplicatesDropped!;
  const result = {
    benchmark: 'maintenance-quiet-month',
    date: new Date().toISOString(),
    node: process.version,
    config: { ...cfg, events, datasetId },
    datasets: { smallCuts: smallSummary, oneCut: oneSummary },
    oneCut: { store: oneShape, lookups: oneLookups },
    before: { store: beforeShape, lookups: beforeLookups },
    getOnlyBaseline: { ...getOnly, eventsPerSecond: events / getOnly.seconds },
    pass: { ...pass, eventsPerSecond: inputRows / pass.seconds, cpuSecondsPerMillion: (pass.cpuSeconds / inputRows) * 1e6 },
    after: { store: afterShape, lookups: afterLookups },
    cleanup: { ...cleanup, store: cleanShape, lookups: cleanLookups },
    ratios: {
      bytesPerEventAfterVsOneCut: afterShape.bytesPerEvent / oneShape.bytesPerEvent,
      coldMedianAfterVsOneCut: afterLookups.cold.seconds.median / oneLookups.cold.seconds.median,
      coldP95AfterVsOneCut: afterLookups.cold.seconds.p95 / oneLookups.cold.seconds.p95,
      warmMedianAfterVsOneCut: afterLookups.warm.seconds.median / oneLookups.warm.seconds.median,
      coldMedianBeforeVsOneCut: beforeLookups.cold.seconds.median / oneLookups.cold.seconds.median,
      coldMedianCleanedVsOneCut: cleanLookups.cold.seconds.median / oneLookups.cold.seconds.median,
      warmMedianCleanedVsOneCut: cleanLookups.warm.seconds.median / oneLookups.warm.seconds.median,
    },
    targets: {
      bytesPerEvent: '<= 1.15x the one-cut store',
      coldLookup: '<= 1.5x the one-cut store',
      passEventsPerSecond: '>= 100,000',
      passPeakRss: '<= 512 MB',
    },
  };
  const out = join(ROOT, 'bench', 'results', 'maintenance-quiet-month.json');
  await writeFile(out, `${JSON.stringify(result, null, 2)}\n`);

  const row = (name: string, s: StoreShape, l: Awaited<ReturnType<typeof lookups>> | null) => [
    name,
    s.objects.toLocaleString('en'),
    s.liveFiles.toLocaleString('en'),
    s.bytesPerEvent.toFixed(1),
    s.allBytesPerEvent.toFixed(1),
    l ? `${seconds(l.cold.seconds.median)} / ${seconds(l.cold.seconds.p95)}` : '-',
    l ? String(l.cold.requests.median) : '-',
    l ? `${seconds(l.warm.seconds.median)} / ${seconds(l.warm.seconds.p95)}` : '-',
  ];
  process.stdout.write(
    `\n${events.toLocaleString('en')} events over ${cfg.days} days, ${cfg.partitions} partitions\n` +
      table(
        ['store', 'objects', 'live files', 'B/event (live data)', 'B/event (all)', 'cold median / p95', 'cold requests', 'warm median / p95'],
        [
          row('one cut per partition-day', oneShape, oneLookups),
          row(`small cuts, before the pass (${cfg.queriesBefore} lookups)`, beforeShape, beforeLookups),
          row('small cuts, after the pass', afterShape, afterLookups),
          row('after the cleanup pass (grace period over)', cleanShape, cleanLookups),
        ],
      ) +
      `\npass: ${inputRows.toLocaleString('en')} rows in ${seconds(pass.seconds)} = ${Math.round(inputRows / pass.seconds).toLocaleString('en')} events/s, ` +
      `${pass.cpuSeconds.toFixed(1)} CPU-s, peak RSS ${bytes(pass.peakRssBytes)}; cleanup pass ${seconds(cleanup.seconds)}, ${cleanup.report.objectsDeleted} objects deleted\n` +
      `baseline, GET every input file (${getOnly.files.toLocaleString('en')}, ${AUDIT_CONCURRENCY} at once) and nothing else: ${seconds(getOnly.seconds)} = ${Math.round(events / getOnly.seconds).toLocaleString('en')} events/s, ${getOnly.cpuSeconds.toFixed(1)} CPU-s\n` +
      `ratios after/one-cut: bytes/event ${result.ratios.bytesPerEventAfterVsOneCut.toFixed(3)}, cold median ${result.ratios.coldMedianAfterVsOneCut.toFixed(2)}, ` +
      `cold p95 ${result.ratios.coldP95AfterVsOneCut.toFixed(2)}, warm median ${result.ratios.warmMedianAfterVsOneCut.toFixed(2)}; ` +
      `after cleanup/one-cut: cold median ${result.ratios.coldMedianCleanedVsOneCut.toFixed(2)}, warm median ${result.ratios.warmMedianCleanedVsOneCut.toFixed(2)}\n` +
      `written to ${out}\n`,
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
