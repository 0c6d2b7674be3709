import { LineArena } from './staging/line-arena';
import { type StagedRow, heldBytes } from './staging/staged-row';

/** What leaves a buffer when a cut is taken from it. */
export interface TakenRows {
  rows: StagedRow[];
  /** Offsets of the messages sent to the dead-letter topic (ascending). */
  deadLetters: bigint[];
  /** Encoded (Kafka) bytes of the rows. */
  bytes: number;
  /** Memory the rows hold (see heldBytes). */
  held: number;
}

/**
 * The records read from one Kafka partition and not yet sealed into a cut.
 * A cut is the offset range [firstOffset, lastOffset] that becomes one set of
 * files (one per event date); offsets of poison messages belong to the cut too.
 * Rows arrive in offset order (Kafka's order within a partition), which the
 * range operations rely on.
 */
export class PartitionBuffer {
  rows: StagedRow[] = [];
  /** Where this partition's staging lines live until they are stored. */
  readonly arena = new LineArena();
  /** Offsets of messages sent to the dead-letter topic, still inside this buffer (ascending). */
  deadLetters: bigint[] = [];
  firstOffset: bigint | null = null;
  lastOffset: bigint | null = null;
  /** Encoded (Kafka) bytes buffered: what the rotation size limit counts. */
  bytes = 0;
  /** Memory the buffered rows hold: what the memory bound counts. */
  held = 0;
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
    this.held += heldBytes(row);
  }

  addDeadLetter(offset: bigint, now: number): void {
    this.touch(offset, now);
    this.deadLetters.push(offset);
  }

  /**
   * Removes and returns everything up to `last` inclusive; what remains starts
   * at the first buffered offset after it.
   */
  takeThrough(last: bigint): TakenRows {
    const n = countThrough(this.rows, last);
    const rows = this.rows.slice(0, n);
    this.rows = this.rows.slice(n);
    let dead = 0;
    while (dead < this.deadLetters.length && this.deadLetters[dead]! <= last) dead++;
    const deadLetters = this.deadLetters.slice(0, dead);
    this.deadLetters = this.deadLetters.slice(dead);
    let takenBytes = 0;
    let takenHeld = 0;
    for (const r of rows) {
      takenBytes += r.size;
      takenHeld += heldBytes(r);
    }
    this.bytes -= takenBytes;
    this.held -= takenHeld;
    const nextRow = this.rows.length > 0 ? BigInt(this.rows[0]!.offset) : null;
    const nextDead = this.deadLetters.length > 0 ? this.deadLetters[0]! : null;
    if (nextRow === null && nextDead === null) {
      this.firstOffset = null;
      this.lastOffset = null;
    } else {
      this.firstOffset = nextRow === null ? nextDead : nextDead === null || nextRow < nextDead ? nextRow : nextDead;
    }
    if (this.mustReach !== null && this.mustReach <= last) this.mustReach = null;
    return { rows, deadLetters, bytes: takenBytes, held: takenHeld };
  }
}

/** How many rows (in offset order) have an offset <= last: a binary search. */
function countThrough(rows: readonly StagedRow[], last: bigint): number {
  let lo = 0;
  let hi = rows.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (BigInt(rows[mid]!.offset) <= last) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
