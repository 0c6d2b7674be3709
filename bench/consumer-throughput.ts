/**
 * Consumer throughput, end to end (Kafka -> Avro decode -> Parquet -> S3 -> commit),
 * side by side with baselines reading the same topic in interleaved rounds: kcat to
 * /dev/null (the ceiling of this broker and machine: librdkafka, C) and the two Kafka
 * clients the consumer can be built on, bare, dropping the messages: kafkajs (eachBatch)
 * and @platformatic/kafka (its stream, maxBytes 1 MiB). Peak RSS and CPU seconds come
 * from GNU time (/usr/bin/time). Each reader: events/s, CPU-s per 1M events, peak RSS,
 * ratios to kcat.
 *
 *   npm run build && node dist/bench/consumer-throughput.js
 *   BENCH_EVENTS=1000000 (default) BENCH_RUNS=2; BENCH_TOPIC=<existing topic> skips producing
 *   BENCH_CONSUMERS=consumer,... picks audit-consumer variants (consumerKafkajs and consumerPlatformatic:
 *   each Kafka client, AUDIT_KAFKA_CLIENT); BENCH_OUT names the JSON file
 *   BENCH_BASELINE_CONSUMER=<another release>/dist/consumer/cli.js adds that release's consumer
 *   (key `baseline`, "previous release"), on the platformatic client, with its own bin's Node flags;
 *   BENCH_OTHER_CONSUMERS=label=<cli.js>,... adds more builds the same way (keys `build-<label>`)
 *
 * Every audit-consumer run also reports the bytes it stored: the Parquet objects under its
 * store prefix (and all objects, indexes and digests included), per event.
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
import { chmodSync, readFileSync, writeFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { cpus, loadavg, tmpdir } from 'node:os';
import { CURRENT_SCHEMA_ID, singleObjectHeader } from '../schemas';
import { S3ObjectStore } from '../storage';
import { RegistryClient, registerWriterSchema } from '../schema-registry';
import { produceBenchTopic } from './lib/bench-topic';

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

/** The benchmark topic (bench/lib/bench-topic.ts, shared with bench:peer); returns the bytes on the wire. */
async function produce(topic: string, header: Buffer = singleObjectHeader(CURRENT_SCHEMA_ID)): Promise<number> {
  return (await produceBenchTopic(BROKERS.split(','), topic, EVENTS, header)).wireBytes;
}

interface RunResult {
  seconds: number;
  eventsPerSecond: number;
  peakRssMb: number;
  /** User + system CPU of the process (all its threads), from GNU time. */
  cpuSeconds: number;
  /** Consumers only: what the run left under its store prefix. */
  stored?: StoredBytes;
}

interface StoredBytes {
  parquetBytes: number;
  allBytes: number;
  objects: number;
}

/** Sizes of the objects under a store prefix (key relative to the prefix). */
async function storedBytes(prefix: string): Promise<StoredBytes> {
  const store = new S3ObjectStore({ bucket: 'audit', prefix, region: 'us-east-1', endpoint: ENDPOINT });
  const out: StoredBytes = { parquetBytes: 0, allBytes: 0, objects: 0 };
  try {
    for await (const o of store.list('')) {
      out.allBytes += o.size;
      out.objects++;
      if (o.key.endsWith('.parquet')) out.parquetBytes += o.size;
    }
  } finally {
    store.close();
  }
  return out;
}

/**
 * Runs a command to completion under GNU time: its user + system CPU (all threads) and
 * peak RSS (VmHWM) come from the kernel's accounting at exit, not from samples.
 */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv, stdoutToNull = false): Promise<RunResult> {
  const report = join(tmpdir(), `bench-time-${process.pid}-${Date.now()}.txt`);
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', '%U %S %M', '-o', report, cmd, ...args], { env, stdio: ['ignore', stdoutToNull ? 'ignore' : 'inherit', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      if (code !== 0) return reject(new Error(`${cmd} exited ${code}: ${stderr.slice(-2000)}`));
      const [user, sys, maxKb] = readFileSync(report, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
      rmSync(report, { force: true });
      resolve({ seconds, eventsPerSecond: EVENTS / seconds, peakRssMb: maxKb! / 1024, cpuSeconds: user! + sys! });
    });
  });
}

interface Reader {
  key: string;
  name: string;
  run: (round: number) => Promise<RunResult>;
}

interface ReaderSummary {
  name: string;
  eventsPerSecond: number;
  seconds: number;
  cpuSeconds: number;
  cpuSecondsPerMillion: number;
  peakRssMb: number;
  eventsPerSecondVsKcat: number;
  cpuVsKcat: number;
  /** Consumers only: Parquet bytes stored per event, and all objects' bytes per event. */
  parquetBytesPerEvent?: number;
  storedBytesPerEvent?: number;
}

/** The Node flags of a bin's `#!/usr/bin/env -S node <flags>` line (none for a plain shebang). */
function shebangFlags(file: string): string[] {
  const first = readFileSync(file, 'utf8').split('\n', 1)[0]!;
  const m = /^#!.*\bnode((?:\s+-\S+)*)\s*$/.exec(first);
  return m ? m[1]!.trim().split(/\s+/).filter(Boolean) : [];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  if (major < 22 || (major === 22 && minor < 22) || (major === 24 && minor < 6)) {
    throw new Error(`node ${process.version}: @platformatic/kafka needs >= 22.22 or >= 24.6 (CI's Node 24: .ci/.node24)`);
  }
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
  const node = process.execPath;
  // The store listing below signs its requests with the same credentials the consumers get.
  process.env.AWS_ACCESS_KEY_ID ??= consumerEnv.AWS_ACCESS_KEY_ID;
  process.env.AWS_SECRET_ACCESS_KEY ??= consumerEnv.AWS_SECRET_ACCESS_KEY;
  const drainEnv = { ...process.env, AUDIT_KAFKA_BROKERS: BROKERS };
  /** audit-consumer --drain to the S3 server, with commits and indexes; `extra` selects a variant. */
  const cli = join(ROOT, 'dist', 'consumer', 'cli.js');
  chmodSync(cli, 0o755); // npm does this on install; tsc does not
  const consumer = (name: string, extra: NodeJS.ProcessEnv, t = topic, plainNode = false, otherCli?: string) => async (run: number) => {
    const id = `${name}-${run}-${Date.now()}`;
    // Run as the installed bin runs: through its shebang (its Node flags), unless a variant asks for plain `node`.
    // Another release's bin is not made executable here (its tree is not ours to touch): its shebang's flags are passed to this node.
    const [cmd, args] = otherCli ? [node, [...shebangFlags(otherCli), otherCli, '--drain']] : plainNode ? [node, [cli, '--drain']] : [cli, ['--drain']];
    const res = await timed(cmd, args, {
      ...process.env,
      ...consumerEnv,
      AUDIT_TOPIC: t,
      AUDIT_CONSUMER_GROUP: `bench-${id}`,
      AUDIT_STORE_URL: `s3://audit/bench/consumer-${id}`,
      ...extra,
    });
    return { ...res, stored: await storedBytes(`bench/consumer-${id}`) };
  };
  const readers: Reader[] = [
    { key: 'kcat', name: 'kcat -> /dev/null (broker ceiling)', run: () => timed(kcat, ['-C', '-b', BROKERS, '-t', topic, '-o', 'beginning', '-e', '-q', '-f', '%s\n'], process.env, true) },
    { key: 'kafkajs', name: 'kafkajs eachBatch, dropped (client ceiling)', run: () => timed(node, [join(ROOT, 'dist', 'bench', 'lib', 'kafkajs-drain.js'), topic], drainEnv) },
    { key: 'platformatic', name: '@platformatic/kafka stream, dropped', run: () => timed(node, [join(ROOT, 'dist', 'bench', 'lib', 'platformatic-drain.js'), topic], drainEnv) },
  ];
  // Consumer variants, side by side in the same rounds (BENCH_CONSUMERS picks some: a comma list of keys).
  const variants: Reader[] = [
    { key: 'consumer', name: 'audit-consumer --drain (-> Parquet -> S3)', run: consumer('consumer', {}) },
    // The consumer's two Kafka clients (AUDIT_KAFKA_CLIENT), whichever is the default.
    { key: 'consumerKafkajs', name: 'audit-consumer, kafkajs', run: consumer('kafkajs', { AUDIT_KAFKA_CLIENT: 'kafkajs' }) },
    { key: 'consumerPlatformatic', name: 'audit-consumer, @platformatic/kafka', run: consumer('platformatic', { AUDIT_KAFKA_CLIENT: 'platformatic' }) },
    // With and without transcode workers (the default transcodes on the event loop).
    { key: 'consumerWorker', name: 'audit-consumer, 1 transcode worker', run: consumer('worker1', { AUDIT_TRANSCODE_WORKERS: '1' }) },
    { key: 'consumer2Workers', name: 'audit-consumer, 2 transcode workers', run: consumer('workers2', { AUDIT_TRANSCODE_WORKERS: '2' }) },
    // Without the bin's Node flags (--max-semi-space-size=8): `node dist/consumer/cli.js`.
    { key: 'consumerNodeDefaults', name: 'audit-consumer, node defaults', run: consumer('nodedefaults', {}, topic, true) },
  ];
  const baselineCli = process.env.BENCH_BASELINE_CONSUMER;
  if (baselineCli) {
    variants.push({ key: 'baseline', name: 'previous release, @platformatic/kafka', run: consumer('baseline', { AUDIT_KAFKA_CLIENT: 'platformatic' }, topic, false, baselineCli) });
  }
  for (const spec of process.env.BENCH_OTHER_CONSUMERS?.split(',').filter(Boolean) ?? []) {
    const [label, path] = spec.split('=') as [string, string];
    variants.push({ key: `build-${label}`, name: `${label}, @platformatic/kafka`, run: consumer(`build-${label}`, { AUDIT_KAFKA_CLIENT: 'platformatic' }, topic, false, path) });
  }
  if (registryTopic) {
    const rt = registryTopic;
    variants.push({ key: 'consumerRegistry', name: 'audit-consumer --drain, registry ids', run: consumer('registry', { AUDIT_SCHEMA_REGISTRY_URL: REGISTRY_URL }, rt) });
  }
  const wanted = process.env.BENCH_CONSUMERS?.split(',').map((s) => s.trim());
  readers.push(...variants.filter((v) => !wanted || wanted.includes(v.key)));

  const runs: Record<string, RunResult[]> = Object.fromEntries(readers.map((r) => [r.key, []]));
  for (let run = 0; run < RUNS; run++) {
    // Interleaved rounds: the host drifts, so every reader gets a turn in each round.
    for (const r of readers) {
      const res = await r.run(run);
      runs[r.key]!.push(res);
      console.log(`  round ${run + 1}/${RUNS} ${r.key}: ${Math.round(res.eventsPerSecond).toLocaleString()} events/s, ${res.cpuSeconds.toFixed(1)} CPU-s, ${res.peakRssMb.toFixed(0)} MB`);
    }
  }
  const med = (rs: RunResult[], f: (r: RunResult) => number) => median(rs.map(f));
  const k = med(runs.kcat!, (r) => r.eventsPerSecond);
  const summary: Record<string, ReaderSummary> = {};
  for (const r of readers) {
    const rs = runs[r.key]!;
    const eps = med(rs, (x) => x.eventsPerSecond);
    const cpu = med(rs, (x) => x.cpuSeconds);
    const st = rs.every((x) => x.stored) ? rs.map((x) => x.stored!) : null;
    summary[r.key] = {
      name: r.name,
      eventsPerSecond: eps,
      seconds: med(rs, (x) => x.seconds),
      cpuSeconds: cpu,
      cpuSecondsPerMillion: (cpu / EVENTS) * 1e6,
      peakRssMb: Math.max(...rs.map((x) => x.peakRssMb)),
      eventsPerSecondVsKcat: eps / k,
      cpuVsKcat: cpu / med(runs.kcat!, (x) => x.cpuSeconds),
      ...(st ? { parquetBytesPerEvent: median(st.map((x) => x.parquetBytes)) / EVENTS, storedBytesPerEvent: median(st.map((x) => x.allBytes)) / EVENTS } : {}),
    };
  }
  console.log(`\n${EVENTS.toLocaleString()} events, median of ${RUNS} interleaved rounds, ${cpus().length} cores, node ${process.version}`);
  console.log('reader                                        events/s  seconds  CPU s  CPU-s/1M  peak RSS MB  vs kcat  CPU vs kcat');
  for (const r of readers) {
    const s = summary[r.key]!;
    console.log(
      `${r.name.padEnd(44)} ${Math.round(s.eventsPerSecond).toLocaleString().padStart(9)} ${s.seconds.toFixed(2).padStart(8)} ${s.cpuSeconds.toFixed(1).padStart(6)} ${s.cpuSecondsPerMillion.toFixed(2).padStart(9)} ${s.peakRssMb.toFixed(0).padStart(12)} ${(s.eventsPerSecondVsKcat * 100).toFixed(0).padStart(7)}% ${s.cpuVsKcat.toFixed(1).padStart(11)}x`,
    );
  }
  for (const r of readers) {
    const s = summary[r.key]!;
    if (s.parquetBytesPerEvent !== undefined) console.log(`${r.name}: ${s.parquetBytesPerEvent.toFixed(2)} Parquet bytes/event, ${s.storedBytesPerEvent!.toFixed(2)} bytes/event all objects`);
  }
  const b = summary.baseline;
  // This release's consumer against the previous one's, on the same client when that variant ran.
  const cur = summary.consumerPlatformatic ?? summary.consumer;
  const vsBaseline =
    b && cur
      ? {
          current: cur.name,
          eventsPerSecond: cur.eventsPerSecond / b.eventsPerSecond,
          cpuSecondsPerMillion: cur.cpuSecondsPerMillion / b.cpuSecondsPerMillion,
          parquetBytesPerEvent: cur.parquetBytesPerEvent! / b.parquetBytesPerEvent!,
          storedBytesPerEvent: cur.storedBytesPerEvent! / b.storedBytesPerEvent!,
        }
      : null;
  if (vsBaseline) {
    console.log(
      `this release vs the previous (${vsBaseline.current}): ${(vsBaseline.eventsPerSecond * 100).toFixed(1)}% of the events/s, ${(vsBaseline.cpuSecondsPerMillion * 100).toFixed(1)}% of the CPU-s per 1M, ${(vsBaseline.parquetBytesPerEvent * 100).toFixed(1)}% of the Parquet bytes/event, ${(vsBaseline.storedBytesPerEvent * 100).toFixed(1)}% of all bytes/event`,
    );
  }
  const c = summary.consumer;
  const targets = c
    ? { cpuSecondsPerMillion: c.cpuSecondsPerMillion <= 6, shareOfKcat: c.eventsPerSecondVsKcat >= 0.25, peakRssMb: c.peakRssMb <= 512 }
    : null;
  const pk = summary.consumerPlatformatic && summary.consumerKafkajs ? { p: summary.consumerPlatformatic, k: summary.consumerKafkajs } : null;
  const clients = pk
    ? {
        eventsPerSecond: pk.p.eventsPerSecond / pk.k.eventsPerSecond,
        cpuSecondsPerMillion: pk.p.cpuSecondsPerMillion / pk.k.cpuSecondsPerMillion,
        peakRssMb: pk.p.peakRssMb / pk.k.peakRssMb,
      }
    : null;
  if (clients) {
    console.log(
      `@platformatic/kafka vs kafkajs (audit-consumer): ${(clients.eventsPerSecond * 100).toFixed(1)}% of the events/s, ${(clients.cpuSecondsPerMillion * 100).toFixed(1)}% of the CPU-s per 1M, ${(clients.peakRssMb * 100).toFixed(1)}% of the peak RSS`,
    );
  }
  if (summary.consumerRegistry && c) console.log(`registry on vs off: ${((summary.consumerRegistry.eventsPerSecond / c.eventsPerSecond) * 100).toFixed(1)}% of the events/s without (medians; runs interleaved)`);
  if (targets && c) {
    const says = (ok: boolean) => (ok ? 'met' : 'MISSED');
    console.log(
      `targets (audit-consumer): <=6 CPU-s per 1M ${says(targets.cpuSecondsPerMillion)} (${c.cpuSecondsPerMillion.toFixed(2)}); >=25% of kcat ${says(targets.shareOfKcat)} (${(c.eventsPerSecondVsKcat * 100).toFixed(0)}%); RSS <=512 MB ${says(targets.peakRssMb)} (${c.peakRssMb.toFixed(0)})`,
    );
  }
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  const out = join(ROOT, 'bench', 'results', process.env.BENCH_OUT ?? 'consumer-throughput.json');
  writeFileSync(
    out,
    JSON.stringify(
      {
        benchmark: 'consumer-throughput',
        date: new Date().toISOString(),
        node: process.version,
        cores: cpus().length,
        loadAverage: loadavg(),
        topic,
        events: EVENTS,
        wireBytes: bytes,
        rounds: RUNS,
        runs,
        summary,
        platformaticVsKafkajs: clients,
        baselineConsumer: baselineCli ?? null,
        vsBaseline,
        registryOnVsOff: summary.consumerRegistry && c ? summary.consumerRegistry.eventsPerSecond / c.eventsPerSecond : null,
        registryUrl: registryTopic ? REGISTRY_URL : null,
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
