/**
 * Where the consumer's CPU goes, part by part, without Kafka: the same events as
 * bench:consumer (bench/lib/bench-topic.ts, single-object framing), each part run
 * in a child process of its own, rounds interleaved, medians:
 *
 * - transcode: Avro to staging lines (consumer/staging), rows kept in cuts of
 *   BENCH_CUT rows as the sink keeps them until they are written;
 * - write: staging lines already made (not timed) to Parquet, one file per cut:
 *   sort, staging file, DuckDB COPY (ZSTD), row-group description;
 * - sink: AuditSink end to end to a local directory store, three partitions,
 *   batches of 1,000 as a fetch delivers them (transcode, cut policy, claims,
 *   write, index, upload, fake commits).
 *
 * CPU is user + system of every thread of the child, split by thread name from
 * /proc (main, V8 workers: garbage collection and compilation; libuv workers:
 * DuckDB and file I/O). With BENCH_BASELINE_DIST=<another build's dist/> every
 * part also runs from that build in the same rounds, for ratios.
 *
 *   npm run bench:consumer-parts   (no services needed)
 *   BENCH_EVENTS (1000000) BENCH_ROUNDS (3) BENCH_CUT (100000) BENCH_PARTS (transcode,write,sink)
 *   BENCH_BASELINE_DIST BENCH_OUT (consumer-parts.json)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { envNumber, projectRoot } from './lib/env';
import { median, table } from './lib/stats';

const ROOT = projectRoot(__dirname);
const PARTS = ['transcode', 'write', 'sink'] as const;
type Part = (typeof PARTS)[number];

interface PartResult {
  part: Part;
  build: string;
  events: number;
  seconds: number;
  /** CPU seconds per 1M events, all threads, and by thread kind. */
  cpu: number;
  main: number;
  v8: number;
  libuv: number;
}

/** CPU seconds of this process's threads, by thread name (from /proc, Linux). */
function threadCpu(): Map<string, number> {
  const by = new Map<string, number>();
  const tick = 100; // USER_HZ
  for (const t of readdirSync('/proc/self/task')) {
    const comm = readFileSync(`/proc/self/task/${t}/comm`, 'utf8').trim();
    const stat = readFileSync(`/proc/self/task/${t}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    by.set(comm, (by.get(comm) ?? 0) + (Number(f[11]) + Number(f[12])) / tick);
  }
  return by;
}

// ---- child: one part, from one build ----

async function child(part: Part, dist: string, events: number, cut: number): Promise<void> {
  /* eslint-disable @typescript-eslint/no-require-imports -- the build under test is chosen at run time */
  const schemas = require(join(dist, 'schemas')) as typeof import('../schemas');
  const { benchRecord } = require(join(dist, 'bench', 'lib', 'bench-topic')) as typeof import('./lib/bench-topic');
  const { AvroStagingTranscoder } = require(join(dist, 'consumer', 'staging', 'avro-transcoder')) as typeof import('../consumer/staging/avro-transcoder');
  const { LineArena } = require(join(dist, 'consumer', 'staging', 'line-arena')) as typeof import('../consumer/staging/line-arena');
  const { ParquetWriter } = require(join(dist, 'consumer', 'parquet-writer')) as typeof import('../consumer/parquet-writer');
  const { AuditSink } = require(join(dist, 'consumer', 'sink')) as typeof import('../consumer/sink');
  const { createMetrics } = require(join(dist, 'consumer', 'metrics')) as typeof import('../consumer/metrics');
  const { FileObjectStore } = require(join(dist, 'storage')) as typeof import('../storage');
  const pino = require('pino') as typeof import('pino');
  /* eslint-enable @typescript-eslint/no-require-imports */

  const values: Buffer[] = [];
  for (let i = 0; i < events; i++) values.push(schemas.encodeRecord(benchRecord(i)));
  const offsets = values.map((_, i) => String(i));
  const dir = mkdtempSync(join(tmpdir(), 'bench-parts-'));
  const transcoder = new AvroStagingTranscoder(schemas.CURRENT_SCHEMA_ID);
  type Row = NonNullable<ReturnType<typeof transcoder.transcode>>;
  const stage = (from: number, to: number): Row[] => {
    const arena = new LineArena();
    const rows: Row[] = [];
    for (let i = from; i < to; i++) rows.push(transcoder.transcode(values[i]!, 0, offsets[i]!, arena)!);
    return rows;
  };
  const writer = await ParquetWriter.create({ rowGroupRows: 16_384, memoryLimit: '256MB', threads: 1 });
  let run: () => Promise<void>;
  if (part === 'transcode') {
    run = async () => {
      for (let i = 0; i < events; i += cut) stage(i, Math.min(events, i + cut));
    };
  } else if (part === 'write') {
    const cuts: Row[][] = [];
    for (let i = 0; i < events; i += cut) cuts.push(stage(i, Math.min(events, i + cut)));
    run = async () => {
      for (let c = 0; c < cuts.length; c++) await writer.writeStaged(cuts[c]!, join(dir, `cut-${c}.parquet`));
    };
  } else {
    const sink = new AuditSink({
      topic: 'audit.events',
      store: new FileObjectStore(join(dir, 'store')),
      writer,
      commit: async () => undefined,
      deadLetter: async () => undefined,
      log: pino({ level: 'silent' }),
      metrics: createMetrics(),
      limits: { maxRecords: cut, maxBytes: 64 << 20, maxAgeMs: 60_000, memoryMaxBytes: 64 << 20, storeRetryMs: 1_000 },
      workDir: join(dir, 'work'),
      owner: 'bench',
    });
    const byPartition: { offset: string; key: Buffer; value: Buffer }[][] = [[], [], []];
    for (let i = 0; i < events; i++) {
      const p = byPartition[i % 3]!;
      p.push({ offset: String(p.length), key: Buffer.from('k'), value: values[i]! });
    }
    run = async () => {
      await Promise.all(
        byPartition.map(async (messages, partition) => {
          for (let i = 0; i < messages.length; i += 1_000) await sink.append(partition, messages.slice(i, i + 1_000));
        }),
      );
      await sink.flushAll('drain');
    };
  }
  const before = threadCpu();
  const started = process.hrtime.bigint();
  await run();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const after = threadCpu();
  writer.close();
  rmSync(dir, { recursive: true, force: true });
  const per1M = (names: (n: string) => boolean) => {
    let s = 0;
    for (const [n, v] of after) if (names(n)) s += v - (before.get(n) ?? 0);
    return (s / events) * 1e6;
  };
  process.stdout.write(
    `${JSON.stringify({ seconds, cpu: per1M(() => true), main: per1M((n) => n === 'MainThread'), v8: per1M((n) => n.startsWith('V8')), libuv: per1M((n) => n.startsWith('libuv')) })}\n`,
  );
}

// ---- parent: rounds ----

async function main(): Promise<void> {
  const events = envNumber('BENCH_EVENTS', 1_000_000);
  const rounds = envNumber('BENCH_ROUNDS', 3);
  const cut = envNumber('BENCH_CUT', 100_000);
  const builds: [string, string][] = [['this build', join(ROOT, 'dist')]];
  const baseline = process.env.BENCH_BASELINE_DIST;
  if (baseline) {
    if (!existsSync(join(baseline, 'consumer', 'sink.js'))) throw new Error(`BENCH_BASELINE_DIST=${baseline}: not a build's dist/ (no consumer/sink.js)`);
    builds.push(['baseline', resolve(baseline)]);
  }
  const parts = (process.env.BENCH_PARTS ?? PARTS.join(',')).split(',') as Part[];
  for (const p of parts) if (!PARTS.includes(p)) throw new Error(`BENCH_PARTS: unknown part ${p} (${PARTS.join(', ')})`);
  const results: PartResult[] = [];
  process.stderr.write(`consumer parts: ${events.toLocaleString('en')} events, cuts of ${cut.toLocaleString('en')}, ${rounds} rounds, Node ${process.version}, load ${loadavg()[0]!.toFixed(1)}\n`);
  for (let r = 0; r < rounds; r++) {
    for (const part of parts) {
      for (const [build, dist] of r % 2 === 0 ? builds : [...builds].reverse()) {
        // As the bin runs (its shebang's young-generation size), each in a fresh process.
        const out = execFileSync(process.execPath, ['--max-semi-space-size=8', __filename, '--child', part, dist, String(events), String(cut)], {
          encoding: 'utf8',
          maxBuffer: 1 << 20,
          cwd: ROOT,
        });
        const m = JSON.parse(out.trim().split('\n').at(-1)!) as Omit<PartResult, 'part' | 'build' | 'events'>;
        results.push({ part, build, events, ...m });
        process.stderr.write(`  round ${r + 1} ${part.padEnd(9)} ${build.padEnd(10)} ${m.cpu.toFixed(2)} CPU-s per 1M, ${(events / m.seconds / 1000).toFixed(0)}k events/s\n`);
      }
    }
  }
  const rows: string[][] = [];
  const summary: Record<string, Record<string, number>> = {};
  for (const part of parts) {
    for (const [build] of builds) {
      const of = results.filter((x) => x.part === part && x.build === build);
      const s = {
        eventsPerSecond: Math.round(median(of.map((x) => events / x.seconds))),
        cpuPer1M: round2(median(of.map((x) => x.cpu))),
        mainPer1M: round2(median(of.map((x) => x.main))),
        v8WorkersPer1M: round2(median(of.map((x) => x.v8))),
        libuvPer1M: round2(median(of.map((x) => x.libuv))),
      };
      summary[`${part}/${build}`] = s;
      rows.push([part, build, s.eventsPerSecond.toLocaleString('en'), s.cpuPer1M.toFixed(2), s.mainPer1M.toFixed(2), s.v8WorkersPer1M.toFixed(2), s.libuvPer1M.toFixed(2)]);
    }
  }
  process.stdout.write(`${table(['part', 'build', 'events/s', 'CPU-s/1M', 'main', 'V8 workers', 'libuv (DuckDB, fs)'], rows)}\n`);
  const outDir = join(ROOT, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, process.env.BENCH_OUT ?? 'consumer-parts.json');
  writeFileSync(
    file,
    `${JSON.stringify({ date: new Date().toISOString(), node: process.version, cpus: cpus().length, loadavg: loadavg(), events, cut, rounds, summary, results }, null, 2)}\n`,
  );
  process.stderr.write(`written: ${file}\n`);
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

if (process.argv[2] === '--child') {
  const [, , , part, dist, events, cut] = process.argv;
  if (!PARTS.includes(part as Part)) throw new Error(`unknown part ${part}`);
  child(part as Part, dist!, Number(events), Number(cut)).catch((err: Error) => {
    process.stderr.write(`${err.stack ?? err.message}\n`);
    process.exit(1);
  });
} else {
  main().catch((err: Error) => {
    process.stderr.write(`bench:consumer-parts: ${err.message}\n`);
    process.exit(1);
  });
}
