import { type CutClaim, legacyClaim } from '../storage/cut-claim';
import type { ObjectStore } from '../storage';
import { partitionKey } from '../storage';
import { mapLimit } from '../storage/concurrency';
import { UntrustedObjectError } from '../trust/signed-object';
import { type TrustPolicy, openUnderPolicy } from '../trust/trust-policy';

/**
 * A cut claim below the group's committed offset failed the trust check in a
 * way only a key holder or a tampered object explains (another key, a bad
 * signature, a key outside its validity, a body that does not match its key).
 * The maintainer deletes claims, so it stops here, as on a generation that
 * fails: nothing is deleted on it, and the operator must look.
 */
export class UntrustedClaimError extends Error {
  constructor(readonly untrusted: UntrustedObjectError) {
    super(`cut claim ${untrusted.message} (${untrusted.code}); stopping, no claim removed (maintenance/README.md)`);
    this.name = 'UntrustedClaimError';
  }
}

export interface ClaimsScan {
  /** Claims whose signed `last` is below the committed offset: no replay can need them. */
  done: string[];
  /**
   * Unsigned claims on a signed store (the previous release's format, or a
   * planted object): kept, never removed on their word, and named each pass.
   * Not a halt: keeping a claim is always safe, and the consumer itself
   * refuses one above its signed chain head.
   */
  kept: UntrustedObjectError[];
}

/**
 * Cut claims (`_cuts/<topic>/<partition>/<first>.json`) that no replay can need.
 * Each claim that starts below the committed offset is opened under the trust
 * policy and removed only when its own signed `last` is below that offset: the
 * key names of other claims decide nothing, since anyone who can write the
 * bucket can create one.
 */
export async function scanClaims(store: ObjectStore, committed: ReadonlyMap<string, bigint>, policy: TrustPolicy, concurrency: number): Promise<ClaimsScan> {
  const candidates: { key: string; topic: string; partition: number; first: bigint; upTo: bigint }[] = [];
  for (const topicPrefix of await store.listPrefixes('_cuts/')) {
    const topic = topicPrefix.slice('_cuts/'.length, -1);
    for (const partitionPrefix of await store.listPrefixes(topicPrefix)) {
      const partition = Number(partitionPrefix.slice(topicPrefix.length, -1));
      if (!Number.isSafeInteger(partition)) continue;
      const upTo = committed.get(partitionKey(topic, partition));
      if (upTo === undefined) continue;
      for await (const o of store.list(partitionPrefix)) {
        const m = /\/(\d+)\.json$/.exec(o.key);
        if (!m) continue;
        const first = BigInt(m[1]!);
        if (first < upTo) candidates.push({ key: o.key, topic, partition, first, upTo });
      }
    }
  }
  const kept: UntrustedObjectError[] = [];
  const opened = await mapLimit(candidates, concurrency, async (c) => {
    const bytes = await store.get(c.key);
    if (bytes === null) return null;
    try {
      const last = claimedLast(policy, bytes, c.key, c.topic, c.partition, c.first);
      return last < c.upTo ? c.key : null;
    } catch (err) {
      if (!(err instanceof UntrustedObjectError)) throw err;
      if (err.code !== 'unsigned') throw new UntrustedClaimError(err);
      kept.push(err);
      return null;
    }
  });
  return { done: opened.filter((k): k is string => k !== null), kept };
}

/** The claim's `last`, once opened under the policy and found to be the claim its key names. */
function claimedLast(policy: TrustPolicy, bytes: Buffer, key: string, topic: string, partition: number, first: bigint): bigint {
  const { body } = openUnderPolicy<CutClaim>(policy, bytes, key, 'cut', legacyClaim);
  if (body.topic !== topic || body.partition !== partition || body.first !== first.toString()) {
    throw new UntrustedObjectError(key, 'malformed', `claims ${String(body.topic)}/${String(body.partition)} from ${String(body.first)}, not what its key names`);
  }
  let last: bigint;
  try {
    last = BigInt(body.last);
  } catch {
    throw new UntrustedObjectError(key, 'malformed', `last ${JSON.stringify(body.last)} is not an offset`);
  }
  if (last < first) throw new UntrustedObjectError(key, 'malformed', `last ${last} is before first ${first}`);
  return last;
}
