import type { ObjectInfo, ObjectStore } from './object-store';
import { isDt, parseDataKey } from './layout';

/**
 * Which data files of a day are live: the commit protocol of compaction.
 *
 * A day partition `dt=D/` holds two kinds of data files:
 *   - written by the consumer: `<topic>-<partition>-<first>-<last>.parquet`, named by
 *     the Kafka offsets of their rows (a replay writes the same name);
 *   - written by compaction: `<topic>-<partition>-<first>-<last>.c<generation>-<token>.parquet`,
 *     all of one partition's rows of the day in one file.
 * and the day's generations, `dt=D/_live/<generation, 10 digits>.json`. A
 * generation is created with create-if-absent (`If-None-Match: *`), so exactly
 * one maintainer commits each number: that PUT is the commit point. The newest
 * generation decides, for everyone, which files are live:
 *   - a compacted file is live if and only if the newest generation names it;
 *   - a consumer file is live unless its exact (topic, partition, first, last)
 *     is among the newest generation's `replaced` ranges. A consumer file that
 *     appears after the generation (late events, a new cut) is live at once,
 *     and one that a replay writes again under a replaced name stays hidden.
 * Superseded files are deleted only after a grace period longer than any
 * query, so a reader that listed the previous generation can still read it.
 * With no generation, every consumer file is live (the layout of round one).
 */

export const LIVE_FORMAT = 'audit-live/1';

/** A compacted file of the day, as its generation names it. */
export interface LiveFile {
  key: string;
  size: number;
  rows: number;
  topic: string;
  partition: number;
  /** Kafka offsets of the first and last rows it holds (offset order). */
  first: string;
  last: string;
}

/** A consumer file's offset range hidden since `hiddenAt` (epoch ms), because a compacted file holds its rows. */
export type ReplacedRange = [first: string, last: string, hiddenAt: number];

export interface DayGeneration {
  format: typeof LIVE_FORMAT;
  dt: string;
  generation: number;
  /** Epoch ms of the commit (from the committing maintainer's clock). */
  committedAt: number;
  /** The live compacted files. */
  files: LiveFile[];
  /** Hidden consumer files, by `<topic>/<partition>`. */
  replaced: Record<string, ReplacedRange[]>;
  /** Compacted files of earlier generations, superseded at `at` (epoch ms): deleted once the grace period has passed. */
  retired: { key: string; at: number }[];
}

export type StoredFileKind = 'raw' | 'compacted';

export interface StoredFileRef {
  key: string;
  dt: string;
  topic: string;
  partition: number;
  first: string;
  last: string;
  kind: StoredFileKind;
  /** Generation that wrote a compacted file. */
  generation?: number;
}

const COMPACTED_RE = /^dt=(\d{4}-\d{2}-\d{2})\/(.+)-(\d+)-(\d+)-(\d+)\.c(\d+)-([0-9a-z]+)\.parquet$/;
const GENERATION_RE = /^dt=(\d{4}-\d{2}-\d{2})\/_live\/(\d{10})\.json$/;

/** A data file of either kind; null for anything else (generations, indexes, foreign objects). */
export function parseStoredFile(key: string): StoredFileRef | null {
  const raw = parseDataKey(key);
  if (raw) return { key, dt: raw.dt, topic: raw.topic, partition: raw.partition, first: raw.firstOffset, last: raw.lastOffset, kind: 'raw' };
  const m = COMPACTED_RE.exec(key);
  if (!m || !isDt(m[1]!)) return null;
  return { key, dt: m[1]!, topic: m[2]!, partition: Number(m[3]), first: m[4]!, last: m[5]!, kind: 'compacted', generation: Number(m[6]) };
}

export function compactedFileName(topic: string, partition: number, first: string, last: string, generation: number, token: string): string {
  return `${topic}-${partition}-${first}-${last}.c${generation}-${token}.parquet`;
}

export function generationKey(dt: string, generation: number): string {
  return `dt=${dt}/_live/${String(generation).padStart(10, '0')}.json`;
}

/** The (dt, generation) of a generation key; null for any other key. */
export function parseGenerationKey(key: string): { dt: string; generation: number } | null {
  const m = GENERATION_RE.exec(key);
  return m && isDt(m[1]!) ? { dt: m[1]!, generation: Number(m[2]) } : null;
}

export function partitionKey(topic: string, partition: number): string {
  return `${topic}/${partition}`;
}

export class LiveSetError extends Error {
  constructor(
    readonly key: string,
    why: string,
  ) {
    super(`unusable generation ${key}: ${why}`);
    this.name = 'LiveSetError';
  }
}

export function encodeGeneration(gen: DayGeneration): string {
  return JSON.stringify(gen);
}

/**
 * Parses a generation. A damaged one is an error, never skipped: falling back
 * to an older generation, or to none, would show replaced files again
 * (every compacted event twice).
 */
export function decodeGeneration(body: Buffer | string, key: string): DayGeneration {
  let g: Partial<DayGeneration>;
  try {
    g = JSON.parse(body.toString()) as Partial<DayGeneration>;
  } catch (err) {
    throw new LiveSetError(key, (err as Error).message);
  }
  const where = parseGenerationKey(key);
  if (g.format !== LIVE_FORMAT) throw new LiveSetError(key, `unknown format ${String(g.format)}`);
  if (!where || g.dt !== where.dt || g.generation !== where.generation) throw new LiveSetError(key, 'does not match its key');
  if (!Array.isArray(g.files) || typeof g.replaced !== 'object' || g.replaced === null || !Array.isArray(g.retired)) {
    throw new LiveSetError(key, 'missing fields');
  }
  return g as DayGeneration;
}

/** A day's listing, split: data files (either kind) and generation keys, newest last. */
export interface DayObjects {
  files: (ObjectInfo & { ref: StoredFileRef })[];
  generations: { key: string; generation: number; lastModified?: number }[];
}

export function splitDay(dt: string, objects: Iterable<ObjectInfo>): DayObjects {
  const out: DayObjects = { files: [], generations: [] };
  for (const o of objects) {
    const ref = parseStoredFile(o.key);
    if (ref) {
      if (ref.dt === dt) out.files.push({ ...o, ref });
      continue;
    }
    const g = parseGenerationKey(o.key);
    if (g && g.dt === dt) out.generations.push({ key: o.key, generation: g.generation, lastModified: o.lastModified });
  }
  out.generations.sort((a, b) => a.generation - b.generation);
  return out;
}

/** Membership test for a generation's replaced ranges. */
export function replacedSet(gen: DayGeneration | null): Set<string> {
  const set = new Set<string>();
  if (!gen) return set;
  for (const [p, ranges] of Object.entries(gen.replaced)) for (const [first, last] of ranges) set.add(`${p}/${first}-${last}`);
  return set;
}

/** Is this data file live under the day's newest generation (null = none)? */
export function isLive(ref: StoredFileRef, gen: DayGeneration | null, replaced = replacedSet(gen), named = namedSet(gen)): boolean {
  if (ref.kind === 'compacted') return named.has(ref.key);
  return !replaced.has(`${partitionKey(ref.topic, ref.partition)}/${ref.first}-${ref.last}`);
}

export function namedSet(gen: DayGeneration | null): Set<string> {
  return new Set(gen ? gen.files.map((f) => f.key) : []);
}

/** The live data files of a day's listing under its newest generation. */
export function liveFiles<T extends { ref: StoredFileRef }>(files: readonly T[], gen: DayGeneration | null): T[] {
  const replaced = replacedSet(gen);
  const named = namedSet(gen);
  return files.filter((f) => isLive(f.ref, gen, replaced, named));
}

/**
 * The live data files of a listing that may span many days: for each day with
 * generations, its newest one is fetched (generations are immutable: callers
 * may cache them by key) and applied.
 */
export async function liveDataFiles(
  objects: readonly ObjectInfo[],
  fetchGeneration: (key: string) => Promise<Buffer | null>,
): Promise<(ObjectInfo & { ref: StoredFileRef })[]> {
  const byDay = new Map<string, ObjectInfo[]>();
  for (const o of objects) {
    const dt = /^dt=(\d{4}-\d{2}-\d{2})\//.exec(o.key)?.[1];
    if (!dt) continue;
    let list = byDay.get(dt);
    if (!list) byDay.set(dt, (list = []));
    list.push(o);
  }
  const days = await Promise.all(
    [...byDay].map(async ([dt, list]) => {
      const day = splitDay(dt, list);
      return liveFiles(day.files, await newestGeneration(day, fetchGeneration));
    }),
  );
  return days.flat();
}

/** The newest generation of a day (null when it has none). */
export async function newestGeneration(
  day: DayObjects,
  fetchGeneration: (key: string) => Promise<Buffer | null>,
): Promise<DayGeneration | null> {
  const newest = day.generations[day.generations.length - 1];
  if (!newest) return null;
  const body = await fetchGeneration(newest.key);
  // Only retention removes a newest generation, and with it the whole day.
  if (body === null) throw new LiveSetError(newest.key, 'listed but gone (the day is being removed?)');
  return decodeGeneration(body, newest.key);
}

/** One day as the store holds it now: its objects, newest generation and live data files. */
export interface DayState extends DayObjects {
  dt: string;
  generation: DayGeneration | null;
  live: (ObjectInfo & { ref: StoredFileRef })[];
}

/** Lists `dt=D/` and applies its newest generation. */
export async function readDay(store: Pick<ObjectStore, 'list' | 'get'>, dt: string): Promise<DayState> {
  const objects: ObjectInfo[] = [];
  for await (const o of store.list(`dt=${dt}/`)) objects.push(o);
  const day = splitDay(dt, objects);
  const generation = await newestGeneration(day, (key) => store.get(key));
  return { ...day, dt, generation, live: liveFiles(day.files, generation) };
}
