import type { ObjectInfo, ObjectStore } from '../storage/object-store';
import { COMPACTED_KEY_RE, GENERATION_KEY_RE, isDt, parseDataKey } from '../storage/layout';
import { type SignedBody, type TrustFailureCode, UntrustedObjectError } from '../trust/signed-object';
import { type TrustPolicy, openUnderPolicy } from '../trust/trust-policy';
import { legacyGenerationProblem, signedCompactions } from './generation-backing';

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

const COMPACTED_RE = COMPACTED_KEY_RE;
const GENERATION_RE = GENERATION_KEY_RE;

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

/** A generation as the maintainer signs it (trust/signed-object.ts): the generation plus who wrote it and when. */
export type SignedGeneration = DayGeneration & SignedBody & { kind: typeof GENERATION_KIND };
export const GENERATION_KIND = 'generation';

/** The unsigned format, written by a maintainer without a key (and by releases before signing). */
export function encodeGeneration(gen: DayGeneration): string {
  return JSON.stringify(gen);
}

/** The body a maintainer with a key seals (`signer.seal(signedGenerationBody(...))`). */
export function signedGenerationBody(gen: DayGeneration, writer: string, now: number): SignedGeneration {
  return { kind: GENERATION_KIND, writtenAt: new Date(now).toISOString(), writer, ...gen };
}

/**
 * Parses an unsigned generation. A damaged one is an error, not an empty
 * generation: callers decide what to fall back to (readers: the newest one
 * that passes, with a warning; the maintainer: nothing, it stops).
 */
export function decodeGeneration(body: Buffer | string, key: string): DayGeneration {
  let g: unknown;
  try {
    g = JSON.parse(body.toString());
  } catch (err) {
    throw new LiveSetError(key, (err as Error).message);
  }
  return checkGeneration(g, key);
}

/** The fields every generation must hold, and a (dt, number) matching its key (a generation copied to another key is refused). */
function checkGeneration(value: unknown, key: string): DayGeneration {
  if (value === null || typeof value !== 'object') throw new LiveSetError(key, 'not an object');
  const g = value as Partial<DayGeneration>;
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
 * How generations are read: under the process's trust policy. A generation
 * steers what readers see and what the maintainer deletes, and anyone who can
 * write the bucket can write one, so only a generation signed by a trusted key
 * (or, on a store from before signing, one re-derived from the signed
 * compaction digests: generation-backing.ts) is acted on.
 */
export interface GenerationSource {
  policy: TrustPolicy;
  /** A generation's bytes (callers may cache them: generations are immutable). */
  get(key: string): Promise<Buffer | null>;
  /** The store, for the signed compaction digests that can vouch for an unsigned generation of the previous release. */
  store: Pick<ObjectStore, 'list' | 'get'>;
}

/** A generation that failed the check: never acted on. */
export interface RejectedGeneration {
  key: string;
  generation: number;
  code: TrustFailureCode;
  reason: string;
}

/** The newest generation of a day that passes the check, and the newer ones that did not. */
export interface GenerationChoice {
  generation: DayGeneration | null;
  /** Newest first; empty when the newest generation passed (or the day has none). */
  rejected: RejectedGeneration[];
}

/** Opens one generation under the policy; throws UntrustedObjectError (with a code) when it fails. */
export async function openGeneration(bytes: Buffer, key: string, day: DayObjects, source: GenerationSource): Promise<DayGeneration> {
  try {
    const { body } = openUnderPolicy<SignedGeneration>(source.policy, bytes, key, GENERATION_KIND, (b) => decodeGeneration(b, key) as SignedGeneration);
    return checkGeneration(body, key);
  } catch (err) {
    if (err instanceof LiveSetError) throw new UntrustedObjectError(key, 'malformed', err.message);
    if (!(err instanceof UntrustedObjectError) || err.code !== 'unsigned') throw err;
  }
  // An unsigned generation on a signed store: one of the previous release, or a forgery.
  // It is used only if the signed compaction digests prove every choice it makes.
  let legacy: DayGeneration;
  try {
    legacy = decodeGeneration(bytes, key);
  } catch (err) {
    throw new UntrustedObjectError(key, 'malformed', (err as Error).message);
  }
  const problem = legacyGenerationProblem(legacy, day.files, await signedCompactions(source.store, source.policy, legacy.dt));
  if (problem) throw new UntrustedObjectError(key, 'unsigned', `unsigned, and not backed by the day's signed compaction digests: ${problem}`);
  return legacy;
}

/**
 * The newest generation of a day that passes the check (null: none, every
 * consumer file is live). Falling back shows no row twice: an older
 * generation names older compacted files and hides only what they hold; it may
 * show fewer rows, and the caller says so (readers warn, the maintainer stops).
 */
export async function chooseGeneration(day: DayObjects, source: GenerationSource): Promise<GenerationChoice> {
  const rejected: RejectedGeneration[] = [];
  for (let i = day.generations.length - 1; i >= 0; i--) {
    const g = day.generations[i]!;
    const body = await source.get(g.key);
    if (body === null) {
      // Only retention removes a newest generation, and with it the whole day; older ones go by cleanup.
      if (i === day.generations.length - 1) throw new LiveSetError(g.key, 'listed but gone (the day is being removed?)');
      continue;
    }
    try {
      return { generation: await openGeneration(body, g.key, day, source), rejected };
    } catch (err) {
      if (!(err instanceof UntrustedObjectError)) throw err;
      rejected.push({ key: g.key, generation: g.generation, code: err.code, reason: err.message });
    }
  }
  return { generation: null, rejected };
}

/**
 * The live data files of a listing that may span many days: for each day with
 * generations, its newest trusted one is applied. Objects outside valid day
 * folders and names outside the layout are never returned.
 */
export async function liveDataFiles(
  objects: readonly ObjectInfo[],
  source: GenerationSource,
): Promise<{ files: (ObjectInfo & { ref: StoredFileRef })[]; rejected: RejectedGeneration[] }> {
  const byDay = new Map<string, ObjectInfo[]>();
  for (const o of objects) {
    const dt = /^dt=(\d{4}-\d{2}-\d{2})\//.exec(o.key)?.[1];
    if (!dt || !isDt(dt)) continue;
    let list = byDay.get(dt);
    if (!list) byDay.set(dt, (list = []));
    list.push(o);
  }
  const days = await Promise.all(
    [...byDay].map(async ([dt, list]) => {
      const day = splitDay(dt, list);
      const choice = await chooseGeneration(day, source);
      return { files: liveFiles(day.files, choice.generation), rejected: choice.rejected };
    }),
  );
  return { files: days.flatMap((d) => d.files), rejected: days.flatMap((d) => d.rejected) };
}

/** One line per rejected generation, for a reader's stderr. */
export function rejectionWarning(r: RejectedGeneration, usedInstead: string): string {
  return `warning: generation ${r.key} failed the trust check (${r.code}: ${r.reason}); ${usedInstead}`;
}

/** One day as the store holds it now: its objects, newest trusted generation and live data files. */
export interface DayState extends DayObjects {
  dt: string;
  generation: DayGeneration | null;
  /** Generations newer than `generation` that failed the check (newest first). */
  rejected: RejectedGeneration[];
  live: (ObjectInfo & { ref: StoredFileRef })[];
}

/** Lists `dt=D/` and applies its newest trusted generation. */
export async function readDay(store: Pick<ObjectStore, 'list' | 'get'>, dt: string, policy: TrustPolicy): Promise<DayState> {
  const objects: ObjectInfo[] = [];
  for await (const o of store.list(`dt=${dt}/`)) objects.push(o);
  const day = splitDay(dt, objects);
  const { generation, rejected } = await chooseGeneration(day, { policy, store, get: (key) => store.get(key) });
  return { ...day, dt, generation, rejected, live: liveFiles(day.files, generation) };
}
