import type { PartitionBuffer } from './partition-buffer';

/** Why a cut was sealed (a label of the flush metrics and logs). */
export type FlushReason = 'records' | 'bytes' | 'age' | 'memory' | 'writer-idle' | 'shutdown' | 'drain';

/** The rotation limits a partition's open buffer is cut at. */
export interface CutLimits {
  maxRecords: number;
  maxBytes: number;
  maxAgeMs: number;
}

export function sizeDue(buf: PartitionBuffer, limits: CutLimits): boolean {
  return buf.rows.length >= limits.maxRecords || buf.bytes >= limits.maxBytes;
}

/** Which limit makes the buffer due now; null when none is reached. */
export function dueReason(buf: PartitionBuffer, limits: CutLimits, now: number): FlushReason | null {
  if (buf.isEmpty) return null;
  if (buf.rows.length >= limits.maxRecords) return 'records';
  if (buf.bytes >= limits.maxBytes) return 'bytes';
  if (now - buf.openedAt >= limits.maxAgeMs) return 'age';
  return null;
}

/** Has the buffer reached the end of a cut an earlier owner claimed? */
export function reachedClaim(buf: PartitionBuffer): boolean {
  return buf.mustReach !== null && buf.lastOffset !== null && buf.lastOffset >= buf.mustReach;
}

/** Can this buffer be cut now (it holds records and is not waiting to reach an adopted claim)? */
export function sealable(buf: PartitionBuffer): boolean {
  return !buf.isEmpty && (buf.mustReach === null || reachedClaim(buf));
}

/**
 * The writer has a free slot and this partition's buffer holds a fair share of
 * the memory budget (half of it, split between the partitions being read):
 * sealed now, the cut is written while the next one fills. Otherwise the writer
 * would sit idle until memory runs full, which at start-up cost about a second
 * of an idle core per run on the benchmark.
 */
export function fairShareReached(buf: PartitionBuffer, memoryMaxBytes: number, partitions: number): boolean {
  return buf.held >= memoryMaxBytes / (2 * Math.max(1, partitions));
}
