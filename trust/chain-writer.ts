import type { ObjectStore } from '../storage/object-store';
import { type ChainDigest, type FileEntry, chainKey, sha256Hex } from './format';
import { UntrustedObjectError, openSigned } from './signed-object';
import type { DigestSigner } from './signer';
import { TrustedKeys } from './trusted-keys';

/** The newest digest of a partition's chain, as a writer needs it to append. */
export interface ChainHead {
  seq: number;
  from: bigint;
  to: bigint;
  sha256: string;
}

/** A stored cut, as the consumer hands it over for its digest. */
export interface StoredCut {
  partition: number;
  first: bigint;
  last: bigint;
  files: FileEntry[];
  /** Offsets of the cut's rows, ascending (every file's rows together). */
  rowOffsets: readonly bigint[];
  /** Offsets sent to the dead-letter topic, ascending. */
  deadLetters: readonly bigint[];
}

export class DigestChainError extends Error {
  constructor(
    readonly topic: string,
    readonly partition: number,
    why: string,
  ) {
    super(`digest chain of ${topic}/${partition}: ${why}`);
    this.name = 'DigestChainError';
  }
}

/**
 * Appends one signed digest per stored cut to its partition's chain, before
 * the cut's offsets are committed. The chain's objects are numbered and
 * created with create-if-absent, so two writers of one partition (a member
 * that lost it in a rebalance and the one that got it) cannot fork it: the
 * loser finds the winner's digest covering the same cut (cuts have fixed
 * offsets, see consumer/cut-claims.ts) and goes on. A replay after a crash
 * between digest and commit finds its cut already covered (`storedThrough`)
 * and only commits. The head is found by probing numbers (doubling, then bisecting),
 * about 2·log2(n) small GETs when a partition is first stored by a process.
 *
 * The head is the consumer's high-water mark, so it is opened like any object
 * the pipeline acts on (trust/signed-object.ts): signed by a trusted key, and
 * digest `seq` of this topic and partition. Anything else is an
 * `UntrustedObjectError`: the consumer stops rather than skip what it claims.
 */
export class DigestChainWriter {
  private readonly heads = new Map<number, ChainHead | null>();

  constructor(
    private readonly store: Pick<ObjectStore, 'get' | 'putIfAbsent'>,
    private readonly signer: DigestSigner,
    private readonly topic: string,
    private readonly writer: string,
    /** The policy's keys; by default only the signer's own (a store signed by several keys needs AUDIT_TRUSTED_KEYS_FILE). */
    private readonly keys: TrustedKeys = new TrustedKeys([TrustedKeys.keyFromPem(signer.publicKeyPem, 'the signing key')]),
    private readonly now: () => number = Date.now,
  ) {}

  /** Forgets cached heads (after a rebalance another member may have appended). */
  reset(): void {
    this.heads.clear();
  }

  /**
   * The last offset the chain accounts for (null: no digest yet). Every offset
   * up to it is stored, dead-lettered or skipped, whoever wrote it: a cut at or
   * below it was stored before a crash or by another member, and a replay that
   * reaches above it (the group's offsets were reset after its claims were
   * removed) stores only the offsets after it.
   */
  async storedThrough(partition: number): Promise<bigint | null> {
    return (await this.head(partition))?.to ?? null;
  }

  async append(cut: StoredCut): Promise<void> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const head = await this.head(cut.partition);
      // Covered meanwhile by another writer of the same cut (cuts have fixed offsets).
      if (head !== null && head.to >= cut.last) return;
      const from = head === null ? cut.first : head.to + 1n;
      if (from > cut.first) {
        throw new DigestChainError(this.topic, cut.partition, `cut ${cut.first}-${cut.last} starts inside digest ${head!.seq} (${head!.from}-${head!.to})`);
      }
      const seq = head === null ? 0 : head.seq + 1;
      const body: ChainDigest = {
        kind: 'chain',
        topic: this.topic,
        partition: cut.partition,
        seq,
        from: from.toString(),
        to: cut.last.toString(),
        files: cut.files,
        deadLetters: cut.deadLetters.map(String),
        skipped: skippedRanges(from, cut.last, cut.rowOffsets, cut.deadLetters),
        prev: head === null ? null : { seq: head.seq, sha256: head.sha256 },
        writtenAt: new Date(this.now()).toISOString(),
        writer: this.writer,
      };
      const bytes = this.signer.seal(body);
      if (await this.store.putIfAbsent(chainKey(this.topic, cut.partition, seq), bytes)) {
        this.heads.set(cut.partition, { seq, from, to: cut.last, sha256: sha256Hex(bytes) });
        return;
      }
      // Another writer took this number: read its digest and decide again.
      this.heads.delete(cut.partition);
    }
    throw new DigestChainError(this.topic, cut.partition, 'could not append after 100 attempts');
  }

  private async head(partition: number): Promise<ChainHead | null> {
    if (this.heads.has(partition)) return this.heads.get(partition)!;
    const head = await this.probe(partition);
    this.heads.set(partition, head);
    return head;
  }

  private async probe(partition: number): Promise<ChainHead | null> {
    if ((await this.readRaw(partition, 0)) === null) return null;
    let lo = 0; // known present
    let hi = 1;
    while ((await this.readRaw(partition, hi)) !== null) {
      lo = hi;
      hi *= 2;
    }
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if ((await this.readRaw(partition, mid)) !== null) lo = mid;
      else hi = mid;
    }
    const bytes = (await this.readRaw(partition, lo))!;
    const d = this.decode(partition, lo, bytes);
    return { seq: lo, from: BigInt(d.from), to: BigInt(d.to), sha256: sha256Hex(bytes) };
  }

  private readRaw(partition: number, seq: number): Promise<Buffer | null> {
    return this.store.get(chainKey(this.topic, partition, seq));
  }

  private decode(partition: number, seq: number, bytes: Buffer): ChainDigest {
    const key = chainKey(this.topic, partition, seq);
    const { body } = openSigned<ChainDigest>(bytes, key, this.keys, 'chain');
    if (body.seq !== seq || body.partition !== partition || body.topic !== this.topic) {
      throw new UntrustedObjectError(key, 'malformed', `holds digest ${String(body.seq)} of ${String(body.topic)}/${String(body.partition)}, not digest ${seq} of ${this.topic}/${partition}`);
    }
    let from: bigint;
    let to: bigint;
    try {
      from = BigInt(body.from);
      to = BigInt(body.to);
    } catch {
      throw new UntrustedObjectError(key, 'malformed', `offsets ${String(body.from)}-${String(body.to)} are not numbers`);
    }
    if (from < 0n || to < from) throw new UntrustedObjectError(key, 'malformed', `offsets ${from}-${to} are not a range`);
    return body;
  }
}

/**
 * Offsets of [from, to] that are neither rows nor dead letters: what Kafka
 * never delivered (transaction markers, offsets compacted or expired in Kafka).
 */
export function skippedRanges(from: bigint, to: bigint, rows: readonly bigint[], dead: readonly bigint[]): [string, string][] {
  const out: [string, string][] = [];
  let next = from;
  let i = 0;
  let j = 0;
  while (i < rows.length || j < dead.length) {
    const o = j >= dead.length || (i < rows.length && rows[i]! < dead[j]!) ? rows[i++]! : dead[j++]!;
    if (o > next) out.push([next.toString(), (o - 1n).toString()]);
    if (o >= next) next = o + 1n;
  }
  if (next <= to) out.push([next.toString(), to.toString()]);
  return out;
}
