import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import {
  type AuditRecord,
  AuditDecodeError,
  InvalidRecordError,
  RecordDecoder,
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
import { PartitionBuffer } from './partition-buffer';
import { type ParquetWriter, type StagedRow, stageRow } from './parquet-writer';
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

export interface SinkDeps {
  topic: string;
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
  now?: () => number;
}

/** The claim stored at `_cuts/<topic>/<partition>/<firstOffset>.json`. */
interface CutClaim {
  topic: string;
  partition: number;
  first: string;
  last: string;
  owner: string;
  claimedAt: string;
}

export type FlushReason = 'records' | 'bytes' | 'age' | 'memory' | 'shutdown' | 'drain';

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
 * Work on one partition is serialized (Kafka batches, timers and shutdown never
 * interleave on its buffer); partitions proceed independently, so one
 * partition's upload does not hold up the others.
 */
export class AuditSink {
  private readonly buffers = new Map<number, PartitionBuffer>();
  private readonly decoder = new RecordDecoder();
  private readonly chains = new Map<number, Promise<unknown>>();
  private fileSeq = 0;
  private heartbeat: (() => Promise<void>) | null = null;

  constructor(private readonly deps: SinkDeps) {}

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

  get bufferedBytes(): number {
    let total = 0;
    for (const b of this.buffers.values()) total += b.bytes;
    return total;
  }

  get bufferedRecords(): number {
    let total = 0;
    for (const b of this.buffers.values()) total += b.rows.length;
    return total;
  }

  /** True when nothing read is waiting to be stored and committed. */
  get isIdle(): boolean {
    for (const b of this.buffers.values()) if (!b.isEmpty) return false;
    return true;
  }

  /** Adds a fetched batch of one partition, then cuts whatever is due. */
  append(partition: number, messages: readonly InboundMessage[], heartbeat?: () => Promise<void>): Promise<void> {
    return this.serialize(partition, async () => {
      this.heartbeat = heartbeat ?? null;
      try {
        await this.appendNow(partition, messages);
      } finally {
        this.heartbeat = null;
      }
    });
  }

  private async appendNow(partition: number, messages: readonly InboundMessage[]): Promise<void> {
    {
      const buf = this.buffer(partition);
      const now = this.now();
      for (const m of messages) {
        const offset = BigInt(m.offset);
        if (!buf.accepts(offset)) continue;
        let record: AuditRecord;
        try {
          record = this.decoder.decode(m.value);
          assertValidRecord(record);
        } catch (err) {
          if (!(err instanceof AuditDecodeError || err instanceof InvalidRecordError)) throw err;
          await this.deps.deadLetter({ partition, offset: m.offset, key: m.key, value: m.value, error: err });
          this.deps.metrics.deadLetters.inc();
          this.deps.log.warn({ partition, offset: m.offset, err: err.message }, 'record sent to the dead-letter topic');
          buf.addDeadLetter(offset, now);
          continue;
        }
        buf.add(stageRow({ record, partition, offset: m.offset, size: m.value?.length ?? 0 }), offset, now);
        this.deps.metrics.consumed.inc();
        // Size limits and claimed cuts are honoured at the exact message, not at batch end.
        if (this.sizeDue(buf) || (buf.mustReach !== null && offset >= buf.mustReach)) await this.cutDue(buf);
      }
      await this.cutDue(buf);
      await this.enforceMemoryBound(buf);
    }
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
      await this.cut(buf, reason ?? 'records');
      if (buf.firstOffset === before) return;
    }
  }

  /**
   * Keeps all buffers together under the memory limit: when over it, the largest
   * buffer is cut (through its own partition's queue; awaited when it is this one).
   */
  private async enforceMemoryBound(current: PartitionBuffer): Promise<void> {
    if (this.bufferedBytes <= this.deps.limits.memoryMaxBytes) return;
    let largest = current;
    for (const b of this.buffers.values()) if (b.bytes > largest.bytes) largest = b;
    if (largest === current) {
      if (!current.isEmpty) await this.cut(current, 'memory');
    } else {
      void this.serialize(largest.partition, async () => {
        if (!largest.isEmpty && this.bufferedBytes > this.deps.limits.memoryMaxBytes) await this.cut(largest, 'memory');
      }).catch((err: Error) => this.deps.log.error({ err: err.message, partition: largest.partition }, 'memory-bound cut failed'));
    }
  }

  /** Cuts partitions whose age limit passed; called on a timer so idle partitions still get stored. */
  async flushDue(): Promise<void> {
    await Promise.all([...this.buffers.values()].map((buf) => this.serialize(buf.partition, () => this.cutDue(buf))));
  }

  /** Cuts everything buffered (shutdown, drain). Returns false if a claimed cut is still unreached. */
  async flushAll(reason: FlushReason): Promise<boolean> {
    const done = await Promise.all(
      [...this.buffers.values()].map((buf) =>
        this.serialize(buf.partition, async () => {
          while (!buf.isEmpty) {
            const before = buf.firstOffset;
            await this.cut(buf, reason);
            if (buf.firstOffset === before) return false;
          }
          return true;
        }),
      ),
    );
    return done.every(Boolean);
  }

  /**
   * After a rebalance the group re-reads every assigned partition from its
   * committed offset, so what is buffered is dropped (it will come again).
   */
  async resetAll(): Promise<void> {
    const partitions = [...this.buffers.keys()];
    await Promise.all(partitions.map((p) => this.serialize(p, async () => undefined)));
    const dropped = this.bufferedRecords;
    this.buffers.clear();
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

  private async cut(buf: PartitionBuffer, reason: FlushReason): Promise<void> {
    const started = this.now();
    const last = await this.claimCut(buf);
    if (last === null) return;
    const first = buf.firstOffset!;
    // Rows leave the buffer only once stored and committed: a failed cut loses nothing.
    const rows = buf.peekThrough(last);

    const byDate = new Map<string, StagedRow[]>();
    for (const row of rows) {
      const dt = dtOfMicros(row.occurredAt);
      let group = byDate.get(dt);
      if (!group) byDate.set(dt, (group = []));
      group.push(row);
    }
    let stored = 0;
    for (const [dt, group] of byDate) stored += await this.storeFile(buf.partition, dt, group);

    const next = (last + 1n).toString();
    await this.deps.commit(buf.partition, next);
    const { bytes } = buf.takeThrough(last);
    this.deps.metrics.flushSeconds.observe({ reason }, (this.now() - started) / 1000);
    this.deps.metrics.filesWritten.inc(byDate.size);
    this.deps.metrics.rowsWritten.inc(rows.length);
    this.deps.metrics.bytesWritten.inc(stored);
    this.deps.log.info(
      { partition: buf.partition, first: first.toString(), last: last.toString(), rows: rows.length, files: byDate.size, inBytes: bytes, outBytes: stored, reason, ms: this.now() - started },
      'cut stored and committed',
    );
  }

  /** Writes one date's rows of a cut as a Parquet file, uploads it and its index. Returns the file size. */
  private async storeFile(partition: number, dt: string, rows: StagedRow[]): Promise<number> {
    let lo = BigInt(rows[0]!.offset);
    let hi = lo;
    for (const r of rows) {
      const o = BigInt(r.offset);
      if (o < lo) lo = o;
      if (o > hi) hi = o;
    }
    const name = dataFileName(this.deps.topic, partition, lo.toString(), hi.toString());
    await mkdir(this.deps.workDir, { recursive: true });
    const local = join(this.deps.workDir, `${process.pid}-${++this.fileSeq}-${name}`);
    try {
      const written = await this.deps.writer.writeStaged(rows, local);
      const key = dataKey(dt, name);
      const index = buildFileIndex(key, written, rows.map((r) => r.key));
      // Data first, index second: a reader that finds an index can trust the file is there.
      await this.retry('upload', () => this.deps.store.putFile(key, local));
      await this.retry('upload index', () => this.deps.store.put(indexKey(dt, name), JSON.stringify(index)));
      return written.bytes;
    } finally {
      await rm(local, { force: true });
    }
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
        await this.heartbeat?.().catch(() => undefined);
      },
    });
  }
}
