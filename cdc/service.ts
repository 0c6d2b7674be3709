import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { Client } from 'pg';
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import { brokers, type Env } from '../config/env';
import { startOpsServer } from '../ops/ops-server';
import { AuditClient, platformaticSupported } from '../producer/client';
import { SchemaRegistryRefusedError } from '../schema-registry';
import { formatLsn, parseLsn } from './lsn';
import { loadMapping } from './mapping';
import { createCdcMetrics, type CdcMetrics } from './metrics';
import { ChangeDecoder } from './row-events';
import { primaryKeyColumns, setupCapture, slotLag } from './setup';

export class CdcReplicationError extends Error {
  constructor(message: string, override readonly cause?: unknown) {
    super(message);
    this.name = 'CdcReplicationError';
  }
}

/** A position the slot may be confirmed to once Kafka has acknowledged every event accepted before it. */
interface Checkpoint {
  lsn: bigint;
  /** `stats().accepted` of the audit client when the position was reached. */
  seq: number;
  /** Commit time (µs since the epoch) of the transaction ending there; null for a keepalive position. */
  commitTime: bigint | null;
}

// The socket under pg-logical-replication's connection. The library pauses it the same way in its own
// flow-control mode, which we cannot use: that mode queues data while keepalives overtake it (see README).
type Incoming = { kind: 'data'; msg: Pgoutput.Message } | { kind: 'keepalive'; lsn: string; shouldRespond: boolean };

interface PausableStream {
  pause(): void;
  resume(): void;
}

export interface CdcServiceOptions {
  log: Logger;
  /** Publish with this client (tests); default: one built from the environment. */
  client?: AuditClient;
}

/**
 * audit-cdc: reads the slot (pgoutput), publishes one audit event per row
 * change to Kafka, and confirms a WAL position to PostgreSQL only once Kafka has
 * acknowledged every event before it. A crash therefore loses nothing; the
 * restart re-reads the unconfirmed transactions and re-publishes their events
 * with the same ids (cdc/event-id.ts), which the query side shows once.
 */
export class AuditCdcService {
  private readonly log: Logger;
  private readonly client: AuditClient;
  private readonly admin: Client;
  private readonly repl: LogicalReplicationService;
  private readonly decoder: ChangeDecoder;
  private readonly metrics: CdcMetrics;
  private readonly checkpoints: Checkpoint[] = [];
  private confirmed = 0n;
  private lastSentConfirm = -1n;
  private lastStatusAt = 0;
  private paused = false;
  private started = false;
  private failed: Error | null = null;
  private stopping: Promise<void> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private ops: Server | null = null;
  private sinceCheck = 0;
  private backlog: Incoming[] | null = null;
  private delivered = 0;
  private invalid = 0;
  private counted = { transactions: 0, changes: 0, skipped: 0, malformedContexts: 0 };
  private finish!: (err?: Error) => void;
  private readonly done: Promise<void>;

  constructor(
    private readonly env: Env,
    opts: CdcServiceOptions,
  ) {
    this.log = opts.log;
    const mapping = loadMapping(env.AUDIT_CDC_MAPPING);
    this.client =
      opts.client ??
      new AuditClient({
        brokers: brokers(env),
        topic: env.AUDIT_TOPIC,
        clientId: `${env.AUDIT_CLIENT_ID}-cdc`,
        sourceService: env.AUDIT_CDC_SOURCE_SERVICE,
        // Never drop, never block the synchronous decoding: reading pauses instead at AUDIT_CDC_MAX_BUFFERED.
        onBufferFull: 'block',
        bufferSize: Number.MAX_SAFE_INTEGER,
        // Large requests: a partition has one request in flight at a time (ordering), so its throughput is batch
        // size / broker round trip. 2 MiB of Avro compresses (gzip) far below the broker's 1 MB default message.max.bytes.
        batchSize: 5000,
        batchBytes: 2 * 1024 * 1024,
        logger: this.log,
      });
    this.admin = new Client({ connectionString: env.AUDIT_CDC_DATABASE_URL, application_name: 'audit-cdc' });
    this.repl = new LogicalReplicationService(
      { connectionString: env.AUDIT_CDC_DATABASE_URL, application_name: 'audit-cdc' },
      // Manual confirmation only: the library's timer would confirm what was received, not what Kafka has.
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: false } },
    );
    this.decoder = new ChangeDecoder(
      mapping,
      (input) => void this.client.record(input),
      (commit) => this.checkpoint(parseLsn(commit.endLsn), commit.commitTime),
    );
    this.metrics = createCdcMetrics({
      slotLagBytes: async () => (this.admin ? ((await slotLag(this.admin, env.AUDIT_CDC_SLOT).catch(() => null))?.bytes ?? null) : null),
      lagSeconds: () => this.lagSeconds(),
      buffered: () => this.client.stats().queued,
    });
    this.done = new Promise<void>((resolve, reject) => {
      this.finish = (err) => (err ? reject(err) : resolve());
    });
  }

  /** Runs until `stop()` (resolves) or a failure (rejects; nothing unacknowledged was confirmed). */
  async run(): Promise<void> {
    const env = this.env;
    // Before anything can fail: what this process reads and where it publishes.
    this.log.info(
      { database: withoutPassword(env.AUDIT_CDC_DATABASE_URL), slot: env.AUDIT_CDC_SLOT, publication: env.AUDIT_CDC_PUBLICATION, topic: env.AUDIT_TOPIC, kafka: `${platformaticSupported() ? 'platformatic' : 'kafkajs'} ${env.AUDIT_KAFKA_BROKERS}` },
      'audit-cdc starting',
    );
    try {
      await this.admin.connect();
      const setup = await setupCapture(this.admin, {
        slot: env.AUDIT_CDC_SLOT,
        publication: env.AUDIT_CDC_PUBLICATION,
        create: env.AUDIT_CDC_CREATE,
        tables: (env.AUDIT_CDC_PUBLICATION_TABLES ?? '').split(',').map((t) => t.trim()).filter(Boolean),
        roleTriggers: env.AUDIT_CDC_ROLE_TRIGGERS,
        mapping: loadMapping(env.AUDIT_CDC_MAPPING),
      });
      this.log.info({ slot: env.AUDIT_CDC_SLOT, publication: env.AUDIT_CDC_PUBLICATION, ...setup }, 'capture set up');
      // Stopped (SIGTERM) during setup: do not start reading.
      if (this.stopping) return this.done;
      if (env.AUDIT_METRICS_PORT > 0) {
        this.ops = await startOpsServer(env.AUDIT_METRICS_PORT, this.metrics.registry, {
          live: () => this.failed === null,
          // Reading starts only once the Kafka sender is connected (below), so ready means both.
          ready: () => this.started && this.failed === null,
        });
      }
      // Connected before the first change is read: started on the first event instead, the sender's
      // connection (and the registry's schema id) delayed that change by 1.4-2 s after COMMIT while
      // /readyz already said ready.
      await this.connectKafka();
      if (this.stopping) return this.done;
    } catch (err) {
      // A SIGTERM during setup closes the connections under it: that is a stop, not a failure.
      if (this.stopping) return this.done;
      await this.shutdown();
      throw err;
    }

    this.repl.on('data', (_lsn: string, msg: Pgoutput.Message) => this.receive({ kind: 'data', msg }));
    this.repl.on('heartbeat', (lsn: string, _ts: number, shouldRespond: boolean) => this.receive({ kind: 'keepalive', lsn, shouldRespond }));
    this.repl.on('error', (err: Error) => this.fail(new CdcReplicationError(`replication: ${err.message}`, err)));
    this.repl.on('start', () => {
      this.started = true;
      this.log.info({ slot: env.AUDIT_CDC_SLOT }, 'replication started');
    });

    this.timer = setInterval(() => this.advance(false), env.AUDIT_CDC_ACK_INTERVAL_MS);
    const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [env.AUDIT_CDC_PUBLICATION], messages: true });
    this.repl.subscribe(plugin, env.AUDIT_CDC_SLOT).then(
      () => {
        if (!this.stopping) this.fail(new CdcReplicationError('replication stream ended'));
      },
      (err: Error) => this.fail(new CdcReplicationError(`replication: ${err.message}`, err)),
    );
    return this.done;
  }

  /** Connects the Kafka sender, retrying while Kafka is down (said once per attempt); a schema the registry refuses fails start-up. */
  private async connectKafka(): Promise<void> {
    for (let attempt = 1, waitMs = 500; !this.stopping; attempt++, waitMs = Math.min(waitMs * 2, 10_000)) {
      try {
        await this.client.start();
        this.log.info({ attempts: attempt }, 'Kafka sender connected');
        return;
      } catch (err) {
        if (err instanceof SchemaRegistryRefusedError) throw err;
        this.log.warn({ err: (err as Error).message, attempt, waitMs, brokers: this.env.AUDIT_KAFKA_BROKERS }, 'connecting the Kafka sender failed; retrying before reading changes');
        await new Promise((resolve) => setTimeout(resolve, waitMs));
      }
    }
  }

  /**
   * Everything from the stream, in stream order. A relation message makes the
   * decoder wait for a catalog lookup (the table's primary key); what arrives
   * meanwhile waits in `backlog`, keepalives included, so order is kept.
   */
  private receive(item: Incoming): void {
    if (this.failed) return;
    if (this.backlog) {
      this.backlog.push(item);
      return;
    }
    try {
      if (item.kind === 'keepalive') return this.keepalive(item.lsn, item.shouldRespond);
      const msg = item.msg;
      if (msg.tag === 'relation') {
        this.backlog = [];
        this.stream()?.pause();
        primaryKeyColumns(this.admin, msg.relationOid).then(
          (columns) => {
            this.decoder.primaryKeys.set(msg.relationOid, columns);
            const waiting = this.backlog ?? [];
            this.backlog = null;
            if (!this.paused) this.stream()?.resume();
            for (const next of waiting) this.receive(next);
          },
          (err: Error) => this.fail(new CdcReplicationError(`reading the primary key of ${msg.schema}.${msg.name}: ${err.message}`, err)),
        );
        return;
      }
      this.decoder.handle(msg);
      if (++this.sinceCheck >= 256) {
        this.sinceCheck = 0;
        this.applyBackpressure();
      }
    } catch (err) {
      this.fail(new CdcReplicationError(`decoding: ${(err as Error).message}`, err));
    }
  }

  private keepalive(lsn: string, shouldRespond: boolean): void {
    // Keepalives arrive in stream order: outside a transaction, everything up to the
    // server's position has been read, so it can be confirmed once what came before is in Kafka.
    if (!this.decoder.inTransaction) {
      const at = parseLsn(lsn);
      const last = this.checkpoints[this.checkpoints.length - 1];
      if (at > (last?.lsn ?? this.confirmed)) this.checkpoint(at, null);
    }
    if (shouldRespond) this.advance(true);
  }

  /**
   * A position reached once every event accepted so far is delivered. Positions
   * waiting for the same events collapse into one, so transactions that made no
   * events (skipped tables) take no memory while Kafka is down.
   */
  private checkpoint(lsn: bigint, commitTime: bigint | null): void {
    const seq = this.client.stats().accepted;
    const last = this.checkpoints[this.checkpoints.length - 1];
    if (last && last.seq === seq) {
      last.lsn = lsn;
      last.commitTime ??= commitTime; // the oldest commit waiting, for the lag
    } else {
      this.checkpoints.push({ lsn, seq, commitTime });
    }
  }

  /** Confirms to PostgreSQL every position whose events Kafka has acknowledged; sends a status at least every 10 s. */
  private advance(force: boolean): void {
    if (this.failed) return;
    const stats = this.client.stats();
    // An event Kafka refused for its size even alone is dropped by the client, whose delivered
    // prefix then moves past it: confirming would lose that change. Failing confirms nothing
    // more; the change is read again on restart (and refused again until the topic takes it).
    if (stats.refused > 0) {
      this.fail(
        new CdcReplicationError(
          `Kafka refused ${stats.refused} change event(s) for their size even alone (over the topic's max.message.bytes): raise it to at least the producer's 900 KB; the slot is not confirmed past them`,
        ),
      );
      return;
    }
    if (stats.delivered > this.delivered) this.metrics.delivered.inc(stats.delivered - this.delivered);
    if (stats.invalid > this.invalid) this.metrics.invalid.inc(stats.invalid - this.invalid);
    this.delivered = stats.delivered;
    this.invalid = stats.invalid;
    const d = this.decoder.stats;
    this.metrics.transactions.inc(d.transactions - this.counted.transactions);
    this.metrics.changes.inc(d.changes - this.counted.changes);
    this.metrics.skipped.inc(d.skipped - this.counted.skipped);
    this.counted = { ...d };
    let n = 0;
    // The prefix, not the count: with several requests in flight, later events can be acknowledged before earlier ones.
    while (n < this.checkpoints.length && this.checkpoints[n]!.seq <= stats.deliveredPrefix) n++;
    if (n > 0) {
      const reached = this.checkpoints[n - 1]!.lsn;
      if (reached > this.confirmed) this.confirmed = reached;
      this.checkpoints.splice(0, n);
    }
    this.applyBackpressure(stats.queued);
    const now = Date.now();
    if (this.confirmed > 0n && (force || this.confirmed !== this.lastSentConfirm || now - this.lastStatusAt > 10_000)) {
      void this.repl.acknowledge(formatLsn(this.confirmed), false).catch((err: Error) => this.fail(new CdcReplicationError(`confirming: ${err.message}`, err)));
      this.lastSentConfirm = this.confirmed;
      this.lastStatusAt = now;
      this.metrics.confirmedLsn.set(Number(this.confirmed));
    }
  }

  private applyBackpressure(queued = this.client.stats().queued): void {
    const max = this.env.AUDIT_CDC_MAX_BUFFERED;
    const shouldPause = queued >= max || (this.paused && queued > max / 2);
    if (shouldPause === this.paused) return;
    const stream = this.stream();
    if (!stream) return;
    if (shouldPause) stream.pause();
    else if (!this.backlog) stream.resume();
    this.paused = shouldPause;
    this.metrics.paused.set(shouldPause ? 1 : 0);
  }

  private stream(): PausableStream | null {
    return (this.repl as unknown as { _connection?: { stream?: PausableStream } | null })._connection?.stream ?? null;
  }

  private lagSeconds(): number {
    const oldest = this.checkpoints.find((c) => c.commitTime !== null);
    return oldest ? Math.max(0, Date.now() / 1000 - Number(oldest.commitTime) / 1e6) : 0;
  }

  /** Clean shutdown: stop reading, wait for Kafka (up to `timeoutMs`), confirm what it acknowledged, disconnect. */
  stop(timeoutMs = 30_000): Promise<void> {
    this.stopping ??= (async () => {
      this.stream()?.pause();
      const flushed = await this.client.flush(timeoutMs);
      if (!flushed) this.log.warn({ queued: this.client.stats().queued }, 'Kafka did not acknowledge everything before shutdown; the rest is replayed on restart');
      this.advance(true);
      await this.shutdown();
      this.log.info({ confirmed: formatLsn(this.confirmed) }, 'stopped');
      this.finish();
    })();
    return this.stopping;
  }

  private fail(err: Error): void {
    if (this.failed || this.stopping) return;
    this.failed = err;
    this.log.error({ err: err.message }, 'audit-cdc failed: nothing after the confirmed position is lost, it is replayed on restart');
    this.stopping = this.shutdown().then(
      () => this.finish(err),
      () => this.finish(err),
    );
  }

  private async shutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.repl.destroy().catch(() => undefined);
    await this.client.close(5_000).catch(() => undefined);
    await this.admin.end().catch(() => undefined);
    if (this.ops) await new Promise<void>((r) => this.ops!.close(() => r()));
  }

  /** For tests and the benchmark: the confirmed position and counters. */
  status() {
    return { started: this.started, confirmed: formatLsn(this.confirmed), decoder: { ...this.decoder.stats }, kafka: this.client.stats(), paused: this.paused };
  }
}

/** The database URL as a log line may show it: the password replaced. */
function withoutPassword(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgresql://(unparsable URL)';
  }
}
