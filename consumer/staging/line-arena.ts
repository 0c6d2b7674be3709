/**
 * Append-only byte chunks that staging lines are written into. A line is a view
 * of its chunk, so a buffered record costs its bytes outside the V8 heap (no
 * per-record string for the garbage collector to trace or copy), and a chunk is
 * freed once every line in it has been stored.
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

  /** Seals the bytes written from `start` up to `end` as one line. */
  commit(end: number): Buffer {
    const line = this.chunk.subarray(this.pos, end);
    this.pos = end;
    return line;
  }

  /** Copies a line made elsewhere into the arena (the slow path's lines). */
  copy(line: Buffer): Buffer {
    this.reserve(line.length);
    line.copy(this.chunk, this.pos);
    return this.commit(this.pos + line.length);
  }
}
