import type { DuckDBConnection } from '@duckdb/node-api';
import { BloomFilter } from './bloom';
import { BLOOM_HASH } from './file-index';

/**
 * Bloom filters of a data file's `actor_id` and `tenant_id` values (issue 20):
 * they let an actor or tenant search skip the files that cannot hold the
 * subject, the way the object filter does for a history. Stored in the per-file
 * index (signed with it, as `filters.actor` / `filters.tenant`) and, through the
 * index, in the day manifest. An index without them says nothing: the file may
 * hold anyone (indexes written before these filters existed, until the
 * maintainer rebuilds them).
 *
 * Sizing: 1% false positives, the object filter's rate. On the 10M-event
 * benchmark (bench/search-bench.ts) a rare actor's 3 events read 4 of 272
 * files, so a lower rate could save at most a file or two per search; other
 * rates were not measured. Filters are per file, not per row group: at the
 * consumer's 16,384-row groups a file has 2-3 of them, and a frequent subject
 * is in all of them.
 */
export interface SubjectFilter {
  /** Hash family (BLOOM_HASH); a filter of another family is ignored, never trusted. */
  hash: string;
  hashes: number;
  /** The filter's bits, base64. */
  bits: string;
}

export interface SubjectFilters {
  actor?: SubjectFilter;
  tenant?: SubjectFilter;
}

export type Subject = keyof SubjectFilters;

export const SUBJECT_FALSE_POSITIVE_RATE = 0.01;

/** Null values are not added: a search for a subject never matches a null column. */
export function subjectBloom(values: Iterable<string | null | undefined>, p = SUBJECT_FALSE_POSITIVE_RATE): SubjectFilter {
  const distinct = new Set<string>();
  for (const v of values) if (typeof v === 'string') distinct.add(v);
  const bloom = BloomFilter.forItems(distinct.size, p);
  for (const v of distinct) bloom.add(v);
  return { hash: BLOOM_HASH, hashes: bloom.hashes, bits: bloom.toBase64() };
}

export function buildSubjectFilters(actors: Iterable<string | null | undefined>, tenants: Iterable<string | null | undefined>): SubjectFilters {
  return { actor: subjectBloom(actors), tenant: subjectBloom(tenants) };
}

/**
 * The filters of a written Parquet file, read back with DuckDB (both columns
 * are dictionary-encoded and small next to the rest of a row).
 */
export async function readSubjectFilters(conn: DuckDBConnection, path: string): Promise<SubjectFilters> {
  const src = `'${path.replace(/'/g, "''")}'`;
  const actors = (await conn.runAndReadAll(`SELECT DISTINCT actor_id AS v FROM read_parquet(${src}) WHERE actor_id IS NOT NULL`)).getRowObjects();
  const tenants = (await conn.runAndReadAll(`SELECT DISTINCT tenant_id AS v FROM read_parquet(${src}) WHERE tenant_id IS NOT NULL`)).getRowObjects();
  return buildSubjectFilters(
    actors.map((r) => String(r.v)),
    tenants.map((r) => String(r.v)),
  );
}

/** A decoded filter, or null when it is absent, malformed or of another hash family (then: may contain). */
export function decodeSubjectFilter(f: SubjectFilter | undefined): BloomFilter | null {
  if (!f || f.hash !== BLOOM_HASH || typeof f.bits !== 'string' || !Number.isSafeInteger(f.hashes) || f.hashes <= 0 || f.hashes > 64) return null;
  const bits = Buffer.from(f.bits, 'base64');
  if (bits.length === 0) return null;
  return new BloomFilter(new Uint8Array(bits), f.hashes);
}

/** True when the index carries usable filters for both subjects (else the maintainer rebuilds it). */
export function hasSubjectFilters(filters: SubjectFilters | undefined): boolean {
  return decodeSubjectFilter(filters?.actor) !== null && decodeSubjectFilter(filters?.tenant) !== null;
}

/**
 * Can a file with these filters hold a row matching every given subject?
 * `tenants` is a set of allowed tenants (a scoped search): the file must be able
 * to hold at least one. Conservative: a missing filter means yes.
 */
export function subjectsMayMatch(filters: { actor: BloomFilter | null; tenant: BloomFilter | null }, want: { actor?: string; tenant?: string; tenants?: readonly string[] }): boolean {
  if (want.actor !== undefined && filters.actor && !filters.actor.mayContain(want.actor)) return false;
  if (want.tenant !== undefined && filters.tenant && !filters.tenant.mayContain(want.tenant)) return false;
  if (want.tenants !== undefined && filters.tenant && !want.tenants.some((t) => filters.tenant!.mayContain(t))) return false;
  return true;
}
