import type { Server } from 'node:http';
import { mkdir } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { ConfigError, type Env, startupFields } from '../config/env';
import { startOpsServer } from '../ops/ops-server';
import { type ObjectStore, checkCreateIfAbsent, openStore } from '../storage';
import { type CommittedOffsets, kafkaCommittedOffsets } from '../kafka/committed-offsets';
import { Compactor } from './compactor';
import { Maintainer, type PassRange, type PassReport, UntrustedGenerationError } from './maintainer';
import { type TrustPolicy, resolveTrust } from '../trust/trust-policy';
import { eventIdStorage } from './iceberg/file-columns';
import { IcebergPublisher } from './iceberg/publisher';
import { asTableStore } from './iceberg/table-io';
import { UntrustedClaimError } from './claims';
import { createMaintenanceMetrics, recordPass } from './metrics';
import { loadSigner, signerForService } from '../trust/signing-setup';

export interface MaintenanceServiceOptions {
  /** One pass, then return (cron, tests); otherwise a pass every AUDIT_MAINTAIN_INTERVAL until stopped. */
  once: boolean;
  dryRun: boolean;
  range: PassRange;
  log: Logger;
  say: (line: string) => void;
}

/**
 * `audit-admin maintain`: runs maintenance passes on a schedule, with
 * Prometheus metrics and health on AUDIT_METRICS_PORT. A stop request lets the
 * day being maintained finish (every step is safe to interrupt anyway) and
 * ends the loop.
 */
export class MaintenanceService {
  private readonly store: ObjectStore;
  private readonly metrics = createMaintenanceMetrics();
  private stopping = false;
  private wake: (() => void) | null = null;
  private ops: Server | null = null;
  private ready = false;

  constructor(
    private readonly env: Env,
    private readonly opts: MaintenanceServiceOptions,
  ) {
    this.store = openStore(env);
  }

  /** The last pass's report (--once), or nothing once the service is stopped. */
  async run(): Promise<PassReport | null> {
    const { env, opts } = this;
    // Before anything can fail: the store it maintains, and the group and Kafka whose committed offsets it reads.
    opts.log.info({ ...startupFields(env, 'kafkajs'), dryRun: opts.dryRun, once: opts.once }, 'audit-admin maintain starting');
    await this.store.check();
    // A generation's commit is a create-if-absent PUT: on a store that does not enforce
    // it, two maintainers could both commit one (and a dry run must write nothing).
    if (!opts.dryRun) await checkCreateIfAbsent(this.store, { owner: `maintainer-${process.pid}`, cleanup: true });
    const workDir = join(env.AUDIT_WORK_DIR ?? join(tmpdir(), 'audit-admin'), 'maintain');
    const compactor = await Compactor.create({
      rowGroupRows: env.AUDIT_PARQUET_ROW_GROUP_ROWS,
      compression: env.AUDIT_PARQUET_COMPRESSION,
      zstdLevel: env.AUDIT_PARQUET_ZSTD_LEVEL,
      memoryLimit: env.AUDIT_DUCKDB_MEMORY_LIMIT,
      threads: env.AUDIT_DUCKDB_THREADS,
      spillDir: join(workDir, 'duckdb-spill'),
    });
    const committed: CommittedOffsets = kafkaCommittedOffsets(env, opts.log, 'maintainer');
    // A dry run writes nothing, not even the public key.
    const signer = opts.dryRun ? await loadSigner(env) : await signerForService(env, this.store, 'maintainer');
    const trust = await resolveTrust({ trustedKeysFile: env.AUDIT_TRUSTED_KEYS_FILE, signer, store: this.store, role: 'audit-admin maintain' });
    if (trust.notice) opts.log.warn(trust.notice);
    if (trust.mode !== 'unsigned' && signer === null && !opts.dryRun) {
      // Its own unsigned generations would fail its next pass's check.
      throw new ConfigError('AUDIT_TRUSTED_KEYS_FILE is set but AUDIT_SIGNING_KEY_FILE is not: the maintainer signs the generations it commits');
    }
    const maintainer = new Maintainer({
      store: this.store,
      compactor,
      committed,
      minAgeMs: env.AUDIT_COMPACT_MIN_AGE,
      graceMs: env.AUDIT_COMPACT_GRACE,
      retentionMs: env.AUDIT_RETENTION ?? null,
      concurrency: env.AUDIT_MAINTAIN_CONCURRENCY,
      workDir,
      dryRun: opts.dryRun,
      log: opts.log,
      say: opts.say,
      crashAt: env.AUDIT_TEST_CRASH_AT,
      signer,
      trust,
      owner: `${hostname()}:${process.pid}`,
      iceberg: icebergPublisher(this.store, env, opts, trust, compactor, workDir),
    });
    try {
      if (!opts.once && env.AUDIT_METRICS_PORT > 0) {
        this.ops = await startOpsServer(env.AUDIT_METRICS_PORT, this.metrics.registry, {
          live: () => !this.stopping,
          ready: () => this.ready && !this.stopping,
        });
      }
      this.ready = true;
      let last: PassReport | null = null;
      while (!this.stopping) {
        const t0 = Date.now();
        try {
          last = await maintainer.pass(opts.range, () => this.stopping);
          recordPass(this.metrics, last, (Date.now() - t0) / 1000);
        } catch (err) {
          this.metrics.passes.inc({ outcome: 'failed' });
          if (err instanceof UntrustedGenerationError || err instanceof UntrustedClaimError) {
            // A halt, not a failed pass: no later pass may act on that object, and the operator must look.
            this.ready = false;
            if (err instanceof UntrustedGenerationError) this.metrics.untrusted.inc({ kind: 'generation', code: err.rejected.code });
            else this.metrics.untrusted.inc({ kind: 'claim', code: err.untrusted.code });
            this.metrics.halted.set(1);
            throw err;
          }
          if (opts.once) throw err;
          // The next pass starts over from what the store holds; nothing of this one is half-visible.
          opts.log.error({ err: (err as Error).message }, 'maintenance pass failed; retrying at the next interval');
        }
        if (opts.once) break;
        await this.sleep(env.AUDIT_MAINTAIN_INTERVAL);
      }
      return last;
    } finally {
      compactor.close();
      await committed.close().catch(() => undefined);
      this.store.close();
      await new Promise<void>((resolve) => (this.ops ? this.ops.close(() => resolve()) : resolve()));
    }
  }

  stop(): void {
    this.stopping = true;
    this.wake?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}


/** The Iceberg publisher of a pass, where the store can name its objects for engines (S3, file) and the table is on. */
function icebergPublisher(store: ObjectStore, env: Env, opts: MaintenanceServiceOptions, trust: TrustPolicy, compactor: Compactor, workDir: string): IcebergPublisher | undefined {
  const tableStore = asTableStore(store);
  if (!env.AUDIT_ICEBERG || opts.dryRun || !tableStore) return undefined;
  return new IcebergPublisher({
    eventIdStorage: async (file) => {
      await mkdir(workDir, { recursive: true });
      return eventIdStorage(store, (path) => compactor.eventIdStorage(path), file, workDir);
    },
    store: tableStore,
    trust,
    graceMs: env.AUDIT_COMPACT_GRACE,
    concurrency: env.AUDIT_MAINTAIN_CONCURRENCY,
    log: opts.log,
    say: opts.say,
  });
}
