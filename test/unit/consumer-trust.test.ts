/**
 * What the consumer acts on from the bucket, as an attacker with PutObject and
 * no signing key could plant it: a chain head (the high-water mark) and a cut
 * claim (where a cut ends). Each is opened under the trust policy, and each
 * forgery is refused with its code, never taken as a number.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { CutClaims } from '../../consumer/cut-claims';
import { createMetrics } from '../../consumer/metrics';
import { ParquetWriter } from '../../consumer/parquet-writer';
import { AuditSink, type InboundMessage } from '../../consumer/sink';
import { encodeRecord } from '../../schemas';
import { cutKey } from '../../storage';
import { FileObjectStore } from '../../storage/file-store';
import { type ChainDigest, DigestChainWriter, DigestSigner, TrustedKeys, UntrustedObjectError, chainKey, generateSigningKey } from '../../trust';
import type { TrustPolicy } from '../../trust/trust-policy';
import { sampleRecord } from '../helpers/records';

let dir: string;
let store: FileObjectStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'consumer-trust-'));
  store = new FileObjectStore(join(dir, 'store'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const newSigner = () => DigestSigner.fromPem(generateSigningKey().privateKeyPem, 'test');
const keysOf = (...signers: DigestSigner[]) => new TrustedKeys(signers.map((s) => TrustedKeys.keyFromPem(s.publicKeyPem, 'test')));
const offsets = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => BigInt(from + i));
const cut = (partition: number, first: number, last: number) => ({ partition, first: BigInt(first), last: BigInt(last), files: [], rowOffsets: offsets(first, last), deadLetters: [] });

/** What `storedThrough` does: a number, or the trust failure's code. */
async function outcome<T>(p: Promise<T>): Promise<T | string> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof UntrustedObjectError) return `${err.code} ${err.key}`;
    throw err;
  }
}

/** A chain digest as an attacker would write it, sealed by `by` (or bare JSON with null). */
function forgedHead(by: DigestSigner | null, over: Partial<ChainDigest> = {}): string {
  const body: ChainDigest = {
    kind: 'chain', topic: 't', partition: 0, seq: 2, from: '20', to: '999999999', files: [], deadLetters: [], skipped: [['20', '999999999']],
    prev: { seq: 1, sha256: '0'.repeat(64) }, writtenAt: new Date().toISOString(), writer: 'mallory', ...over,
  };
  return by ? by.seal(body) : JSON.stringify(body);
}

describe('chain heads: the consumer acts only on a head signed by a trusted key, for its own topic, partition and number', () => {
  let owner: DigestSigner;
  beforeEach(async () => {
    owner = newSigner();
    const w = new DigestChainWriter(store, owner, 't', 'a', keysOf(owner));
    await w.append(cut(0, 0, 9));
    await w.append(cut(0, 10, 19));
  });
  const reader = () => new DigestChainWriter(store, owner, 't', 'b', keysOf(owner));
  const head = chainKey('t', 0, 2);

  it('an untouched chain: its head', async () => {
    expect(await reader().storedThrough(0)).toBe(19n);
  });

  it('an unsigned head with a huge `to`', async () => {
    await store.put(head, forgedHead(null));
    expect(await outcome(reader().storedThrough(0))).toBe(`unsigned ${head}`);
  });

  it('a head signed by an attacker key that is also published in the bucket', async () => {
    const mallory = newSigner();
    await mallory.publish(store, 'consumer');
    await store.put(head, forgedHead(mallory));
    expect(await outcome(reader().storedThrough(0))).toBe(`untrusted-key ${head}`);
    // Appending does not go around it either.
    await expect(reader().append(cut(0, 20, 29))).rejects.toThrow(UntrustedObjectError);
  });

  it("another partition's genuine head copied to the next number", async () => {
    const w = new DigestChainWriter(store, owner, 't', 'a', keysOf(owner));
    for (let i = 0; i < 3; i++) await w.append(cut(1, i * 100, i * 100 + 99));
    await store.put(head, (await store.get(chainKey('t', 1, 2)))!);
    expect(await outcome(reader().storedThrough(0))).toBe(`malformed ${head}`);
  });

  it('an older digest of the same partition copied to the next number', async () => {
    await store.put(head, (await store.get(chainKey('t', 0, 1)))!);
    expect(await outcome(reader().storedThrough(0))).toBe(`malformed ${head}`);
  });

  it('a genuine head with its body edited', async () => {
    const bytes = (await store.get(chainKey('t', 0, 1)))!.toString().replace('\\"to\\":\\"19\\"', '\\"to\\":\\"999999\\"');
    expect(bytes).toContain('999999');
    await store.put(chainKey('t', 0, 1), bytes);
    expect(await outcome(reader().storedThrough(0))).toBe(`bad-signature ${chainKey('t', 0, 1)}`);
  });

  it("a head signed under a pinned key outside the key's validity", async () => {
    const pinned = new TrustedKeys([TrustedKeys.keyFromPem(owner.publicKeyPem, 'test', { validUntil: '2000-01-01T00:00:00Z' })]);
    expect(await outcome(new DigestChainWriter(store, owner, 't', 'b', pinned).storedThrough(0))).toBe(`key-not-valid ${chainKey('t', 0, 1)}`);
  });
});

describe('cut claims: adopted only when trusted and naming this topic, partition and first offset', () => {
  const log = pino({ level: 'silent' });
  let owner: DigestSigner;
  let through: bigint | null;
  beforeEach(() => {
    owner = newSigner();
    through = null;
  });
  const policy = (): TrustPolicy => ({ mode: 'own-key', keys: keysOf(owner), notice: null });
  const claims = (o: { signed: boolean } = { signed: true }) =>
    new CutClaims({
      topic: 't', store, owner: 'me', log, now: Date.now, retry: (_what, op) => op(), onAdopted: () => undefined,
      ...(o.signed ? { policy: policy(), signer: owner, storedThrough: async () => through } : {}),
    });
  const claimBody = (over: Record<string, unknown> = {}) => ({ kind: 'cut' as const, topic: 't', partition: 0, first: '100', last: '199', owner: 'x', claimedAt: new Date().toISOString(), writtenAt: new Date().toISOString(), ...over });
  const key = cutKey('t', 0, '100');

  it('a new claim is sealed, and another member adopts it', async () => {
    expect(await claims().claim(0, 100n, 199n)).toBe(199n);
    expect(JSON.parse((await store.get(key))!.toString())).toMatchObject({ format: 'audit-digest/1', keyId: owner.keyId });
    expect(await claims().claim(0, 100n, 150n)).toBe(199n);
  });

  it('a claim with a huge `last`, signed by an attacker key', async () => {
    const mallory = newSigner();
    await mallory.publish(store, 'consumer');
    await store.put(key, mallory.seal(claimBody({ last: '999999999999' })));
    expect(await outcome(claims().claim(0, 100n, 150n))).toBe(`untrusted-key ${key}`);
  });

  it("a genuine claim of another partition, or another first offset, copied here", async () => {
    await store.put(key, owner.seal(claimBody({ partition: 1 })));
    expect(await outcome(claims().claim(0, 100n, 150n))).toBe(`malformed ${key}`);
    await store.put(key, owner.seal(claimBody({ first: '50' })));
    expect(await outcome(claims().claim(0, 100n, 150n))).toBe(`malformed ${key}`);
    await store.put(key, owner.seal(claimBody({ last: '99' })));
    expect(await outcome(claims().claim(0, 100n, 150n))).toBe(`malformed ${key}`);
  });

  it('an unsigned claim above the signed head halts, saying how to proceed', async () => {
    await store.put(key, JSON.stringify(claimBody({ kind: undefined, last: '999999999999' })));
    through = 99n;
    await expect(claims().claim(0, 100n, 150n)).rejects.toThrow(/unsigned cut claim above the signed chain head \(stored through 99\).*remove it/);
  });

  it("an unsigned claim (the previous release's) at or below the signed head: the cut ends at the head, already stored", async () => {
    await store.put(key, JSON.stringify(claimBody({ kind: undefined, last: '120' })));
    through = 140n;
    expect(await claims().claim(0, 100n, 150n)).toBe(140n);
  });

  it('unsigned mode (a store without keys): legacy claims adopted as before', async () => {
    await store.put(key, JSON.stringify(claimBody({ kind: undefined, writtenAt: undefined })));
    expect(await claims({ signed: false }).claim(0, 100n, 150n)).toBe(199n);
    expect(await claims({ signed: false }).claim(0, 200n, 250n)).toBe(250n);
    expect(JSON.parse((await store.get(cutKey('t', 0, '200')))!.toString())).toMatchObject({ kind: 'cut', last: '250' });
  });
});

describe('the sink on a failed check: the typed error, nothing stored or committed past the genuine chain', () => {
  const messages = (from: number, count: number): InboundMessage[] =>
    Array.from({ length: count }, (_, k) => {
      const i = from + k;
      const rec = sampleRecord({ event_id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, object_id: String(i % 5), occurred_at: Date.UTC(2026, 0, 10) * 1000 + i });
      return { offset: String(i), key: null, value: encodeRecord(rec) };
    });
  let writer: ParquetWriter;
  beforeEach(async () => {
    writer = await ParquetWriter.create({ rowGroupRows: 1024 });
  });
  afterEach(() => writer.close());

  async function signedSink(owner: DigestSigner) {
    const commits: [number, string][] = [];
    const failures: Error[] = [];
    const keys = keysOf(owner);
    const sink = new AuditSink({
      topic: 't', store, writer, commit: async (p, o) => void commits.push([p, o]), deadLetter: async () => undefined,
      log: pino({ level: 'silent' }), metrics: createMetrics(), workDir: join(dir, 'work'), owner: 'test',
      limits: { maxRecords: 100, maxBytes: 1 << 30, maxAgeMs: 1 << 30, memoryMaxBytes: 1 << 30, storeRetryMs: 60_000 },
      chain: new DigestChainWriter(store, owner, 't', 'test', keys), signer: owner, trust: { mode: 'own-key', keys, notice: null },
      onError: (err) => void failures.push(err),
    });
    await sink.append(0, messages(0, 100));
    await sink.settle();
    return { sink, commits, failures };
  }
  const dataFiles = async () => {
    const out: string[] = [];
    for await (const o of store.list('dt=')) out.push(o.key);
    return out;
  };

  it('a planted chain head: the cut fails at once (no retry for a minute), typed, before any file or commit', async () => {
    const owner = newSigner();
    const { sink, commits, failures } = await signedSink(owner);
    expect(commits).toEqual([[0, '100']]);
    const files = await dataFiles();
    await store.put(chainKey('t', 0, 1), forgedHead(null, { seq: 1, from: '100' }));
    const fresh = new DigestChainWriter(store, owner, 't', 'test', keysOf(owner));
    expect(await outcome(fresh.storedThrough(0))).toBe(`unsigned ${chainKey('t', 0, 1)}`);
    // A new process (no cached head) would read it: so does this one after a rebalance.
    await sink.resetAll();
    await sink.append(0, messages(100, 100));
    await expect(sink.settle()).rejects.toThrow(UntrustedObjectError);
    expect(failures.map((e) => (e as UntrustedObjectError).code)).toEqual(['unsigned']);
    expect(commits).toEqual([[0, '100']]);
    expect(await dataFiles()).toEqual(files);
  });

  it('a planted cut claim: the batch that reaches it fails, typed, and nothing is committed', async () => {
    const owner = newSigner();
    const { sink, commits } = await signedSink(owner);
    await store.put(cutKey('t', 0, '100'), newSigner().seal({ kind: 'cut', topic: 't', partition: 0, first: '100', last: '999999999', owner: 'm', claimedAt: '', writtenAt: new Date().toISOString() }));
    await expect(sink.append(0, messages(100, 100))).rejects.toThrow(UntrustedObjectError);
    expect(commits).toEqual([[0, '100']]);
  });
});
