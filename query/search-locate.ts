import { readFile } from 'node:fs/promises';
import {
  DATA_PREFIX,
  INDEX_PREFIX,
  type FileIndex,
  type ObjectInfo,
  type ObjectStore,
  decodeSubjectFilter,
  liveDataFiles,
  manifestKey,
  openDayManifest,
  parseStoredFile,
  subjectsMayMatch,
} from '../storage';
import { mapLimit } from '../storage/concurrency';
import { openFileIndex } from '../storage/signed-index';
import { UntrustedObjectError } from '../trust/signed-object';
import type { TrustPolicy } from '../trust/trust-policy';
import type { ObjectCache } from './cache';
import type { RejectedIndex } from './locate';

/** What a search looks for, as the indexes can tell (action has no filter: it only narrows the read). */
export interface SubjectWanted {
  actor?: string;
  tenant?: string;
  /** A scoped search: the file must be able to hold one of these tenants. */
  tenants?: readonly string[];
  /** Event time bounds, µs, inclusive; null = unbounded. */
  sinceUs: number | null;
  untilUs: number | null;
}

export interface DayCandidates {
  dt: string;
  /** Live data files of the day. */
  listed: number;
  candidates: { key: string; size: number }[];
  manifestFetched: boolean;
  /** Files whose index came from the day manifest. */
  fromManifest: number;
  rejected: RejectedIndex[];
}

const indexKeyOf = (dataKey: string) => INDEX_PREFIX + dataKey.replace(/\.parquet$/, '.json');

/**
 * The data files of one day that can hold the subject: the day's live files
 * (under its newest trusted generation, so compaction's superseded inputs are
 * never read twice), each kept unless its index's actor/tenant filters or time
 * bounds rule it out. Indexes come from the day manifest when it describes the
 * file (key and size), else from the per-file index; one that fails the trust
 * check, or has no subject filters (written before them), keeps its file.
 */
export async function locateSubjectDay(store: ObjectStore, cache: ObjectCache, policy: TrustPolicy, dt: string, want: SubjectWanted): Promise<DayCandidates> {
  const [dataObjects, indexObjects] = await Promise.all([listAll(store, `${DATA_PREFIX}${dt}/`), listAll(store, `${INDEX_PREFIX}${DATA_PREFIX}${dt}/`)]);
  const rejected: RejectedIndex[] = [];
  const { files, rejected: rejectedGenerations } = await liveDataFiles(dataObjects, {
    policy,
    store,
    get: async (key) => {
      const size = dataObjects.find((o) => o.key === key)?.size;
      let body = await readFile(await cache.file(key));
      if (size !== undefined && body.length !== size) body = await readFile(await cache.file(key, { refresh: true }));
      return body;
    },
  });
  for (const g of rejectedGenerations) rejected.push({ key: g.key, code: g.code, message: g.reason });
  const indexed = new Set(indexObjects.map((o) => o.key));
  const byKey = new Map<string, FileIndex>();
  let manifestFetched = false;
  if (indexed.has(manifestKey(dt)) && files.length > 0) {
    try {
      const body = await cache.fetchObject(manifestKey(dt));
      if (body !== null) {
        manifestFetched = true;
        for (const f of openDayManifest(policy, body, manifestKey(dt)).files) {
          if (parseStoredFile(f.index.key)?.dt === dt) byKey.set(f.index.key, f.index as FileIndex);
        }
      }
    } catch (err) {
      if (!(err instanceof UntrustedObjectError)) throw err;
      rejected.push({ key: manifestKey(dt), code: err.code, message: err.message });
    }
  }
  let fromManifest = 0;
  const kept = await mapLimit(files, 32, async (f): Promise<{ key: string; size: number } | null> => {
    let index: FileIndex | null = null;
    const m = byKey.get(f.key);
    if (m && m.bytes === f.size && m.subjects) {
      index = m;
      fromManifest++;
    } else if (indexed.has(indexKeyOf(f.key))) {
      const found = await loadIndex(cache, indexKeyOf(f.key), f, policy);
      if ('code' in found) rejected.push(found);
      else index = found;
    }
    if (index && !mayHold(index, want)) return null;
    return { key: f.key, size: f.size };
  });
  return { dt, listed: files.length, candidates: kept.filter((c): c is { key: string; size: number } => c !== null), manifestFetched, fromManifest, rejected };
}

function mayHold(index: FileIndex, want: SubjectWanted): boolean {
  if (want.sinceUs !== null && index.maxOccurredAt < want.sinceUs) return false;
  if (want.untilUs !== null && index.minOccurredAt > want.untilUs) return false;
  const filters = { actor: decodeSubjectFilter(index.subjects?.actor), tenant: decodeSubjectFilter(index.subjects?.tenant) };
  return subjectsMayMatch(filters, {
    ...(want.actor !== undefined ? { actor: want.actor } : {}),
    ...(want.tenant !== undefined ? { tenant: want.tenant } : {}),
    ...(want.tenants !== undefined ? { tenants: want.tenants } : {}),
  });
}

/** A per-file index under the trust policy (a cached copy that fails is fetched again once: the maintainer rewrites failed indexes). */
async function loadIndex(cache: ObjectCache, key: string, file: ObjectInfo, policy: TrustPolicy): Promise<FileIndex | RejectedIndex> {
  let refused: UntrustedObjectError | undefined;
  for (const refresh of [false, true]) {
    const bytes = await readFile(await cache.file(key, { refresh }));
    try {
      return openFileIndex(policy, bytes, key, file).index;
    } catch (err) {
      if (!(err instanceof UntrustedObjectError)) throw err;
      refused = err;
    }
  }
  return { key, code: refused!.code, message: refused!.message };
}

async function listAll(store: ObjectStore, prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of store.list(prefix)) out.push(o);
  return out;
}
