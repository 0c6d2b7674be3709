import { type FileIndex, compareUtf8, indexDataEnd, rowGroupMayHold } from '../storage';
import type { FooterLayout } from './cache';
import type { ObjectRef } from './locate';
import { type ByteRange, mergeRanges } from './ranges';

type RowGroup = FooterLayout['rowGroups'][number];

/** (type, id) keys in the order the writer sorts them (UTF-8 bytes, type first). */
function compareKey(type: string, id: string, otherType: string, otherId: string): number {
  return compareUtf8(type, otherType) || compareUtf8(id, otherId);
}

const single = (rg: RowGroup) => rg.typeMin === rg.typeMax;

/**
 * True when the statistics show the row groups in (object_type, object_id)
 * order, as the consumer's writer sorts them. Only then may neighbours' bounds
 * be used (a file of unknown order is pruned by each group's own statistics only).
 */
export function sortedByObject(rgs: readonly RowGroup[]): boolean {
  for (const rg of rgs) if (rg.typeMin === null || rg.typeMax === null || rg.idMin === null || rg.idMax === null) return false;
  for (let k = 1; k < rgs.length; k++) {
    const a = rgs[k - 1]!;
    const b = rgs[k]!;
    if (compareUtf8(a.typeMax!, b.typeMin!) > 0) return false;
    if (single(a) && single(b) && a.typeMax === b.typeMin && compareUtf8(a.idMax!, b.idMin!) > 0) return false;
  }
  return true;
}

/**
 * Indexes of the row groups that may hold the object.
 *
 * Each group's own min/max statistics (UTF-8 byte order, like DuckDB; unknown
 * means "may"). In a sorted file, also its neighbours': a group holds keys
 * between the last key of the group before and the first key of the group
 * after. That excludes the groups where one object type ends and the next
 * begins, whose object_id range spans both types' ids and so says nothing.
 */
export function selectRowGroups(layout: FooterLayout, object: ObjectRef): number[] {
  const rgs = layout.rowGroups;
  const sorted = sortedByObject(rgs);
  const out: number[] = [];
  rgs.forEach((rg, k) => {
    if (!rowGroupMayHold(rg, object.type, object.id)) return;
    if (sorted && !single(rg)) {
      const before = rgs[k - 1];
      const after = rgs[k + 1];
      // Last key of the group before >= (its last type, idMax if single-typed, else idMin).
      if (before && compareKey(object.type, object.id, before.typeMax!, single(before) ? before.idMax! : before.idMin!) < 0) return;
      // First key of the group after <= (its first type, idMin if single-typed, else idMax).
      if (after && compareKey(object.type, object.id, after.typeMin!, single(after) ? after.idMin! : after.idMax!) > 0) return;
    }
    out.push(k);
  });
  return out;
}

/**
 * The byte ranges DuckDB touches when it reads these row groups of a file:
 *
 * - the tail, from the end of the last column chunk (or the first Bloom filter)
 *   to the end of the file: the footer, which DuckDB always reads, and the
 *   Parquet Bloom filters, which it probes for equality filters;
 * - the column chunks of the selected row groups. The query restricts each
 *   scan to those groups with `file_row_number` (see rowRuns), so DuckDB reads
 *   no other group, whatever statistics say.
 */
export function rangesForRowGroups(layout: FooterLayout, size: number, selected: readonly number[]): ByteRange[] {
  const ranges: ByteRange[] = [[layout.tailStart, size]];
  for (const k of selected) ranges.push([layout.rowGroups[k]!.start, layout.rowGroups[k]!.end]);
  return mergeRanges(ranges);
}

export function rangesForObject(layout: FooterLayout, size: number, object: ObjectRef): ByteRange[] {
  return rangesForRowGroups(layout, size, selectRowGroups(layout, object));
}

/** Inclusive file_row_number runs of consecutive selected row groups (one scan each: DuckDB prunes row groups on a single range, not on an OR of ranges). */
export function rowRuns(layout: FooterLayout, selected: readonly number[]): [first: number, last: number][] {
  const firstRow: number[] = [];
  let n = 0;
  for (const rg of layout.rowGroups) {
    firstRow.push(n);
    n += rg.rows;
  }
  const runs: [number, number][] = [];
  let prev = -2;
  for (const k of [...selected].sort((a, b) => a - b)) {
    const first = firstRow[k]!;
    const last = first + layout.rowGroups[k]!.rows - 1;
    if (k === prev + 1 && runs.length > 0) runs[runs.length - 1]![1] = last;
    else runs.push([first, last]);
    prev = k;
  }
  return runs;
}

/**
 * The same layout from the per-file index, before the footer has been seen
 * (checked against it afterwards); null when the index cannot describe a file
 * of this size (then the footer is read first).
 */
export function layoutFromIndex(index: Pick<FileIndex, 'rowGroups'>, size: number): FooterLayout | null {
  const tailStart = indexDataEnd(index);
  const plausible =
    index.rowGroups.length > 0 &&
    tailStart < size - 8 &&
    index.rowGroups.every((rg) => Number.isSafeInteger(rg.offset) && Number.isSafeInteger(rg.length) && Number.isSafeInteger(rg.rows) && rg.offset >= 4 && rg.length > 0 && rg.rows > 0);
  if (!plausible) return null;
  return {
    v: 2,
    tailStart,
    rowGroups: index.rowGroups.map((rg) => ({ start: rg.offset, end: rg.offset + rg.length, rows: rg.rows, typeMin: rg.typeMin, typeMax: rg.typeMax, idMin: rg.idMin, idMax: rg.idMax })),
  };
}

/** Bytes read from the end of a file to find its footer when nothing else says where it starts. */
export const FOOTER_PROBE_BYTES = 64 * 1024;

/** Parquet ends with <footer><footer length: uint32 LE>"PAR1". */
export function footerStartOf(last8: Buffer, size: number): number | null {
  if (last8.length !== 8 || last8.toString('latin1', 4) !== 'PAR1') return null;
  const start = size - 8 - last8.readUInt32LE(0);
  return start >= 4 ? start : null;
}

export function wholeFile(size: number): ByteRange[] {
  return [[0, size]];
}
