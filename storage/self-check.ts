import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { ObjectStore } from './object-store';

/**
 * Start-up self-check: does the store enforce create-if-absent under
 * concurrency? The exactly-once cut claims (`_cuts/`) and the maintainer's
 * generation-numbered manifests rely on `putIfAbsent` (S3 `If-None-Match: *`)
 * letting exactly one of several concurrent writers create a key. A server
 * that ignores the header, or checks it racily (SeaweedFS once accepted
 * concurrent ones: seaweedfs #8800), would silently let two consumers both
 * "win" a cut. Run before writing anything; refuse to start when it fails.
 *
 * Each round races `racers` putIfAbsent calls (distinct bodies) on one fresh
 * key and requires: exactly one reported winner, the stored bytes are the
 * winner's, and one more attempt on the now existing key is refused.
 *
 * Keys live under `_selfcheck/` (outside every `dt=` partition, so no reader,
 * index or verification counts them) and carry the date, host and a random
 * id, so they never collide and leaving them is harmless (about 100 bytes per
 * round): the consumer has no delete permission in production. With
 * `cleanup`, the keys are deleted afterwards, best-effort (the maintainer,
 * which may delete, can pass it; it may also remove old `_selfcheck/` keys).
 */

export const SELF_CHECK_PREFIX = '_selfcheck/';

export interface SelfCheckOptions {
  /** Concurrent creates per round (default 8). */
  racers?: number;
  /** Rounds, each on its own key (default 3): a racy check may let one round through. */
  rounds?: number;
  /** Delete the probe keys afterwards, best-effort (default false: needs delete permission). */
  cleanup?: boolean;
  /** Who runs the check, in the key (default: host name and pid). */
  owner?: string;
}

export interface SelfCheckRound {
  key: string;
  /** Racers that were told they created the key (must be 1). */
  winners: number;
  /** The stored object holds the body of the (one) winner. */
  storedIsWinners: boolean;
  /** A create after the race, on the existing key, was refused (must be true). */
  secondRefused: boolean;
}

export interface SelfCheckResult {
  rounds: SelfCheckRound[];
  /** Probe keys that are still in the store (no cleanup asked, or a delete failed). */
  leftBehind: string[];
  ms: number;
}

/** The store does not enforce create-if-absent: the pipeline must not run on it. */
export class CreateIfAbsentNotEnforcedError extends Error {
  constructor(
    readonly store: string,
    readonly findings: readonly string[],
    readonly result: SelfCheckResult,
  ) {
    super(
      `the store ${store} does not enforce create-if-absent (If-None-Match: *) under concurrency: ${findings.join('; ')}; ` +
        'exactly-once storage relies on it, so this store cannot be used',
    );
    this.name = 'CreateIfAbsentNotEnforcedError';
  }
}

function probeKey(owner: string, round: number): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  // The owner is free text (host names, pids): keep the key to safe characters.
  const who = owner.replace(/[^A-Za-z0-9_.-]/g, '_').slice(0, 64);
  return `${SELF_CHECK_PREFIX}${stamp.slice(0, 10)}/${stamp}-${who}-${randomUUID()}-${round}.json`;
}

/**
 * Runs the check; resolves with what it saw when the store enforces
 * create-if-absent, rejects with CreateIfAbsentNotEnforcedError when it does
 * not, and with the store's own error (StorageError) when the store fails.
 */
export async function checkCreateIfAbsent(store: ObjectStore, opts: SelfCheckOptions = {}): Promise<SelfCheckResult> {
  const racers = opts.racers ?? 8;
  const roundsWanted = opts.rounds ?? 3;
  if (!Number.isInteger(racers) || racers < 2) throw new RangeError('racers must be an integer >= 2');
  if (!Number.isInteger(roundsWanted) || roundsWanted < 1) throw new RangeError('rounds must be an integer >= 1');
  const owner = opts.owner ?? `${hostname()}:${process.pid}`;
  const t0 = Date.now();
  const rounds: SelfCheckRound[] = [];
  const findings: string[] = [];
  const written: string[] = [];
  try {
    for (let r = 0; r < roundsWanted; r++) {
      const key = probeKey(owner, r);
      written.push(key);
      const bodies = Array.from({ length: racers }, (_, i) => JSON.stringify({ selfCheck: 'create-if-absent', owner, round: r, racer: i, nonce: randomUUID() }));
      // All requests are issued before any answer is awaited, so they overlap on the server.
      const won = await Promise.all(bodies.map((body) => store.putIfAbsent(key, body)));
      const winners = won.filter(Boolean).length;
      const stored = (await store.get(key))?.toString('utf8') ?? null;
      const winner = won.indexOf(true);
      const storedIsWinners = winners === 1 && stored === bodies[winner];
      const secondRefused = !(await store.putIfAbsent(key, JSON.stringify({ selfCheck: 'create-if-absent', owner, round: r, second: true })));
      rounds.push({ key, winners, storedIsWinners, secondRefused });
      if (winners !== 1) findings.push(`${winners} of ${racers} concurrent creates of ${key} succeeded (expected exactly 1)`);
      else if (!storedIsWinners) findings.push(`${key} does not hold the bytes of the one create that succeeded (another create overwrote it)`);
      if (!secondRefused) findings.push(`a create of the existing key ${key} succeeded`);
      // One failed round is proof enough; the next ones would only add noise.
      if (findings.length > 0) break;
    }
  } finally {
    // Cleanup runs whatever happened, and never hides the outcome.
    if (opts.cleanup) {
      const deleted = await Promise.allSettled(written.map((k) => store.delete(k)));
      written.splice(0, written.length, ...written.filter((_, i) => deleted[i]!.status === 'rejected'));
    }
  }
  const result: SelfCheckResult = { rounds, leftBehind: written, ms: Date.now() - t0 };
  if (findings.length > 0) throw new CreateIfAbsentNotEnforcedError(store.description, findings, result);
  return result;
}
