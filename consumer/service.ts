import { DigestChainWriter } from '../trust/chain-writer';
import { UntrustedObjectError } from '../trust/signed-object';
import { signerForService } from '../trust/signing-setup';
import { type TrustPolicy, resolveTrust } from '../trust/trust-policy';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import { ConfigError, type Env, brokers, dlqTopic, schemaRegistryConfig, startupFields } from '../config/env';
import { CURRENT_SCHEMA_ID } from '../schemas';
import { RegistryClient, RegistrySchemaIds, SchemaRegistryUnavailableError } from '../schema-registry';
import { StorageError, checkCreateIfAbsent, openStore, type ObjectStore } from '../storage';
import { deadLetterPublisher } from './dead-letter';
import { openKafkaSource, type KafkaSource } from './kafka';
import { createMetrics, type SinkMetrics } from './metrics';
import { ExpiredDays } from './expired-days';
import { startOpsServer } from '../ops/ops-server';
import { FETCH_SETTINGS } from './fetch-settings';
import { ParquetWriter } from './parquet-writer';
import { AuditSink } from './sink';
import { TranscodePool } from './staging/transcode-pool';

/** How often the consumer reads the list of days removed by retention again (one LIST). */
const EXPIRED_DAYS_REFRESH_MS = 5 * 60_000;

/** What a failed trust check was about, for the metric and the log line. */
function trustObjectOf(key: string): 'chain-head' | 'cut-claim' | 'object' {
  if (key.startsWith('_digests/chain/')) return 'chain-head';
  if (key.startsWith('_cuts/')) return 'cut-claim';
  return 'object';
}

/** --drain: how often to look, how long without a batch means "read to the end", how often to ask the broker again. */
const DRAIN_CHECK_MS = 100;
const DRAIN_QUIET_MS = FETCH_SETTINGS.maxWaitTimeInMs + 100;
const DRAIN_RECHECK_MS = 1000;

/** A service the consumer needs could not be reached at start-up; the message names it. */
export class DependencyError extends Error {
  constructor(
    readonly dependency: 'kafka' | 'storage',
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'DependencyError';
  }
}

export interface ConsumerOptions {
  /** Exit once every partition of the topic is caught up and stored. */
  drain: boolean;
  log: Logger;
}

/**
 * The audit-consumer service: reads the audit topic in a consumer group and
 * stores it through an AuditSink. `run()` resolves when the service stopped
 * cleanly (shutdown requested, or drained).
 */
export class AuditConsumerService {
  readonly metrics: SinkMetrics;
  private readonly kafka: KafkaSource;
  private readonly store: ObjectStore;
  private writer: ParquetWriter | null = null;
  private sink: AuditSink | null = null;
  private transcodePool: TranscodePool | null = null;
  private ops: Server | null = null;
  private assigned: number[] = [];
  /** Highest offset this process committed per partition: a late cut never moves it back. */
  private readonly committed = new Map<number, bigint>();
  /** Commits the broker refused, retried while draining. */
  private readonly refused = new Map<number, string>();
  private readonly workDir: string;
  private joined = false;
  private lastBatchAt = 0;
  private lastDrainCheck = 0;
  private stopping: Promise<void> | null = null;
  private finished!: (err?: Error) => void;

  constructor(
    private readonly env: Env,
    private readonly opts: ConsumerOptions,
  ) {
    this.metrics = createMetrics();
    this.kafka = openKafkaSource(
      env.AUDIT_KAFKA_CLIENT,
      {
        clientId: env.AUDIT_CLIENT_ID,
        brokers: brokers(env),
        groupId: env.AUDIT_CONSUMER_GROUP,
        sessionTimeoutMs: env.AUDIT_KAFKA_SESSION_TIMEOUT_MS,
        rebalanceTimeoutMs: env.AUDIT_KAFKA_REBALANCE_TIMEOUT_MS,
        partitionsConcurrently: env.AUDIT_PARTITIONS_CONCURRENTLY,
      },
      opts.log,
    );
    this.store = openStore(env);
    this.workDir = env.AUDIT_WORK_DIR ?? join(tmpdir(), 'audit-consumer');
  }

  async run(): Promise<void> {
    const { env, opts } = this;
    const log = opts.log;
    // Before anything can fail: which store, topic, group and Kafka this process is about to use.
    log.info({ ...startupFields(env), drain: opts.drain }, 'audit-consumer starting');
    try {
      await this.store.check();
    } catch (err) {
      const endpoint = env.AUDIT_S3_ENDPOINT && err instanceof StorageError && err.location.startsWith('s3://') ? ` (endpoint ${env.AUDIT_S3_ENDPOINT})` : '';
      throw new DependencyError('storage', `storage unavailable: ${(err as Error).message}${endpoint}`, err);
    }
    // The cut claims are exactly-once only where create-if-absent is exclusive:
    // refuse to write anything to a store that does not enforce it. No cleanup:
    // the consumer has no delete permission; the probe keys are harmless.
    const selfCheck = await checkCreateIfAbsent(this.store, { owner: `${hostname()}:${process.pid}` });
    const signer = await signerForService(env, this.store, 'consumer');
    const trust = await this.resolveTrust(signer);
    // The first line says what this process is and what it trusts, so a halt later reads in context.
    log.info({ trust: trust.mode, keys: trust.keys.ids() }, 'trust policy');
    log.info({ ms: selfCheck.ms, rounds: selfCheck.rounds.length, left: selfCheck.leftBehind.length }, 'store enforces create-if-absent');
    const registry = schemaRegistryConfig(env);
    let schemaIds: RegistrySchemaIds | undefined;
    if (registry) {
      const client = new RegistryClient(registry);
      try {
        await client.probe();
      } catch (err) {
        // A wrong URL or refused credentials stop start-up; a registry that is down does not:
        // records wait for it only when their id is one the consumer has not resolved yet.
        if (!(err instanceof SchemaRegistryUnavailableError)) throw err;
        log.warn({ err: err.message }, 'schema registry unreachable at start-up; new schema ids will wait for it');
      }
      schemaIds = new RegistrySchemaIds(client, registry.retryMs, log);
      log.info({ url: registry.url }, 'schema ids resolved through the schema registry');
    }
    this.writer = await ParquetWriter.create({
      rowGroupRows: env.AUDIT_PARQUET_ROW_GROUP_ROWS,
      compression: env.AUDIT_PARQUET_COMPRESSION,
      zstdLevel: env.AUDIT_PARQUET_ZSTD_LEVEL,
      spillDir: join(this.workDir, 'duckdb-spill'),
      memoryLimit: env.AUDIT_DUCKDB_MEMORY_LIMIT,
      threads: env.AUDIT_DUCKDB_THREADS,
    });
    const topic = env.AUDIT_TOPIC;
    const kafkaDown = (err: unknown) => new DependencyError('kafka', `Kafka unavailable at ${env.AUDIT_KAFKA_BROKERS} (AUDIT_KAFKA_BROKERS): ${(err as Error).message}`, err);
    let missing: string[];
    try {
      await this.kafka.connect();
      missing = await this.kafka.missingTopics([topic]);
    } catch (err) {
      throw kafkaDown(err);
    }
    // Asked before subscribing: subscribing to a mistyped topic on a broker that auto-creates
    // topics would create it (and its dead-letter topic) and drain it "successfully".
    if (missing.length > 0 && !env.AUDIT_CREATE_TOPIC) {
      throw new ConfigError(`topic ${topic} does not exist on ${env.AUDIT_KAFKA_BROKERS} (AUDIT_TOPIC); create it, or set AUDIT_CREATE_TOPIC=true to have the consumer create it`);
    }
    try {
      await this.kafka.ensureTopics([topic, dlqTopic(env)]);
    } catch (err) {
      throw kafkaDown(err);
    }
    // Said once the dependencies are up, so a failed start-up still ends in its one line.
    if (signer) log.info({ keyId: signer.keyId }, 'signing a digest of every stored cut and every cut claim');
    if (trust.notice) log.warn(trust.notice);

    if (env.AUDIT_TRANSCODE_WORKERS > 0) {
      // The sink reads records as the current schema (its RecordDecoder's default): so do the workers.
      this.transcodePool = new TranscodePool(env.AUDIT_TRANSCODE_WORKERS, CURRENT_SCHEMA_ID, schemaIds?.lookup);
    }
    this.sink = new AuditSink({
      transcodePool: this.transcodePool ?? undefined,
      topic,
      schemaIds,
      store: this.store,
      writer: this.writer,
      commit: (partition, offset) => this.commit(partition, offset),
      deadLetter: deadLetterPublisher(this.kafka, topic, dlqTopic(env)),
      log,
      metrics: this.metrics,
      limits: {
        maxRecords: env.AUDIT_FLUSH_MAX_RECORDS,
        maxBytes: env.AUDIT_FLUSH_MAX_BYTES,
        maxAgeMs: env.AUDIT_FLUSH_MAX_AGE_MS,
        memoryMaxBytes: env.AUDIT_MEMORY_MAX_BYTES,
        storeRetryMs: env.AUDIT_STORE_RETRY_MS,
      },
      workDir: this.workDir,
      owner: `${hostname()}:${process.pid}`,
      ...(signer ? { chain: new DigestChainWriter(this.store, signer, topic, `${hostname()}:${process.pid}`, trust.keys), signer } : {}),
      trust,
      // Retention digests exist only on signed stores.
      ...(trust.mode !== 'unsigned' ? { expiredDays: new ExpiredDays({ store: this.store, trust, log, now: Date.now, refreshMs: EXPIRED_DAYS_REFRESH_MS }) } : {}),
      // Storage stayed down past the retry budget: stop without committing; a restart
      // re-reads from the committed offsets and the claims give the same files.
      onError: (err) => void this.stop(err),
    });
    const sink = this.sink;

    if (env.AUDIT_METRICS_PORT > 0) {
      this.ops = await startOpsServer(env.AUDIT_METRICS_PORT, this.metrics.registry, {
        live: () => this.stopping === null,
        ready: () => this.joined && this.stopping === null && this.halted === null,
      });
    }

    const done = new Promise<void>((resolve, reject) => {
      this.finished = (err) => (err ? reject(err) : resolve());
    });

    this.consuming = true;
    await this.kafka.start(topic, {
      onAssigned: (partitions, generation) => {
        this.assigned = partitions;
        this.joined = true;
        log.info({ partitions, generation }, 'joined the consumer group');
        void sink.resetAll();
      },
      onCrash: (err, restarting) => {
        log.error({ err: err.message, restart: restarting }, 'kafka consumer crashed');
        if (!restarting) this.finished(err);
      },
      onBatch: async (batch, heartbeat) => {
        this.lastBatchAt = Date.now();
        if (this.stopping) return false; // paused for shutdown; an in-flight fetch may still deliver
        try {
          await sink.append(batch.partition, batch.messages, heartbeat);
        } catch (err) {
          // Storage or the schema registry stayed down past its retry budget (or a bug): stop
          // without committing; a restart re-reads from the committed offsets and the claims
          // give the same files.
          if (!(err instanceof UntrustedObjectError)) log.error({ err: (err as Error).message, partition: batch.partition }, 'appending a batch failed; stopping');
          void this.stop(err as Error);
          return false;
        }
        if (this.opts.drain && batch.lag === 0n) {
          // Read to the end: store the rest now rather than after the quiet period.
          sink.sealPartition(batch.partition, 'drain').catch((err: Error) => {
            if (err instanceof UntrustedObjectError) void this.stop(err);
            else log.warn({ err: err.message, partition: batch.partition }, 'sealing at the end of the topic failed; retried at drain');
          });
        }
        this.metrics.lag.set({ partition: String(batch.partition) }, Number(batch.lag));
        return true;
      },
    });

    // Draining checks often: its exit waits on this timer once the topic is read.
    const every = opts.drain ? DRAIN_CHECK_MS : Math.min(1000, Math.max(50, env.AUDIT_FLUSH_MAX_AGE_MS / 4));
    const timer = setInterval(() => void this.tick(), every);
    try {
      await done;
    } finally {
      clearInterval(timer);
    }
  }

  private ticking = false;
  /** Set once the consumer is subscribed: before that there is nothing to pause, flush or commit. */
  private consuming = false;

  private async tick(): Promise<void> {
    if (this.ticking || this.stopping || !this.sink) return;
    this.ticking = true;
    try {
      await this.sink.flushDue();
      this.metrics.bufferedRecords.set(this.sink.bufferedRecords);
      this.metrics.bufferedBytes.set(this.sink.bufferedBytes);
      this.metrics.heldBytes.set(this.sink.heldBytes);
      // Quiet for longer than a fetch's wait (FETCH_SETTINGS.maxWaitTimeInMs): nothing more is coming.
      if (
        this.opts.drain &&
        this.joined &&
        Date.now() - this.lastBatchAt > DRAIN_QUIET_MS &&
        Date.now() - this.lastDrainCheck > DRAIN_RECHECK_MS &&
        (await this.caughtUp())
      ) {
        this.opts.log.info('drained: every assigned partition is stored and committed');
        void this.stop();
      }
    } catch (err) {
      if (!(err instanceof UntrustedObjectError)) this.opts.log.error({ err: (err as Error).message }, 'periodic flush failed');
      void this.stop(err as Error);
    } finally {
      this.ticking = false;
    }
  }

  /**
   * Commits a stored cut's next offset. After a rebalance, cuts sealed before it
   * are still stored; their commits are skipped for partitions this member no
   * longer owns, and never move a partition's offset back (the new owner, or a
   * re-read of ours, may already be further).
   */
  private async commit(partition: number, offset: string): Promise<void> {
    const log = this.opts.log;
    const next = BigInt(offset);
    if (!this.assigned.includes(partition)) {
      this.refused.delete(partition);
      log.info({ partition, offset }, 'cut stored for a partition no longer assigned; its new owner commits');
      return;
    }
    if (next <= (this.committed.get(partition) ?? -1n)) return;
    try {
      await this.kafka.commit(partition, offset);
      this.committed.set(partition, next);
      this.refused.delete(partition);
    } catch (err) {
      // The cut is stored and claimed: whoever owns the partition now re-reads it and
      // lands on the same keys, so a refused commit costs a re-read, not a duplicate.
      this.metrics.commitFailures.inc();
      this.refused.set(partition, offset);
      log.warn({ partition, offset, err: (err as Error).message }, 'offset commit refused; the range will be re-read');
    }
  }

  /** Stores what is buffered, then compares committed offsets with the high watermarks. */
  private async caughtUp(): Promise<boolean> {
    const sink = this.sink!;
    this.lastDrainCheck = Date.now();
    if (!(await sink.flushAll('drain'))) return false;
    // A refused commit (a broker hiccup) would otherwise keep the group behind for ever.
    for (const [partition, offset] of [...this.refused]) await this.commit(partition, offset);
    const topic = this.env.AUDIT_TOPIC;
    const [ends, done] = await Promise.all([this.kafka.endOffsets(topic), this.kafka.committedOffsets(topic)]);
    // Every partition, not only ours: a member killed without leaving keeps its partitions
    // until its session times out, and "drained" must not mean "drained except those".
    for (const end of ends) {
      if ((done.get(end.partition) ?? end.low) < end.high) return false;
    }
    return sink.isIdle;
  }

  /** Stops consuming, stores and commits what is buffered, then disconnects. Idempotent. */
  stop(cause?: Error): Promise<void> {
    if (cause instanceof UntrustedObjectError) this.halt(cause);
    if (!this.stopping) this.stopping = this.shutdown(cause);
    return this.stopping;
  }

  /** The object that failed its trust check, once the consumer halted on it. */
  private halted: UntrustedObjectError | null = null;

  /**
   * An object the consumer would act on failed its trust check: one line
   * naming it and why, the metric, /readyz failing. Nothing past what is stored
   * is committed (the failing cut never reaches its commit), and nothing is
   * skipped: after the object is removed, a restart re-reads from the commit.
   */
  private halt(err: UntrustedObjectError): void {
    if (this.halted) return;
    this.halted = err;
    const object = trustObjectOf(err.key);
    this.metrics.trustFailures.inc({ object, reason: err.code });
    this.opts.log.error({ object, key: err.key, reason: err.code, err: err.message }, `${object} failed its trust check; stopping without committing past what is stored`);
  }

  private async resolveTrust(signer: Awaited<ReturnType<typeof signerForService>>): Promise<TrustPolicy> {
    const file = this.env.AUDIT_TRUSTED_KEYS_FILE;
    // Claims and chain heads can only be held to pinned keys if this consumer signs them too.
    if (file && !signer) throw new ConfigError('AUDIT_TRUSTED_KEYS_FILE is set but AUDIT_SIGNING_KEY_FILE is not: the consumer could not sign the cut claims and digests it would then require');
    return resolveTrust({ trustedKeysFile: file, signer, store: this.store, role: 'audit-consumer' });
  }

  private async shutdown(cause?: Error): Promise<void> {
    const log = this.opts.log;
    let failure = cause;
    try {
      // Pause first so no new batch arrives, but keep the group membership: commits need it.
      // A start-up failure stops before consuming: nothing was read, so nothing to store (and
      // the client cannot pause a consumer that never ran).
      if (this.consuming) this.kafka.pause();
      if (this.consuming && this.sink && !cause) {
        const complete = await this.sink.flushAll('shutdown');
        if (!complete) log.warn('a claimed cut was not reached before shutdown; it will be completed on restart');
      }
    } catch (err) {
      failure = failure ?? (err as Error);
      if (err instanceof UntrustedObjectError) this.halt(err);
      else log.error({ err: (err as Error).message }, 'final flush failed; uncommitted records will be re-read on restart');
    }
    await this.kafka.stop();
    await this.transcodePool?.close();
    this.ops?.close();
    this.writer?.close();
    this.store.close();
    this.finished?.(failure);
  }
}
