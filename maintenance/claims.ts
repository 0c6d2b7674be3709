import type { ObjectStore } from '../storage';
import { partitionKey } from '../storage';
import { parseEnvelope } from '../trust/signed-object';

/** A cut claim's key and the first offset of its cut. */
interface Claim {
  key: string;
  first: bigint;
}

/**
 * Cut claims (`_cuts/<topic>/<partition>/<first>.json`) that no replay can need:
 * the consumer group has committed past their cut. Cuts of a partition are
 * contiguous, so a claim is done when the next one starts at or before the
 * committed offset; the newest claim below it is read to be sure its cut ends there.
 */
export async function doneClaims(store: ObjectStore, committed: ReadonlyMap<string, bigint>): Promise<string[]> {
  const done: string[] = [];
  for (const topicPrefix of await store.listPrefixes('_cuts/')) {
    const topic = topicPrefix.slice('_cuts/'.length, -1);
    for (const partitionPrefix of await store.listPrefixes(topicPrefix)) {
      const partition = Number(partitionPrefix.slice(topicPrefix.length, -1));
      const upTo = committed.get(partitionKey(topic, partition));
      if (upTo === undefined || !Number.isSafeInteger(partition)) continue;
      const claims: Claim[] = [];
      for await (const o of store.list(partitionPrefix)) {
        const m = /\/(\d+)\.json$/.exec(o.key);
        if (m) claims.push({ key: o.key, first: BigInt(m[1]!) });
      }
      claims.sort((a, b) => (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
      for (let i = 0; i < claims.length; i++) {
        const c = claims[i]!;
        if (c.first >= upTo) break;
        const next = claims[i + 1];
        if (next && next.first <= upTo) {
          done.push(c.key);
          continue;
        }
        const body = await store.get(c.key);
        if (body === null) continue;
        const last = claimedLast(body);
        if (last !== null && last < upTo) done.push(c.key);
      }
    }
  }
  return done;
}

/**
 * A claim's `last`, signed (the consumer's envelope) or bare (unsigned stores,
 * the previous release); null when unreadable, and the claim is then kept.
 * Unchecked on purpose: it only decides whether this very object is removed,
 * and keeping a claim is always safe (the consumer halts on one it cannot trust).
 */
function claimedLast(bytes: Buffer): bigint | null {
  try {
    const envelope = parseEnvelope(bytes);
    const claim = JSON.parse(envelope ? envelope.body : bytes.toString('utf8')) as { last?: unknown };
    return typeof claim.last === 'string' ? BigInt(claim.last) : null;
  } catch {
    return null;
  }
}
