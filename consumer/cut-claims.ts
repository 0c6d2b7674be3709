import type { Logger } from 'pino';
import { type ObjectStore, cutKey } from '../storage';

/** The claim stored at `_cuts/<topic>/<partition>/<firstOffset>.json`. */
export interface CutClaim {
  topic: string;
  partition: number;
  first: string;
  last: string;
  owner: string;
  claimedAt: string;
}

export interface CutClaimsDeps {
  topic: string;
  store: Pick<ObjectStore, 'putIfAbsent' | 'get'>;
  owner: string;
  log: Logger;
  now: () => number;
  /** Runs a storage call under the sink's retry budget. */
  retry: <T>(what: string, op: () => Promise<T>) => Promise<T>;
  onAdopted: () => void;
}

/**
 * Fixes where a cut ends, for every member of the group, before any file of
 * it is written: the range [first, last] is claimed with a create-if-absent
 * object keyed by `first`. Whoever claims `first` fixes `last` for everyone, so
 * a replay after a crash, or another member after a rebalance, cuts at the same
 * offsets and writes the same keys (an overwrite, never a second copy).
 */
export class CutClaims {
  constructor(private readonly deps: CutClaimsDeps) {}

  /** Claims [first, proposedLast], or adopts an earlier claim: returns the cut's last offset either way. */
  async claim(partition: number, first: bigint, proposedLast: bigint): Promise<bigint> {
    const key = cutKey(this.deps.topic, partition, first.toString());
    const claim: CutClaim = {
      topic: this.deps.topic,
      partition,
      first: first.toString(),
      last: proposedLast.toString(),
      owner: this.deps.owner,
      claimedAt: new Date(this.deps.now()).toISOString(),
    };
    if (await this.deps.retry('claim', () => this.deps.store.putIfAbsent(key, JSON.stringify(claim)))) return proposedLast;
    const existing = await this.deps.retry('read claim', () => this.deps.store.get(key));
    if (existing === null) throw new Error(`cut claim ${key} vanished while being read`);
    const adopted = BigInt((JSON.parse(existing.toString('utf8')) as CutClaim).last);
    this.deps.onAdopted();
    this.deps.log.info({ partition, first: claim.first, last: adopted.toString() }, 'adopting an earlier cut claim');
    return adopted;
  }
}
