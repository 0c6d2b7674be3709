/**
 * The create-if-absent self-check against small in-memory stores that get
 * If-None-Match wrong in the ways real servers have (the issue allows a fake
 * here: no real server is known to fail it on demand). The real servers are
 * checked in test/integration/self-check.test.ts.
 */
import { setImmediate as tick } from 'node:timers/promises';
import { CreateIfAbsentNotEnforcedError, SELF_CHECK_PREFIX, StorageError, checkCreateIfAbsent, type ObjectInfo, type ObjectStore } from '../../storage';

type Mode =
  /** Correct: the check and the write are one step. */
  | 'exclusive'
  /** Ignores If-None-Match: every create succeeds and overwrites. */
  | 'ignores'
  /** Checks, then writes after some I/O: concurrent creates all pass (seaweedfs #8800); a later one is refused. */
  | 'racy'
  /** Tells only the first caller it won, but every body is written: the last one wins the bytes. */
  | 'overwrites'
  /** Refuses everyone, even the first create. */
  | 'refuses-all';

class MemoryStore implements ObjectStore {
  readonly description = 'mem://fake/';
  readonly objects = new Map<string, Buffer>();
  deletes = 0;
  constructor(
    private readonly mode: Mode,
    private readonly opts: { denyDelete?: boolean; failPut?: boolean } = {},
  ) {}

  async putIfAbsent(key: string, body: Buffer | string): Promise<boolean> {
    if (this.opts.failPut) throw new StorageError('conditional put', `mem://fake/${key}`, new Error('connection reset'));
    const bytes = Buffer.from(body);
    switch (this.mode) {
      case 'exclusive':
        if (this.objects.has(key)) return false;
        this.objects.set(key, bytes);
        return true;
      case 'ignores':
        await tick();
        this.objects.set(key, bytes);
        return true;
      case 'racy': {
        const exists = this.objects.has(key);
        await tick();
        if (exists) return false;
        this.objects.set(key, bytes);
        return true;
      }
      case 'overwrites': {
        const first = !this.objects.has(key);
        this.objects.set(key, bytes);
        return first;
      }
      case 'refuses-all':
        return false;
    }
  }

  async get(key: string): Promise<Buffer | null> {
    return this.objects.get(key) ?? null;
  }

  async delete(key: string): Promise<void> {
    if (this.opts.denyDelete) throw new StorageError('delete', `mem://fake/${key}`, new Error('AccessDenied'), 'AccessDenied');
    this.deletes++;
    this.objects.delete(key);
  }

  put = (): Promise<void> => Promise.reject(new Error('not used'));
  putFile = (): Promise<void> => Promise.reject(new Error('not used'));
  getRange = (): Promise<Buffer> => Promise.reject(new Error('not used'));
  download = (): Promise<void> => Promise.reject(new Error('not used'));
  list = (): AsyncIterable<ObjectInfo> => ({ [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(new Error('not used')) }) });
  listPrefixes = (): Promise<string[]> => Promise.reject(new Error('not used'));
  check = (): Promise<void> => Promise.resolve();
  close = (): void => undefined;
}

async function failure(store: ObjectStore): Promise<CreateIfAbsentNotEnforcedError> {
  const err = await checkCreateIfAbsent(store, { owner: 'unit' }).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CreateIfAbsentNotEnforcedError);
  return err as CreateIfAbsentNotEnforcedError;
}

describe('checkCreateIfAbsent', () => {
  it('passes on a store that lets exactly one concurrent create win, and leaves its keys without cleanup', async () => {
    const store = new MemoryStore('exclusive');
    const result = await checkCreateIfAbsent(store, { racers: 8, rounds: 3, owner: 'host:1' });
    expect(result.rounds).toHaveLength(3);
    for (const r of result.rounds) expect(r).toMatchObject({ winners: 1, storedIsWinners: true, secondRefused: true });
    expect(new Set(result.rounds.map((r) => r.key)).size).toBe(3);
    expect(result.leftBehind).toEqual(result.rounds.map((r) => r.key));
    expect([...store.objects.keys()].sort()).toEqual([...result.leftBehind].sort());
    expect(store.deletes).toBe(0);
    // Harmless keys: under _selfcheck/<date>/, outside every dt= partition, the owner made safe.
    for (const key of result.leftBehind) expect(key).toMatch(/^_selfcheck\/\d{4}-\d{2}-\d{2}\/\d{4}-\d{2}-\d{2}T[\d-]+Z-host_1-[0-9a-f-]{36}-\d\.json$/);
  });

  it('fresh keys every run: a second check on the same store passes too', async () => {
    const store = new MemoryStore('exclusive');
    await checkCreateIfAbsent(store);
    await expect(checkCreateIfAbsent(store)).resolves.toMatchObject({ rounds: [{ winners: 1 }, { winners: 1 }, { winners: 1 }] });
  });

  it('with cleanup, deletes its keys', async () => {
    const store = new MemoryStore('exclusive');
    const result = await checkCreateIfAbsent(store, { cleanup: true });
    expect(result.leftBehind).toEqual([]);
    expect(store.objects.size).toBe(0);
  });

  it('cleanup is best-effort: a refused delete leaves the keys, reported, and the check still passes', async () => {
    const store = new MemoryStore('exclusive', { denyDelete: true });
    const result = await checkCreateIfAbsent(store, { cleanup: true, rounds: 2 });
    expect(result.leftBehind).toHaveLength(2);
    expect(result.leftBehind.every((k) => k.startsWith(SELF_CHECK_PREFIX))).toBe(true);
  });

  it('fails on a store that ignores If-None-Match', async () => {
    const err = await failure(new MemoryStore('ignores'));
    expect(err.findings[0]).toMatch(/^8 of 8 concurrent creates of _selfcheck\/\S+ succeeded \(expected exactly 1\)$/);
    expect(err.findings[1]).toMatch(/a create of the existing key _selfcheck\/\S+ succeeded/);
    expect(err.message).toMatch(/^the store mem:\/\/fake\/ does not enforce create-if-absent \(If-None-Match: \*\) under concurrency: /);
    expect(err.message).not.toContain('\n');
    // One failed round is enough.
    expect(err.result.rounds).toHaveLength(1);
  });

  it('fails on a store that checks racily (a later create is refused, concurrent ones are not)', async () => {
    const err = await failure(new MemoryStore('racy'));
    expect(err.findings).toHaveLength(1);
    expect(err.findings[0]).toMatch(/8 of 8 concurrent creates/);
    expect(err.result.rounds[0]).toMatchObject({ winners: 8, secondRefused: true });
  });

  it('fails on a store that reports one winner but keeps another writer’s bytes', async () => {
    const err = await failure(new MemoryStore('overwrites'));
    expect(err.result.rounds[0]).toMatchObject({ winners: 1, storedIsWinners: false });
    expect(err.findings[0]).toMatch(/does not hold the bytes of the one create that succeeded/);
  });

  it('fails on a store where no create ever succeeds', async () => {
    const err = await failure(new MemoryStore('refuses-all'));
    expect(err.findings[0]).toMatch(/0 of 8 concurrent creates/);
  });

  it('cleans up after a failed check too, when asked', async () => {
    const store = new MemoryStore('ignores');
    const err = await checkCreateIfAbsent(store, { cleanup: true }).catch((e: unknown) => e as CreateIfAbsentNotEnforcedError);
    expect(err).toBeInstanceOf(CreateIfAbsentNotEnforcedError);
    expect(store.objects.size).toBe(0);
    expect((err as CreateIfAbsentNotEnforcedError).result.leftBehind).toEqual([]);
  });

  it('a store that fails is a storage error, not a verdict on create-if-absent', async () => {
    await expect(checkCreateIfAbsent(new MemoryStore('exclusive', { failPut: true }))).rejects.toThrow(StorageError);
  });

  it('rejects nonsense options', async () => {
    await expect(checkCreateIfAbsent(new MemoryStore('exclusive'), { racers: 1 })).rejects.toThrow(RangeError);
    await expect(checkCreateIfAbsent(new MemoryStore('exclusive'), { rounds: 0 })).rejects.toThrow(RangeError);
  });
});
