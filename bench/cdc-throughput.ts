/**
 * PostgreSQL change capture: what audit-cdc costs and how fast it goes, side by
 * side with capturing the same changes in the app with the TypeORM subscriber,
 * and what context stitching adds to the app's write path.
 *
 *   npm run build && node dist/bench/cdc-throughput.js
 *
 * Needs Kafka and PostgreSQL with wal_level=logical (bash infra/up.sh kafka postgres).
 *
 * Capture (BENCH_CDC_CHANGES row changes, default 200,000, in transactions of
 * BENCH_CDC_TXN_ROWS rows, default 1,000; inserts of 4-column rows):
 *   audit-cdc          - the changes are written first (each transaction stitched with a context),
 *                        then the audit-cdc command is started on the slot and timed until Kafka
 *                        holds every event; CPU of its process (and of PostgreSQL's WAL sender) from /proc
 *   TypeORM subscriber - the same rows saved with `repository.save(rows)` per transaction with the
 *                        AuditSubscriber publishing to Kafka, against the same saves without it;
 *                        capture CPU = CPU(with) - CPU(without), of the app process
 * Stitching (BENCH_STITCH_N transactions per variant, default 5,000, BENCH_ROUNDS interleaved
 * rounds, default 20, variants in a different order each round; each transaction updates one row by primary key over one connection):
 *   none               - BEGIN; UPDATE; COMMIT on a table without the role trigger
 *   role trigger       - the same on a table with audit-cdc's role trigger (a write without app context)
 *   stitched           - beginWithAuditContext (BEGIN + context message, one round trip); UPDATE; COMMIT
 *   stitched, 2 trips  - BEGIN; emitAuditContext; UPDATE; COMMIT
 *
 * Writes bench/results/cdc-throughput.json.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import 'reflect-metadata';
import { Kafka, logLevel } from 'kafkajs';
import { Client } from 'pg';
import { DataSource, EntitySchema } from 'typeorm';
import { beginWithAuditContext, emitAuditContext } from '../cdc';
import { loadMapping } from '../cdc/mapping';
import { setupCapture } from '../cdc/setup';
import { AuditClient, attachTypeormAudit, runWithAuditContext } from '../producer';
import { envNumber, projectRoot } from './lib/env';
import { quantile, table } from './lib/stats';

const ROOT = projectRoot(__dirname);
const cfg = {
  changes: envNumber('BENCH_CDC_CHANGES', 200_000),
  txnRows: envNumber('BENCH_CDC_TXN_ROWS', 1000),
  stitchN: envNumber('BENCH_STITCH_N', 5000),
  rounds: envNumber('BENCH_ROUNDS', 20),
  parts: (process.env.BENCH_CDC_PARTS ?? 'capture,stitch').split(','),
  pgUrl: process.env.BENCH_PG_URL ?? 'postgresql://postgres@127.0.0.1:54329/audit_test',
  brokers: (process.env.AUDIT_KAFKA_BROKERS ?? 'localhost:9092').split(','),
};
const run = randomUUID().replace(/-/g, '').slice(0, 8);
const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
const CLOCK_TICKS = 100;
const CONTEXT = { actorId: 'user-42', actorType: 'user', tenantId: 'acme', requestId: 'req-0123456789', ip: '203.0.113.7', traceId: '4bf92f3577b34da6a3ce929d0e0e4736' };

function cpuOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
}

/** Events on a topic (sum of its partitions' high watermarks), through one admin connection. */
class TopicCounter {
  private readonly admin = new Kafka({ clientId: 'bench-cdc', brokers: cfg.brokers, logLevel: logLevel.NOTHING }).admin();
  constructor(private readonly topic: string) {}
  async open(): Promise<void> {
    await this.admin.connect();
    // Created up front, as in a deployment: topic auto-creation is not what is measured.
    await this.admin.createTopics({ topics: [{ topic: this.topic, numPartitions: 3 }], waitForLeaders: true });
  }
  async count(): Promise<number> {
    return (await this.admin.fetchTopicOffsets(this.topic)).reduce((s, o) => s + Number(o.high), 0);
  }
  close(): Promise<void> {
    return this.admin.disconnect();
  }
}

interface CaptureResult {
  changes: number;
  /** audit-cdc: from the first event in Kafka to the last (without process start and setup). */
  steadyChangesPerSecond?: number;
  seconds: number;
  changesPerSecond: number;
  cpuSeconds: number;
  cpuSecondsPer1M: number;
  walSenderCpuSeconds?: number;
  appWriteSeconds?: number;
}

async function benchCdc(db: Client): Promise<CaptureResult> {
  const t = `bench_cdc_${run}`;
  const slot = `bench_slot_${run}`;
  const publication = `bench_pub_${run}`;
  const topic = `bench.cdc-${run}`;
  await db.query(`CREATE TABLE ${t} (id bigserial PRIMARY KEY, name text NOT NULL, qty int NOT NULL, status text NOT NULL)`);
  try {
    await setupCapture(db, { slot, publication, create: true, tables: [t], roleTriggers: true, mapping: loadMapping(undefined) });
    log(`audit-cdc: writing ${cfg.changes} rows (stitched transactions of ${cfg.txnRows})`);
    const w0 = performance.now();
    for (let done = 0; done < cfg.changes; done += cfg.txnRows) {
      const n = Math.min(cfg.txnRows, cfg.changes - done);
      await beginWithAuditContext(db, { ...CONTEXT, requestId: `req-${done}` });
      await db.query(`INSERT INTO ${t} (name, qty, status) SELECT 'item-' || g, g % 17, 'new' FROM generate_series(1, ${n}) g`);
      await db.query('COMMIT');
    }
    const appWriteSeconds = (performance.now() - w0) / 1000;

    log('audit-cdc: reading the slot into Kafka');
    const counter = new TopicCounter(topic);
    await counter.open();
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'cdc', 'cli.js')], {
      env: {
        ...process.env,
        AUDIT_CDC_DATABASE_URL: cfg.pgUrl,
        AUDIT_CDC_SLOT: slot,
        AUDIT_CDC_PUBLICATION: publication,
        AUDIT_TOPIC: topic,
        AUDIT_KAFKA_BROKERS: cfg.brokers.join(','),
        AUDIT_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const started = performance.now();
    let cpu = 0;
    let senderPid: number | null = null;
    let senderCpu0 = 0;
    let senderCpu = 0;
    let firstAt: number | null = null;
    for (;;) {
      cpu = cpuOf(child.pid!);
      if (senderPid === null) {
        const r = await db.query<{ active_pid: number | null }>('SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1', [slot]);
        senderPid = r.rows[0]?.active_pid ?? null;
        if (senderPid !== null) senderCpu0 = cpuOf(senderPid);
      } else {
        senderCpu = cpuOf(senderPid) - senderCpu0;
      }
      const n = await counter.count();
      if (n > 0 && firstAt === null) firstAt = performance.now();
      if (n >= cfg.changes) break;
      if (child.exitCode !== null) throw new Error(`audit-cdc exited ${child.exitCode}`);
      await new Promise((r) => setTimeout(r, senderPid === null ? 10 : 50));
    }
    const steady = (performance.now() - (firstAt ?? started)) / 1000;
    const seconds = (performance.now() - started) / 1000;
    cpu = cpuOf(child.pid!);
    child.kill('SIGTERM');
    await counter.close();
    if ((await exited) !== 0) throw new Error('audit-cdc did not stop cleanly');
    return {
      changes: cfg.changes,
      seconds,
      changesPerSecond: cfg.changes / seconds,
      steadyChangesPerSecond: cfg.changes / steady,
      cpuSeconds: cpu,
      cpuSecondsPer1M: (cpu / cfg.changes) * 1e6,
      walSenderCpuSeconds: senderCpu,
      appWriteSeconds,
    };
  } finally {
    await db.query('SELECT pg_drop_replication_slot($1) FROM pg_replication_slots WHERE slot_name = $1 AND NOT active', [slot]).catch(() => undefined);
    await db.query(`DROP PUBLICATION IF EXISTS ${publication}`).catch(() => undefined);
    await db.query(`DROP TABLE IF EXISTS ${t}`).catch(() => undefined);
  }
}

interface Item {
  id?: number;
  name: string;
  qty: number;
  status: string;
}

async function benchTypeorm(): Promise<{ baseline: CaptureResult; audited: CaptureResult; capture: CaptureResult }> {
  const t = `bench_orm_${run}`;
  const schema = new EntitySchema<Item>({
    name: 'BenchCdcItem',
    tableName: t,
    columns: { id: { type: Number, primary: true, generated: 'increment' }, name: { type: String }, qty: { type: Number }, status: { type: String } },
  });
  const ds = (sync: boolean) => new DataSource({ type: 'postgres', url: cfg.pgUrl, entities: [schema], synchronize: sync, logging: false, poolSize: 2 });
  const plain = ds(true);
  await plain.initialize();
  const audited = ds(false);
  await audited.initialize();
  const client = new AuditClient({ brokers: cfg.brokers, topic: `bench.cdc-orm-${run}`, sourceService: 'bench', onBufferFull: 'block', bufferSize: 50_000 });
  attachTypeormAudit(audited, client);
  await client.record({ objectType: 'bench', objectId: run, action: 'custom' });
  await client.flush(30_000);
  const pass = async (source: DataSource, flush: boolean): Promise<CaptureResult> => {
    const repo = source.getRepository(schema);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await runWithAuditContext(CONTEXT, async () => {
      for (let done = 0; done < cfg.changes; done += cfg.txnRows) {
        const n = Math.min(cfg.txnRows, cfg.changes - done);
        const rows: Item[] = [];
        for (let i = 0; i < n; i++) rows.push({ name: `item-${done + i}`, qty: (done + i) % 17, status: 'new' });
        await repo.save(rows, { chunk: n });
      }
    });
    if (flush && !(await client.flush(300_000))) throw new Error('Kafka did not take the events');
    const seconds = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    const cpu = (c.user + c.system) / 1e6;
    return { changes: cfg.changes, seconds, changesPerSecond: cfg.changes / seconds, cpuSeconds: cpu, cpuSecondsPer1M: (cpu / cfg.changes) * 1e6 };
  };
  try {
    log(`TypeORM: saving ${cfg.changes} rows without, then with the subscriber`);
    const base = await pass(plain, false);
    const withSub = await pass(audited, true);
    const cpu = withSub.cpuSeconds - base.cpuSeconds;
    return {
      baseline: base,
      audited: withSub,
      capture: { changes: cfg.changes, seconds: withSub.seconds - base.seconds, changesPerSecond: withSub.changesPerSecond, cpuSeconds: cpu, cpuSecondsPer1M: (cpu / cfg.changes) * 1e6 },
    };
  } finally {
    await plain.query(`DROP TABLE IF EXISTS ${t}`).catch(() => undefined);
    await client.close();
    await audited.destroy();
    await plain.destroy();
  }
}

type StitchVariant = 'none' | 'role trigger' | 'stitched' | 'stitched, 2 trips';
const STITCH: StitchVariant[] = ['none', 'role trigger', 'stitched', 'stitched, 2 trips'];

async function benchStitching(db: Client): Promise<Record<StitchVariant, { p50: number; p99: number; mean: number }>> {
  const plainT = `bench_stitch_plain_${run}`;
  const trigT = `bench_stitch_trig_${run}`;
  const slot = `bench_stitch_slot_${run}`;
  const publication = `bench_stitch_pub_${run}`;
  for (const tt of [plainT, trigT]) {
    await db.query(`CREATE TABLE ${tt} (id int PRIMARY KEY, qty int NOT NULL, status text NOT NULL)`);
    await db.query(`INSERT INTO ${tt} SELECT g, 0, 'new' FROM generate_series(1, 1000) g`);
  }
  const samples: Record<StitchVariant, number[]> = { none: [], 'role trigger': [], stitched: [], 'stitched, 2 trips': [] };
  try {
    // The role trigger on trigT, as audit-cdc installs it (a slot must exist for the publication's setup; dropped below).
    await setupCapture(db, { slot, publication, create: true, tables: [trigT], roleTriggers: true, mapping: loadMapping(undefined) });
    await db.query('SELECT pg_drop_replication_slot($1)', [slot]);
    const once = async (v: StitchVariant, i: number): Promise<number> => {
      const target = v === 'none' ? plainT : trigT;
      const t0 = performance.now();
      if (v === 'stitched') await beginWithAuditContext(db);
      else {
        await db.query('BEGIN');
        if (v === 'stitched, 2 trips') await emitAuditContext(db);
      }
      await db.query(`UPDATE ${target} SET qty = qty + 1 WHERE id = $1`, [(i % 1000) + 1]);
      await db.query('COMMIT');
      return (performance.now() - t0) * 1000;
    };
    await runWithAuditContext(CONTEXT, async () => {
      for (const v of STITCH) for (let i = 0; i < 300; i++) await once(v, i);
      const perRound = Math.ceil(cfg.stitchN / cfg.rounds);
      for (let r = 0; r < cfg.rounds; r++) {
        const order = [...STITCH.slice(r % STITCH.length), ...STITCH.slice(0, r % STITCH.length)];
        for (const v of order) for (let i = 0; i < perRound; i++) samples[v].push(await once(v, r * perRound + i));
        log(`stitching round ${r + 1}/${cfg.rounds}`);
      }
    });
  } finally {
    await db.query(`DROP PUBLICATION IF EXISTS ${publication}`).catch(() => undefined);
    await db.query(`DROP TABLE IF EXISTS ${plainT}, ${trigT}`).catch(() => undefined);
  }
  const out = {} as Record<StitchVariant, { p50: number; p99: number; mean: number }>;
  for (const v of STITCH) out[v] = { p50: quantile(samples[v], 0.5), p99: quantile(samples[v], 0.99), mean: samples[v].reduce((s, x) => s + x, 0) / samples[v].length };
  return out;
}

async function main(): Promise<void> {
  const db = new Client({ connectionString: cfg.pgUrl });
  await db.connect();
  let cdc: CaptureResult | null = null;
  let orm: Awaited<ReturnType<typeof benchTypeorm>> | null = null;
  let stitch: Awaited<ReturnType<typeof benchStitching>> | null = null;
  try {
    if (cfg.parts.includes('capture')) {
      cdc = await benchCdc(db);
      orm = await benchTypeorm();
    }
    if (cfg.parts.includes('stitch')) stitch = await benchStitching(db);
  } finally {
    await db.end();
  }
  const f = (n: number, d = 0) => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
  if (cdc && orm) {
    console.log(`\nCapture of ${f(cfg.changes)} inserted rows (transactions of ${cfg.txnRows}), ${cpus().length} cores, node ${process.version}`);
    console.log(
      table(
        ['capture', 'changes/s', 'seconds', 'CPU s', 'CPU s per 1M changes'],
        [
          ['audit-cdc (own process, catching up from the slot)', `${f(cdc.changesPerSecond)} (${f(cdc.steadyChangesPerSecond ?? NaN)} after start-up)`, f(cdc.seconds, 2), f(cdc.cpuSeconds, 2), f(cdc.cpuSecondsPer1M, 1)],
          ['  + PostgreSQL WAL sender (decoding)', '', '', f(cdc.walSenderCpuSeconds ?? NaN, 2), f(((cdc.walSenderCpuSeconds ?? NaN) / cfg.changes) * 1e6, 1)],
          ['TypeORM save(), no auditing (app process)', f(orm.baseline.changesPerSecond), f(orm.baseline.seconds, 2), f(orm.baseline.cpuSeconds, 2), f(orm.baseline.cpuSecondsPer1M, 1)],
          ['TypeORM save() + AuditSubscriber (app process)', f(orm.audited.changesPerSecond), f(orm.audited.seconds, 2), f(orm.audited.cpuSeconds, 2), f(orm.audited.cpuSecondsPer1M, 1)],
          ['  = subscriber capture cost (difference)', '', f(orm.capture.seconds, 2), f(orm.capture.cpuSeconds, 2), f(orm.capture.cpuSecondsPer1M, 1)],
        ],
      ),
    );
    console.log(`(the app wrote the ${f(cfg.changes)} rows for audit-cdc with raw SQL, stitched, in ${f(cdc.appWriteSeconds ?? NaN, 2)} s)`);
  }
  if (stitch) {
    const st = stitch;
    console.log(`\nWrite path: one-row UPDATE transactions over one connection, ${f(cfg.stitchN)} per variant, ${cfg.rounds} interleaved rounds (µs per transaction)`);
    const none = st.none.p50;
    console.log(
      table(
        ['variant', 'p50 µs', 'p99 µs', 'mean µs', 'p50 vs none'],
        STITCH.map((v) => [v, f(st[v].p50), f(st[v].p99), f(st[v].mean), `${f(((st[v].p50 - none) / none) * 100, 1)} %`]),
      ),
    );
  }
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  // A partial run (BENCH_CDC_PARTS) keeps the other part's last figures.
  const out = join(ROOT, 'bench', 'results', 'cdc-throughput.json');
  let previous: { cdc?: unknown; typeorm?: unknown; stitching?: unknown } = {};
  try {
    previous = JSON.parse(readFileSync(out, 'utf8')) as typeof previous;
  } catch {
    // first run
  }
  writeFileSync(out, `${JSON.stringify({ at: new Date().toISOString(), node: process.version, cores: cpus().length, config: { ...cfg, pgUrl: undefined }, cdc: cdc ?? previous.cdc, typeorm: orm ?? previous.typeorm, stitching: stitch ?? previous.stitching }, null, 2)}\n`);
  log(`wrote ${out}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
