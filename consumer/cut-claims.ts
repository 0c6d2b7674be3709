import type { Logger } from 'pino';
import { type ObjectStore, cutKey } from '../storage';
import { type CutClaim, legacyClaim } from '../storage/cut-claim';
import { type Opened, UntrustedObjectError } from '../trust/signed-object';
import type { DigestSigner } from '../trust/signer';
import { type TrustPolicy, openUnderPolicy } from '../trust/trust-policy';
import { TrustedKeys } from '../trust/trusted-keys';

export interface CutClaimsDeps {
  topic: string;
  store: Pick<ObjectStore, 'putIfAbsent' | 'get'>;
  owner: string;
  log: Logger;
  now: () => number;
  /** Runs a storage call under the sink's retry budget. */
  retry: <T>(what: string, op: () => Promise<T>) => Promise<T>;
  onAdopted: () => void;
  /** How claims are opened; absent = unsigned mode (claims taken as written, as before signing). */
  policy?: TrustPolicy;
  /** Seals the claims this consumer writes; absent = bare JSON. */
  signer?: DigestSigner | null;
  /** The chain's signed high-water mark of a partition (null: no digest yet); needed with a signer. */
  storedThrough?: (partition: number) => Promise<bigint | null>;
}

const UNSIGNED_POLICY: TrustPolicy = { mode: 'unsigned', keys: new TrustedKeys(), notice: null };

/**
 * Fixes where a cut ends, for every member of the group, before any file of
 * it is written: the range [first, last] is claimed with a create-if-absent
 * object keyed by `first`. Whoever claims `first` fixes `last` for everyone, so
 * a replay after a crash, or another member after a rebalance, cuts at the same
 * offsets and writes the same keys (an overwrite, never a second copy).
 *
 * A claim steers what is committed, so an existing one is adopted only once
 * opened under the trust policy and found to name this topic, partition and
 * first offset, with `last >= first`. Anything else stops the consumer
 * (`UntrustedObjectError`): adopting it could commit offsets nobody stored.
 * The one exception is an unsigned claim (the previous release's format) on a
 * partition whose signed chain already covers `first`: the cut is stored, so
 * the claim no longer matters, and the cut ends at the chain's head instead.
 */
export class CutClaims {
  constructor(private readonly deps: CutClaimsDeps) {}

  /** Claims [first, proposedLast], or adopts an earlier claim: returns the cut's last offset either way. */
  async claim(partition: number, first: bigint, proposedLast: bigint): Promise<bigint> {
    const key = cutKey(this.deps.topic, partition, first.toString());
    const at = new Date(this.deps.now()).toISOString();
    const claim: CutClaim = {
      kind: 'cut',
      topic: this.deps.topic,
      partition,
      first: first.toString(),
      last: proposedLast.toString(),
      owner: this.deps.owner,
      claimedAt: at,
      writtenAt: at,
    };
    const bytes = this.deps.signer ? this.deps.signer.seal(claim) : JSON.stringify(claim);
    if (await this.deps.retry('claim', () => this.deps.store.putIfAbsent(key, bytes))) return proposedLast;
    const existing = await this.deps.retry('read claim', () => this.deps.store.get(key));
    if (existing === null) throw new Error(`cut claim ${key} vanished while being read`);
    const adopted = await this.adoptable(key, existing, partition, first);
    this.deps.onAdopted();
    this.deps.log.info({ partition, first: claim.first, last: adopted.toString() }, 'adopting an earlier cut claim');
    return adopted;
  }

  private async adoptable(key: string, bytes: Buffer, partition: number, first: bigint): Promise<bigint> {
    let opened: Opened<CutClaim>;
    try {
      opened = openUnderPolicy<CutClaim>(this.deps.policy ?? UNSIGNED_POLICY, bytes, key, 'cut', legacyClaim);
    } catch (err) {
      if (!(err instanceof UntrustedObjectError && err.code === 'unsigned' && this.deps.storedThrough)) throw err;
      const through = await this.deps.retry('read digests', () => this.deps.storedThrough!(partition));
      if (through !== null && through >= first) {
        this.deps.log.info({ partition, first: first.toString(), through: through.toString() }, 'unsigned cut claim below the signed chain head ignored: the cut is stored');
        return through;
      }
      throw new UntrustedObjectError(
        key,
        'unsigned',
        `unsigned cut claim above the signed chain head (${through === null ? 'no digest yet' : `stored through ${through}`}): written by the previous release or without the key; remove it with the maintainer's or an admin's credentials and restart (offsets from ${first} are re-read from Kafka)`,
      );
    }
    const c = opened.body;
    let last: bigint;
    try {
      last = BigInt(c.last);
    } catch {
      throw new UntrustedObjectError(key, 'malformed', `last ${JSON.stringify(c.last)} is not an offset`);
    }
    if (c.topic !== this.deps.topic || c.partition !== partition || c.first !== first.toString()) {
      throw new UntrustedObjectError(key, 'malformed', `claims ${String(c.topic)}/${String(c.partition)} from ${String(c.first)}, not ${this.deps.topic}/${partition} from ${first}`);
    }
    if (last < first) throw new UntrustedObjectError(key, 'malformed', `last ${last} is before first ${first}`);
    return last;
  }
}
