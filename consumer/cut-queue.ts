import type { FlushReason } from './cut-policy';
import type { TakenRows } from './partition-buffer';

/** A sealed offset range waiting to be stored and committed. */
export interface SealedCut extends TakenRows {
  partition: number;
  first: bigint;
  last: bigint;
  reason: FlushReason;
  sealedAt: number;
}

/** Sealed cuts of one partition, stored and committed strictly in order by one loop. */
interface PartitionQueue {
  cuts: SealedCut[];
  bytes: number;
  held: number;
  rows: number;
  running: Promise<void> | null;
  /** Why the loop stopped; reported once to whoever waits next, then retried. */
  failure: Error | null;
  /** Woken after every stored cut and when the loop stops. */
  waiters: (() => void)[];
}

export interface CutQueuesDeps {
  /** Stores and commits one cut; a rejection stops its partition's loop. */
  storeCut: (cut: SealedCut) => Promise<void>;
  /** Keeps the group membership alive while a caller waits long. */
  heartbeat: () => Promise<void>;
  /** A partition's loop stopped on a failure (after the retry budget). */
  onFailure: (err: Error, partition: number) => void;
}

/**
 * The commit order: each partition's sealed cuts are stored and committed by
 * one loop, strictly in order, so a cut is committed only after the cuts
 * before it and a failed cut blocks every later commit of its partition.
 * Sealed rows stay in memory until committed; their sizes are summed here for
 * the memory bound.
 */
export class CutQueues {
  private readonly queues = new Map<number, PartitionQueue>();

  constructor(private readonly deps: CutQueuesDeps) {}

  private queue(partition: number): PartitionQueue {
    let q = this.queues.get(partition);
    if (!q) {
      q = { cuts: [], bytes: 0, held: 0, rows: 0, running: null, failure: null, waiters: [] };
      this.queues.set(partition, q);
    }
    return q;
  }

  get bytes(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.bytes;
    return n;
  }

  get held(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.held;
    return n;
  }

  get rows(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.rows;
    return n;
  }

  get isIdle(): boolean {
    for (const q of this.queues.values()) if (q.cuts.length > 0) return false;
    return true;
  }

  /** Cuts of the partition waiting to be stored. */
  pending(partition: number): number {
    return this.queues.get(partition)?.cuts.length ?? 0;
  }

  /** The partition whose queued cuts hold the most memory; null when nothing is queued. */
  heaviest(): number | null {
    let best: [number, PartitionQueue] | null = null;
    for (const entry of this.queues) if (entry[1].cuts.length > 0 && (best === null || entry[1].held > best[1].held)) best = entry;
    return best ? best[0] : null;
  }

  push(cut: SealedCut): void {
    const q = this.queue(cut.partition);
    q.cuts.push(cut);
    q.bytes += cut.bytes;
    q.held += cut.held;
    q.rows += cut.rows.length;
    this.run(cut.partition);
  }

  /** Starts the partition's store-and-commit loop unless it is running or stopped by a failure. */
  private run(partition: number): void {
    const q = this.queue(partition);
    if (q.running || q.failure || q.cuts.length === 0) return;
    q.running = (async () => {
      while (q.cuts.length > 0) {
        const cut = q.cuts[0]!;
        await this.deps.storeCut(cut);
        q.cuts.shift();
        q.bytes -= cut.bytes;
        q.held -= cut.held;
        q.rows -= cut.rows.length;
        wake(q);
      }
    })()
      .catch((err: Error) => {
        q.failure = err;
        this.deps.onFailure(err, partition);
      })
      .finally(() => {
        q.running = null;
        wake(q);
        // A cut sealed between the loop's last check and here would otherwise wait for the next seal.
        if (q.cuts.length > 0 && !q.failure) this.run(partition);
      });
  }

  /**
   * Runs (or resumes) a partition's queue and waits for it (all of it, or only
   * its oldest cut), heartbeating while it takes long; rethrows (once) the
   * failure that stopped it.
   */
  async wait(partition: number, oneCut = false): Promise<void> {
    const q = this.queue(partition);
    takeFailure(q);
    this.run(partition);
    const target = oneCut ? q.cuts[0] : undefined;
    const beat = setInterval(() => void this.deps.heartbeat(), 3_000);
    try {
      while (q.running && (target === undefined || q.cuts.includes(target))) {
        await new Promise<void>((resolve) => q.waiters.push(resolve));
      }
    } finally {
      clearInterval(beat);
    }
    takeFailure(q);
  }

  /** Waits until every sealed cut is stored and committed; rethrows (once) a queue's failure. */
  async settle(): Promise<void> {
    const errors: Error[] = [];
    await Promise.all([...this.queues.keys()].map((p) => this.wait(p).catch((err: Error) => void errors.push(err))));
    if (errors.length > 0) throw errors[0]!;
  }
}

function takeFailure(q: PartitionQueue): void {
  if (q.failure) {
    const failure = q.failure;
    q.failure = null;
    throw failure;
  }
}

function wake(q: PartitionQueue): void {
  const waiters = q.waiters;
  q.waiters = [];
  for (const w of waiters) w();
}
