import { type ObjectInfo } from '../storage';
import { type DayGeneration, type DayState, type LiveFile, type ReplacedRange, type StoredFileRef, LIVE_FORMAT, partitionKey } from '../catalog';

type DayFile = ObjectInfo & { ref: StoredFileRef };

/** The files of one (day, topic, partition) to merge into one. */
export interface MergeGroup {
  topic: string;
  partition: number;
  /** Consumer files old enough to compact, and the group's current compacted file (if any). */
  inputs: DayFile[];
}

/**
 * What to merge in a day: per (topic, partition), its live consumer files older
 * than the minimum age, together with its live compacted file. A group with no
 * such consumer file is left alone (already one file, or only young files that
 * a later pass takes, so a day being written is not rewritten every pass).
 */
export function planMerges(day: DayState, now: number, minAgeMs: number): MergeGroup[] {
  const groups = new Map<string, MergeGroup & { fresh: number }>();
  for (const f of day.live) {
    const k = partitionKey(f.ref.topic, f.ref.partition);
    let g = groups.get(k);
    if (!g) groups.set(k, (g = { topic: f.ref.topic, partition: f.ref.partition, inputs: [], fresh: 0 }));
    // A store that cannot tell a file's age (none here does) is treated as old.
    const old = f.lastModified === undefined || now - f.lastModified >= minAgeMs;
    if (f.ref.kind === 'compacted') g.inputs.push(f);
    else if (old) {
      g.inputs.push(f);
      g.fresh++;
    }
  }
  return [...groups.values()].filter((g) => g.fresh > 0).map(({ fresh: _fresh, ...g }) => g);
}

/** A merged group's output, named and uploaded. */
export interface MergedOutput {
  group: MergeGroup;
  file: LiveFile;
}

export interface NextGenerationOptions {
  now: number;
  graceMs: number;
  /** Committed offset per `<topic>/<partition>` of the consumer group; absent = unknown (nothing pruned). */
  committed: ReadonlyMap<string, bigint>;
  /** Keys present in the day's listing. */
  present: ReadonlySet<string>;
}

/**
 * The generation after `prev` once `outputs` are stored: their groups' old
 * compacted files retired, their consumer files hidden. A hidden range is
 * forgotten only when no replay can write its file again (the consumer group
 * committed past it) and its file is gone (deleted after the grace period);
 * a retired file once it is gone.
 */
export function nextGeneration(dt: string, prev: DayGeneration | null, outputs: readonly MergedOutput[], opts: NextGenerationOptions): DayGeneration {
  const retiredNow = new Set(outputs.flatMap((o) => o.group.inputs.filter((f) => f.ref.kind === 'compacted').map((f) => f.key)));
  const replaced: Record<string, ReplacedRange[]> = {};
  for (const [p, ranges] of Object.entries(prev?.replaced ?? {})) {
    const committed = opts.committed.get(p);
    const kept = ranges.filter(([first, last, hiddenAt]) => {
      const fileName = `${p.slice(0, p.lastIndexOf('/'))}-${p.slice(p.lastIndexOf('/') + 1)}-${first}-${last}.parquet`;
      const gone = !opts.present.has(`dt=${dt}/${fileName}`) && opts.now - hiddenAt >= opts.graceMs;
      return !(gone && committed !== undefined && BigInt(last) < committed);
    });
    if (kept.length > 0) replaced[p] = kept;
  }
  for (const o of outputs) {
    for (const f of o.group.inputs) {
      if (f.ref.kind !== 'raw') continue;
      const p = partitionKey(f.ref.topic, f.ref.partition);
      (replaced[p] ??= []).push([f.ref.first, f.ref.last, opts.now]);
    }
  }
  const retired = (prev?.retired ?? []).filter((r) => opts.present.has(r.key));
  for (const key of retiredNow) retired.push({ key, at: opts.now });
  const files = (prev?.files ?? []).filter((f) => !retiredNow.has(f.key)).concat(outputs.map((o) => o.file));
  return {
    format: LIVE_FORMAT,
    dt,
    generation: (prev?.generation ?? 0) + 1,
    committedAt: opts.now,
    files,
    replaced,
    retired,
  };
}

/** What the grace period allows to delete from a day now. */
export interface DayCleanup {
  /** Data files no reader can need any more, with their per-file index keys. */
  data: string[];
  /** Generations older than the newest one. */
  generations: string[];
}

/**
 * Superseded objects of a day whose grace period is over: consumer files
 * hidden by the newest generation, compacted files it no longer names (retired
 * ones from their retirement; unnamed ones, left by a maintainer that lost a
 * race or was killed before its commit, from their upload: a maintainer still
 * working has not passed the grace period), and older generations once the
 * newest has been committed for the grace period.
 */
export function planCleanup(day: DayState, now: number, graceMs: number): DayCleanup {
  const gen = day.generation;
  const out: DayCleanup = { data: [], generations: [] };
  if (!gen) return out;
  const liveKeys = new Set(day.live.map((f) => f.key));
  const replacedAt = new Map<string, number>();
  for (const [p, ranges] of Object.entries(gen.replaced)) for (const [first, last, at] of ranges) replacedAt.set(`${p}/${first}-${last}`, at);
  const retiredAt = new Map(gen.retired.map((r) => [r.key, r.at]));
  for (const f of day.files) {
    if (liveKeys.has(f.key)) continue;
    let since: number | undefined;
    if (f.ref.kind === 'raw') since = replacedAt.get(`${partitionKey(f.ref.topic, f.ref.partition)}/${f.ref.first}-${f.ref.last}`);
    else since = retiredAt.get(f.key) ?? f.lastModified;
    // A file hidden again after a replay rewrote it: its range was hidden long ago, and it is a copy.
    if (since !== undefined && now - since >= graceMs) out.data.push(f.key);
  }
  if (now - gen.committedAt >= graceMs) {
    for (const g of day.generations) if (g.generation < gen.generation) out.generations.push(g.key);
  }
  return out;
}
