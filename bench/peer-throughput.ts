/**
 * A real peer, side by side: the Apache Iceberg Kafka Connect sink against
 * audit-consumer, on the same topic (same records, same 3 partitions) in the same
 * sitting, with kcat and a bare kafkajs consumer as the ceilings. Rounds are
 * interleaved (kcat, kafkajs, audit-consumer, Iceberg sink; again), so the host's
 * drift hits every reader alike.
 *
 *   npm run bench:peer      (needs: bash infra/up.sh kafka s3 postgres registry; the
 *                            sink's jars come from bash infra/connect.sh install, which
 *                            this runs first: cached, nothing is downloaded while timing)
 *   BENCH_EVENTS=1000000 BENCH_RUNS=3 BENCH_ICEBERG_TASKS=3 BENCH_ICEBERG_COMMIT_MS=5000
 *
 * The topic is framed with schema registry ids (Confluent framing, the local
 * Apicurio): audit-consumer reads it with AUDIT_SCHEMA_REGISTRY_URL, the sink with
 * Apicurio's AvroConverter, so both decode the same Avro bytes.
 *
 * Per reader: events/s = events / (start of the process until every record is
 * stored: audit-consumer --drain exits after its last commit; the Iceberg sink is
 * done when its table's current snapshot counts every record, and is then
 * stopped), CPU-s per 1M events and peak RSS from /proc, stored bytes/event = all
 * objects under the reader's prefix / events.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { Client } from 'pg';
import { RegistryClient, registerWriterSchema } from '../schema-registry';
import { produceBenchTopic } from './lib/bench-topic';
import { envNumber, projectRoot } from './lib/env';
import { IcebergTableWatcher, prefixSize } from './lib/iceberg-table';
import { measure, type Measured } from './lib/measured-process';
import { median, table } from './lib/stats';

const ROOT = projectRoot(__dirname);
const EVENTS = envNumber('BENCH_EVENTS', 1_000_000);
const RUNS = envNumber('BENCH_RUNS', 3);
const ICEBERG_TASKS = envNumber('BENCH_ICEBERG_TASKS', 3);
const ICEBERG_COMMIT_MS = envNumber('BENCH_ICEBERG_COMMIT_MS', 5000);
const BROKERS = process.env.AUDIT_KAFKA_BROKERS ?? 'localhost:9092';
const S3_ENDPOINT = process.env.AUDIT_S3_ENDPOINT ?? 'http://127.0.0.1:9000';
const BUCKET = process.env.AUDIT_S3_BUCKET ?? 'audit';
const REGISTRY_CCOMPAT = process.env.BENCH_SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7';
const PG_PORT = process.env.AUDIT_PG_PORT ?? '54329';
const CATALOG_DB = process.env.AUDIT_CONNECT_CATALOG_DB ?? 'iceberg_catalog';
const READERS = (process.env.BENCH_READERS ?? 'kcat,kafkajs,consumer,iceberg').split(',');

type Reader = 'kcat' | 'kafkajs' | 'consumer' | 'iceberg';

interface Round extends Measured {
  eventsPerSecond: number;
  cpuSecondsPerMillion: number;
  storedObjects: number | null;
  storedBytes: number | null;
  storedBytesPerEvent: number | null;
  /** Iceberg only: the data files (Parquet) alone, without the table's metadata. */
  dataBytesPerEvent?: number;
  /** Iceberg only: from the process start to the worker's "Kafka Connect started" (JVM + worker start-up, included in `seconds`). */
  startupSeconds?: number;
}

/** Seconds from `startedAt` (epoch ms) to the worker's "Kafka Connect started" line (log4j local time). */
function connectStartupSeconds(log: string, startedAt: number): number | undefined {
  const m = /^\[(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d),(\d{3})\] INFO Kafka Connect started/m.exec(log);
  return m ? (new Date(`${m[1]}T${m[2]}.${m[3]}`).getTime() - startedAt) / 1000 : undefined;
}

function ensureKcat(): string {
  const find = () => execFileSync('sh', ['-c', 'command -v kcat'], { encoding: 'utf8' }).trim();
  try {
    return find();
  } catch {
    if (process.getuid?.() !== 0) throw new Error('kcat is required: apt-get install -y kcat');
    execFileSync('sh', ['-c', 'apt-get install -y -qq kcat >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq kcat >/dev/null)']);
    return find();
  }
}

function round(m: Measured, stored: { objects: number; bytes: number } | null): Round {
  return {
    ...m,
    eventsPerSecond: EVENTS / m.seconds,
    cpuSecondsPerMillion: (m.cpuSeconds / EVENTS) * 1e6,
    storedObjects: stored?.objects ?? null,
    storedBytes: stored?.bytes ?? null,
    storedBytesPerEvent: stored ? stored.bytes / EVENTS : null,
  };
}

async function main(): Promise<void> {
  const kcat = ensureKcat();
  // Install (or find cached) before any timing: nothing is downloaded during a round.
  execFileSync('bash', [join(ROOT, 'infra', 'connect.sh'), 'install'], { stdio: ['ignore', 'ignore', 'inherit'] });
  execFileSync('bash', [join(ROOT, 'infra', 'connect.sh'), 'catalog-db'], { stdio: ['ignore', 'ignore', 'inherit'] });

  const stamp = Date.now();
  const topic = `bench.peer.${stamp}`;
  const registry = new RegistryClient({ url: REGISTRY_CCOMPAT, auth: { kind: 'none' }, subjectStrategy: 'topic', retryMs: 30_000 });
  const writer = await registerWriterSchema(registry, topic, 'topic');
  console.log(`producing ${EVENTS.toLocaleString()} events to ${topic}, framed with registry id ${writer.id} ...`);
  const produced = await produceBenchTopic(BROKERS.split(','), topic, EVENTS, writer.header);
  console.log(`produced ${(produced.wireBytes / 1e6).toFixed(1)} MB (${Math.round(produced.wireBytes / EVENTS)} bytes/event on the wire)`);

  const s3 = new S3Client({
    endpoint: S3_ENDPOINT,
    region: process.env.AUDIT_S3_REGION ?? 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'minioadmin', secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'minioadmin' },
  });
  const pg = new Client({ host: '127.0.0.1', port: Number(PG_PORT), user: 'postgres', database: CATALOG_DB });
  await pg.connect();
  const watcher = new IcebergTableWatcher(pg, s3);

  const runs: Record<Reader, Round[]> = { kcat: [], kafkajs: [], consumer: [], iceberg: [] };
  try {
    for (let run = 0; run < RUNS; run++) {
      const id = `${stamp}_${run}`;
      if (READERS.includes('kcat')) {
        runs.kcat.push(round(await measure(kcat, ['-C', '-b', BROKERS, '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%s\n'], { stdoutToNull: true }), null));
      }
      if (READERS.includes('kafkajs')) {
        runs.kafkajs.push(
          round(await measure(process.execPath, [join(ROOT, 'dist', 'bench', 'lib', 'kafkajs-drain.js'), topic], { env: { ...process.env, AUDIT_KAFKA_BROKERS: BROKERS } }), null),
        );
      }
      if (READERS.includes('consumer')) {
        const prefix = `bench/peer/consumer-${id}`;
        const m = await measure(process.execPath, [join(ROOT, 'dist', 'consumer', 'cli.js'), '--drain'], {
          env: {
            ...process.env,
            AUDIT_KAFKA_BROKERS: BROKERS,
            AUDIT_TOPIC: topic,
            AUDIT_S3_ENDPOINT: S3_ENDPOINT,
            AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'minioadmin',
            AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'minioadmin',
            AUDIT_SCHEMA_REGISTRY_URL: REGISTRY_CCOMPAT,
            AUDIT_CONSUMER_GROUP: `bench-peer-${id}`,
            AUDIT_STORE_URL: `s3://${BUCKET}/${prefix}`,
            AUDIT_LOG_LEVEL: 'warn',
          },
        });
        runs.consumer.push(round(m, await prefixSize(s3, BUCKET, `${prefix}/`)));
      }
      if (READERS.includes('iceberg')) {
        const name = `peer_${id}`;
        const runDir = join(tmpdir(), 'audit-bench-peer', name);
        const warehousePrefix = `bench/peer/iceberg-${id}`;
        const startedAt = Date.now();
        const m = await measure('bash', [join(ROOT, 'infra', 'connect.sh'), 'run'], {
          env: {
            ...process.env,
            AUDIT_CONNECT_TOPIC: topic,
            AUDIT_CONNECT_NAME: name,
            AUDIT_CONNECT_RUN_DIR: runDir,
            AUDIT_CONNECT_WAREHOUSE: `s3://${BUCKET}/${warehousePrefix}`,
            AUDIT_CONNECT_CATALOG_DB: CATALOG_DB,
            AUDIT_CONNECT_TASKS: String(ICEBERG_TASKS),
            AUDIT_CONNECT_COMMIT_MS: String(ICEBERG_COMMIT_MS),
          },
          doneWhen: async () => (await watcher.committedRecords({ catalog: 'iceberg', namespace: 'bench', name })) >= EVENTS,
          pollMs: 200,
        });
        const all = await prefixSize(s3, BUCKET, `${warehousePrefix}/`);
        const data = await prefixSize(s3, BUCKET, `${warehousePrefix}/`, (k) => k.endsWith('.parquet'));
        const startupSeconds = connectStartupSeconds(readFileSync(join(runDir, 'connect.log'), 'utf8'), startedAt);
        runs.iceberg.push({ ...round(m, all), dataBytesPerEvent: data.bytes / EVENTS, startupSeconds });
        const committed = await watcher.committedRecords({ catalog: 'iceberg', namespace: 'bench', name });
        if (committed !== EVENTS) throw new Error(`Iceberg table bench.${name} holds ${committed} records, expected ${EVENTS} (log: ${runDir}/connect.log)`);
      }
      console.log(`round ${run + 1}/${RUNS} done`);
    }
  } finally {
    await pg.end();
  }

  const med = (rs: Round[], f: (r: Round) => number) => median(rs.map(f));
  const names: Record<Reader, string> = {
    kcat: 'kcat -> /dev/null (broker ceiling)',
    kafkajs: 'kafkajs, messages dropped (client ceiling)',
    consumer: 'audit-consumer --drain (-> Parquet on S3, committed)',
    iceberg: `Iceberg Kafka Connect sink (${ICEBERG_TASKS} tasks, commit every ${ICEBERG_COMMIT_MS / 1000} s)`,
  };
  const present = (Object.keys(runs) as Reader[]).filter((r) => runs[r].length > 0);
  const summary = Object.fromEntries(
    present.map((r) => [
      r,
      {
        eventsPerSecond: med(runs[r], (x) => x.eventsPerSecond),
        seconds: med(runs[r], (x) => x.seconds),
        cpuSecondsPerMillion: med(runs[r], (x) => x.cpuSecondsPerMillion),
        peakRssMb: Math.max(...runs[r].map((x) => x.peakRssMb)),
        storedBytesPerEvent: runs[r][0]!.storedBytesPerEvent === null ? null : med(runs[r], (x) => x.storedBytesPerEvent ?? NaN),
      },
    ]),
  ) as Partial<Record<Reader, { eventsPerSecond: number; seconds: number; cpuSecondsPerMillion: number; peakRssMb: number; storedBytesPerEvent: number | null }>>;
  const kcatEps = summary.kcat?.eventsPerSecond ?? NaN;
  console.log(`\n${EVENTS.toLocaleString()} events, 3 partitions, median of ${RUNS} interleaved rounds, ${cpus().length} cores, node ${process.version}`);
  console.log(
    table(
      ['reader', 'events/s', 'seconds', 'CPU-s/1M', 'peak RSS MB', 'stored B/event', 'vs kcat'],
      present.map((r) => {
        const s = summary[r]!;
        return [
          names[r],
          Math.round(s.eventsPerSecond).toLocaleString(),
          s.seconds.toFixed(2),
          s.cpuSecondsPerMillion.toFixed(2),
          s.peakRssMb.toFixed(0),
          s.storedBytesPerEvent === null ? '-' : s.storedBytesPerEvent.toFixed(1),
          `${((s.eventsPerSecond / kcatEps) * 100).toFixed(0)}%`,
        ];
      }),
    ),
  );
  const consumerVsIceberg = summary.consumer && summary.iceberg ? summary.consumer.eventsPerSecond / summary.iceberg.eventsPerSecond : null;
  // Per round too: the two ran back to back, so each round's ratio is drift-free-ish.
  const perRound = runs.consumer.length === runs.iceberg.length ? runs.consumer.map((c, i) => c.eventsPerSecond / runs.iceberg[i]!.eventsPerSecond) : [];
  if (consumerVsIceberg !== null) {
    console.log(
      `audit-consumer / Iceberg sink events/s: ${consumerVsIceberg.toFixed(2)}x (rounds: ${perRound.map((r) => r.toFixed(2)).join(', ')}; target >= 2x: ${consumerVsIceberg >= 2 ? 'met' : 'MISSED'})`,
    );
    const startup = median(runs.iceberg.map((r) => r.startupSeconds ?? NaN));
    console.log(`Iceberg sink: JVM + worker start-up ${startup.toFixed(1)} s of its ${summary.iceberg!.seconds.toFixed(1)} s; without it ${Math.round(EVENTS / (summary.iceberg!.seconds - startup)).toLocaleString()} events/s`);
  }
  const connectHome = execFileSync('bash', [join(ROOT, 'infra', 'connect.sh'), 'home'], { encoding: 'utf8' }).trim();
  const jars = readFileSync(join(connectHome, 'jars.sha256'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => l.split(/\s+/)[1]);
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  const out = join(ROOT, 'bench', 'results', 'peer-throughput.json');
  writeFileSync(
    out,
    JSON.stringify(
      {
        benchmark: 'peer-throughput',
        date: new Date().toISOString(),
        node: process.version,
        cores: cpus().length,
        events: EVENTS,
        partitions: produced.partitions,
        wireBytes: produced.wireBytes,
        framing: `schema registry id ${writer.id} (${REGISTRY_CCOMPAT})`,
        iceberg: {
          tasks: ICEBERG_TASKS,
          commitIntervalMs: ICEBERG_COMMIT_MS,
          converter: 'io.apicurio.registry.utils.converter.AvroConverter',
          catalog: `JdbcCatalog on PostgreSQL :${PG_PORT}/${CATALOG_DB}`,
          jars: jars.filter((j) => /^(connect-runtime|iceberg-|apicurio-registry-utils-converter|parquet-hadoop|postgresql|kafka-clients)/.test(j ?? '')),
        },
        runs,
        median: summary,
        consumerVsIceberg,
        consumerVsIcebergPerRound: perRound,
        target: { consumerAtLeast2xIceberg: consumerVsIceberg === null ? null : consumerVsIceberg >= 2 },
      },
      null,
      2,
    ),
  );
  console.log(`wrote ${out}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
