/**
 * Consumer throughput, end to end (Kafka -> Avro decode -> Parquet -> S3 -> commit),
 * side by side with kcat reading the same topic to /dev/null (the ceiling: how
 * fast this broker and machine can hand out the bytes at all).
 *
 *   npm run build && node dist/bench/consumer-throughput.js
 *   BENCH_EVENTS=1000000 (default) BENCH_RUNS=2
 *
 * Needs the local services (bash infra/up.sh kafka s3) and kcat (Debian package;
 * installed here with apt-get when missing and running as root).
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CompressionTypes, Kafka, logLevel, Partitioners } from 'kafkajs';
import { encodeRecord, CURRENT_SCHEMA_ID, type AuditRecord } from '../schemas';

const ROOT = join(__dirname, '..', '..');
const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 2);
const BROKERS = process.env.AUDIT_KAFKA_BROKERS ?? 'localhost:9092';
const ENDPOINT = process.env.AUDIT_S3_ENDPOINT ?? 'http://127.0.0.1:9000';

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

async function produce(topic: string): Promise<number> {
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
      const value = encodeRecord(r);
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
}

/** Runs a command to completion, sampling its RSS every 50 ms. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv, stdoutToNull = false): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { env, stdio: ['ignore', stdoutToNull ? 'ignore' : 'inherit', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let peak = 0;
    const sampler = setInterval(() => {
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        if (m) peak = Math.max(peak, Number(m[1]) / 1024);
      } catch {
        // exited between samples
      }
    }, 50);
    child.on('exit', (code) => {
      clearInterval(sampler);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) reject(new Error(`${cmd} exited ${code}: ${stderr.slice(-2000)}`));
      else resolve({ seconds, eventsPerSecond: EVENTS / seconds, peakRssMb: peak });
    });
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const kcat = ensureKcat();
  const topic = `bench.consumer.${Date.now()}`;
  console.log(`producing ${EVENTS.toLocaleString()} events to ${topic} ...`);
  const bytes = await produce(topic);
  console.log(`produced ${(bytes / 1e6).toFixed(1)} MB (${Math.round(bytes / EVENTS)} bytes/event on the wire)`);

  const kcatRuns: RunResult[] = [];
  const consumerRuns: RunResult[] = [];
  for (let run = 0; run < RUNS; run++) {
    kcatRuns.push(await timed(kcat, ['-C', '-b', BROKERS, '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%s\n'], process.env, true));
    const id = `${run}-${Date.now()}`;
    consumerRuns.push(
      await timed(process.execPath, [join(ROOT, 'dist', 'consumer', 'cli.js'), '--drain'], {
        ...process.env,
        AUDIT_KAFKA_BROKERS: BROKERS,
        AUDIT_TOPIC: topic,
        AUDIT_CONSUMER_GROUP: `bench-${id}`,
        AUDIT_STORE_URL: `s3://audit/bench/consumer-${id}`,
        AUDIT_S3_ENDPOINT: ENDPOINT,
        AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'minioadmin',
        AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'minioadmin',
        AUDIT_LOG_LEVEL: 'warn',
      }),
    );
  }
  const k = median(kcatRuns.map((r) => r.eventsPerSecond));
  const c = median(consumerRuns.map((r) => r.eventsPerSecond));
  const rss = Math.max(...consumerRuns.map((r) => r.peakRssMb));
  const rows = [
    ['kcat -> /dev/null (ceiling)', k, median(kcatRuns.map((r) => r.seconds)), Math.max(...kcatRuns.map((r) => r.peakRssMb)), 1],
    ['audit-consumer --drain (Kafka -> Parquet -> S3)', c, median(consumerRuns.map((r) => r.seconds)), rss, c / k],
  ] as const;
  console.log(`\n${EVENTS.toLocaleString()} events, median of ${RUNS} runs, ${require('node:os').cpus().length} cores`);
  console.log('reader                                             events/s    seconds   peak RSS MB   vs kcat');
  for (const [name, eps, s, r, ratio] of rows) {
    console.log(`${name.padEnd(50)} ${Math.round(eps).toLocaleString().padStart(9)} ${s.toFixed(2).padStart(10)} ${r.toFixed(0).padStart(13)} ${(ratio * 100).toFixed(0).padStart(8)}%`);
  }
  const targets = { eventsPerSecond: c >= 100_000, shareOfKcat: c / k >= 0.5, peakRssMb: rss <= 512 };
  console.log(`targets: >=100k events/s ${targets.eventsPerSecond ? 'met' : 'MISSED'}; >=50% of kcat ${targets.shareOfKcat ? 'met' : 'MISSED'}; RSS <=512 MB ${targets.peakRssMb ? 'met' : 'MISSED'}`);
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  const out = join(ROOT, 'bench', 'results', 'consumer-throughput.json');
  writeFileSync(
    out,
    JSON.stringify(
      { benchmark: 'consumer-throughput', date: new Date().toISOString(), node: process.version, events: EVENTS, wireBytes: bytes, runs: { kcat: kcatRuns, consumer: consumerRuns }, median: { kcatEventsPerSecond: k, consumerEventsPerSecond: c }, ratioToKcat: c / k, peakRssMb: rss, targets },
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
