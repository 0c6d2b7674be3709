/**
 * Consumer throughput, end to end (Kafka -> Avro decode -> Parquet -> S3 -> commit),
 * side by side with two baselines reading the same topic: kcat to /dev/null (the
 * ceiling of this broker and machine: librdkafka, C) and a bare kafkajs consumer
 * that does nothing with the messages (the ceiling of the Kafka client the
 * consumer is built on). Peak RSS and CPU seconds are sampled from /proc.
 *
 *   npm run build && node dist/bench/consumer-throughput.js
 *   BENCH_EVENTS=1000000 (default) BENCH_RUNS=2; BENCH_TOPIC=<existing topic> skips producing
 *
 * Registry on vs off: the same events are also produced to a second topic framed
 * with a schema registry's id (BENCH_SCHEMA_REGISTRY_URL, default the local
 * Apicurio of infra/up.sh registry; BENCH_REGISTRY=0 skips it), and the consumer
 * reads it with AUDIT_SCHEMA_REGISTRY_URL, interleaved with the run without.
 *
 * Needs the local services (bash infra/up.sh kafka s3 registry) and kcat (Debian package;
 * installed here with apt-get when missing and running as root).
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CompressionTypes, Kafka, logLevel, Partitioners } from 'kafkajs';
import { encodeRecord, CURRENT_SCHEMA_ID, singleObjectHeader, type AuditRecord } from '../schemas';
import { RegistryClient, registerWriterSchema } from '../schema-registry';

const ROOT = join(__dirname, '..', '..');
const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 2);
const BROKERS = process.env.AUDIT_KAFKA_BROKERS ?? 'localhost:9092';
const ENDPOINT = process.env.AUDIT_S3_ENDPOINT ?? 'http://127.0.0.1:9000';
const REGISTRY_URL = process.env.BENCH_SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7';
const WITH_REGISTRY = process.env.BENCH_REGISTRY !== '0';

function ensureKcat(): string {
  try {
    return execFileSync('sh', ['-c', 'command -v kcat'], { encoding: 'utf8' }).trim();
  } catch {
    if (process.getuid?.() !== 0) throw new Error('kcat is required: apt-get install -y kcat');
    execFileSync('sh', ['-c', 'apt-get install -y -qq kcat >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq kcat >/dev/null)']);
    return execFileSync('sh', ['-c', 'command -v kcat'], { encoding: 'utf8' }).trim();
  }
}

/** A realistic record: an ORM update with a couple of changed fields, request context and metadata. */
function record(i: number): AuditRecord {
  const day0 = Date.UTC(2026, 6, 1);
  return {
    event_id: randomUUID(),
    occurred_at: (day0 + ((i * 7919) % (3 * 86_400_000))) * 1000,
    object_type: i % 5 === 0 ? 'customer' : 'invoice',
    object_id: String(i % 100_000),
    action: i % 10 === 0 ? 'create' : 'update',
    actor_id: `user-${i % 5000}`,
    actor_type: 'user',
    tenant_id: `tenant-${i % 50}`,
    request_id: randomUUID(),
    trace_id: null,
    ip: `10.0.${(i >> 8) & 255}.${i & 255}`,
    user_agent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36',
    http_method: 'PATCH',
    http_path: `/api/invoices/${i % 100_000}`,
    http_status: 200,
    changes: { status: { old: '"draft"', new: '"sent"' }, total: { old: String(i), new: String(i + 10) } },
    before: null,
    after: null,
    metadata: { source: 'api' },
    source_service: 'billing',
    schema_version: CURRENT_SCHEMA_ID,
    duration_ms: 12.5,
    error_type: null,
    error_message: null,
    error_stack: null,
  };
}

async function produce(topic: string, header: Buffer = singleObjectHeader(CURRENT_SCHEMA_ID)): Promise<number> {
  const kafka = new Kafka({ clientId: 'bench-producer', brokers: BROKERS.split(','), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  let bytes = 0;
  const batch = 5000;
  for (let i = 0; i < EVENTS; i += batch) {
    const messages = [];
    for (let j = i; j < Math.min(EVENTS, i + batch); j++) {
      const r = record(j);
      const value = encodeRecord(r, CURRENT_SCHEMA_ID, header);
      bytes += value.length;
      messages.push({ key: `${r.object_type}:${r.object_id}`, value });
    }
    await producer.send({ topic, acks: 1, compression: CompressionTypes.None, messages });
  }
  await producer.disconnect();
  return bytes;
}

interface RunResult {
  seconds: number;
  eventsPerSecond: number;
  peakRssMb: number;
  /** User + system CPU of the process (all its threads), sampled every 50 ms. */
  cpuSeconds: number;
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** Runs a command to completion, sampling its RSS and CPU time every 50 ms. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv, stdoutToNull = false): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { env, stdio: ['ignore', stdoutToNull ? 'ignore' : 'inherit', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let peak = 0;
    let cpu = 0;
    const sampler = setInterval(() => {
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peak = Math.max(peak, Number(m[1]) / 1024);
        // Fields after the command name: utime and stime are the 12th and 13th.
        const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        cpu = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
      } catch {
        // exited between samples
      }
    }, 50);
    child.on('exit', (code) => {
      clearInterval(sampler);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) reject(new Error(`${cmd} exited ${code}: ${stderr.slice(-2000)}`));
      else resolve({ seconds, eventsPerSecond: EVENTS / seconds, peakRssMb: peak, cpuSeconds: cpu });
    });
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const kcat = ensureKcat();
  let topic = process.env.BENCH_TOPIC;
  let registryTopic: string | null = null;
  let bytes: number | null = null;
  if (topic) {
    console.log(`reading the existing topic ${topic} (BENCH_EVENTS=${EVENTS} must match its size)`);
  } else {
    topic = `bench.consumer.${Date.now()}`;
    console.log(`producing ${EVENTS.toLocaleString()} events to ${topic} ...`);
    bytes = await produce(topic);
    console.log(`produced ${(bytes / 1e6).toFixed(1)} MB (${Math.round(bytes / EVENTS)} bytes/event on the wire)`);
    if (WITH_REGISTRY) {
      registryTopic = `${topic}.registry`;
      const client = new RegistryClient({ url: REGISTRY_URL, auth: { kind: 'none' }, subjectStrategy: 'topic', retryMs: 30_000 });
      const writer = await registerWriterSchema(client, registryTopic, 'topic');
      console.log(`producing the same events to ${registryTopic}, framed with registry id ${writer.id} ...`);
      await produce(registryTopic, writer.header);
    }
  }

  const consumerEnv: NodeJS.ProcessEnv = {
    AUDIT_KAFKA_BROKERS: BROKERS,
    AUDIT_TOPIC: topic,
    AUDIT_S3_ENDPOINT: ENDPOINT,
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'minioadmin',
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'minioadmin',
    AUDIT_LOG_LEVEL: 'warn',
  };
  const runs: Record<'kcat' | 'kafkajs' | 'consumer' | 'consumerRegistry', RunResult[]> = { kcat: [], kafkajs: [], consumer: [], consumerRegistry: [] };
  for (let run = 0; run < RUNS; run++) {
    runs.kcat.push(await timed(kcat, ['-C', '-b', BROKERS, '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%s\n'], process.env, true));
    runs.kafkajs.push(await timed(process.execPath, [join(ROOT, 'dist', 'bench', 'lib', 'kafkajs-drain.js'), topic], { ...process.env, AUDIT_KAFKA_BROKERS: BROKERS }));
    const id = `${run}-${Date.now()}`;
    runs.consumer.push(
      await timed(process.execPath, [join(ROOT, 'dist', 'consumer', 'cli.js'), '--drain'], {
        ...process.env,
        ...consumerEnv,
        AUDIT_CONSUMER_GROUP: `bench-${id}`,
        AUDIT_STORE_URL: `s3://audit/bench/consumer-${id}`,
      }),
    );
    if (registryTopic) {
      runs.consumerRegistry.push(
        await timed(process.execPath, [join(ROOT, 'dist', 'consumer', 'cli.js'), '--drain'], {
          ...process.env,
          ...consumerEnv,
          AUDIT_TOPIC: registryTopic,
          AUDIT_SCHEMA_REGISTRY_URL: REGISTRY_URL,
          AUDIT_CONSUMER_GROUP: `bench-registry-${id}`,
          AUDIT_STORE_URL: `s3://audit/bench/consumer-registry-${id}`,
        }),
      );
    }
  }
  const med = (rs: RunResult[], f: (r: RunResult) => number) => median(rs.map(f));
  const k = med(runs.kcat, (r) => r.eventsPerSecond);
  const j = med(runs.kafkajs, (r) => r.eventsPerSecond);
  const c = med(runs.consumer, (r) => r.eventsPerSecond);
  const rss = Math.max(...runs.consumer.map((r) => r.peakRssMb));
  const rows: [string, RunResult[]][] = [
    ['kcat -> /dev/null (broker ceiling)', runs.kcat],
    ['kafkajs, messages dropped (client ceiling)', runs.kafkajs],
    ['audit-consumer --drain (Kafka -> Parquet -> S3)', runs.consumer],
  ];
  if (runs.consumerRegistry.length > 0) rows.push(['audit-consumer --drain, registry ids', runs.consumerRegistry]);
  const cr = runs.consumerRegistry.length > 0 ? med(runs.consumerRegistry, (r) => r.eventsPerSecond) : null;
  console.log(`\n${EVENTS.toLocaleString()} events, median of ${RUNS} runs, ${require('node:os').cpus().length} cores, node ${process.version}`);
  console.log('reader                                           events/s   seconds  CPU s  peak RSS MB  vs kcat  vs kafkajs');
  for (const [name, rs] of rows) {
    const eps = med(rs, (r) => r.eventsPerSecond);
    console.log(
      `${name.padEnd(47)} ${Math.round(eps).toLocaleString().padStart(9)} ${med(rs, (r) => r.seconds).toFixed(2).padStart(9)} ${med(rs, (r) => r.cpuSeconds).toFixed(1).padStart(6)} ${Math.max(...rs.map((r) => r.peakRssMb)).toFixed(0).padStart(12)} ${((eps / k) * 100).toFixed(0).padStart(7)}% ${((eps / j) * 100).toFixed(0).padStart(10)}%`,
    );
  }
  const targets = { eventsPerSecond: c >= 100_000, shareOfKcat: c / k >= 0.5, peakRssMb: rss <= 512 };
  if (cr !== null) console.log(`registry on vs off: ${((cr / c) * 100).toFixed(1)}% of the events/s without (medians; runs interleaved)`);
  console.log(`targets: >=100k events/s ${targets.eventsPerSecond ? 'met' : 'MISSED'}; >=50% of kcat ${targets.shareOfKcat ? 'met' : 'MISSED'} (kafkajs alone reaches ${((j / k) * 100).toFixed(0)}%); RSS <=512 MB ${targets.peakRssMb ? 'met' : 'MISSED'}`);
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  const out = join(ROOT, 'bench', 'results', 'consumer-throughput.json');
  writeFileSync(
    out,
    JSON.stringify(
      {
        benchmark: 'consumer-throughput',
        date: new Date().toISOString(),
        node: process.version,
        cores: require('node:os').cpus().length,
        events: EVENTS,
        wireBytes: bytes,
        runs,
        median: { kcatEventsPerSecond: k, kafkajsEventsPerSecond: j, consumerEventsPerSecond: c, consumerRegistryEventsPerSecond: cr },
        registryOnVsOff: cr === null ? null : cr / c,
        registryUrl: registryTopic ? REGISTRY_URL : null,
        ratioToKcat: c / k,
        ratioToKafkajs: c / j,
        kafkajsRatioToKcat: j / k,
        peakRssMb: rss,
        targets,
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
