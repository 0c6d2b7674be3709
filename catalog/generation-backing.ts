import type { ObjectStore } from '../storage/object-store';
import type { DayGeneration, StoredFileRef } from './live-set';
import { type CompactionDigest, DIGEST_ROOT } from '../trust/format';
import { UntrustedObjectError, openSigned } from '../trust/signed-object';
import type { TrustPolicy } from '../trust/trust-policy';

/**
 * Generations written before signing (the previous release) are unsigned. On a
 * signed store such a generation is used only if it is exactly what the
 * signed compaction digests of its day imply, so a bucket writer without a key
 * gains nothing by writing one: every named file has a trusted compaction
 * digest; no named file is held by another (no row twice); every hidden
 * consumer file and every retired compacted file is held (through the digests'
 * `replaced`, transitively) by a named file; every present signed compacted
 * file is named or held by a named one (none dropped); every present consumer
 * file held by a named file is hidden. The first commit by a maintainer with
 * a key replaces it with a signed generation (maintenance/README.md).
 */

/** The day's compaction digests that open under the policy's keys, by compacted file key; others vouch for nothing. */
export async function signedCompactions(store: Pick<ObjectStore, 'list' | 'get'>, policy: TrustPolicy, dt: string): Promise<Map<string, CompactionDigest>> {
  const out = new Map<string, CompactionDigest>();
  if (policy.keys.size === 0) return out;
  for await (const o of store.list(`${DIGEST_ROOT}compaction/dt=${dt}/`)) {
    const bytes = await store.get(o.key);
    if (bytes === null) continue;
    try {
      const { body } = openSigned<CompactionDigest>(bytes, o.key, policy.keys, 'compaction');
      if (body.dt === dt && `${DIGEST_ROOT}compaction/${body.file.key.replace(/\.parquet$/, '.json')}` === o.key) out.set(body.file.key, body);
    } catch (err) {
      if (!(err instanceof UntrustedObjectError)) throw err;
    }
  }
  return out;
}

/** Why an unsigned generation is not backed by the signed compaction digests; null when it is. */
export function legacyGenerationProblem(
  gen: DayGeneration,
  present: readonly { key: string; ref: StoredFileRef }[],
  digests: ReadonlyMap<string, CompactionDigest>,
): string | null {
  const heldBy = (key: string, seen = new Set<string>()): Set<string> => {
    const out = new Set<string>();
    const d = digests.get(key);
    if (!d || seen.has(key)) return out;
    seen.add(key);
    for (const r of d.replaced) {
      out.add(r.key);
      for (const k of heldBy(r.key, seen)) out.add(k);
    }
    return out;
  };
  const named = new Set(gen.files.map((f) => f.key));
  const held = new Set<string>();
  for (const f of gen.files) {
    if (!digests.has(f.key)) return `it names ${f.key}, which no trusted compaction digest describes`;
    for (const k of heldBy(f.key)) held.add(k);
  }
  for (const k of named) if (held.has(k)) return `it names ${k} and a file that already holds its rows`;
  for (const [p, ranges] of Object.entries(gen.replaced)) {
    const slash = p.lastIndexOf('/');
    for (const [first, last] of ranges) {
      const key = `dt=${gen.dt}/${p.slice(0, slash)}-${p.slice(slash + 1)}-${first}-${last}.parquet`;
      if (!held.has(key)) return `it hides ${key}, which no named compacted file holds`;
    }
  }
  for (const r of gen.retired) if (!held.has(r.key)) return `it retires ${r.key}, which no named compacted file holds`;
  const hidden = new Set(Object.entries(gen.replaced).flatMap(([p, ranges]) => ranges.map(([a, b]) => `${p}/${a}-${b}`)));
  for (const f of present) {
    if (f.ref.kind === 'compacted') {
      if (digests.has(f.key) && !named.has(f.key) && !held.has(f.key)) return `it leaves out ${f.key}, a signed compacted file no named file holds`;
    } else if (held.has(f.key) && !hidden.has(`${f.ref.topic}/${f.ref.partition}/${f.ref.first}-${f.ref.last}`)) {
      return `it shows ${f.key}, whose rows a named compacted file holds`;
    }
  }
  return null;
}
