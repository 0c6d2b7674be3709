/**
 * Append-only byte chunks that staging lines are written into. A line is a byte
 * range of its chunk, so a buffered record costs its bytes outside the V8 heap
 * (no per-record string or Buffer for the garbage collector to trace or copy),
 * and a chunk is freed once every line in it has been stored.
 */
export class LineArena {
  // Allocated on first use: a partition that never receives a record costs nothing.
  private chunk: Buffer = Buffer.alloc(0);
  private pos = 0;

  constructor(private readonly chunkBytes = 256 * 1024) {}

  /** Makes sure `n` bytes can be written from `start` of `buffer`; call before writing a line. */
  reserve(n: number): void {
    if (this.pos + n > this.chunk.length) {
      this.chunk = Buffer.allocUnsafeSlow(Math.max(this.chunkBytes, n));
      this.pos = 0;
    }
  }

  get buffer(): Buffer {
    return this.chunk;
  }

  get start(): number {
    return this.pos;
  }

  /** Seals the bytes written from `start` up to `end` as one line; returns where it starts in `buffer`. */
  commit(end: number): number {
    const start = this.pos;
    this.pos = end;
    return start;
  }

  /** Moves a row's line made elsewhere (the slow path's) into the arena. */
  adopt(row: { chunk: Buffer; start: number; end: number }): void {
    const n = row.end - row.start;
    this.reserve(n);
    const chunk = this.chunk;
    row.chunk.copy(chunk, this.pos, row.start, row.end);
    row.start = this.commit(this.pos + n);
    row.end = row.start + n;
    row.chunk = chunk;
  }
}
