import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  type AuditRecord,
  AuditDecodeError,
  InvalidRecordError,
  RecordDecoder,
  type RegistryLookup,
  assertValidRecord,
} from '../schemas';
import {
  type ObjectStore,
  buildFileIndex,
  cutKey,
  dataFileName,
  dataKey,
  dtOfMicros,
  indexKey,
} from '../storage';
import type { SinkMetrics } from './metrics';
import { PartitionBuffer, type TakenRows } from './partition-buffer';
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

/** The claim stored at `_cuts/<topic>/<partition>/<firstOffset>.json`. */
interface CutClaim {
  topic: string;
  partition: number;
  first: string;
  last: string;
  owner: string;
  claimedAt: string;
}

export type FlushReason = 'records' | 'bytes' | 'age' | 'memory' | 'writer-idle' | 'shutdown' | 'drain';

/** A sealed offset range waiting to be stored and committed. */
interface SealedCut extends TakenRows {
  partition: number;
  first: bigint;
  last: bigint;
  reason: FlushReason;
  sealedAt: number;
}

/** Sealed cuts of one partition, stored and committed strictly in order by one loop. */
interface CutQueue {
  cuts: SealedCut[];
  bytes: number;
  held: number;
  rows: number;
  running: Promise<void> | null;
  /** Why the loop stopped; reported once to whoever waits next, then retried. */
  failure: Error | null;
  /** Woken after every stored cut and when the loop stops. */
  waiters: (() => void)[];
}

/**
 * Turns Kafka messages into Parquet files and decides when offsets may be committed.
 *
 * Exactly-once files: a partition's buffer is cut into the offset range
 * [first, last]; before writing it, the range is *claimed* with a create-if-absent
 * object keyed by `first`. Whoever claims `first` fixes `last` for everyone, so a
 * replay after a crash, or another group member after a rebalance, cuts at the same
 * offsets and writes the same keys (an overwrite, never a second copy). The offset
 * after `last` is committed only after every file of the cut is stored.
 *
 * Pipelining: a claimed cut is sealed and queued, and reading goes on while it is
 * written, uploaded and committed (DuckDB and the upload use other threads than
 * decoding). Each partition's queue is stored in order, and a cut is committed
 * only after the cuts before it, so a failed cut blocks every later commit of its
 * partition. Sealed rows stay in memory until committed and count against the
 * memory limit; when it is reached, reading waits for the queues.
 *
 * Work on one partition's open buffer is serialized (Kafka batches, timers and
 * shutdown never interleave on it); partitions proceed independently.
 */
export class AuditSink {
  private readonly buffers = new Map<number, PartitionBuffer>();
  private readonly queues = new Map<number, CutQueue>();
  private readonly decoder: RecordDecoder;
  private readonly transcoder: AvroStagingTranscoder;
  private readonly chains = new Map<number, Promise<unknown>>();
  private fileSeq = 0;
  /** Heartbeats of the Kafka batches being appended, by partition: any of them keeps the member alive. */
  private readonly heartbeats = new Map<number, () => Promise<void>>();
  /** Partitions with a memory-bound seal scheduled on their queue. */
  private readonly memorySeals = new Set<number>();

  constructor(private readonly deps: SinkDeps) {
    this.decoder = new RecordDecoder(undefined, deps.schemaIds?.lookup);
    this.transcoder = new AvroStagingTranscoder(this.decoder.readerSchemaId, deps.schemaIds?.lookup);
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

  private queue(partition: number): CutQueue {
    let q = this.queues.get(partition);
    if (!q) {
      q = { cuts: [], bytes: 0, held: 0, rows: 0, running: null, failure: null, waiters: [] };
      this.queues.set(partition, q);
    }
    return q;
  }

  /** Encoded bytes read and not yet committed: open buffers plus sealed cuts. */
  get bufferedBytes(): number {
    let total = 0;
    for (const b of this.buffers.values()) total += b.bytes;
    for (const q of this.queues.values()) total += q.bytes;
    return total;
  }

  /** Memory held by what was read and not yet committed (see heldBytes): what AUDIT_MEMORY_MAX_BYTES bounds. */
  get heldBytes(): number {
    let total = 0;
    for (const b of this.buffers.values()) total += b.held;
    for (const q of this.queues.values()) total += q.held;
    return total;
  }

  get bufferedRecords(): number {
    let total = 0;
    for (const b of this.buffers.values()) total += b.rows.length;
    for (const q of this.queues.values()) total += q.rows;
    return total;
  }

  /** True when nothing read is waiting to be stored and committed. */
  get isIdle(): boolean {
    for (const b of this.buffers.values()) if (!b.isEmpty) return false;
    for (const q of this.queues.values()) if (q.cuts.length > 0) return false;
    return true;
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
          await this.deps.deadLetter({ partition, offset: m.offset, key: m.key, value: m.value, error: err });
          this.deps.metrics.deadLetters.inc();
          this.deps.log.warn({ partition, offset: m.offset, err: err.message }, 'record sent to the dead-letter topic');
          buf.addDeadLetter(offset, now);
          continue;
        }
        buf.arena.adopt(row);
      }
      buf.add(row, offset, now);
      consumed++;
      // Size limits and claimed cuts are honoured at the exact message, not at batch end.
      if (this.sizeDue(buf) || (buf.mustReach !== null && offset >= buf.mustReach)) await this.cutDue(buf);
    }
    this.deps.metrics.consumed.inc(consumed);
    await this.cutDue(buf);
    if (this.writerWaits(buf)) await this.seal(buf, 'writer-idle');
    await this.enforceMemoryBound(buf);
  }

  /**
   * The writer has a free slot and this partition has nothing queued for it, while
   * its buffer holds a fair share of the memory budget (half of it, split between
   * the partitions being read): sealed now, the cut is written while the next one
   * fills. Otherwise the writer would sit idle until memory runs full, which at
   * start-up cost about a second of an idle core per run on the benchmark.
   */
  private writerWaits(buf: PartitionBuffer): boolean {
    if (!this.mayCut(buf) || !this.deps.writer.hasFreeSlot) return false;
    return buf.held >= this.deps.limits.memoryMaxBytes / (2 * Math.max(1, this.buffers.size));
  }

  private sizeDue(buf: PartitionBuffer): boolean {
    return buf.rows.length >= this.deps.limits.maxRecords || buf.bytes >= this.deps.limits.maxBytes;
  }

  private dueReason(buf: PartitionBuffer, now: number): FlushReason | null {
    if (buf.isEmpty) return null;
    if (buf.rows.length >= this.deps.limits.maxRecords) return 'records';
    if (buf.bytes >= this.deps.limits.maxBytes) return 'bytes';
    if (now - buf.openedAt >= this.deps.limits.maxAgeMs) return 'age';
    return null;
  }

  private async cutDue(buf: PartitionBuffer): Promise<void> {
    // A claimed cut may be reached in the middle of a batch, and the rest may be due again.
    for (;;) {
      const reason = this.dueReason(buf, this.now());
      if (reason === null && !(buf.mustReach !== null && buf.lastOffset !== null && buf.lastOffset >= buf.mustReach)) return;
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
   */
  private async enforceMemoryBound(current: PartitionBuffer): Promise<void> {
    const limit = this.deps.limits.memoryMaxBytes;
    while (this.heldBytes > limit) {
      // Sealing frees nothing by itself: it gives a partition's store loop work. A partition
      // that still has a cut queued is not sealed again; otherwise, once the writer is the
      // bottleneck, every batch became a cut of its own (files of ~1k rows, each paying a
      // COPY, two uploads and a claim), which made the writer slower still.
      if (this.mayCut(current)) {
        const before = current.firstOffset;
        await this.seal(current, 'memory');
        if (current.firstOffset !== before) continue;
      }
      for (const other of this.buffers.values()) {
        if (other !== current && this.mayCut(other) && !this.memorySeals.has(other.partition)) {
          this.memorySeals.add(other.partition);
          void this.serialize(other.partition, async () => {
            if (this.buffers.get(other.partition) === other && this.mayCut(other) && this.heldBytes > limit) {
              await this.seal(other, 'memory');
            }
          })
            .catch((err: Error) => this.deps.log.error({ err: err.message, partition: other.partition }, 'memory-bound seal failed'))
            .finally(() => this.memorySeals.delete(other.partition));
        }
      }
      const queued = [...this.queues.entries()].filter(([, q]) => q.cuts.length > 0);
      // Nothing stored can free memory: the rest is buffers waiting for more records.
      if (queued.length === 0) return;
      // Wait for the partition holding the most sealed memory to store a cut (no lock is held by its loop).
      const [partition] = queued.reduce((a, b) => (b[1].held > a[1].held ? b : a));
      await this.waitForQueue(partition, true);
    }
  }

  /** Can the buffer be cut now, with no earlier cut of its partition still waiting to be stored? */
  private mayCut(buf: PartitionBuffer): boolean {
    return sealable(buf) && (this.queues.get(buf.partition)?.cuts.length ?? 0) === 0;
  }

  /** Runs (or resumes) a partition's queue and waits for it, heartbeating while it takes long. */
  private async waitForQueue(partition: number, oneCut = false): Promise<void> {
    const q = this.queue(partition);
    if (q.failure) {
      const failure = q.failure;
      q.failure = null;
      throw failure;
    }
    this.run(partition);
    const target = oneCut ? q.cuts[0] : undefined;
    const beat = setInterval(() => void this.heartbeat(), 3_000);
    try {
      while (q.running && (target === undefined || q.cuts.includes(target))) {
        await new Promise<void>((resolve) => q.waiters.push(resolve));
      }
    } finally {
      clearInterval(beat);
    }
    if (q.failure) {
      const failure = q.failure;
      q.failure = null;
      throw failure;
    }
  }

  /** Waits until every sealed cut is stored and committed; rethrows (once) a queue's failure. */
  async settle(): Promise<void> {
    const errors: Error[] = [];
    await Promise.all(
      [...this.queues.keys()].map((p) => this.waitForQueue(p).catch((err: Error) => void errors.push(err))),
    );
    if (errors.length > 0) throw errors[0]!;
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
      const done = await Promise.all([...this.buffers.keys()].map((p) => this.sealAll(p, reason)));
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
    if (dropped > 0) this.deps.log.info({ dropped }, 'rebalance: dropped uncommitted buffers; they will be re-read');
  }

  /** Decides where this cut ends, claiming it or adopting an earlier claim; null when it must wait. */
  private async claimCut(buf: PartitionBuffer): Promise<bigint | null> {
    const first = buf.firstOffset!;
    const last = buf.mustReach ?? buf.lastOffset!;
    if (last > buf.lastOffset!) return null;
    const key = cutKey(this.deps.topic, buf.partition, first.toString());
    const claim: CutClaim = {
      topic: this.deps.topic,
      partition: buf.partition,
      first: first.toString(),
      last: last.toString(),
      owner: this.deps.owner,
      claimedAt: new Date(this.now()).toISOString(),
    };
    const won = await this.retry('claim', () => this.deps.store.putIfAbsent(key, JSON.stringify(claim)));
    if (won) return last;
    const existing = await this.retry('read claim', () => this.deps.store.get(key));
    if (existing === null) throw new Error(`cut claim ${key} vanished while being read`);
    const adopted = BigInt((JSON.parse(existing.toString('utf8')) as CutClaim).last);
    this.deps.metrics.adoptedCuts.inc();
    this.deps.log.info({ partition: buf.partition, first: claim.first, last: adopted.toString() }, 'adopting an earlier cut claim');
    if (adopted > buf.lastOffset!) {
      buf.mustReach = adopted;
      return null;
    }
    return adopted;
  }

  /** Claims the buffer's next cut and queues it for storage; its rows stay in memory until committed. */
  private async seal(buf: PartitionBuffer, reason: FlushReason): Promise<void> {
    const sealedAt = this.now();
    const last = await this.claimCut(buf);
    if (last === null) return;
    const first = buf.firstOffset!;
    const taken = buf.takeThrough(last);
    const q = this.queue(buf.partition);
    q.cuts.push({ ...taken, partition: buf.partition, first, last, reason, sealedAt });
    q.bytes += taken.bytes;
    q.held += taken.held;
    q.rows += taken.rows.length;
    this.run(buf.partition);
  }

  /** Starts the partition's store-and-commit loop unless it is running or stopped by a failure. */
  private run(partition: number): void {
    const q = this.queue(partition);
    if (q.running || q.failure || q.cuts.length === 0) return;
    q.running = (async () => {
      while (q.cuts.length > 0) {
        const cut = q.cuts[0]!;
        await this.storeCut(cut);
        q.cuts.shift();
        q.bytes -= cut.bytes;
        q.held -= cut.held;
        q.rows -= cut.rows.length;
        wake(q);
      }
    })()
      .catch((err: Error) => {
        q.failure = err;
        this.deps.log.error({ partition, err: err.message }, 'storing a cut failed; this partition commits nothing more');
        this.deps.onError?.(err, partition);
      })
      .finally(() => {
        q.running = null;
        wake(q);
        // A cut sealed between the loop's last check and here would otherwise wait for the next seal.
        if (q.cuts.length > 0 && !q.failure) this.run(partition);
      });
  }

  /** Writes a sealed cut (one file per event date), uploads the files, then commits the offset after it. */
  private async storeCut(cut: SealedCut): Promise<void> {
    const byDate = new Map<string, StagedRow[]>();
    for (const row of cut.rows) {
      const dt = dtOfMicros(row.occurredAt);
      let group = byDate.get(dt);
      if (!group) byDate.set(dt, (group = []));
      group.push(row);
    }
    await mkdir(this.deps.workDir, { recursive: true });
    const files = [...byDate].map(([dt, rows]) => {
      const name = dataFileName(this.deps.topic, cut.partition, ...offsetRange(rows));
      return { dt, name, path: join(this.deps.workDir, `${process.pid}-${++this.fileSeq}-${name}`), rows };
    });
    let stored = 0;
    // The files of a cut are written and uploaded side by side (the writer bounds how many
    // DuckDB writes run at once): one file's upload overlaps the next one's write.
    const outcomes = await Promise.allSettled(
      files.map(async ({ dt, name, path, rows }) => {
        try {
          // Local failures (DuckDB out of memory while other files are written, a full disk) pass too.
          const written = await this.retry('write', () => this.deps.writer.writeStaged(rows, path));
          const key = dataKey(dt, name);
          const index = buildFileIndex(key, written, written.objectBloom);
          // Data first, index second: a reader that finds an index can trust the file is there.
          await this.retry('upload', () => this.deps.store.putFile(key, path));
          await this.retry('upload index', () => this.deps.store.put(indexKey(dt, name), JSON.stringify(index)));
          stored += written.bytes;
        } finally {
          await rm(path, { force: true });
        }
      }),
    );
    const failed = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
    if (failed) throw failed.reason;

    const next = (cut.last + 1n).toString();
    await this.deps.commit(cut.partition, next);
    const ms = this.now() - cut.sealedAt;
    this.deps.metrics.flushSeconds.observe({ reason: cut.reason }, ms / 1000);
    this.deps.metrics.filesWritten.inc(byDate.size);
    this.deps.metrics.rowsWritten.inc(cut.rows.length);
    this.deps.metrics.bytesWritten.inc(stored);
    this.deps.log.info(
      { partition: cut.partition, first: cut.first.toString(), last: cut.last.toString(), rows: cut.rows.length, files: byDate.size, inBytes: cut.bytes, outBytes: stored, reason: cut.reason, ms },
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
      onRetry: async (err, attempt, waitMs) => {
        this.deps.metrics.uploadRetries.inc();
        this.deps.log.warn({ err: (err as Error).message, attempt, waitMs: Math.round(waitMs) }, `${what} failed; retrying`);
        // Keep the group membership alive while storage is down, when called from a Kafka batch.
        await this.heartbeat();
      },
    });
  }
}

function wake(q: CutQueue): void {
  const waiters = q.waiters;
  q.waiters = [];
  for (const w of waiters) w();
}

/** First and last Kafka offsets of a file's rows (a cut's rows are in offset order, and so is any subset). */
function offsetRange(rows: readonly StagedRow[]): [string, string] {
  return [rows[0]!.offset, rows[rows.length - 1]!.offset];
}

/** Can this buffer be cut now (it holds records and is not waiting to reach an adopted claim)? */
function sealable(buf: PartitionBuffer): boolean {
  return !buf.isEmpty && (buf.mustReach === null || (buf.lastOffset !== null && buf.lastOffset >= buf.mustReach));
}

/** Stages a decoded record; a failure is the record's (it must be dead-lettered, not crash the consumer). */
function stageRowOrThrow(row: Parameters<typeof stageRow>[0]): StagedRow {
  try {
    return stageRow(row);
  } catch (err) {
    throw new InvalidRecordError([`cannot be staged: ${(err as Error).message}`]);
  }
}
