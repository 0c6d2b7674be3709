/**
 * A plain Bloom filter over strings (double hashing with two FNV-1a variants). Used in
 * the per-file index to skip files that cannot hold an object; false positives
 * only cost a fetch, false negatives cannot happen.
 */
export class BloomFilter {
  constructor(
    readonly bits: Uint8Array,
    readonly hashes: number,
  ) {}

  /** Sized for `n` items at false-positive rate `p`. */
  static forItems(n: number, p = 0.01): BloomFilter {
    const m = Math.max(64, Math.ceil((-Math.max(n, 1) * Math.log(p)) / (Math.LN2 * Math.LN2)));
    const k = Math.max(1, Math.round((m / Math.max(n, 1)) * Math.LN2));
    return new BloomFilter(new Uint8Array(Math.ceil(m / 8)), k);
  }

  static fromBase64(b64: string, hashes: number): BloomFilter {
    return new BloomFilter(new Uint8Array(Buffer.from(b64, 'base64')), hashes);
  }

  private positions(item: string): number[] {
    // Two independent 32-bit FNV-1a hashes over UTF-16 code units (cheap, stable, no allocation).
    let h1 = 0x811c9dc5;
    let h2 = 0x01000193 ^ item.length;
    for (let i = 0; i < item.length; i++) {
      const c = item.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995);
      h2 ^= h2 >>> 15;
    }
    const out: number[] = new Array(this.hashes);
    this.spread(h1, h2, (i, pos) => (out[i] = pos));
    return out;
  }

  /** Bit positions from the two hashes (double hashing). */
  private spread(h1: number, h2: number, at: (i: number, pos: number) => void): void {
    h2 |= 1;
    const m = this.bits.length * 8;
    for (let i = 0; i < this.hashes; i++) at(i, ((h1 + Math.imul(i, h2)) >>> 0) % m);
  }

  add(item: string): void {
    for (const pos of this.positions(item)) this.bits[pos >> 3]! |= 1 << (pos & 7);
  }

  /**
   * Adds `${type}:${id}` without building that string: the writer adds one key per
   * object of every file it writes, and the concatenations (then hashing them into
   * a Set) cost about as much as the rest of the index.
   */
  addObjectKey(type: string, id: string): void {
    let h1 = 0x811c9dc5;
    let h2 = 0x01000193 ^ (type.length + 1 + id.length);
    for (let part = 0; part < 3; part++) {
      const s = part === 0 ? type : part === 1 ? ':' : id;
      for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        h1 = Math.imul(h1 ^ c, 0x01000193);
        h2 = Math.imul(h2 ^ c, 0x5bd1e995);
        h2 ^= h2 >>> 15;
      }
    }
    this.spread(h1, h2, (_, pos) => (this.bits[pos >> 3]! |= 1 << (pos & 7)));
  }

  mayContain(item: string): boolean {
    for (const pos of this.positions(item)) if ((this.bits[pos >> 3]! & (1 << (pos & 7))) === 0) return false;
    return true;
  }

  toBase64(): string {
    return Buffer.from(this.bits).toString('base64');
  }
}
