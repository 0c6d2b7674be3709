import type { DayState } from '../catalog';

/**
 * The external (Hive symlink) manifests, `_symlink_format_manifest/dt=D/manifest`,
 * are what Athena, Trino and Spark read instead of the generations. They are
 * unsigned and re-derived from signed data: each may only name data files of
 * its own day, present in the store, each once, and no two whose rows overlap
 * (a compacted file and a file it replaced, or two compacted files over the same
 * inputs), which a rewritten or moved manifest would make an engine read twice.
 * A manifest may lag the live set by one maintenance pass (files stored since
 * are missing from it, or it still names the inputs of a compaction committed
 * after it): that is the documented lag, not a finding.
 */
export interface ExternalManifest {
  key: string;
  dt: string;
  body: string;
}

export interface ManifestFinding {
  key: string;
  message: string;
}

export function checkExternalManifests(
  manifests: readonly ExternalManifest[],
  days: ReadonlyMap<string, DayState>,
  uriOf: (key: string) => string,
  /** The consumer files a compacted file holds, transitively (from the signed compaction digests); empty for a consumer file. */
  rawHeld: (key: string) => ReadonlySet<string>,
): ManifestFinding[] {
  const out: ManifestFinding[] = [];
  for (const m of manifests) {
    const day = days.get(m.dt);
    const byUri = new Map((day?.files ?? []).map((f) => [uriOf(f.key), f.key]));
    const listed: string[] = [];
    const seen = new Set<string>();
    for (const line of m.body.split('\n')) {
      if (line === '') continue;
      const key = byUri.get(line);
      if (key === undefined) {
        out.push({ key: m.key, message: `names ${JSON.stringify(line)}, which is not a data file of dt=${m.dt} in the store` });
        continue;
      }
      if (seen.has(key)) out.push({ key: m.key, message: `names ${key} twice` });
      else listed.push(key);
      seen.add(key);
    }
    const rowsOf = new Map<string, string>(); // consumer file -> the listed file that reads its rows
    for (const key of listed) {
      const held = rawHeld(key);
      for (const raw of held.size > 0 ? held : [key]) {
        const before = rowsOf.get(raw);
        if (before !== undefined) out.push({ key: m.key, message: `names ${before} and ${key}, which both hold the rows of ${raw}: an engine reads them twice` });
        else rowsOf.set(raw, key);
      }
    }
  }
  return out;
}
