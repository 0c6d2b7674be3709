/**
 * `npm run bench:soak`: the whole pipeline for a long run on private services (its own
 * Kafka, MinIO, PostgreSQL and registry, bench/lib/private-services.ts), with faults
 * injected at random times from a printed seed, then a full audit.
 *
 *   apps (SOAK_APPS child processes, the real producer client) ─┐
 *   a PostgreSQL table written in step, captured by audit-cdc  ─┴► Kafka ► audit-consumer ×2 ► MinIO ◄ audit-admin maintain
 *
 * Faults, one at a time, each at least SOAK_FAULT_MIN times (the run goes on until every
 * kind has had its count): SIGKILL of a consumer, of the maintainer and of audit-cdc; a
 * broker restart; the S3 server stopped for SOAK_S3_DOWN_S; the registry stopped; a third
 * consumer added and later removed (two rebalances). Killed services are restarted by the
 * harness, as a supervisor would. Every SOAK_SAMPLE_MS: RSS and open fds of each service,
 * produced and committed offsets.
 *
 * At the end: every app event id stored exactly once and every captured row once (the
 * Parquet files read directly, bench/lib/soak-audit.ts), `audit-query verify --kafka`
 * clean, consumer lag 0, every maintainer pass successful plus a final `--once` pass.
 * JSON: bench/results/soak.json (SOAK_OUT).
 *
 * Parameters (environment): SOAK_EVENTS (30,000,000: app events + captured changes),
 * SOAK_APPS (3), SOAK_CDC_SHARE (0.02 of the events are row changes), SOAK_SEED (random,
 * printed), SOAK_FAULT_MIN (2 per kind), SOAK_FAULT_GAP_S (`20-60`: seconds between
 * faults), SOAK_S3_DOWN_S (60), SOAK_REGISTRY_DOWN_S (30), SOAK_PARTITIONS (6),
 * SOAK_SAMPLE_MS (5000), SOAK_PRODUCE_FOR_S (unset: the apps stop producing after this
 * long, wherever they are; the audit then expects what they recorded, and the JSON says so).
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { Pool } from 'pg';
import { generateSigningKey } from '../trust/signer';
import { commandFile } from './lib/env';
import { Prng } from './lib/prng';
import { PrivateServices, type PrivateService } from './lib/private-services';
import { flatVerdict, sampleProc, sparkline, type FlatBound, type FlatVerdict } from './lib/proc-sampler';
import type { AppProgress } from './lib/soak-app';
import { auditSoakStore, type StoreAuditResult } from './lib/soak-audit';

const ROOT = join(__dirname, '..', '..');
const num = (name: string, dflt: number) => {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v.replace(/_/g, ''));
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number (got ${v})`);
  return n;
};

const config = (() => {
  const [gapMin, gapMax] = (process.env.SOAK_FAULT_GAP_S ?? '20-60').split('-').map(Number);
  const events = Math.round(num('SOAK_EVENTS', 30_000_000));
  const cdcShare = num('SOAK_CDC_SHARE', 0.02);
  return {
    events,
    apps: Math.max(1, Math.round(num('SOAK_APPS', 3))),
    cdcRows: Math.round(events * cdcShare),
    seed: Math.round(num('SOAK_SEED', Math.floor(Math.random() * 2 ** 31))),
    faultMin: Math.round(num('SOAK_FAULT_MIN', 2)),
    gapS: [gapMin ?? 20, gapMax ?? gapMin ?? 60] as const,
    s3DownS: num('SOAK_S3_DOWN_S', 60),
    registryDownS: num('SOAK_REGISTRY_DOWN_S', 30),
    partitions: Math.round(num('SOAK_PARTITIONS', 6)),
    sampleMs: num('SOAK_SAMPLE_MS', 5000),
    produceForS: process.env.SOAK_PRODUCE_FOR_S ? num('SOAK_PRODUCE_FOR_S', 0) : null,
    out: process.env.SOAK_OUT ?? join(ROOT, 'bench', 'results', 'soak.json'),
  };
})();

const FAULT_KINDS = ['consumerKill', 'maintainerKill', 'cdcKill', 'brokerRestart', 's3Stop', 'registryStop', 'rebalance'] as const;
type FaultKind = (typeof FAULT_KINDS)[number];

const FLAT: FlatBound = { warmupFraction: 0.15, windowFraction: 0.2, relative: 0.1, absoluteRssMb: 16, absoluteFds: 8 };

const t0 = Date.now();
// The harness reads the private MinIO itself (the audit); the services get the same in their environment.
process.env.AWS_ACCESS_KEY_ID ??= 'minioadmin';
process.env.AWS_SECRET_ACCESS_KEY ??= 'minioadmin';
const elapsed = () => Math.round((Date.now() - t0) / 100) / 10;
const say = (line: string) => process.stdout.write(`[soak ${elapsed().toFixed(1).padStart(7)}s] ${line}\n`);
const delay = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

class SoakError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SoakError';
  }
}

/** A log line of a service, as the consumers of `lines` see it. */
interface Line {
  service: string;
  at: number;
  text: string;
}

/**
 * One of the project's bins run as a service, restarted when it dies (as a supervisor
 * would: 1 s later), its output in a log file and its lines offered to waiters.
 */
class Service {
  child: ChildProcess | null = null;
  starts = 0;
  unexpectedExits: { at: number; code: number | null; signal: string | null }[] = [];
  private readonly waiters = new Set<{ test: (l: Line) => boolean; resolve: (l: Line) => void }>();
  private readonly log: WriteStream;
  private stopped = false;
  private expectingExit = false;
  private tail: string[] = [];

  constructor(
    readonly name: string,
    private readonly argv: string[],
    private readonly vars: Record<string, string>,
    logDir: string,
    private readonly onLine: (l: Line) => void,
  ) {
    this.log = createWriteStream(join(logDir, `${name}.log`), { flags: 'a' });
  }

  get pid(): number | null {
    return this.child && this.child.exitCode === null && this.child.signalCode === null ? (this.child.pid ?? null) : null;
  }

  start(): void {
    this.starts++;
    const child = spawn(process.execPath, this.argv, { env: { ...process.env, ...this.vars }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (text) => {
        this.log.write(`${text}\n`);
        this.tail.push(text);
        if (this.tail.length > 50) this.tail.shift();
        const l: Line = { service: this.name, at: Date.now(), text };
        this.onLine(l);
        for (const w of this.waiters) {
          if (w.test(l)) {
            this.waiters.delete(w);
            w.resolve(l);
          }
        }
      });
    }
    child.once('exit', (code, signal) => {
      this.log.write(`=== exited code=${code} signal=${signal}\n`);
      if (this.child !== child) return;
      if (!this.expectingExit && !this.stopped) {
        this.unexpectedExits.push({ at: Date.now(), code, signal });
        say(`${this.name} exited by itself (code ${code}, signal ${signal}); restarting. Last lines:\n    ${this.tail.slice(-3).join('\n    ')}`);
      }
      this.expectingExit = false;
      if (!this.stopped) setTimeout(() => (this.stopped ? undefined : this.start()), 1000);
    });
  }

  /** The next line (from now) that passes `test`. */
  next(test: (l: Line) => boolean, timeoutMs: number, what: string): Promise<Line> {
    return new Promise((resolve, reject) => {
      const w = {
        test,
        resolve: (l: Line) => {
          clearTimeout(timer);
          resolve(l);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new SoakError(`${this.name}: no ${what} within ${timeoutMs / 1000} s; last lines:\n${this.tail.slice(-10).join('\n')}`));
      }, timeoutMs);
      this.waiters.add(w);
    });
  }

  /** SIGKILL; the supervisor starts it again a second later. */
  kill(): void {
    this.expectingExit = true;
    this.child?.kill('SIGKILL');
  }

  /** SIGTERM, no restart; resolves with the exit code. */
  async stop(timeoutMs = 120_000): Promise<number | null> {
    this.stopped = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const code = await exited;
    clearTimeout(timer);
    this.log.end();
    return code;
  }
}

interface FaultRecord {
  kind: FaultKind;
  target: string;
  at: number;
  /** Seconds the fault lasted (service down, extra member present). */
  downS: number;
  /** Seconds from the injection until the pipeline stored and committed a cut again (maintainer: a successful pass). */
  recoveryS: number;
}

interface Sample {
  t: number;
  phase: string;
  produced: number;
  committed: number | null;
  lag: number | null;
  cdcRows: number;
  procs: Record<string, { rssMb: number; fds: number }>;
}

async function main(): Promise<void> {
  const prng = new Prng(config.seed);
  say(`seed ${config.seed} (SOAK_SEED=${config.seed} repeats this schedule); ${config.events.toLocaleString('en')} events: ${config.apps} apps, ${config.cdcRows.toLocaleString('en')} row changes; each fault kind at least ${config.faultMin}x`);
  const work = await mkdtemp(join(tmpdir(), 'audit-soak-'));
  const logDir = join(work, 'logs');
  await mkdir(logDir, { recursive: true });
  say(`work dir ${work} (service logs in logs/)`);

  const services = await PrivateServices.create('soak', { registryStorage: 'kafkasql', kafkaHeap: '-Xms256m -Xmx768m' });
  const shutdown = new AbortController();
  const all: Service[] = [];
  let pool: Pool | null = null;
  let admin: Admin | null = null;
  try {
    await Promise.all([services.up('kafka'), services.up('s3'), services.up('postgres')]);
    await services.up('registry');
    say(`private services up: ${JSON.stringify(services.endpoints)}`);

    const key = generateSigningKey();
    const keyFile = join(work, 'signing.pem');
    await writeFile(keyFile, key.privateKeyPem, { mode: 0o600 });
    const topic = 'soak.events';
    const table = 'soak_cdc';
    const base: Record<string, string> = {
      AUDIT_KAFKA_BROKERS: services.endpoints.kafkaBrokers,
      AUDIT_TOPIC: topic,
      AUDIT_CONSUMER_GROUP: 'soak-consumer',
      AUDIT_STORE_URL: 's3://audit/soak',
      AUDIT_S3_ENDPOINT: services.endpoints.s3Endpoint,
      AUDIT_S3_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'minioadmin',
      AWS_SECRET_ACCESS_KEY: 'minioadmin',
      AUDIT_SCHEMA_REGISTRY_URL: services.endpoints.registryUrl,
      AUDIT_SIGNING_KEY_FILE: keyFile,
      AUDIT_LOG_LEVEL: 'info',
      AUDIT_KAFKA_SESSION_TIMEOUT_MS: '10000',
      AUDIT_KAFKA_REBALANCE_TIMEOUT_MS: '30000',
      // Cuts at least every 10 s: recovery is measured to the next stored cut, so a long age would hide it.
      AUDIT_FLUSH_MAX_AGE_MS: '10000',
    };
    const dirs = (name: string) => ({ AUDIT_CACHE_DIR: join(work, name, 'cache'), AUDIT_WORK_DIR: join(work, name, 'work') });

    const kafka = new Kafka({ clientId: 'soak', brokers: [services.endpoints.kafkaBrokers], logLevel: logLevel.NOTHING, retry: { retries: 3 } });
    admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: config.partitions }], waitForLeaders: true });

    pool = new Pool({ connectionString: services.endpoints.pgUrl, max: 2 });
    await pool.query(`CREATE TABLE ${table} (id bigserial PRIMARY KEY, n integer NOT NULL, note text NOT NULL)`);

    // Cuts stored and committed, by time: what "the pipeline works again" means for recovery.
    const cutTimes: number[] = [];
    const passes = { finished: 0, failed: [] as { at: number; err: string }[] };
    const onLine = (l: Line) => {
      if (l.text.includes('"cut stored and committed"')) cutTimes.push(l.at);
      else if (l.text.includes('"maintenance pass finished"')) passes.finished++;
      else if (l.text.includes('"maintenance pass failed')) {
        passes.failed.push({ at: l.at, err: l.text.slice(0, 400) });
        say(`maintainer: a pass failed: ${l.text.slice(0, 300)}`);
      }
    };
    const bin = (name: 'consumer' | 'maintenance' | 'cdc') => commandFile(ROOT, name);
    const consumers = [1, 2].map((i) => new Service(`consumer-${i}`, [bin('consumer')], { ...base, ...dirs(`consumer-${i}`), AUDIT_CLIENT_ID: `soak-consumer-${i}` }, logDir, onLine));
    const maintainer = new Service(
      'maintainer',
      [bin('maintenance'), 'maintain'],
      { ...base, ...dirs('maintainer'), AUDIT_MAINTAIN_INTERVAL: '30s', AUDIT_COMPACT_MIN_AGE: '2m', AUDIT_COMPACT_GRACE: '30s' },
      logDir,
      onLine,
    );
    const cdc = new Service(
      'cdc',
      [bin('cdc')],
      {
        ...base,
        AUDIT_CDC_DATABASE_URL: services.endpoints.pgUrl,
        AUDIT_CDC_SLOT: 'soak_slot',
        AUDIT_CDC_PUBLICATION: 'soak_pub',
        AUDIT_CDC_PUBLICATION_TABLES: table,
        AUDIT_CDC_SOURCE_SERVICE: 'soak-cdc',
      },
      logDir,
      onLine,
    );
    all.push(...consumers, maintainer, cdc);
    const cdcReady = cdc.next((l) => l.text.includes('"replication started"'), 120_000, '"replication started"');
    cdc.start();
    await cdcReady;
    for (const c of consumers) c.start();
    maintainer.start();

    // ---- the apps ----
    const perApp = Math.floor((config.events - config.cdcRows) / config.apps);
    const appTotals = Array.from({ length: config.apps }, (_, i) => (i === 0 ? config.events - config.cdcRows - perApp * (config.apps - 1) : perApp));
    const progress = new Map<number, AppProgress>();
    const appProcs: ChildProcess[] = [];
    const appsDone = Promise.all(
      appTotals.map(
        (n, app) =>
          new Promise<AppProgress>((resolve, reject) => {
            const child = fork(join(__dirname, 'lib', 'soak-app.js'), [], {
              env: { ...process.env, ...base, AUDIT_LOG_LEVEL: 'warn', SOAK_APP: String(app), SOAK_APP_EVENTS: String(n) },
              stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
            });
            appProcs.push(child);
            child.on('message', (m: AppProgress) => {
              progress.set(app, m);
              if (m.type === 'done') (m.error ? reject(new SoakError(`app ${app}: ${m.error}`)) : resolve(m));
            });
            child.once('exit', (code) => (progress.get(app)?.type === 'done' ? undefined : reject(new SoakError(`app ${app} exited ${code} before it was done`))));
          }),
      ),
    );
    appsDone.catch(() => undefined);
    const produced = () => [...progress.values()].reduce((a, p) => a + p.delivered, 0);
    const appTarget = config.events - config.cdcRows;

    // ---- the captured table, written in step with the apps ----
    let cdcWritten = 0;
    let appsFinished = false;
    const cdcWriter = (async () => {
      for (;;) {
        const last = appsFinished;
        const due = Math.min(config.cdcRows, Math.ceil((config.cdcRows * produced()) / appTarget));
        const n = Math.min(5000, due - cdcWritten);
        if (n > 0) {
          await pool!.query(`INSERT INTO ${table} (n, note) SELECT g, 'soak row ' || g FROM generate_series(1, $1::int) g`, [n]);
          cdcWritten += n;
        } else if (last || shutdown.signal.aborted) break;
        else await delay(250, shutdown.signal);
      }
    })();
    const stopTimer =
      config.produceForS === null
        ? null
        : setTimeout(() => {
            say(`SOAK_PRODUCE_FOR_S=${config.produceForS} reached: the apps stop where they are`);
            for (const p of appProcs) p.kill('SIGTERM');
          }, config.produceForS * 1000);

    // ---- samplers ----
    const samples: Sample[] = [];
    let phase = 'produce';
    const servicePids = async (): Promise<Record<string, number | null>> => {
      const pids: Record<string, number | null> = {};
      for (const s of all) pids[s.name] = s.pid;
      appProcs.forEach((p, i) => (pids[`app-${i}`] = p.exitCode === null ? (p.pid ?? null) : null));
      for (const s of ['kafka', 's3', 'postgres', 'registry'] as PrivateService[]) pids[s === 's3' ? 'minio' : s] = await services.pid(s);
      return pids;
    };
    const offsets = async (): Promise<{ high: number; committed: number } | null> => {
      try {
        const [ends, group] = await Promise.all([admin!.fetchTopicOffsets(topic), admin!.fetchOffsets({ groupId: base.AUDIT_CONSUMER_GROUP!, topics: [topic] })]);
        const high = ends.reduce((a, e) => a + Number(e.high), 0);
        const committed = (group[0]?.partitions ?? []).reduce((a, p) => a + Math.max(0, Number(p.offset)), 0);
        return { high, committed };
      } catch {
        return null; // broker down: a gap in the series
      }
    };
    const sampler = (async () => {
      while (!shutdown.signal.aborted) {
        const pids = await servicePids();
        const procs: Sample['procs'] = {};
        for (const [name, pid] of Object.entries(pids)) {
          const s = pid ? sampleProc(pid) : null;
          if (s) procs[name] = s;
        }
        const o = await offsets();
        samples.push({ t: elapsed(), phase, produced: produced(), committed: o?.committed ?? null, lag: o ? o.high - o.committed : null, cdcRows: cdcWritten, procs });
        await delay(config.sampleMs, shutdown.signal);
      }
    })();
    const reporter = setInterval(() => {
      const s = samples[samples.length - 1];
      if (s) say(`${phase}: produced ${s.produced.toLocaleString('en')}, committed ${s.committed?.toLocaleString('en') ?? '?'}, lag ${s.lag?.toLocaleString('en') ?? '?'}, cdc rows ${s.cdcRows.toLocaleString('en')}`);
    }, 60_000);

    // ---- faults ----
    const faults: FaultRecord[] = [];
    const counts = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
    const cutAfter = async (at: number, timeoutMs = 600_000): Promise<number> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hit = cutTimes.find((t) => t > at);
        if (hit) return hit;
        // Nothing left to store is recovered too: lag 0 with the consumers up.
        const o = await offsets();
        if (o && o.high === o.committed && Date.now() - at > 5000) return Date.now();
        if (Date.now() > deadline) throw new SoakError(`no cut stored within ${timeoutMs / 1000} s after ${new Date(at).toISOString()}`);
        await delay(500);
      }
    };
    let extra = 0;
    const inject = async (kind: FaultKind): Promise<FaultRecord> => {
      const at = Date.now();
      let target: string = kind;
      let back = at;
      switch (kind) {
        case 'consumerKill': {
          const c = prng.pick(consumers);
          target = c.name;
          const joined = c.next((l) => l.text.includes('"joined the consumer group"'), 300_000, 'group join after the kill');
          c.kill();
          await joined;
          back = Date.now();
          break;
        }
        case 'maintainerKill': {
          target = maintainer.name;
          const pass = maintainer.next((l) => l.text.includes('"maintenance pass finished"'), 600_000, 'successful pass after the kill');
          maintainer.kill();
          const l = await pass;
          return { kind, target, at, downS: 1, recoveryS: (l.at - at) / 1000 };
        }
        case 'cdcKill': {
          target = cdc.name;
          const started = cdc.next((l) => l.text.includes('"replication started"'), 300_000, '"replication started" after the kill');
          cdc.kill();
          await started;
          back = Date.now();
          break;
        }
        case 'brokerRestart':
          await services.down('kafka');
          await services.up('kafka');
          back = Date.now();
          break;
        case 's3Stop':
          target = 'minio';
          await services.down('s3');
          await delay(config.s3DownS * 1000);
          await services.up('s3');
          back = Date.now();
          break;
        case 'registryStop':
          await services.down('registry');
          await delay(config.registryDownS * 1000);
          await services.up('registry');
          back = Date.now();
          break;
        case 'rebalance': {
          extra++;
          const c = new Service(`consumer-extra-${extra}`, [bin('consumer')], { ...base, ...dirs(`consumer-extra-${extra}`), AUDIT_CLIENT_ID: `soak-extra-${extra}` }, logDir, onLine);
          target = c.name;
          all.push(c);
          const joined = c.next((l) => l.text.includes('"joined the consumer group"'), 300_000, 'group join');
          c.start();
          await joined;
          await delay((10 + prng.int(30)) * 1000);
          const code = await c.stop();
          all.splice(all.indexOf(c), 1);
          if (code !== 0) throw new SoakError(`${c.name} exited ${code} on SIGTERM`);
          back = Date.now();
          break;
        }
      }
      const recovered = await cutAfter(back);
      return { kind, target, at, downS: (back - at) / 1000, recoveryS: (recovered - at) / 1000 };
    };
    const unrecovered: { kind: FaultKind; at: number; error: string }[] = [];
    const pending = () => FAULT_KINDS.filter((k) => counts[k] < config.faultMin);
    let producing = true;
    // Cut short the wait for the next fault once the apps are done and no kind is owed.
    const noMoreFaults = new AbortController();
    const faultLoop = (async () => {
      while (!shutdown.signal.aborted && (producing || pending().length > 0)) {
        await delay((config.gapS[0] + prng.next() * (config.gapS[1] - config.gapS[0])) * 1000, AbortSignal.any([shutdown.signal, noMoreFaults.signal]));
        if (shutdown.signal.aborted || (!producing && pending().length === 0)) break;
        const owed = pending();
        const kind = owed.length > 0 ? prng.pick(owed) : prng.pick(FAULT_KINDS);
        say(`fault: ${kind}`);
        counts[kind]++;
        try {
          const f = await inject(kind);
          faults.push(f);
          say(`fault: ${kind} on ${f.target}: down ${f.downS.toFixed(1)} s, recovered after ${f.recoveryS.toFixed(1)} s`);
        } catch (err) {
          // Not recovering is the finding; the run goes on so the audit shows what it cost.
          unrecovered.push({ kind, at: elapsed(), error: (err as Error).message });
          say(`fault: ${kind} did not recover: ${(err as Error).message}`);
        }
      }
    })();

    // A pass that fails while the store or the broker is stopped is the maintainer doing its job (it
    // retries at the next interval); one outside those windows (plus a pass interval after) is a failure.
    const outage = (at: number) =>
      faults.some((f) => (f.kind === 's3Stop' || f.kind === 'brokerRestart') && at >= f.at && at <= f.at + (f.downS + 45) * 1000);
    const phases: { name: string; seconds: number; events: number; eventsPerSec: number }[] = [];
    const phaseStart = { at: Date.now(), committed: 0 };
    const endPhase = async (name: string, events: number) => {
      const seconds = (Date.now() - phaseStart.at) / 1000;
      phases.push({ name, seconds: Math.round(seconds), events, eventsPerSec: Math.round(events / seconds) });
      phaseStart.at = Date.now();
    };

    const apps = await appsDone;
    if (stopTimer) clearTimeout(stopTimer);
    producing = false;
    appsFinished = true;
    if (pending().length === 0) noMoreFaults.abort();
    await cdcWriter;
    await endPhase('produce (apps running)', produced() + cdcWritten);
    say(`apps done: ${apps.map((a) => `app ${a.app} ${a.delivered.toLocaleString('en')} delivered, ${a.dropped} dropped, ${a.sendFailures} failed sends`).join('; ')}`);
    phase = 'faults-owed';
    await faultLoop;
    phase = 'drain';
    const committedBeforeDrain = (await offsets())?.committed ?? 0;

    // Everything written to the table is on Kafka: the slot confirmed past the last write.
    const walEnd = (await pool.query<{ lsn: string }>('SELECT pg_current_wal_lsn()::text AS lsn')).rows[0]!.lsn;
    for (;;) {
      const r = await pool.query<{ ok: boolean }>(`SELECT confirmed_flush_lsn >= $1::pg_lsn AS ok FROM pg_replication_slots WHERE slot_name = 'soak_slot'`, [walEnd]);
      if (r.rows[0]?.ok) break;
      await delay(500);
    }
    // Lag 0: every record on the topic stored and committed.
    let lagZeroAt: number | null = null;
    for (;;) {
      const o = await offsets();
      if (o && o.high === o.committed) {
        lagZeroAt = Date.now();
        break;
      }
      await delay(1000);
    }
    const finalOffsets = (await offsets())!;
    await endPhase('drain (to lag 0)', finalOffsets.committed - committedBeforeDrain);
    say(`lag 0 at ${finalOffsets.committed.toLocaleString('en')} records`);

    const consumerCodes = await Promise.all(consumers.map((c) => c.stop()));
    const cdcCode = await cdc.stop();
    const maintainerCode = await maintainer.stop();
    shutdown.abort();
    clearInterval(reporter);
    await sampler;

    phase = 'final';
    const once = await runBin('maintenance', ['maintain', '--once'], { ...base, ...dirs('maintainer-final'), AUDIT_COMPACT_MIN_AGE: '0s', AUDIT_COMPACT_GRACE: '0s', AUDIT_LOG_LEVEL: 'warn' });
    await endPhase('final maintenance pass', finalOffsets.committed);
    say(`final maintain --once: exit ${once.code}`);
    const verify = await runBin('query', ['verify', '--kafka', '--format', 'json'], { ...base, AUDIT_LOG_LEVEL: 'warn' });
    const verifyReport = verify.code === 0 || verify.code === 1 ? (JSON.parse(verify.stdout) as { findings: unknown[]; stats: Record<string, unknown> }) : null;
    await endPhase('verify --kafka', finalOffsets.committed);
    say(`verify --kafka: exit ${verify.code}, ${verifyReport?.findings.length ?? '?'} findings`);
    const audit: StoreAuditResult = await auditSoakStore(
      { ...base },
      key.publicKeyPem,
      // An app stopped early recorded ids 0..accepted-1 (it stops between chunks).
      apps.map((a) => ({ app: a.app, expected: a.accepted })),
      { objectType: table, expectedRows: cdcWritten },
      work,
    );
    await endPhase('audit (store read directly)', audit.rows);
    const lost = audit.apps.reduce((a, x) => a + x.lost, 0) + audit.cdc.lost;
    const duplicated = audit.apps.reduce((a, x) => a + x.duplicated, 0) + audit.cdc.rowsWithSeveralIds;
    say(`audit: ${audit.rows.toLocaleString('en')} rows in ${audit.files} files: lost ${lost}, duplicated ${duplicated}, cdc replayed copies ${audit.cdc.replayedCopies}`);

    // ---- flatness ----
    const names = new Set(samples.flatMap((s) => Object.keys(s.procs)));
    const flat: Record<string, FlatVerdict | null> = {};
    const series: Record<string, { t: number; rssMb: number; fds: number }[]> = {};
    for (const name of names) {
      if (name.startsWith('consumer-extra')) continue;
      const s = samples.filter((x) => x.procs[name]).map((x) => ({ t: x.t, ...x.procs[name]! }));
      series[name] = s;
      flat[name] = flatVerdict(s, FLAT);
    }
    const appsFinal = apps.map((a) => ({ app: a.app, planned: appTotals[a.app], accepted: a.accepted, delivered: a.delivered, dropped: a.dropped, sendFailures: a.sendFailures, stoppedEarly: Boolean(a.stopped) }));
    const result = {
      date: new Date().toISOString(),
      node: process.version,
      config: { ...config, flatBound: FLAT, faultKinds: FAULT_KINDS },
      seconds: elapsed(),
      phases,
      faults,
      faultCounts: counts,
      unrecovered,
      apps: appsFinal,
      cdc: { rowsWritten: cdcWritten, exitCode: cdcCode, starts: cdc.starts },
      consumers: consumers.map((c, i) => ({ name: c.name, starts: c.starts, unexpectedExits: c.unexpectedExits.length, exitCode: consumerCodes[i] })),
      maintainer: { passesFinished: passes.finished, passesFailedDuringOutages: passes.failed.filter((p) => outage(p.at)).length, passesFailedOtherwise: passes.failed.filter((p) => !outage(p.at)), starts: maintainer.starts, unexpectedExits: maintainer.unexpectedExits.length, exitCode: maintainerCode, finalOnceExit: once.code, finalOnceStderr: once.code === 0 ? '' : once.stderr.slice(-2000) },
      unexpectedExits: Object.fromEntries([...consumers, maintainer, cdc].map((s) => [s.name, s.unexpectedExits])),
      lag: { final: finalOffsets.high - finalOffsets.committed, records: finalOffsets.committed, zeroAt: lagZeroAt ? (lagZeroAt - t0) / 1000 : null },
      verify: { code: verify.code, findings: verifyReport?.findings ?? null, stats: verifyReport?.stats ?? null, stderr: verify.code === 0 ? '' : verify.stderr.slice(-2000) },
      audit,
      totals: { events: audit.rows - audit.cdc.replayedCopies, lost, duplicated, cdcReplayedCopies: audit.cdc.replayedCopies },
      flat,
      samples: downsample(samples, 400),
    };
    await mkdir(join(config.out, '..'), { recursive: true });
    await writeFile(config.out, `${JSON.stringify(result, null, 1)}\n`);

    // ---- the table ----
    say(`results: ${config.out}`);
    console.log('\n| phase | seconds | events | events/s |\n| --- | --- | --- | --- |');
    for (const p of phases) console.log(`| ${p.name} | ${p.seconds} | ${p.events.toLocaleString('en')} | ${p.eventsPerSec.toLocaleString('en')} |`);
    console.log('\n| fault | count | median recovery s | max recovery s |\n| --- | --- | --- | --- |');
    for (const k of FAULT_KINDS) {
      const r = faults.filter((f) => f.kind === k).map((f) => f.recoveryS).sort((a, b) => a - b);
      console.log(`| ${k} | ${counts[k]} | ${r.length ? r[Math.floor(r.length / 2)]!.toFixed(1) : '-'} | ${r.length ? r[r.length - 1]!.toFixed(1) : '-'} |`);
    }
    console.log('\n| service | RSS MB first → last window | flat | fds first → last | flat | RSS over the run |\n| --- | --- | --- | --- | --- | --- |');
    for (const [name, v] of Object.entries(flat)) {
      const s = series[name] ?? [];
      console.log(`| ${name} | ${v ? `${v.firstRssMb} → ${v.lastRssMb}` : '-'} | ${v ? (v.rssFlat ? 'yes' : '**no**') : '-'} | ${v ? `${v.firstFds} → ${v.lastFds}` : '-'} | ${v ? (v.fdsFlat ? 'yes' : '**no**') : '-'} | \`${sparkline(s.map((x) => x.rssMb), 40)}\` |`);
    }
    const ok =
      lost === 0 &&
      duplicated === 0 &&
      audit.apps.every((a) => a.unexpected === 0) &&
      verify.code === 0 &&
      finalOffsets.high === finalOffsets.committed &&
      passes.failed.every((p) => outage(p.at)) &&
      unrecovered.length === 0 &&
      once.code === 0 &&
      FAULT_KINDS.every((k) => counts[k] >= config.faultMin);
    say(ok ? 'PASS: 0 lost, 0 duplicated, verify clean, lag 0, every maintainer pass successful' : 'FAIL: see the JSON');
    if (!ok) process.exitCode = 1;
  } finally {
    shutdown.abort();
    await Promise.all(all.map((s) => s.stop(30_000).catch(() => null)));
    await admin?.disconnect().catch(() => undefined);
    await pool?.end().catch(() => undefined);
    await services.close().catch((e: unknown) => say(`stopping the private services: ${(e as Error).message}`));
    if (!process.env.SOAK_KEEP) await rm(work, { recursive: true, force: true });
  }
}

function downsample<T>(xs: T[], max: number): T[] {
  if (xs.length <= max) return xs;
  const step = xs.length / max;
  return Array.from({ length: max }, (_, i) => xs[Math.floor(i * step)]!);
}

function runBin(name: 'consumer' | 'query' | 'maintenance' | 'cdc', args: string[], vars: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [commandFile(ROOT, name), ...args], { env: { ...process.env, ...vars }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`soak failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 2;
});
