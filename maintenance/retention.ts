import type { ObjectInfo, ObjectStore } from '../storage';
import { INDEX_PREFIX } from '../storage';
import { deleteKeys } from '../storage/bulk-delete';
import { mapLimit } from '../storage/concurrency';
import { type RetentionDigest, retentionDigestKey } from '../trust/format';
import { UntrustedObjectError } from '../trust/signed-object';
import type { DigestSigner } from '../trust/signer';
import { type TrustPolicy, openUnderPolicy } from '../trust/trust-policy';
import { EXTERNAL_MANIFEST_PREFIX } from './external-manifest';

/** Everything stored for one day: data and generations, its indexes, its external manifest. */
export async function dayObjects(store: ObjectStore, dt: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for (const prefix of [`dt=${dt}/`, `${INDEX_PREFIX}dt=${dt}/`, `${EXTERNAL_MANIFEST_PREFIX}dt=${dt}/`]) {
    for await (const o of store.list(prefix)) out.push(o);
  }
  return out;
}

/** The last day kept by a retention period (days before it are removed), as YYYY-MM-DD. */
export function retentionCutoff(now: number, retentionMs: number): string {
  return new Date(now - retentionMs).toISOString().slice(0, 10);
}

/**
 * Objects of a day still under S3 Object Lock (retention not yet over, or a
 * legal hold). A day with any is kept whole: deleting the rest would leave a
 * day that silently lacks events.
 */
export async function lockedObjects(store: ObjectStore, objects: readonly ObjectInfo[], now: number, concurrency: number): Promise<{ count: number; until: number | null }> {
  if (!store.lockStatus) return { count: 0, until: null };
  let count = 0;
  let until: number | null = null;
  await mapLimit(objects, concurrency, async (o) => {
    const lock = await store.lockStatus!(o.key);
    if (!lock) return;
    const retained = lock.retainUntil !== null && lock.retainUntil > now;
    if (retained || lock.legalHold) {
      count++;
      if (retained && (until === null || lock.retainUntil! > until)) until = lock.retainUntil;
    }
  });
  return { count, until };
}

/**
 * Removes a day: data files first, then generations, then indexes and the
 * external manifest, so that a reader in the middle of it sees fewer files of
 * an expired day, never hidden ones come back.
 */
export async function removeDay(store: ObjectStore, objects: readonly ObjectInfo[], concurrency: number): Promise<number> {
  const rank = (key: string) => (key.startsWith('dt=') ? (key.includes('/_live/') ? 1 : 0) : 2);
  const ordered = [...objects].sort((a, b) => rank(a.key) - rank(b.key));
  for (const r of [0, 1, 2]) {
    await deleteKeys(store, ordered.filter((o) => rank(o.key) === r).map((o) => o.key), concurrency);
  }
  return objects.length;
}

export interface RemovalRecord {
  dt: string;
  retentionMs: number;
  now: number;
  writer: string;
  /** What is about to be removed (dayObjects). */
  objects: readonly ObjectInfo[];
}

/**
 * Signs the removal of a day before anything of it goes, so verify can tell a
 * removal by policy from a deletion; returns the data files that were stored
 * into the day after an earlier removal.
 *
 * Such files exist: the consumer learns of removed days from these digests at
 * most every few minutes (consumer/expired-days.ts), and a late event that
 * arrives in between is stored into the removed day. Past retention, the
 * event is not kept (the consumer dead-letters it once it knows), so the file
 * is removed too; but a later listing than the digest would make verify call
 * it deleted, so the digest is signed again, naming the file, with the first
 * removal's time kept. An earlier digest that fails the trust check is
 * replaced: it decided nothing (the day is removed by the clock and
 * AUDIT_RETENTION), and a signed one must stand in its place.
 */
export async function signRemoval(store: Pick<ObjectStore, 'get' | 'put' | 'putIfAbsent'>, signer: DigestSigner, policy: TrustPolicy, r: RemovalRecord): Promise<{ key: string; size: number }[]> {
  const key = retentionDigestKey(r.dt);
  const body: RetentionDigest = { kind: 'retention', dt: r.dt, retentionMs: r.retentionMs, writtenAt: new Date(r.now).toISOString(), writer: r.writer };
  if (await store.putIfAbsent(key, signer.seal(body))) return [];
  const data = r.objects.filter((o) => o.key.startsWith(`dt=${r.dt}/`) && o.key.endsWith('.parquet')).map((o) => ({ key: o.key, size: o.size }));
  if (data.length === 0) return [];
  let earlier: RetentionDigest | null = null;
  const bytes = await store.get(key);
  if (bytes !== null) {
    try {
      const opened = openUnderPolicy<RetentionDigest>(policy, bytes, key, 'retention', () => {
        throw new Error('not a signed retention digest');
      }).body;
      if (opened.dt === r.dt) earlier = opened;
    } catch (err) {
      if (!(err instanceof UntrustedObjectError)) throw err;
    }
  }
  const late = data.map((f) => ({ ...f, removedAt: body.writtenAt }));
  await store.put(key, signer.seal({ ...body, firstWrittenAt: earlier?.firstWrittenAt ?? earlier?.writtenAt ?? body.writtenAt, late: [...(earlier?.late ?? []), ...late] }));
  return data;
}
