import type { StagedRow } from './parquet-writer';

/**
 * The records read from one Kafka partition since its last committed cut.
 * A cut is the offset range [firstOffset, lastOffset] that becomes one set of
 * files (one per event date); offsets of poison messages belong to the cut too.
 */
export class PartitionBuffer {
  rows: StagedRow[] = [];
  /** Offsets of messages sent to the dead-letter topic, still inside this buffer. */
  deadLetters: bigint[] = [];
  firstOffset: bigint | null = null;
  lastOffset: bigint | null = null;
  bytes = 0;
  openedAt = 0;
  /** A cut claimed by an earlier owner ends at this offset: do not cut before reaching it. */
  mustReach: bigint | null = null;
  /** Highest offset ever accepted, kept across cuts to recognise redeliveries. */
  private seen: bigint | null = null;

  constructor(readonly partition: number) {}

  get isEmpty(): boolean {
    return this.firstOffset === null;
  }

  /** False for an offset already buffered (a redelivery after a seek or a retry). */
  accepts(offset: bigint): boolean {
    return this.seen === null || offset > this.seen;
  }

  private touch(offset: bigint, now: number): void {
    if (this.firstOffset === null) {
      this.firstOffset = offset;
      this.openedAt = now;
    }
    this.lastOffset = offset;
    this.seen = offset;
  }

  add(row: StagedRow, offset: bigint, now: number): void {
    this.touch(offset, now);
    this.rows.push(row);
    this.bytes += row.size;
  }

  addDeadLetter(offset: bigint, now: number): void {
    this.touch(offset, now);
    this.deadLetters.push(offset);
  }

  /** The rows up to `last` inclusive, left in place (they leave only once stored). */
  peekThrough(last: bigint): StagedRow[] {
    return this.rows.filter((r) => BigInt(r.offset) <= last);
  }

  /**
   * Removes and returns everything up to `last` inclusive; what remains starts
   * at the first buffered offset after it.
   */
  takeThrough(last: bigint): { rows: StagedRow[]; deadLetters: bigint[]; bytes: number } {
    const rows = this.rows.filter((r) => BigInt(r.offset) <= last);
    const kept = this.rows.filter((r) => BigInt(r.offset) > last);
    const dead = this.deadLetters.filter((o) => o <= last);
    const keptDead = this.deadLetters.filter((o) => o > last);
    const takenBytes = rows.reduce((sum, r) => sum + r.size, 0);
    this.rows = kept;
    this.deadLetters = keptDead;
    this.bytes -= takenBytes;
    const remaining = [...kept.map((r) => BigInt(r.offset)), ...keptDead];
    if (remaining.length === 0) {
      this.firstOffset = null;
      this.lastOffset = null;
    } else {
      this.firstOffset = remaining.reduce((a, b) => (b < a ? b : a));
    }
    if (this.mustReach !== null && this.mustReach <= last) this.mustReach = null;
    return { rows, deadLetters: dead, bytes: takenBytes };
  }
}
