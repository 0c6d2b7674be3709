/**
 * Signed digests: what they cost and how fast `audit-query verify` reads them.
 *
 * 1. verify on the 10M-event store (the query benchmark's dataset shape, loaded
 *    with a chain digest per cut, as the consumer signs them): seconds, files/s,
 *    MB/s hashed, CPU seconds and peak RSS.
 * 2. The consumer with digests off and on, side by side: one topic, rounds
 *    interleaved (off, on, off, on, ...), each round a new consumer group and
 *    store prefix; events/s, CPU-s per 1M events, peak RSS and stored bytes per
 *    event (every object the round wrote: data, indexes, claims, digests).
 *
 *   npm run bench:verify      (needs Kafka and MinIO: bash infra/up.sh kafka s3)
 *
 * Environment (defaults): BENCH_EVENTS (10000000) BENCH_DAYS (30) BENCH_OBJECTS (100000)
 * BENCH_PARTITIONS (3) BENCH_CUT_RECORDS (200000) BENCH_CONSUMER_EVENTS (300000)
 * BENCH_ROUNDS (3) BENCH_FRESH (0) BENCH_PARTS (consumer,verify) BENCH_BASELINE_CLI (unset: the previous release's
 * dist/query/cli.js, verified side by side) BENCH_VERIFY_ROUNDS (3) BENCH_OUT (verify.json) AUDIT_S3_ENDPOINT (http://127.0.0.1:9000) BENCH_BUCKET (audit)
 * AUDIT_KAFKA_BROKERS (localhost:9092). Writes bench/results/verify.json.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { encodeRecord, objectKey } from '../schemas';
import { type FileIndex, INDEX_PREFIX, S3ObjectStore } from '../storage';
import { encodeFileIndex } from '../storage/signed-index';
import { parseEnvelope } from '../trust/signed-object';
import { DigestChainWriter } from '../trust/chain-writer';
import { DigestSigner, generateSigningKey } from '../trust/signer';
import { kafkaPartition, loadDataset, workDirFor } from './lib/dataset';
import { envNumber, projectRoot } from './lib/env';
import { EventGenerator } from './lib/events';
import { CountingProxy } from './lib/counting-proxy';
import { type CapturedRun, runCaptured } from './lib/measured-process';
import { median, table } from './lib/stats';

const ROOT = projectRoot(__dirname);
const cfg = {
  events: envNumber('BENCH_EVENTS', 10_000_000),
  days: envNumber('BENCH_DAYS', 30),
  objects: envNumber('BENCH_OBJECTS', 100_000),
  partitions: envNumber('BENCH_PARTITIONS', 3),
  cutRecords: envNumber('BENCH_CUT_RECORDS', 200_000),
  consumerEvents: envNumber('BENCH_CONSUMER_EVENTS', 300_000),
  rounds: envNumber('BENCH_ROUNDS', 3),
  fresh: process.env.BENCH_FRESH === '1',
  endpoint: process.env.AUDIT_S3_ENDPOINT ?? 'http://127.0.0.1:9000',
  bucket: process.env.BENCH_BUCKET ?? 'audit',
  brokers: process.env.AUDIT_KAFKA_BROKERS ?? 'localhost:9092',
  /** The previous release's audit-query CLI (its dist/query/cli.js), run on the same store as the baseline. */
  baselineCli: process.env.BENCH_BASELINE_CLI ?? null,
  verifyRounds: envNumber('BENCH_VERIFY_ROUNDS', 3),
};
const log = (m: string) => process.stderr.write(`${m}\n`);
const storeEnv = (prefix: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  ...process.env,
  AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'minioadmin',
  AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'minioadmin',
  AUDIT_STORE_URL: `s3://${cfg.bucket}/${prefix}`,
  AUDIT_S3_ENDPOINT: cfg.endpoint,
  AUDIT_LOG_LEVEL: 'warn',
  ...extra,
});
const s3 = (prefix: string) => new S3ObjectStore({ bucket: cfg.bucket, prefix, region: 'us-east-1', endpoint: cfg.endpoint });

async function storedBytes(prefix: string): Promise<{ all: number; data: number; digests: number; objects: number }> {
  const store = s3(prefix);
  const out = { all: 0, data: 0, digests: 0, objects: 0 };
  for await (const o of store.list('')) {
    out.all += o.size;
    out.objects++;
    if (o.key.startsWith('dt=')) out.data += o.size;
    if (o.key.startsWith('_digests/')) out.digests += o.size;
  }
  store.close();
  return out;
}

async function verifyStore() {
  const id = `e${cfg.events}-d${cfg.days}-o${cfg.objects}-p${cfg.partitions}-c${cfg.cutRecords}`;
  const prefix = `bench/verify/${id}`;
  const store = s3(prefix);
  let loaded = false;
  for await (const _ of store.list('_digests/keys/')) loaded = true;
  if (!loaded || cfg.fresh) {
    log(`loading ${cfg.events.toLocaleString('en')} events with a signed digest per cut into s3://${cfg.bucket}/${prefix}`);
    const signer = DigestSigner.fromPem(generateSigningKey().privateKeyPem, 'bench');
    await signer.publish(store, 'bench');
    const summary = await loadDataset(store, {
      events: cfg.events, days: cfg.days, objects: cfg.objects, start: Date.UTC(2026, 8, 1), seed: 42, lateShare: 0.002, profile: 'typical',
      topic: 'audit.events', partitions: cfg.partitions, cutRecords: cfg.cutRecords, cutBytes: 64 * 1024 * 1024, rowGroupRows: 16_384, zstdLevel: 3,
      workDir: workDirFor('verify'), pg: null, log, cutsInFlight: 2, chain: new DigestChainWriter(store, signer, 'audit.events', 'bench'),
    });
    log(`  loaded: ${summary.files} files, ${(summary.parquetBytes / 1e6).toFixed(0)} MB, ${summary.seconds.toFixed(0)} s`);
  }
  await signIndexes(store);
  store.close();
  // Side by side in one run: this release's verify and, with BENCH_BASELINE_CLI, the previous
  // release's, interleaved, each through a proxy that counts its requests to the S3 server.
  const proxy = await CountingProxy.start(cfg.endpoint);
  const runs: { name: 'current' | 'baseline'; r: CapturedRun; stats: VerifyStats; requests: ReturnType<CountingProxy['take']> }[] = [];
  try {
    for (let i = 0; i < cfg.verifyRounds; i++) {
      for (const [name, cli] of [['baseline', cfg.baselineCli], ['current', join(ROOT, 'dist', 'bin', 'audit-query.js')]] as const) {
        if (cli === null) continue;
        log(`audit-query verify (${name}) on it, round ${i + 1}`);
        proxy.take();
        const r = await runCaptured(process.execPath, [cli, 'verify', '--format', 'json'], storeEnv(prefix, { AUDIT_S3_ENDPOINT: proxy.url }));
        const requests = proxy.take();
        if (r.code !== 0) throw new Error(`verify (${name}) exited ${r.code}: ${r.stderr.slice(-2000)} ${r.stdout.slice(0, 2000)}`);
        const stats = (JSON.parse(r.stdout) as { stats: VerifyStats }).stats;
        runs.push({ name, r, stats, requests });
        log(`  ${round(r.seconds)} s, ${requests.total} requests, ${round(r.cpuSeconds)} CPU-s, ${Math.round(r.peakRssMb)} MB`);
      }
    }
  } finally {
    await proxy.close();
  }
  const summary = (name: 'current' | 'baseline') => {
    const rs = runs.filter((x) => x.name === name);
    if (rs.length === 0) return null;
    const stats = rs[0]!.stats;
    const seconds = median(rs.map((x) => x.r.seconds));
    return {
      events: cfg.events,
      files: stats.filesChecked,
      digests: stats.chainDigests,
      offsets: stats.offsets,
      mb: Math.round(stats.bytesChecked / 1e5) / 10,
      seconds: round(seconds),
      secondsAll: rs.map((x) => round(x.r.seconds)),
      filesPerSecond: round(stats.filesChecked / seconds),
      mbPerSecond: round(stats.bytesChecked / 1e6 / seconds),
      cpuSeconds: round(median(rs.map((x) => x.r.cpuSeconds))),
      peakRssMb: Math.max(...rs.map((x) => Math.round(x.r.peakRssMb))),
      requests: median(rs.map((x) => x.requests.total)),
      requestsByMethod: rs[0]!.requests.byMethod,
    };
  };
  return { current: summary('current')!, baseline: summary('baseline') };
}

/**
 * The loader writes its per-file indexes unsigned, and this release's verify names an unsigned
 * index (readers ignore it): re-sealed here with a key published in the store, as the consumer's
 * own indexes are, once per store.
 */
async function signIndexes(store: S3ObjectStore): Promise<void> {
  const keys: string[] = [];
  for await (const o of store.list(INDEX_PREFIX)) if (o.key.endsWith('.json') && !o.key.endsWith('/_manifest.json')) keys.push(o.key);
  let signer: DigestSigner | null = null;
  let sealed = 0;
  for (const key of keys) {
    const bytes = await store.get(key);
    if (bytes === null || parseEnvelope(bytes) !== null) continue;
    if (signer === null) {
      signer = DigestSigner.fromPem(generateSigningKey().privateKeyPem, 'bench-index');
      await signer.publish(store, 'bench-index');
    }
    await store.put(key, encodeFileIndex(JSON.parse(bytes.toString('utf8')) as FileIndex, signer, { writer: 'bench' }));
    sealed++;
  }
  if (sealed > 0) log(`  sealed ${sealed} unsigned per-file indexes of the loader`);
}

interface VerifyStats {
  filesChecked: number;
  bytesChecked: number;
  chainDigests: number;
  offsets: string;
}

async function produce(topic: string): Promise<void> {
  const kafka = new Kafka({ clientId: 'bench-verify', brokers: cfg.brokers.split(','), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: cfg.partitions, replicationFactor: 1 }] });
  await admin.disconnect();
  const producer = kafka.producer();
  await producer.connect();
  const gen = new EventGenerator({ events: cfg.consumerEvents, days: 3, objects: 20_000, start: Date.UTC(2026, 9, 1), seed: 7, lateShare: 0.002, profile: 'typical' });
  let batch: { key: string; value: Buffer; partition: number }[] = [];
  for (const r of gen.events()) {
    const key = objectKey(r);
    batch.push({ key, value: encodeRecord(r), partition: kafkaPartition(key, cfg.partitions) });
    if (batch.length === 2000) {
      await producer.send({ topic, messages: batch });
      batch = [];
    }
  }
  if (batch.length > 0) await producer.send({ topic, messages: batch });
  await producer.disconnect();
}

interface Round {
  digests: boolean;
  run: CapturedRun;
  bytes: Awaited<ReturnType<typeof storedBytes>>;
}

async function consumerRounds(): Promise<Round[]> {
  const topic = `bench.verify.${randomUUID().slice(0, 8)}`;
  log(`producing ${cfg.consumerEvents.toLocaleString('en')} events to ${topic}`);
  await produce(topic);
  const dir = await mkdtemp(join(tmpdir(), 'bench-key-'));
  const keyFile = join(dir, 'signing.pem');
  await writeFile(keyFile, generateSigningKey().privateKeyPem, { mode: 0o600 });
  const rounds: Round[] = [];
  for (let i = 0; i < cfg.rounds * 2; i++) {
    const digests = i % 2 === 1;
    const id = `${topic}-${i}`;
    const prefix = `bench/verify-consumer/${id}`;
    const run = await runCaptured(process.execPath, [join(ROOT, 'dist', 'consumer', 'cli.js'), '--drain'], storeEnv(prefix, {
      AUDIT_KAFKA_BROKERS: cfg.brokers,
      AUDIT_TOPIC: topic,
      AUDIT_CONSUMER_GROUP: `bench-${id}`,
      AUDIT_WORK_DIR: join(tmpdir(), 'bench-verify', id),
      ...(digests ? { AUDIT_SIGNING_KEY_FILE: keyFile } : {}),
    }));
    if (run.code !== 0) throw new Error(`consumer exited ${run.code}: ${run.stderr.slice(-2000)}`);
    const bytes = await storedBytes(prefix);
    rounds.push({ digests, run, bytes });
    log(`  round ${i + 1}: digests ${digests ? 'on ' : 'off'}  ${round(cfg.consumerEvents / run.seconds)} events/s, ${round(run.cpuSeconds)} CPU-s, ${Math.round(run.peakRssMb)} MB, ${round(bytes.all / cfg.consumerEvents)} B/event`);
  }
  return rounds;
}

function summarize(rounds: Round[], digests: boolean) {
  const rs = rounds.filter((r) => r.digests === digests);
  return {
    eventsPerSecond: round(median(rs.map((r) => cfg.consumerEvents / r.run.seconds))),
    cpuSecondsPer1M: round(median(rs.map((r) => (r.run.cpuSeconds * 1e6) / cfg.consumerEvents))),
    peakRssMb: Math.max(...rs.map((r) => Math.round(r.run.peakRssMb))),
    bytesPerEvent: round(median(rs.map((r) => r.bytes.all / cfg.consumerEvents))),
    dataBytesPerEvent: round(median(rs.map((r) => r.bytes.data / cfg.consumerEvents))),
    digestBytesPerEvent: round(median(rs.map((r) => r.bytes.digests / cfg.consumerEvents))),
    objects: median(rs.map((r) => r.bytes.objects)),
  };
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}

async function main(): Promise<void> {
  // BENCH_PARTS=verify skips the consumer rounds (no Kafka needed), =consumer the store.
  const parts = process.env.BENCH_PARTS ?? 'consumer,verify';
  const rounds = parts.includes('consumer') ? await consumerRounds() : [];
  const verify = parts.includes('verify') ? await verifyStore() : null;
  let consumer: { off: ReturnType<typeof summarize>; on: ReturnType<typeof summarize>; ratios: Record<string, number> } | null = null;
  let out = '';
  if (rounds.length > 0) {
    const off = summarize(rounds, false);
    const on = summarize(rounds, true);
    const ratios = {
      eventsPerSecond: round(on.eventsPerSecond / off.eventsPerSecond),
      cpuSecondsPer1M: round(on.cpuSecondsPer1M / off.cpuSecondsPer1M),
      bytesPerEvent: round(on.bytesPerEvent / off.bytesPerEvent),
    };
    consumer = { off, on, ratios };
    out +=
      `\nconsumer, ${cfg.consumerEvents.toLocaleString('en')} events, ${cfg.rounds} interleaved rounds each (medians)\n` +
      table(['', 'digests off', 'digests on', 'on / off'], [
        ['events/s', String(off.eventsPerSecond), String(on.eventsPerSecond), String(ratios.eventsPerSecond)],
        ['CPU-s per 1M events', String(off.cpuSecondsPer1M), String(on.cpuSecondsPer1M), String(ratios.cpuSecondsPer1M)],
        ['stored bytes/event (all objects)', String(off.bytesPerEvent), String(on.bytesPerEvent), String(ratios.bytesPerEvent)],
        ['of which digests', '0', String(on.digestBytesPerEvent), ''],
        ['peak RSS, MB', String(off.peakRssMb), String(on.peakRssMb), ''],
      ]);
  }
  if (verify) {
    const row = (name: string, v: NonNullable<typeof verify.baseline>) =>
      [name, String(v.files), String(v.mb), String(v.seconds), String(v.requests), String(v.filesPerSecond), String(v.mbPerSecond), String(v.cpuSeconds), String(v.peakRssMb)];
    const rows = [row('this release', verify.current)];
    if (verify.baseline) {
      rows.unshift(row('previous release', verify.baseline));
      const b = verify.baseline;
      const c = verify.current;
      rows.push(['this / previous', '', '', String(round(c.seconds / b.seconds)), String(round(c.requests / b.requests)), '', '', String(round(c.cpuSeconds / b.cpuSeconds)), String(round(c.peakRssMb / b.peakRssMb))]);
    }
    out +=
      `\naudit-query verify, ${Number(verify.current.events).toLocaleString('en')}-event store, median of ${cfg.verifyRounds} interleaved runs\n` +
      table(['', 'files', 'MB hashed', 'seconds', 'requests', 'files/s', 'MB/s', 'CPU-s', 'peak RSS MB'], rows);
  }
  process.stdout.write(`${out}\n`);
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  const file = process.env.BENCH_OUT ?? 'verify.json';
  writeFileSync(join(ROOT, 'bench', 'results', file), `${JSON.stringify({ date: new Date().toISOString(), node: process.version, config: cfg, consumer, verify }, null, 2)}\n`);
}

main().catch((err: Error) => {
  process.stderr.write(`${err.stack ?? err.message}\n`);
  process.exit(1);
});
