import { BloomFilter } from './bloom';
import type { SubjectFilters } from './subject-filters';

/**
 * The per-file index the consumer writes beside each data file
 * (`_index/dt=.../<name>.json`). It is immutable like the data file and lets
 * the query side decide which files, and which byte ranges of them, can hold an
 * object without opening them.
 */
export interface RowGroupIndex {
  offset: number;
  length: number;
  rows: number;
  typeMin: string | null;
  typeMax: string | null;
  idMin: string | null;
  idMax: string | null;
}

export interface FileIndex {
  version: 1;
  /** Data key, relative to the store prefix. */
  key: string;
  rows: number;
  bytes: number;
  /** Event time bounds, microseconds UTC. */
  minOccurredAt: number;
  maxOccurredAt: number;
  rowGroups: RowGroupIndex[];
  /** Bloom filter of `object_type:object_id` keys (see bloom.ts), base64; absent = no filter. */
  bloom?: string;
  bloomHashes?: number;
  /** Hash family of the Bloom filter; a filter without it (or with another) is ignored, never trusted. */
  bloomHash?: string;
  /** actor_id / tenant_id filters (storage/subject-filters.ts); absent = the file may hold anyone. */
  subjects?: SubjectFilters;
}

/** Can this row group hold rows of (type, id)? Conservative: unknown statistics mean yes. */
export function rowGroupMayContain(rg: RowGroupIndex, type: string, id: string): boolean {
  if (rg.typeMin !== null && type < rg.typeMin) return false;
  if (rg.typeMax !== null && type > rg.typeMax) return false;
  // object_id bounds only apply when the whole row group has this one type.
  if (rg.typeMin === type && rg.typeMax === type) {
    if (rg.idMin !== null && id < rg.idMin) return false;
    if (rg.idMax !== null && id > rg.idMax) return false;
  }
  return true;
}

export function parseFileIndex(text: string, key: string): FileIndex {
  const parsed = JSON.parse(text) as Partial<FileIndex>;
  if (parsed.version !== 1 || typeof parsed.key !== 'string' || !Array.isArray(parsed.rowGroups)) {
    throw new Error(`unsupported index file ${key}`);
  }
  return parsed as FileIndex;
}

/**
 * Compares strings in UTF-8 byte order: the order of Parquet statistics and
 * of DuckDB's VARCHAR comparison. JavaScript's `<` compares UTF-16 code units,
 * which disagrees for characters above U+FFFF (emoji, ...) against U+E000..U+FFFF.
 */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Min/max statistics of a row group's object_type and object_id columns (null = unknown). */
export interface RowGroupKeyStats {
  typeMin: string | null;
  typeMax: string | null;
  idMin: string | null;
  idMax: string | null;
}

/**
 * Can this row group hold rows of (type, id)? Compares in UTF-8 byte order like
 * the Parquet reader does, and checks each column's bounds on its own (a row
 * matches only if its type is within the type bounds *and* its id within the id
 * bounds). Conservative: unknown statistics mean yes. Prefer it to `rowGroupMayContain`.
 */
export function rowGroupMayHold(rg: RowGroupKeyStats, type: string, id: string): boolean {
  if (rg.typeMin !== null && compareUtf8(type, rg.typeMin) < 0) return false;
  if (rg.typeMax !== null && compareUtf8(type, rg.typeMax) > 0) return false;
  if (rg.idMin !== null && compareUtf8(id, rg.idMin) < 0) return false;
  if (rg.idMax !== null && compareUtf8(id, rg.idMax) > 0) return false;
  return true;
}

/** Where the row groups' column chunks end: what follows (Bloom filters, footer) is the file's tail. */
export function indexDataEnd(index: Pick<FileIndex, 'rowGroups'>): number {
  let end = 0;
  for (const rg of index.rowGroups) end = Math.max(end, rg.offset + rg.length);
  return end;
}

/** What the Parquet writer reports about a file it wrote (a structural subset of `WrittenFile`). */
export interface WrittenFileSummary {
  rows: number;
  bytes: number;
  minOccurredAt: number;
  maxOccurredAt: number;
  rowGroups: RowGroupIndex[];
}

/**
 * A Bloom filter of `object_type:object_id` keys (repeats allowed), sized for
 * the distinct keys at a 1% false-positive rate, which keeps the index small
 * when objects have many events per file.
 */
export function objectKeyBloom(objectKeys: Iterable<string>): BloomFilter {
  const distinct = new Set(objectKeys);
  const bloom = BloomFilter.forItems(distinct.size);
  for (const k of distinct) bloom.add(k);
  return bloom;
}

/** Builds the index stored beside a data file, with the Bloom filter of its object keys. */
export function buildFileIndex(key: string, written: WrittenFileSummary, bloom: BloomFilter, subjects?: SubjectFilters): FileIndex {
  return {
    version: 1,
    key,
    rows: written.rows,
    bytes: written.bytes,
    minOccurredAt: written.minOccurredAt,
    maxOccurredAt: written.maxOccurredAt,
    rowGroups: written.rowGroups.map((rg) => ({ ...rg })),
    bloom: bloom.toBase64(),
    bloomHashes: bloom.hashes,
    bloomHash: BLOOM_HASH,
    ...(subjects ? { subjects } : {}),
  };
}

/** Identifies BloomFilter's hashing; bump it whenever storage/bloom.ts hashes differently. */
export const BLOOM_HASH = 'fnv1a-x2';
