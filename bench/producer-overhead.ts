/**
 * What auditing adds to an app, per request and per ORM write: the producer's
 * hooks (fire-and-forget to Kafka) against no auditing and against the usual
 * alternative, a synchronous INSERT into a PostgreSQL audit table.
 *
 *   node -r ./bench/lib/register.js bench/producer-overhead.ts
 *   (or: npm run build && node dist/bench/producer-overhead.js)
 *
 * Needs Kafka and PostgreSQL (bash infra/up.sh kafka postgres). Loopback only, bounded loops.
 *
 * HTTP: one Express app per variant on 127.0.0.1; a load generator in a child
 * process sends BENCH_HTTP_N (10,000) sequential requests to each over one
 * keep-alive connection, in BENCH_ROUNDS (20) interleaved rounds after
 * BENCH_WARMUP (2,000) warm-up requests; latency is measured by the client.
 * Many short rounds, because this host's own noise comes in bursts of a second or
 * two: with 5 rounds a p99 told which variant a burst fell on more than the variant.
 * Variants:
 *   baseline    - no auditing
 *   audit       - auditExpress(client) (one `request` event per request to Kafka), the default sender:
 *                 @platformatic/kafka in a worker thread
 *   audit-kafkajs-inline - the same with the previous default sender: kafkajs on the app's event loop
 *   previous-release - the previous release's middleware and client (BENCH_PREVIOUS_PRODUCER: its dist/producer)
 *   audit-registry - the same with a schema registry (records framed with its id)
 *   hooks-only  - the same middleware with a recorder that builds and encodes the record but sends nothing
 *   sync-pg     - the handler awaits an INSERT of the audit row into PostgreSQL before answering
 * ORM: TypeORM `repository.save()` of a new row, BENCH_ORM_N (2000) each:
 *   baseline    - no subscriber
 *   audit       - the AuditSubscriber (event held until commit, then to Kafka)
 *   audit-kafkajs-inline - the same with kafkajs on the app's event loop
 *   audit-registry - the same with a schema registry
 *   hooks-only  - the same subscriber, record built and encoded but not sent
 *   sync-pg     - save + INSERT of the audit row in the same transaction
 *
 * Throughput (first, each in a child process of its own, BENCH_TP_ROUNDS (3) interleaved rounds):
 * BENCH_TP_N (100000) events recorded as fast as one app thread can, per sender (kafkajs or
 * @platformatic/kafka, inline or in a worker thread, gzip or none; the default with up to 5 requests
 * in flight, opt-in) and `build-only` (build, mask, encode, no send): events/s to the last acknowledgement, CPU µs per event of the process and
 * of the app's thread (bench/lib/producer-load.ts). BENCH_PREVIOUS_PRODUCER=<a build's dist/producer>
 * adds the previous release's client side by side (kafkajs on the app's thread, and its default sender).
 *
 * Environment: BENCH_HTTP_N, BENCH_ORM_N, BENCH_ROUNDS, BENCH_WARMUP, BENCH_PG_HOST/PORT/USER/DATABASE,
 * AUDIT_KAFKA_BROKERS, BENCH_SCHEMA_REGISTRY_URL (default: the local Apicurio of infra/up.sh registry),
 * BENCH_PARTS, BENCH_TP_N, BENCH_TP_ROUNDS, BENCH_TP_VARIANTS (sender names, comma-separated: only those).
 * Writes bench/results/producer-overhead.json (BENCH_RESULT_NAME: another name in bench/results/).
 */
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { Agent, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { cpus, loadavg } from 'node:os';
import 'reflect-metadata';
import express from 'express';
import { Pool } from 'pg';
import { DataSource, EntitySchema, type EntityManager, type Repository } from 'typeorm';
import {
  AuditClient,
  attachTypeormAudit,
  auditExpress,
  buildRecord,
  currentAuditContext,
  DEFAULT_MASKED_FIELDS,
  fieldMatcher,
  type AuditEventInput,
  type AuditRecorder,
  type AuditStats,
} from '../producer';
import { encodeRecord } from '../schemas';
import { median, quantile, table } from './lib/stats';
import { runLoad, type LoadResult, type LoadSpec } from './lib/producer-load';
import { envNumber, projectRoot } from './lib/env';

const ROOT = projectRoot(__dirname);
const num = envNumber;
const cfg = {
  httpN: num('BENCH_HTTP_N', 10_000),
  ormN: num('BENCH_ORM_N', 2000),
  rounds: num('BENCH_ROUNDS', 20),
  tpN: num('BENCH_TP_N', 100_000),
  tpRounds: num('BENCH_TP_ROUNDS', 3),
  /** Which parts run: throughput, http, orm (default all; the JSON holds those that ran). */
  parts: new Set((process.env.BENCH_PARTS ?? 'throughput,http,orm').split(',')),
  warmup: num('BENCH_WARMUP', 2000),
  pg: {
    host: process.env.BENCH_PG_HOST ?? '127.0.0.1',
    port: num('BENCH_PG_PORT', 54329),
    user: process.env.BENCH_PG_USER ?? 'postgres',
    database: process.env.BENCH_PG_DATABASE ?? 'audit_test',
  },
  brokers: (process.env.AUDIT_KAFKA_BROKERS ?? 'localhost:9092').split(','),
  registryUrl: process.env.BENCH_SCHEMA_REGISTRY_URL ?? 'http://127.0.0.1:8081/apis/ccompat/v7',
};
const run = randomUUID().slice(0, 8);
const AUDIT_TABLE = `bench_audit_sync_${run}`;
const ITEM_TABLE = `bench_item_${run}`;
const log = (msg: string) => process.stderr.write(`${msg}\n`);

type Variant = 'baseline' | 'audit' | 'audit-kafkajs-inline' | 'previous-release' | 'audit-registry' | 'hooks-only' | 'sync-pg';
/** The previous release's producer, side by side (BENCH_PREVIOUS_PRODUCER: its built dist/producer directory). */
const PREVIOUS = process.env.BENCH_PREVIOUS_PRODUCER;
const VARIANTS: readonly Variant[] = (['baseline', 'audit', 'audit-kafkajs-inline', 'previous-release', 'audit-registry', 'hooks-only', 'sync-pg'] as const).filter(
  (v) => v !== 'previous-release' || PREVIOUS,
);
/** Round r starts at the r-th variant: no variant always follows the same one (PostgreSQL's or the sender's leftovers). */
const rotated = (r: number): Variant[] => VARIANTS.map((_, i) => VARIANTS[(i + r) % VARIANTS.length]!);
const emptySamples = (): Record<Variant, number[]> => ({
  baseline: [],
  audit: [],
  'audit-kafkajs-inline': [],
  'previous-release': [],
  'audit-registry': [],
  'hooks-only': [],
  'sync-pg': [],
});
type Producer = typeof import('../producer');
/** Loaded lazily: only when BENCH_PREVIOUS_PRODUCER is set. */
const previous = (): Producer => require(PREVIOUS!) as Producer;

interface Clients {
  audit: AuditClient;
  inline: AuditClient;
  registry: AuditClient;
  /** The previous release's client (its own class), when BENCH_PREVIOUS_PRODUCER is set. */
  previous: AuditClient | null;
}

/**
 * The `hooks-only` variant: the same hooks with a recorder that builds, masks and
 * encodes each record exactly like AuditClient.record() but sends nothing. The
 * difference to `audit` is the cost of the background sender (kafkajs, gzip)
 * and of the broker, which on this machine share the app's CPU.
 */
const encodeOnly: AuditRecorder = {
  record(input: AuditEventInput): Promise<void> {
    encodeRecord(buildRecord(input, currentAuditContext(), { sourceService: 'bench', isSensitive }));
    return Promise.resolve();
  },
};
const isSensitive = fieldMatcher(DEFAULT_MASKED_FIELDS);

interface Summary {
  n: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  p50Ratio: number;
  p99Ratio: number;
  addedP50Us: number;
  addedP99Us: number;
}

function summarize(samples: Record<Variant, number[]>): Record<Variant, Summary> {
  const base = samples.baseline;
  const bp50 = quantile(base, 0.5);
  const bp99 = quantile(base, 0.99);
  const out = {} as Record<Variant, Summary>;
  for (const v of VARIANTS) {
    const s = samples[v];
    const p50 = quantile(s, 0.5);
    const p99 = quantile(s, 0.99);
    out[v] = {
      n: s.length,
      p50Ms: round(p50),
      p99Ms: round(p99),
      meanMs: round(s.reduce((a, b) => a + b, 0) / s.length),
      p50Ratio: round(p50 / bp50, 2),
      p99Ratio: round(p99 / bp99, 2),
      addedP50Us: Math.round((p50 - bp50) * 1000),
      addedP99Us: Math.round((p99 - bp99) * 1000),
    };
  }
  return out;
}

const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;

function printTable(title: string, s: Record<Variant, Summary>): void {
  console.log(`\n${title}`);
  console.log(
    table(
      ['variant', 'n', 'p50 ms', 'p99 ms', 'p50 x base', 'p99 x base', 'added p50 µs', 'added p99 µs'],
      VARIANTS.map((v) => [v, String(s[v].n), s[v].p50Ms.toFixed(3), s[v].p99Ms.toFixed(3), s[v].p50Ratio.toFixed(2), s[v].p99Ratio.toFixed(2), String(s[v].addedP50Us), String(s[v].addedP99Us)]),
    ),
  );
}

// ---- HTTP ----

async function startApp(variant: Variant, clients: Clients, pool: Pool): Promise<{ server: Server; port: number }> {
  const app = express();
  if (variant === 'audit') app.use(auditExpress(clients.audit));
  if (variant === 'audit-kafkajs-inline') app.use(auditExpress(clients.inline));
  if (variant === 'previous-release') app.use(previous().auditExpress(clients.previous!));
  if (variant === 'audit-registry') app.use(auditExpress(clients.registry));
  if (variant === 'hooks-only') app.use(auditExpress(encodeOnly));
  app.get('/orders/:id', async (req, res) => {
    if (variant === 'sync-pg') {
      await pool.query(
        `INSERT INTO ${AUDIT_TABLE} (event_id, occurred_at, object_type, object_id, action, request_id, ip, user_agent, http_method, http_path, http_status, metadata)
         VALUES ($1, now(), 'http_request', $2, 'request', $2, $3, $4, $5, $6, 200, '{}'::jsonb)`,
        [randomUUID(), randomUUID(), req.socket.remoteAddress ?? null, req.headers['user-agent'] ?? null, req.method, req.path],
      );
    }
    res.json({ id: req.params.id, status: 'open', total: 1200 });
  });
  const server = app.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return { server, port: (server.address() as AddressInfo).port };
}

function get(agent: Agent, port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = httpRequest({ host: '127.0.0.1', port, path, agent, headers: { 'user-agent': 'bench/1.0' } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - t0) : reject(new Error(`HTTP ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

/**
 * The load generator: sequential GETs over one keep-alive connection per app,
 * interleaved rounds. Runs in a child process, so that its own work is not
 * charged to the app and the app's work after the response (recording the
 * event) only costs what it costs a real client: the CPU it steals.
 */
async function loadGenerator(ports: Record<Variant, number>): Promise<Record<Variant, number[]>> {
  const agents = Object.fromEntries(VARIANTS.map((v) => [v, new Agent({ keepAlive: true, maxSockets: 1 })])) as Record<Variant, Agent>;
  const samples = emptySamples();
  try {
    for (const v of VARIANTS) for (let i = 0; i < cfg.warmup; i++) await get(agents[v], ports[v], `/orders/${i}`);
    const perRound = Math.ceil(cfg.httpN / cfg.rounds);
    for (let r = 0; r < cfg.rounds; r++) {
      for (const v of rotated(r)) {
        for (let i = 0; i < perRound && samples[v].length < cfg.httpN; i++) samples[v].push(await get(agents[v], ports[v], `/orders/${i}`));
      }
      log(`http round ${r + 1}/${cfg.rounds}`);
    }
  } finally {
    for (const v of VARIANTS) agents[v].destroy();
  }
  return samples;
}

async function benchHttp(clients: Clients, pool: Pool): Promise<Record<Variant, number[]>> {
  const apps = {} as Record<Variant, { server: Server; port: number }>;
  for (const v of VARIANTS) apps[v] = await startApp(v, clients, pool);
  try {
    const ports = Object.fromEntries(VARIANTS.map((v) => [v, apps[v].port])) as Record<Variant, number>;
    const child = fork(__filename, ['--load-generator', JSON.stringify(ports)], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return await new Promise<Record<Variant, number[]>>((resolve, reject) => {
      let result: Record<Variant, number[]> | null = null;
      child.on('message', (m) => (result = m as Record<Variant, number[]>));
      child.on('error', reject);
      child.on('exit', (code) => (code === 0 && result ? resolve(result) : reject(new Error(`load generator exited with ${code}`))));
    });
  } finally {
    for (const v of VARIANTS) await new Promise((r) => apps[v].server.close(r));
  }
}

// ---- ORM ----

interface Item {
  id: number;
  name: string;
  qty: number;
  status: string;
}
const ItemSchema = new EntitySchema<Item>({
  name: 'BenchItem',
  tableName: ITEM_TABLE,
  columns: {
    id: { type: Number, primary: true, generated: 'increment' },
    name: { type: String },
    qty: { type: Number },
    status: { type: String },
  },
});

function dataSource(sync: boolean): DataSource {
  return new DataSource({ type: 'postgres', ...cfg.pg, username: cfg.pg.user, entities: [ItemSchema], synchronize: sync, logging: false, poolSize: 2 });
}

async function syncAuditInsert(m: EntityManager, item: Item): Promise<void> {
  const ctx = currentAuditContext();
  await m.query(
    `INSERT INTO ${AUDIT_TABLE} (event_id, occurred_at, object_type, object_id, action, actor_id, after, metadata) VALUES ($1, now(), $2, $3, 'create', $4, $5::jsonb, '{}'::jsonb)`,
    [randomUUID(), ITEM_TABLE, String(item.id), ctx?.actorId ?? null, JSON.stringify(item)],
  );
}

async function benchOrm(clients: Clients): Promise<{ samples: Record<Variant, number[]>; subscriberFailed: number }> {
  const ds = {
    baseline: dataSource(true),
    audit: dataSource(false),
    'audit-kafkajs-inline': dataSource(false),
    'previous-release': dataSource(false),
    'audit-registry': dataSource(false),
    'hooks-only': dataSource(false),
    'sync-pg': dataSource(false),
  } as Record<Variant, DataSource>;
  await ds.baseline.initialize(); // creates the table
  for (const v of VARIANTS) if (!ds[v].isInitialized) await ds[v].initialize();
  const subscriber = attachTypeormAudit(ds.audit, clients.audit);
  const registrySubscriber = attachTypeormAudit(ds['audit-registry'], clients.registry);
  const inlineSubscriber = attachTypeormAudit(ds['audit-kafkajs-inline'], clients.inline);
  if (clients.previous) previous().attachTypeormAudit(ds['previous-release'], clients.previous);
  attachTypeormAudit(ds['hooks-only'], encodeOnly);
  const repos = Object.fromEntries(VARIANTS.map((v) => [v, ds[v].getRepository(ItemSchema)])) as Record<Variant, Repository<Item>>;
  const write = async (v: Variant, i: number): Promise<number> => {
    const t0 = performance.now();
    const item = { name: `item-${i}`, qty: i % 17, status: 'new' };
    if (v === 'sync-pg') {
      await ds[v].transaction(async (m) => {
        const saved = await m.save(ItemSchema, item);
        await syncAuditInsert(m, saved);
      });
    } else {
      await repos[v].save(item);
    }
    return performance.now() - t0;
  };
  const samples = emptySamples();
  try {
    for (const v of VARIANTS) for (let i = 0; i < Math.min(cfg.warmup, 300); i++) await write(v, i);
    const perRound = Math.ceil(cfg.ormN / cfg.rounds);
    for (let r = 0; r < cfg.rounds; r++) {
      for (const v of rotated(r)) for (let i = 0; i < perRound && samples[v].length < cfg.ormN; i++) samples[v].push(await write(v, i));
      log(`orm round ${r + 1}/${cfg.rounds}`);
    }
  } finally {
    await ds.baseline.query(`DROP TABLE IF EXISTS ${ITEM_TABLE}`).catch(() => undefined);
    for (const v of VARIANTS) await ds[v].destroy();
  }
  return { samples, subscriberFailed: subscriber.stats.failed + registrySubscriber.stats.failed + inlineSubscriber.stats.failed };
}

// ---- throughput: one child process per measurement ----

const TP_VARIANTS: readonly Omit<LoadSpec, 'n' | 'warmup' | 'brokers' | 'topic'>[] = [
  { client: 'build-only', thread: 'inline', compression: 'none' },
  { client: 'kafkajs', thread: 'inline', compression: 'gzip' },
  { client: 'kafkajs', thread: 'inline', compression: 'none' },
  { client: 'kafkajs', thread: 'worker', compression: 'gzip' },
  { client: 'platformatic', thread: 'inline', compression: 'gzip' },
  { client: 'platformatic', thread: 'inline', compression: 'none' },
  { client: 'platformatic', thread: 'worker', compression: 'gzip' },
  { client: 'platformatic', thread: 'worker', compression: 'none' },
  { client: 'platformatic', thread: 'worker', compression: 'gzip', batchSize: 500 },
  // Pipelining (opt-in): up to 5 requests in flight, one per partition.
  { client: 'platformatic', thread: 'worker', compression: 'gzip', maxInFlight: 5 },
];
const tpName = (v: Pick<LoadSpec, 'client' | 'thread' | 'compression' | 'batchSize' | 'maxInFlight' | 'producerDir'>) =>
  v.client === 'build-only'
    ? 'build-only'
    : `${v.producerDir ? 'previous-release-' : ''}${v.client}-${v.thread}-${v.compression}${v.batchSize ? `-batch${v.batchSize}` : ''}${v.maxInFlight ? `-inflight${v.maxInFlight}` : ''}`;

/** BENCH_TP_VARIANTS=name,name: only those senders (e.g. an A/B of two over more rounds). */
const TP_ONLY = process.env.BENCH_TP_VARIANTS ? new Set(process.env.BENCH_TP_VARIANTS.split(',').map((v) => v.trim())) : null;

const tpVariants = (): Omit<LoadSpec, 'n' | 'warmup' | 'brokers' | 'topic'>[] =>
  allTpVariants().filter((v) => !TP_ONLY || TP_ONLY.has(tpName(v)));

const allTpVariants = (): Omit<LoadSpec, 'n' | 'warmup' | 'brokers' | 'topic'>[] =>
  PREVIOUS
    ? [
        ...TP_VARIANTS,
        { client: 'kafkajs', thread: 'inline', compression: 'gzip', producerDir: PREVIOUS },
        { client: 'kafkajs', thread: 'inline', compression: 'none', producerDir: PREVIOUS },
        // The previous release's default sender, side by side with this one's.
        { client: 'platformatic', thread: 'worker', compression: 'gzip', producerDir: PREVIOUS },
      ]
    : [...TP_VARIANTS];

function measureInChild(spec: LoadSpec): Promise<LoadResult> {
  const child = fork(__filename, ['--throughput', JSON.stringify(spec)], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise<LoadResult>((resolve, reject) => {
    let result: LoadResult | null = null;
    child.on('message', (m) => (result = m as LoadResult));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 && result ? resolve(result) : reject(new Error(`throughput child ${tpName(spec)} exited with ${code}`))));
  });
}

interface TpSummary {
  eventsPerSec: number;
  cpuUsPerEvent: number;
  appThreadCpuUsPerEvent: number | null;
  peakRssMb: number;
  runs: { eventsPerSec: number; cpuUsPerEvent: number; appThreadCpuUsPerEvent: number | null }[];
}

async function benchThroughput(): Promise<Record<string, TpSummary>> {
  const results: Record<string, LoadResult[]> = {};
  for (let r = 0; r < cfg.tpRounds; r++) {
    for (const v of tpVariants()) {
      const spec: LoadSpec = { ...v, n: cfg.tpN, warmup: Math.min(20_000, cfg.tpN), brokers: cfg.brokers, topic: `bench.producer-tp-${run}-${tpName(v)}-${r}` };
      const res = await measureInChild(spec);
      if (v.client !== 'build-only' && (res.delivered !== cfg.tpN || res.dropped !== 0)) {
        throw new Error(`${tpName(v)}: ${res.delivered} of ${cfg.tpN} delivered, ${res.dropped} dropped`);
      }
      (results[tpName(v)] ??= []).push(res);
      log(`throughput round ${r + 1}/${cfg.tpRounds} ${tpName(v)}: ${res.eventsPerSec} events/s, ${res.cpuUsPerEvent} µs CPU/event (app thread ${res.appThreadCpuUsPerEvent})`);
    }
  }
  const out: Record<string, TpSummary> = {};
  for (const [name, rs] of Object.entries(results)) {
    const app = rs.map((x) => x.appThreadCpuUsPerEvent).filter((x): x is number => x !== null);
    out[name] = {
      eventsPerSec: Math.round(median(rs.map((x) => x.eventsPerSec))),
      cpuUsPerEvent: round(median(rs.map((x) => x.cpuUsPerEvent)), 2),
      appThreadCpuUsPerEvent: app.length > 0 ? round(median(app), 2) : null,
      peakRssMb: Math.max(...rs.map((x) => x.peakRssMb)),
      runs: rs.map((x) => ({ eventsPerSec: x.eventsPerSec, cpuUsPerEvent: x.cpuUsPerEvent, appThreadCpuUsPerEvent: x.appThreadCpuUsPerEvent })),
    };
  }
  return out;
}

async function main(): Promise<void> {
  log(`throughput: ${cfg.tpN} events per measurement, ${tpVariants().length} senders, ${cfg.tpRounds} rounds`);
  const throughput = cfg.parts.has('throughput') ? await benchThroughput() : {};
  const base = { brokers: cfg.brokers, sourceService: 'bench', schemaRegistry: null };
  const client = new AuditClient({ ...base, topic: `bench.producer-overhead-${run}` });
  const inlineClient = new AuditClient({ ...base, topic: `bench.producer-overhead-inline-${run}`, sender: { client: 'kafkajs', thread: 'inline' } });
  const registryClient = new AuditClient({
    brokers: cfg.brokers,
    topic: `bench.producer-overhead-registry-${run}`,
    sourceService: 'bench',
    schemaRegistry: { url: cfg.registryUrl, auth: { kind: 'none' }, subjectStrategy: 'topic', retryMs: 30_000 },
  });
  // The previous release's client with its defaults (kafkajs on the app's thread, its record path).
  const previousClient = PREVIOUS ? new (previous().AuditClient)({ ...base, topic: `bench.producer-overhead-previous-${run}` }) : null;
  const clients: Clients = { audit: client, inline: inlineClient, registry: registryClient, previous: previousClient };
  const all = [client, inlineClient, registryClient, ...(previousClient ? [previousClient] : [])];
  const pool = new Pool({ ...cfg.pg, max: 2 });
  await pool.query(
    `CREATE TABLE ${AUDIT_TABLE} (
      event_id uuid PRIMARY KEY, occurred_at timestamptz NOT NULL, object_type text NOT NULL, object_id text NOT NULL, action text NOT NULL,
      actor_id text, request_id text, ip inet, user_agent text, http_method text, http_path text, http_status smallint,
      before jsonb, after jsonb, metadata jsonb)`,
  );
  // Connect the producers (and register the schema) before measuring.
  for (const c of all) await c.start();
  let http: Record<Variant, number[]>;
  let orm: Awaited<ReturnType<typeof benchOrm>>;
  try {
    log(`HTTP: ${cfg.httpN} requests per variant, ORM: ${cfg.ormN} writes per variant, ${cfg.rounds} rounds`);
    http = cfg.parts.has('http') ? await benchHttp(clients, pool) : emptySamples();
    orm = cfg.parts.has('orm') ? await benchOrm(clients) : { samples: emptySamples(), subscriberFailed: 0 };
  } finally {
    await pool.query(`DROP TABLE IF EXISTS ${AUDIT_TABLE}`).catch(() => undefined);
    await pool.end();
  }
  let delivered = true;
  for (const c of all) delivered = (await c.flush(60_000)) && delivered;
  for (const c of all) await c.close();
  const [stats, inlineStats, registryStats, previousStats] = all.map((c) => c.stats()) as [AuditStats, AuditStats, AuditStats, AuditStats | undefined];

  console.log(`\nProducer throughput (one process, ${cfg.tpN} events, median of ${cfg.tpRounds} interleaved rounds)`);
  console.log(
    table(
      ['sender', 'events/s', 'CPU µs/event (process)', 'CPU µs/event (app thread)', 'peak RSS MB'],
      Object.entries(throughput).map(([name, t]) => [name, String(t.eventsPerSec), t.cpuUsPerEvent.toFixed(2), t.appThreadCpuUsPerEvent?.toFixed(2) ?? '-', String(t.peakRssMb)]),
    ),
  );
  const httpSummary = summarize(http);
  const ormSummary = summarize(orm.samples);
  printTable(`Per audited HTTP request (Express, loopback, sequential, ${cfg.httpN} each)`, httpSummary);
  printTable(`Per ORM write (TypeORM save of a new row, ${cfg.ormN} each)`, ormSummary);
  console.log(
    `\naudit client: ${stats.delivered} events delivered, ${stats.dropped} dropped; kafkajs inline: ${inlineStats.delivered} delivered, ${inlineStats.dropped} dropped; ` +
      `with the registry: ${registryStats.delivered} delivered, ${registryStats.dropped} dropped; flush ${delivered ? 'complete' : 'timed out'}; subscriber failures ${orm.subscriberFailed}`,
  );

  // The issue's targets, from this run's figures.
  const chosen: Partial<TpSummary> = throughput['platformatic-worker-gzip'] ?? {};
  const h = httpSummary;
  const targets = {
    p99AddedVsSyncInsert: {
      value: round(h.audit.addedP99Us / h['sync-pg'].addedP99Us, 3),
      target: '<= 0.20',
      met: h.audit.addedP99Us <= 0.2 * h['sync-pg'].addedP99Us,
    },
    // Today's p50: the previous release when it ran side by side, else kafkajs inline with this release's record path.
    p50VsToday: {
      value: round(h.audit.p50Ms / h[PREVIOUS ? 'previous-release' : 'audit-kafkajs-inline'].p50Ms, 3),
      against: PREVIOUS ? 'previous-release' : 'audit-kafkajs-inline',
      target: '<= 1.00',
      met: h.audit.p50Ms <= h[PREVIOUS ? 'previous-release' : 'audit-kafkajs-inline'].p50Ms,
    },
    appThreadCpuUsPerEventGzip: { value: chosen.appThreadCpuUsPerEvent ?? null, target: '<= 7', met: (chosen.appThreadCpuUsPerEvent ?? Infinity) <= 7 },
    processCpuUsPerEventGzip: { value: chosen.cpuUsPerEvent ?? null, target: '<= 7', met: (chosen.cpuUsPerEvent ?? Infinity) <= 7 },
    eventsPerSecOneProcess: { value: chosen.eventsPerSec ?? null, target: '>= 150000', met: (chosen.eventsPerSec ?? 0) >= 150_000 },
  };
  console.log('\nTargets (issue 13), default sender (platformatic, worker thread, gzip):');
  for (const [k, t] of Object.entries(targets)) console.log(`  ${k}: ${t.value} (${t.target}) ${t.met ? 'met' : 'NOT met'}`);

  const result = {
    benchmark: 'producer-overhead',
    date: new Date().toISOString(),
    node: process.version,
    config: { parts: [...cfg.parts], loadAverage: loadavg(), cpus: cpus().length, httpN: cfg.httpN, ormN: cfg.ormN, rounds: cfg.rounds, warmup: cfg.warmup, tpN: cfg.tpN, tpRounds: cfg.tpRounds, brokers: cfg.brokers, pg: cfg.pg, registryUrl: cfg.registryUrl },
    throughput,
    http: httpSummary,
    orm: ormSummary,
    targets,
    auditClient: stats,
    auditClientKafkajsInline: inlineStats,
    auditClientRegistry: registryStats,
    auditClientPreviousRelease: previousStats ?? null,
  };
  const outDir = join(ROOT, 'bench', 'results');
  mkdirSync(outDir, { recursive: true });
  const name = process.env.BENCH_RESULT_NAME ?? 'producer-overhead.json';
  writeFileSync(join(outDir, name), `${JSON.stringify(result, null, 2)}\n`);
  log(`written bench/results/${name}`);
}

if (process.argv[2] === '--throughput') {
  runLoad(JSON.parse(process.argv[3] ?? '{}') as LoadSpec)
    .then((result) => process.send?.(result, () => process.exit(0)))
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
} else if (process.argv[2] === '--load-generator') {
  loadGenerator(JSON.parse(process.argv[3] ?? '{}') as Record<Variant, number>)
    .then((samples) => process.send?.(samples, () => process.exit(0)))
    .catch((err: unknown) => {
      console.error(err);
      process.exit(1);
    });
} else {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
