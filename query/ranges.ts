/** Half-open byte range [start, end). */
export type ByteRange = readonly [start: number, end: number];

/**
 * Sorts and merges ranges that overlap, touch, or are at most `gap` bytes
 * apart (fetching a small gap is cheaper than another request). Empty ranges are dropped.
 */
export function mergeRanges(ranges: Iterable<ByteRange>, gap = 0): ByteRange[] {
  const sorted = [...ranges].filter(([s, e]) => e > s).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: [number, number][] = [];
  for (const [s, e] of sorted) {
    const last = out[out.length - 1];
    if (last && s <= last[1] + gap) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/** The parts of `needed` not covered by `present` (both need not be merged). */
export function subtractRanges(needed: Iterable<ByteRange>, present: Iterable<ByteRange>): ByteRange[] {
  const have = mergeRanges(present);
  const out: ByteRange[] = [];
  for (const [s0, e] of mergeRanges(needed)) {
    let s = s0;
    for (const [hs, he] of have) {
      if (he <= s) continue;
      if (hs >= e) break;
      if (hs > s) out.push([s, hs]);
      s = Math.max(s, he);
      if (s >= e) break;
    }
    if (s < e) out.push([s, e]);
  }
  return out;
}

export function totalBytes(ranges: Iterable<ByteRange>): number {
  let n = 0;
  for (const [s, e] of ranges) n += Math.max(0, e - s);
  return n;
}

/** True when `present` covers all of [start, end). */
export function coversRange(present: Iterable<ByteRange>, start: number, end: number): boolean {
  return subtractRanges([[start, end]], present).length === 0;
}
