import type { Logger } from 'pino';
import {
  type AuditRecord,
  AuditDecodeError,
  InvalidRecordError,
  RecordDecoder,
  type RegistryLookup,
  assertValidRecord,
} from '../schemas';
import type { ObjectStore } from '../storage';
import { DigestChainError, type DigestChainWriter } from '../trust/chain-writer';
import { UntrustedObjectError } from '../trust/signed-object';
import type { DigestSigner } from '../trust/signer';
import type { TrustPolicy } from '../trust/trust-policy';
import { CutClaims } from './cut-claims';
import { type FlushReason, dueReason, fairShareReached, reachedClaim, sealable, sizeDue } from './cut-policy';
import { CutQueues, type SealedCut } from './cut-queue';
import { CutWriter } from './cut-writer';
import type { SinkMetrics } from './metrics';
import type { ExpiredDays } from './expired-days';
import { PartitionBuffer } from './partition-buffer';
import type { ParquetWriter } from './parquet-writer';
import { AvroStagingTranscoder } from './staging/avro-transcoder';
import { type StagedRow, stageRow } from './staging/staged-row';
import type { TranscodedBatch, TranscodePool } from './staging/transcode-pool';
import { withRetry } from './retry';

export interface InboundMessage {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  headers?: Record<string, unknown>;
}

export interface DeadLetter {
  partition: number;
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  error: Error;
}

export interface SinkLimits {
  maxRecords: number;
  maxBytes: number;
  maxAgeMs: number;
  memoryMaxBytes: number;
  /** How long storage operations are retried (with backoff) before the sink gives up. */
  storeRetryMs: number;
}

/** Registry ids, resolved before decoding (schema-registry/schema-ids.ts). */
export interface SchemaIdSource {
  lookup: RegistryLookup;
  /** Resolves an id; throws when the registry stays unavailable past its budget (the consumer then stops). */
  ensure(id: number, heartbeat?: () => Promise<void>): Promise<void>;
}

export interface SinkDeps {
  topic: string;
  /** With a schema registry: Confluent ids are resolved through it. Without: they are legacy version ids. */
  schemaIds?: SchemaIdSource;
  store: ObjectStore;
  writer: ParquetWriter;
  /** Commits `nextOffset` for a partition; throws when the commit was refused (e.g. after a rebalance). */
  commit: (partition: number, nextOffset: string) => Promise<void>;
  deadLetter: (letter: DeadLetter) => Promise<void>;
  log: Logger;
  metrics: SinkMetrics;
  limits: SinkLimits;
  workDir: string;
  /** Identifies this process in cut claims, for operators reading them. */
  owner: string;
  /** Signed digests of every stored cut (trust/); absent = digests off. */
  chain?: DigestChainWriter;
  /** How existing cut claims are opened (trust/trust-policy.ts); absent = unsigned mode. */
  trust?: TrustPolicy;
  /** Seals the cut claims (with `chain`, the same signer). */
  signer?: DigestSigner | null;
  /** Days removed by retention (signed digests): their late events are dead-lettered (consumer/expired-days.ts). */
  expiredDays?: ExpiredDays;
  /** Transcodes batches on worker threads; without it, on this thread. */
  transcodePool?: TranscodePool;
  now?: () => number;
  /**
   * Called when a sealed cut could not be stored or committed (after the retry
   * budget): the partition stops committing; the caller should stop the consumer
   * so that its records are re-read from the last commit.
   */
  onError?: (err: Error, partition: number) => void;
}

/** Smaller batches are transcoded in-thread: a round trip to a worker costs more than it saves. */
const MIN_WORKER_BATCH = 64;

/**
 * Turns Kafka messages into Parquet files and decides when offsets may be committed.
 *
 * The cut: a partition's buffer is cut into the offset range [first, last],
 * whose end is fixed for every group member by a claim (consumer/cut-claims.ts)
 * before anything is written, so a replay writes the same keys. The cut's files
 * are written and uploaded (consumer/cut-writer.ts), its signed digest appended
 * (trust/chain-writer.ts) and only then the offset after `last` committed, in
 * partition order (consumer/cut-queue.ts). When to cut is consumer/cut-policy.ts.
 *
 * Pipelining: a claimed cut is sealed and queued, and reading goes on while it
 * is stored (DuckDB and the upload use other threads than decoding). Sealed
 * rows stay in memory until committed and count against the memory limit; when
 * it is reached, reading waits for the queues.
 *
 * Work on one partition's open buffer is serialized (Kafka batches, timers and
 * shutdown never interleave on it); partitions proceed independently.
 */
export class AuditSink {
  private readonly buffers = new Map<number, PartitionBuffer>();
  private readonly queues: CutQueues;
  private readonly claims: CutClaims;
  private readonly cutWriter: CutWriter;
  private readonly decoder: RecordDecoder;
  private readonly transcoder: AvroStagingTranscoder;
  private readonly chains = new Map<number, Promise<unknown>>();
  /** Heartbeats of the Kafka batches being appended, by partition: any of them keeps the member alive. */
  private readonly heartbeats = new Map<number, () => Promise<void>>();
  /** Partitions with a memory-bound seal scheduled on their queue. */
  private readonly memorySeals = new Set<number>();

  constructor(private readonly deps: SinkDeps) {
    this.decoder = new RecordDecoder(undefined, deps.schemaIds?.lookup);
    this.transcoder = new AvroStagingTranscoder(this.decoder.readerSchemaId, deps.schemaIds?.lookup);
    const retry = <T>(what: string, op: () => Promise<T>) => this.retry(what, op);
    this.claims = new CutClaims({
      topic: deps.topic,
      store: deps.store,
      owner: deps.owner,
      log: deps.log,
      now: () => this.now(),
      retry,
      onAdopted: () => deps.metrics.adoptedCuts.inc(),
      ...(deps.trust ? { policy: deps.trust } : {}),
      signer: deps.signer ?? null,
      ...(deps.chain ? { storedThrough: (p: number) => deps.chain!.storedThrough(p) } : {}),
    });
    this.cutWriter = new CutWriter({ topic: deps.topic, store: deps.store, writer: deps.writer, workDir: deps.workDir, retry, digests: deps.chain !== undefined, signer: deps.signer ?? null, owner: deps.owner });
    this.queues = new CutQueues({
      storeCut: (cut) => this.storeCut(cut),
      heartbeat: () => this.heartbeat(),
      onFailure: (err, partition) => {
        // A failed trust check is said once, by whoever stops the consumer.
        if (!(err instanceof UntrustedObjectError)) this.deps.log.error({ partition, err: err.message }, 'storing a cut failed; this partition commits nothing more');
        this.deps.onError?.(err, partition);
      },
    });
  }

  private now(): number {
    return this.deps.now?.() ?? Date.now();
  }

  private serialize<T>(partition: number, op: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(partition) ?? Promise.resolve();
    const next = prev.then(op, op);
    this.chains.set(partition, next.catch(() => undefined));
    return next;
  }

  private buffer(partition: number): PartitionBuffer {
    let b = this.buffers.get(partition);
    if (!b) {
      b = new PartitionBuffer(partition);
      this.buffers.set(partition, b);
    }
    return b;
  }

  /** Encoded bytes read and not yet committed: open buffers plus sealed cuts. */
  get bufferedBytes(): number {
    let total = this.queues.bytes;
    for (const b of this.buffers.values()) total += b.bytes;
    return total;
  }

  /** Memory held by what was read and not yet committed (see heldBytes): what AUDIT_MEMORY_MAX_BYTES bounds. */
  get heldBytes(): number {
    let total = this.queues.held;
    for (const b of this.buffers.values()) total += b.held;
    return total;
  }

  get bufferedRecords(): number {
    let total = this.queues.rows;
    for (const b of this.buffers.values()) total += b.rows.length;
    return total;
  }

  /** True when nothing read is waiting to be stored and committed. */
  get isIdle(): boolean {
    for (const b of this.buffers.values()) if (!b.isEmpty) return false;
    return this.queues.isIdle;
  }

  /** Adds a fetched batch of one partition, then seals whatever is due. */
  append(partition: number, messages: readonly InboundMessage[], heartbeat?: () => Promise<void>): Promise<void> {
    return this.serialize(partition, async () => {
      if (heartbeat) this.heartbeats.set(partition, heartbeat);
      try {
        await this.appendNow(partition, messages);
      } finally {
        this.heartbeats.delete(partition);
      }
    });
  }

  private async appendNow(partition: number, messages: readonly InboundMessage[]): Promise<void> {
    const buf = this.buffer(partition);
    const ids = this.deps.schemaIds;
    const pool = this.deps.transcodePool;
    let staged: TranscodedBatch | null = null;
    if (pool !== undefined && messages.length >= MIN_WORKER_BATCH) {
      // The worker sees the ids resolved when the batch is sent: resolve the new ones first.
      if (ids !== undefined) {
        for (const m of messages) {
          const v = m.value;
          if (v !== null && v.length >= 5 && v[0] === 0 && ids.lookup(v.readInt32BE(1)) === undefined) {
            await ids.ensure(v.readInt32BE(1), this.heartbeats.get(partition));
          }
        }
      }
      staged = await pool.transcode(partition, messages);
    }
    const expiredDays = this.deps.expiredDays;
    if (expiredDays) await this.retry('read retention digests', () => expiredDays.refreshIfStale());
    const now = this.now();
    let consumed = 0;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      const offset = BigInt(m.offset);
      if (!buf.accepts(offset)) continue;
      const v = m.value;
      // A registry id met for the first time: resolved (waiting out an outage) before decoding.
      if (ids !== undefined && v !== null && v.length >= 5 && v[0] === 0 && ids.lookup(v.readInt32BE(1)) === undefined) {
        await ids.ensure(v.readInt32BE(1), this.heartbeats.get(partition));
      }
      let row = staged !== null ? staged.row(i, m) : this.transcoder.transcode(m.value, partition, m.offset, buf.arena);
      if (row === null) {
        // The general path: anything unusual is decoded with avsc, validated, and dead-lettered when bad.
        try {
          const record: AuditRecord = this.decoder.decode(m.value);
          assertValidRecord(record);
          row = stageRowOrThrow({ record, partition, offset: m.offset, size: m.value?.length ?? 0 });
        } catch (err) {
          if (!(err instanceof AuditDecodeError || err instanceof InvalidRecordError)) throw err;
          await this.sendToDeadLetters(buf, m, err, now);
          continue;
        }
        buf.arena.adopt(row);
      }
      const expired = this.deps.expiredDays?.expiredDayOf(row.occurredAt) ?? null;
      if (expired !== null) {
        await this.sendToDeadLetters(buf, m, this.deps.expiredDays!.error(expired), now);
        this.deps.metrics.expiredDayLetters.inc();
        continue;
      }
      buf.add(row, offset, now);
      consumed++;
      // Size limits and claimed cuts are honoured at the exact message, not at batch end.
      if (sizeDue(buf, this.deps.limits) || (buf.mustReach !== null && offset >= buf.mustReach)) await this.cutDue(buf);
    }
    this.deps.metrics.consumed.inc(consumed);
    await this.cutDue(buf);
    if (this.writerWaits(buf)) await this.seal(buf, 'writer-idle');
    await this.enforceMemoryBound(buf);
  }

  /** A record that is not stored: to the dead-letter topic with its reason, its offset accounted for in the cut. */
  private async sendToDeadLetters(buf: PartitionBuffer, m: InboundMessage, error: Error, now: number): Promise<void> {
    await this.deps.deadLetter({ partition: buf.partition, offset: m.offset, key: m.key, value: m.value, error });
    this.deps.metrics.deadLetters.inc();
    this.deps.log.warn({ partition: buf.partition, offset: m.offset, err: error.message }, 'record sent to the dead-letter topic');
    buf.addDeadLetter(BigInt(m.offset), now);
  }

  /** The writer has a free slot, nothing of this partition is queued for it, and its buffer holds a fair share of memory. */
  private writerWaits(buf: PartitionBuffer): boolean {
    return this.mayCut(buf) && this.deps.writer.hasFreeSlot && fairShareReached(buf, this.deps.limits.memoryMaxBytes, this.buffers.size);
  }

  private async cutDue(buf: PartitionBuffer): Promise<void> {
    // A claimed cut may be reached in the middle of a batch, and the rest may be due again.
    for (;;) {
      const reason = dueReason(buf, this.deps.limits, this.now());
      if (reason === null && !reachedClaim(buf)) return;
      const before = buf.firstOffset;
      await this.seal(buf, reason ?? 'records');
      if (buf.firstOffset === before) return;
    }
  }

  /**
   * Keeps everything read and not yet committed under the memory limit. This
   * partition's own buffer is sealed here; other partitions' buffers are sealed
   * through their own queues without waiting (waiting on another partition's
   * lock while holding this one's could deadlock, two partitions each waiting
   * for the other); then reading waits for sealed cuts to be stored. A buffer
   * that must first reach an adopted claim cannot be sealed: it is skipped.
   *
   * Sealing frees nothing by itself: it gives a partition's store loop work.
   * So while a sealed cut is on its way to storage, only buffers holding a fair
   * share of the budget are sealed; a smaller one keeps filling while reading
   * waits for that store. Otherwise, once the writer is the bottleneck, a
   * partition whose last cut had just been committed was cut at its next batch,
   * and files shrank to one batch each (~1k rows, each paying a COPY, two
   * uploads and a claim), which made the writer slower still. With nothing on
   * its way to storage, the largest buffer is sealed whatever its size.
   */
  private async enforceMemoryBound(current: PartitionBuffer): Promise<void> {
    const limit = this.deps.limits.memoryMaxBytes;
    while (this.heldBytes > limit) {
      const storing = this.queues.heaviest() !== null;
      if (this.sealsUnderPressure(current, storing)) {
        const before = current.firstOffset;
        await this.seal(current, 'memory');
        if (current.firstOffset !== before) continue;
      }
      for (const other of this.buffers.values()) {
        if (other === current || this.memorySeals.has(other.partition) || !this.sealsUnderPressure(other, storing)) continue;
        this.memorySeals.add(other.partition);
        void this.serialize(other.partition, async () => {
          if (this.buffers.get(other.partition) === other && this.mayCut(other) && this.heldBytes > limit) {
            await this.seal(other, 'memory');
          }
        })
          .catch((err: Error) => {
            if (err instanceof UntrustedObjectError) this.deps.onError?.(err, other.partition);
            else this.deps.log.error({ err: err.message, partition: other.partition }, 'memory-bound seal failed');
          })
          .finally(() => this.memorySeals.delete(other.partition));
      }
      // Nothing stored can free memory: the rest is buffers waiting for more records.
      const heaviest = this.queues.heaviest();
      if (heaviest === null) return;
      // Wait for the partition holding the most sealed memory to store a cut (no lock is held by its loop).
      await this.queues.wait(heaviest, true);
    }
  }

  /** Is the buffer sealed to bring memory down: a fair share of it, or, with no cut on its way to storage, the largest? */
  private sealsUnderPressure(buf: PartitionBuffer, storing: boolean): boolean {
    if (!this.mayCut(buf)) return false;
    return fairShareReached(buf, this.deps.limits.memoryMaxBytes, this.buffers.size) || (!storing && this.isLargestCuttable(buf));
  }

  /** Is no other cuttable buffer larger than this one? */
  private isLargestCuttable(buf: PartitionBuffer): boolean {
    for (const other of this.buffers.values()) if (other !== buf && other.held > buf.held && this.mayCut(other)) return false;
    return true;
  }

  /** Can the buffer be cut now, with no earlier cut of its partition still waiting to be stored? */
  private mayCut(buf: PartitionBuffer): boolean {
    return sealable(buf) && this.queues.pending(buf.partition) === 0;
  }

  /** Waits until every sealed cut is stored and committed; rethrows (once) a queue's failure. */
  settle(): Promise<void> {
    return this.queues.settle();
  }

  /** Seals partitions whose age limit passed; called on a timer so idle partitions still get stored. */
  async flushDue(): Promise<void> {
    await Promise.all([...this.buffers.values()].map((buf) => this.serialize(buf.partition, () => this.cutDue(buf))));
  }

  /**
   * Seals what one partition has buffered (it was read to the end, in --drain),
   * without waiting for the store: the last files start while other partitions
   * are still read.
   */
  async sealPartition(partition: number, reason: FlushReason): Promise<void> {
    await this.sealAll(partition, reason);
  }

  /** Seals a partition's whole buffer; false if a claimed cut is still unreached. */
  private sealAll(partition: number, reason: FlushReason): Promise<boolean> {
    return this.serialize(partition, async () => {
      const buf = this.buffers.get(partition);
      while (buf && !buf.isEmpty) {
        const before = buf.firstOffset;
        await this.seal(buf, reason);
        if (buf.firstOffset === before) return false;
      }
      return true;
    });
  }

  /**
   * Seals everything buffered and waits until it is stored and committed
   * (shutdown, drain). Returns false if a claimed cut is still unreached.
   */
  async flushAll(reason: FlushReason): Promise<boolean> {
    let complete = true;
    // A buffer created meanwhile (a batch after a rebalance) is sealed in the next round.
    for (let round = 0; round < 3 && [...this.buffers.values()].some((b) => !b.isEmpty); round++) {
      // Every partition finishes sealing before a failure of one is reported (a halt on an untrusted
      // claim): otherwise the others' seals and stores went on after the caller had stopped waiting.
      const sealed = await Promise.allSettled([...this.buffers.keys()].map((p) => this.sealAll(p, reason)));
      const failed = sealed.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) {
        await this.settle().catch((err: Error) => this.deps.log.error({ err: err.message }, 'storing a cut failed while stopping on an earlier failure'));
        throw failed.reason;
      }
      const done = sealed.map((r) => (r as PromiseFulfilledResult<boolean>).value);
      complete = done.every(Boolean);
      if (!complete) break;
    }
    await this.settle();
    return complete && [...this.buffers.values()].every((b) => b.isEmpty);
  }

  /**
   * After a rebalance the group re-reads every assigned partition from its
   * committed offset, so open buffers are dropped (they will come again).
   * Sealed cuts are still stored: their claims make a re-read land on the same keys.
   */
  async resetAll(): Promise<void> {
    let dropped = 0;
    await Promise.all(
      [...this.buffers.keys()].map((p) =>
        this.serialize(p, async () => {
          dropped += this.buffers.get(p)?.rows.length ?? 0;
          this.buffers.delete(p);
        }),
      ),
    );
    // Another member may have appended to the chains of partitions this one gets back.
    this.deps.chain?.reset();
    if (dropped > 0) this.deps.log.info({ dropped }, 'rebalance: dropped uncommitted buffers; they will be re-read');
  }

  /** Claims the buffer's next cut and queues it for storage; its rows stay in memory until committed. */
  private async seal(buf: PartitionBuffer, reason: FlushReason): Promise<void> {
    const sealedAt = this.now();
    const first = buf.firstOffset!;
    const proposed = buf.mustReach ?? buf.lastOffset!;
    if (proposed > buf.lastOffset!) return;
    const last = await this.claims.claim(buf.partition, first, proposed);
    if (last > buf.lastOffset!) {
      buf.mustReach = last;
      return;
    }
    const taken = buf.takeThrough(last);
    this.queues.push({ ...taken, partition: buf.partition, first, last, reason, sealedAt });
  }

  /** Stores a sealed cut (files, then its digest), then commits the offset after it. */
  private async storeCut(cut: SealedCut): Promise<void> {
    const chain = this.deps.chain;
    const next = (cut.last + 1n).toString();
    let { rows, deadLetters, first } = cut;
    if (chain) {
      const through = await this.retry('read digests', () => chain.storedThrough(cut.partition));
      if (through !== null && through >= cut.last) {
        // Stored whole before a crash, or by another member: only the commit is missing.
        await this.deps.commit(cut.partition, next);
        this.deps.log.info({ partition: cut.partition, first: cut.first.toString(), last: cut.last.toString() }, 'cut already stored and digested; committed');
        return;
      }
      if (through !== null && through >= cut.first) {
        // A replay reaching past what is stored: store only the offsets after it.
        rows = rows.filter((r) => BigInt(r.offset) > through);
        deadLetters = deadLetters.filter((o) => o > through);
        first = through + 1n;
      }
    }
    const { files, bytes } = await this.cutWriter.write(cut.partition, rows);
    if (chain) {
      const rowOffsets = rows.map((r) => BigInt(r.offset));
      await this.retry('append digest', () => chain.append({ partition: cut.partition, first, last: cut.last, files, rowOffsets, deadLetters }));
    }
    await this.deps.commit(cut.partition, next);
    const ms = this.now() - cut.sealedAt;
    this.deps.metrics.flushSeconds.observe({ reason: cut.reason }, ms / 1000);
    this.deps.metrics.filesWritten.inc(files.length);
    this.deps.metrics.rowsWritten.inc(rows.length);
    this.deps.metrics.bytesWritten.inc(bytes);
    this.deps.log.info(
      { partition: cut.partition, first: first.toString(), last: cut.last.toString(), rows: rows.length, files: files.length, inBytes: cut.bytes, outBytes: bytes, reason: cut.reason, ms },
      'cut stored and committed',
    );
  }

  /** Heartbeats the group member through any batch in progress (none outside Kafka batches). */
  private async heartbeat(): Promise<void> {
    const [beat] = this.heartbeats.values();
    await beat?.().catch(() => undefined);
  }

  private retry<T>(what: string, op: () => Promise<T>): Promise<T> {
    const deadline = this.now() + this.deps.limits.storeRetryMs;
    return withRetry(op, {
      retries: Number.MAX_SAFE_INTEGER,
      abandon: () => this.now() >= deadline,
      // A failed trust check does not heal by retrying: the consumer stops at once.
      permanent: (err) => err instanceof DigestChainError || err instanceof UntrustedObjectError,
      onRetry: async (err, attempt, waitMs) => {
        this.deps.metrics.uploadRetries.inc();
        this.deps.log.warn({ err: (err as Error).message, attempt, waitMs: Math.round(waitMs) }, `${what} failed; retrying`);
        // Keep the group membership alive while storage is down, when called from a Kafka batch.
        await this.heartbeat();
      },
    });
  }
}

/** Stages a decoded record; a failure is the record's (it must be dead-lettered, not crash the consumer). */
function stageRowOrThrow(row: Parameters<typeof stageRow>[0]): StagedRow {
  try {
    return stageRow(row);
  } catch (err) {
    throw new InvalidRecordError([`cannot be staged: ${(err as Error).message}`]);
  }
}
