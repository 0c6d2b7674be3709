/**
 * The store as an Iceberg table: what it costs and how fresh it is.
 *
 * 1. Metadata growth: one maintenance pass a day over BENCH_ICEBERG_DAYS (30) days of a
 *    quiet store (3 partitions, a few consumer files a day, compacted the next pass, the
 *    inputs deleted after the grace period), the publisher alone on a local store:
 *    `_iceberg/` objects and bytes after every pass.
 * 2. Arrival to visibility: a data file stored into the quiet-month store (216,000 events,
 *    30 days, one file per partition and day), then `audit-admin maintain --once`: from the
 *    file's store to the commit of the snapshot that holds it, and the pass's wall time.
 *    With the service, add up to AUDIT_MAINTAIN_INTERVAL of waiting for the next pass.
 * 3. The same questions to Spark (local mode, infra/spark.sh, Iceberg's Hadoop catalog over
 *    the bucket) and to audit-query: count(*) over the month, and one object's history.
 *
 *   npm run bench:iceberg   (needs the S3 server, Java for Spark: infra/spark.sh install)
 *
 * Settings: BENCH_ICEBERG_DAYS (30), BENCH_EVENTS (216000), BENCH_OBJECTS (2000), BENCH_REPEAT (3),
 * BENCH_SPARK (1), BENCH_FRESH (0). The S3 server and bucket are the tests' (AUDIT_TEST_S3_ENDPOINT,
 * AUDIT_TEST_S3_BUCKET), where the Spark runner's catalog points. Writes bench/results/iceberg.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ParquetWriter, type StoredRow } from '../consumer/parquet-writer';
import { IcebergPublisher } from '../maintenance/iceberg/publisher';
import { type TableMetadata } from '../storage/iceberg/metadata';
import { ICEBERG_PREFIX, asTableStore, loadTable, newestSnapshotFiles } from '../storage/iceberg/table-io';
import { FileObjectStore, type FileIndex, S3ObjectStore, indexKey } from '../storage';
import { LIVE_FORMAT, encodeGeneration, generationKey, readDay } from '../catalog';
import { sampleRecord } from '../test/helpers/records';
import { S3_BUCKET, sparkTable, startSpark } from '../test/helpers/spark';
import type { TrustPolicy } from '../trust/trust-policy';
import { TrustedKeys } from '../trust/trusted-keys';
import { loadDataset, workDirFor } from './lib/dataset';
import { commandFile, envNumber, projectRoot } from './lib/env';
import { runCaptured } from './lib/measured-process';
import { median, table } from './lib/stats';
import { storeDataFile } from './lib/store-writer';

const ROOT = projectRoot(__dirname);
const cfg = {
  days: envNumber('BENCH_ICEBERG_DAYS', 30),
  events: envNumber('BENCH_EVENTS', 216_000),
  objects: envNumber('BENCH_OBJECTS', 2000),
  repeat: envNumber('BENCH_REPEAT', 3),
  spark: process.env.BENCH_SPARK !== '0',
  fresh: process.env.BENCH_FRESH === '1',
  endpoint: process.env.AUDIT_TEST_S3_ENDPOINT ?? 'http://127.0.0.1:9000',
  bucket: S3_BUCKET,
};
const DAY = 86_400_000;
const UNSIGNED: TrustPolicy = { mode: 'unsigned', keys: new TrustedKeys(), notice: null };
const log = (m: string) => process.stderr.write(`${m}\n`);
const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
process.env.AWS_ACCESS_KEY_ID ??= 'minioadmin';
process.env.AWS_SECRET_ACCESS_KEY ??= 'minioadmin';

/** 1. The publisher over a simulated quiet store, one pass a day. */
async function metadataGrowth(): Promise<{ pass: number; objects: number; bytes: number }[]> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-iceberg-'));
  const store = new FileObjectStore(dir);
  const start = Date.UTC(2026, 0, 1);
  const out: { pass: number; objects: number; bytes: number }[] = [];
  const dtOf = (d: number) => new Date(start + d * DAY).toISOString().slice(0, 10);
  const put = async (dt: string, name: string, rows: number, at: number) => {
    await store.put(`dt=${dt}/${name}`, Buffer.alloc(2000 + rows * 60));
    const index: FileIndex = { version: 1, key: `dt=${dt}/${name}`, rows, bytes: 2000 + rows * 60, minOccurredAt: at * 1000, maxOccurredAt: at * 1000 + 1, rowGroups: [] };
    await store.put(indexKey(dt, name), JSON.stringify(index));
  };
  try {
    for (let d = 0; d < cfg.days; d++) {
      const now = start + d * DAY + 23 * 3_600_000;
      const dt = dtOf(d);
      // Today's consumer files: 3 partitions, 4 cuts each.
      for (let p = 0; p < 3; p++) for (let c = 0; c < 4; c++) await put(dt, `audit.events-${p}-${d * 100 + c * 10}-${d * 100 + c * 10 + 9}.parquet`, 10, now - DAY / 2);
      // Yesterday's compacted (one file per partition, its inputs hidden), and its inputs gone (grace 1 h, a day ago).
      if (d > 0) {
        const y = dtOf(d - 1);
        const files = [];
        for (let p = 0; p < 3; p++) {
          const name = `audit.events-${p}-${(d - 1) * 100}-${(d - 1) * 100 + 39}.c1-bench${p}.parquet`;
          await put(y, name, 40, now - DAY);
          files.push({ key: `dt=${y}/${name}`, size: 2000 + 40 * 60, rows: 40, topic: 'audit.events', partition: p, first: String((d - 1) * 100), last: String((d - 1) * 100 + 39) });
          for (let c = 0; c < 4; c++) await store.delete(`dt=${y}/audit.events-${p}-${(d - 1) * 100 + c * 10}-${(d - 1) * 100 + c * 10 + 9}.parquet`);
        }
        await store.put(generationKey(y, 1), encodeGeneration({ format: LIVE_FORMAT, dt: y, generation: 1, committedAt: now - DAY, files, replaced: {}, retired: [] }));
      }
      const publisher = new IcebergPublisher({ store, trust: UNSIGNED, graceMs: 3_600_000, concurrency: 8, log: pino({ level: 'silent' }), say: () => undefined });
      for (const day of [d > 0 ? dtOf(d - 1) : null, dt]) if (day) publisher.observe(await readDay(store, day, UNSIGNED));
      await publisher.commit(() => true, now);
      let objects = 0;
      let bytes = 0;
      for await (const o of store.list(ICEBERG_PREFIX)) {
        objects++;
        bytes += o.size;
      }
      out.push({ pass: d + 1, objects, bytes });
    }
    return out;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const storeUrl = (prefix: string) => `s3://${cfg.bucket}/${prefix}`;
const envFor = (prefix: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  ...process.env,
  AUDIT_STORE_URL: storeUrl(prefix),
  AUDIT_S3_ENDPOINT: cfg.endpoint,
  AUDIT_LOG_LEVEL: 'warn',
  AUDIT_CACHE_DIR: join(tmpdir(), 'bench-iceberg-cache', prefix.replace(/\//g, '_')),
  ...extra,
});

async function cli(bin: 'maintenance' | 'query', args: string[], prefix: string, extra: Record<string, string> = {}) {
  const r = await runCaptured(process.execPath, [commandFile(ROOT, bin), ...args], envFor(prefix, extra));
  if (r.code !== 0) throw new Error(`${bin} ${args.join(' ')} exited ${r.code}: ${r.stderr.slice(-2000)}`);
  return r;
}

/** 2 and 3 on the quiet-month store. */
async function onStore() {
  const prefix = `bench/iceberg/quiet-e${cfg.events}-d30-o${cfg.objects}`;
  const s3 = new S3ObjectStore({ bucket: cfg.bucket, prefix, region: 'us-east-1', endpoint: cfg.endpoint });
  const tableStore = asTableStore(s3)!;
  try {
    if (cfg.fresh || (await loadTable(tableStore)) === null) {
      log(`loading ${cfg.events.toLocaleString('en')} events over 30 days into ${storeUrl(prefix)}`);
      await loadDataset(s3, {
        events: cfg.events, days: 30, objects: cfg.objects, start: Date.UTC(2026, 8, 1), seed: 42, lateShare: 0.002, profile: 'typical',
        topic: 'audit.events', partitions: 3, cutRecords: 1_000_000, cutBytes: 256 * 1024 * 1024, rowGroupRows: 16_384, zstdLevel: 3,
        workDir: workDirFor('iceberg'), pg: null, log,
      });
      await cli('maintenance', ['maintain', '--once'], prefix, { AUDIT_COMPACT_MIN_AGE: '0s' });
    }
    // Arrival to visibility: a file stored, then the next pass.
    const visibility: { lagMs: number; passSeconds: number }[] = [];
    const writer = await ParquetWriter.create({ rowGroupRows: 1024 });
    try {
      for (let i = 0; i < cfg.repeat; i++) {
        const at = Date.UTC(2026, 9, 15) * 1000;
        const rows: StoredRow[] = Array.from({ length: 20 }, (_, k) => ({
          record: sampleRecord({ event_id: `0c000000-0000-4000-8000-${String(Date.now()).padStart(8, '0').slice(-8)}${String(k).padStart(4, '0')}`, object_type: 'bench', object_id: `v${i}`, occurred_at: at + k }),
          partition: 0,
          offset: String(10_000_000 + Date.now() * 100 + k),
          size: 300,
        }));
        const first = Number(rows[0]!.offset);
        rows.forEach((r, k) => (r.offset = String(first + k)));
        const f = await storeDataFile(s3, writer, { topic: 'audit.events', partition: 0, dt: '2026-10-15', rows, workDir: workDirFor('iceberg-visibility') });
        const stored = Date.now();
        const pass = await cli('maintenance', ['maintain', '--once'], prefix, { AUDIT_COMPACT_MIN_AGE: '1d' });
        const table = (await loadTable(tableStore))!;
        const snap = table.metadata.snapshots.find((s) => s['snapshot-id'] === table.metadata['current-snapshot-id'])!;
        const files = (await newestSnapshotFiles(tableStore))!.files;
        if (!files.includes(f.key)) throw new Error(`${f.key} is not in the table after the pass`);
        visibility.push({ lagMs: snap['timestamp-ms'] - stored, passSeconds: round(pass.seconds) });
        log(`  visible ${snap['timestamp-ms'] - stored} ms after it was stored (pass ${round(pass.seconds)} s)`);
      }
    } finally {
      writer.close();
    }
    let metadataObjects = 0;
    let metadataBytes = 0;
    for await (const o of s3.list(ICEBERG_PREFIX)) {
      metadataObjects++;
      metadataBytes += o.size;
    }
    const total = (await newestSnapshotFiles(tableStore))!;
    const meta: TableMetadata = (await loadTable(tableStore))!.metadata;

    // Same questions, audit-query and Spark.
    const probe = await cli('query', ['sql', "SELECT object_type, object_id, count(*) AS n FROM audit WHERE object_type <> 'bench' GROUP BY 1, 2 ORDER BY n DESC, 1, 2 LIMIT 1", '--format', 'ndjson'], prefix);
    const obj = JSON.parse(probe.stdout.trim()) as { object_type: string; object_id: string; n: number };
    const aq = { count: [] as number[], object: [] as number[], countValue: 0, objectRows: 0 };
    for (let i = 0; i < cfg.repeat; i++) {
      const c = await cli('query', ['sql', 'SELECT count(*) AS n FROM audit', '--format', 'ndjson'], prefix);
      aq.count.push(c.seconds);
      aq.countValue = Number((JSON.parse(c.stdout.trim()) as { n: number }).n);
      const o = await cli('query', ['--object', `${obj.object_type}:${obj.object_id}`, '--format', 'ndjson'], prefix);
      aq.object.push(o.seconds);
      aq.objectRows = o.stdout.trim().split('\n').filter(Boolean).length;
    }
    let spark: null | { startMs: number; count: number[]; object: number[]; countValue: number; objectRows: number } = null;
    if (cfg.spark) {
      const s = await startSpark();
      try {
        const t = sparkTable(storeUrl(prefix));
        spark = { startMs: s.startMs, count: [], object: [], countValue: 0, objectRows: 0 };
        for (let i = 0; i < cfg.repeat; i++) {
          const c = await s.sql(`SELECT count(*) AS n FROM ${t}`);
          if (!c.ok) throw new Error(`spark: ${c.error}`);
          spark.count.push(c.ms / 1000);
          spark.countValue = Number(c.rows[0]!.n);
          const o = await s.sql(`SELECT * FROM ${t} WHERE object_type = '${obj.object_type.replace(/'/g, "''")}' AND object_id = '${obj.object_id.replace(/'/g, "''")}'`);
          if (!o.ok) throw new Error(`spark: ${o.error}`);
          spark.object.push(o.ms / 1000);
          spark.objectRows = o.rows.length;
        }
      } finally {
        await s.close();
      }
    }
    return {
      store: storeUrl(prefix),
      tableFiles: total.files.length,
      snapshots: meta.snapshots.length,
      metadataObjects,
      metadataBytes,
      visibility: {
        lagMsMedian: median(visibility.map((v) => v.lagMs)),
        passSecondsMedian: median(visibility.map((v) => v.passSeconds)),
        runs: visibility,
      },
      object: `${obj.object_type}:${obj.object_id}`,
      auditQuery: { countSeconds: aq.count.map((x) => round(x)), objectSeconds: aq.object.map((x) => round(x)), count: aq.countValue, objectRows: aq.objectRows },
      spark: spark && { startSeconds: round(spark.startMs / 1000), countSeconds: spark.count.map((x) => round(x)), objectSeconds: spark.object.map((x) => round(x)), count: spark.countValue, objectRows: spark.objectRows },
    };
  } finally {
    s3.close();
  }
}

async function main(): Promise<void> {
  log(`metadata growth: one pass a day for ${cfg.days} days`);
  const growth = await metadataGrowth();
  const store = await onStore();
  const at = (n: number) => growth[Math.min(n, growth.length) - 1]!;
  let out =
    `\nIceberg metadata, one pass a day (3 partitions, 12 consumer files a day compacted the next pass, grace 1 h)\n` +
    table(['passes', '_iceberg objects', '_iceberg bytes'], [1, 7, 30, 90, 365].filter((n) => n <= growth.length).map((n) => [String(n), String(at(n).objects), String(at(n).bytes)]));
  out +=
    `\nquiet-month store (${store.store}): ${store.tableFiles} files in the table, ${store.metadataObjects} metadata objects, ${store.metadataBytes} bytes\n` +
    `arrival to visibility (maintain --once right after the store): median ${store.visibility.lagMsMedian} ms, pass ${store.visibility.passSecondsMedian} s; with the service add up to AUDIT_MAINTAIN_INTERVAL\n`;
  const med = (xs: number[]) => String(round(median(xs)));
  const rows = [['audit-query (process per query)', med(store.auditQuery.countSeconds), med(store.auditQuery.objectSeconds), String(store.auditQuery.count), String(store.auditQuery.objectRows)]];
  if (store.spark) rows.push([`Spark (one session, started in ${store.spark.startSeconds} s)`, med(store.spark.countSeconds), med(store.spark.objectSeconds), String(store.spark.count), String(store.spark.objectRows)]);
  out += table(['', 'count(*) s', `object ${store.object} s`, 'count', 'object rows'], rows);
  process.stdout.write(`${out}\n`);
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench', 'results', 'iceberg.json'), `${JSON.stringify({ benchmark: 'iceberg', date: new Date().toISOString(), node: process.version, config: cfg, growth, store }, null, 2)}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
