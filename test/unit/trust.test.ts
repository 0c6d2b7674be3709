/**
 * The trust building blocks without servers: skipped-offset accounting, Ed25519
 * envelopes and key publication, the chain writer's head probing and races,
 * byte-identical Parquet for a replayed cut, and the verifier's arithmetic on
 * a local store.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ParquetWriter } from '../../consumer/parquet-writer';
import { stageRow } from '../../consumer/staging/staged-row';
import { FileObjectStore } from '../../storage/file-store';
import {
  type ChainDigest,
  type CompactionDigest,
  DigestChainWriter,
  DigestSigner,
  type FileEntry,
  SigningKeyError,
  TrustedKeys,
  chainKey,
  compactionDigestKey,
  decodeBody,
  decodeEnvelope,
  generateSigningKey,
  keyObjectKey,
  skippedRanges,
  verifySignature,
  xorRowHashes,
} from '../../trust';
import { verifyStore } from '../../verify/verify';
import { sampleRecord } from '../helpers/records';

let dir: string;
let store: FileObjectStore;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'trust-'));
  store = new FileObjectStore(join(dir, 'store'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const signer = () => DigestSigner.fromPem(generateSigningKey().privateKeyPem, 'test');
const entry = (key: string, first: number, last: number, rows = last - first + 1): FileEntry => ({
  key, size: 10, sha256: createHash('sha256').update(key).digest('hex'), rows, first: String(first), last: String(last), rowHash: createHash('md5').update(key).digest('hex'),
});
const offsets = (from: number, to: number, except: number[] = []) => {
  const out: bigint[] = [];
  for (let o = from; o <= to; o++) if (!except.includes(o)) out.push(BigInt(o));
  return out;
};

describe('skippedRanges', () => {
  it('names exactly the offsets that are neither rows nor dead letters', () => {
    expect(skippedRanges(0n, 9n, offsets(0, 9), [])).toEqual([]);
    expect(skippedRanges(0n, 9n, offsets(0, 9, [3, 7]), [7n])).toEqual([['3', '3']]);
    // A gap before the first row (Kafka skipped it, e.g. a transaction marker), inside, and at the end.
    expect(skippedRanges(5n, 20n, [7n, 8n, 12n], [9n])).toEqual([['5', '6'], ['10', '11'], ['13', '20']]);
  });
});

describe('DigestSigner', () => {
  it('seals bodies that verify under its public key only, and not once changed', () => {
    const a = signer();
    const b = signer();
    const sealed = decodeEnvelope(Buffer.from(a.seal({ kind: 'retention', dt: '2026-01-01', retentionMs: 1, writtenAt: 'x', writer: 'w' })), 'k');
    expect(verifySignature(sealed, a.publicKeyPem)).toBe(true);
    expect(verifySignature(sealed, b.publicKeyPem)).toBe(false);
    expect(verifySignature({ ...sealed, body: sealed.body.replace('2026', '2025') }, a.publicKeyPem)).toBe(false);
    expect(decodeBody(sealed, 'k')).toMatchObject({ kind: 'retention', dt: '2026-01-01' });
  });

  it('refuses keys that are not Ed25519 private keys, naming the source', () => {
    expect(() => DigestSigner.fromPem('nonsense', 'AUDIT_SIGNING_KEY')).toThrow(SigningKeyError);
    expect(() => DigestSigner.fromPem(generateSigningKey().publicKeyPem, 'AUDIT_SIGNING_KEY')).toThrow(/AUDIT_SIGNING_KEY/);
  });

  it('publishes its public key once, and refuses a store holding another key under its id', async () => {
    const a = signer();
    await a.publish(store, 'consumer', new Date('2026-01-01T00:00:00Z'));
    await a.publish(store, 'consumer', new Date('2026-02-01T00:00:00Z'));
    const published = JSON.parse((await store.get(keyObjectKey(a.keyId)))!.toString()) as { validFrom: string; publicKey: string };
    expect(published).toMatchObject({ validFrom: '2026-01-01T00:00:00.000Z', publicKey: a.publicKeyPem });
    await store.put(keyObjectKey(a.keyId), JSON.stringify({ ...published, publicKey: signer().publicKeyPem }));
    await expect(a.publish(store, 'consumer')).rejects.toThrow(/another public key/);
  });
});

describe('DigestChainWriter', () => {
  const cut = (first: number, last: number, rowOffsets = offsets(first, last)) => ({
    partition: 0, first: BigInt(first), last: BigInt(last), files: [entry(`dt=2026-01-01/t-0-${first}-${last}.parquet`, first, last)], rowOffsets, deadLetters: [],
  });
  const readChain = async (seq: number) => {
    const bytes = (await store.get(chainKey('t', 0, seq)))!;
    return { bytes, body: decodeBody(decodeEnvelope(bytes, 'k'), 'k') as ChainDigest };
  };

  it('chains digests by hash and tiles the offsets, a Kafka gap recorded as skipped', async () => {
    const w = new DigestChainWriter(store, signer(), 't', 'test');
    await w.append(cut(0, 9));
    await w.append(cut(15, 19)); // offsets 10-14 never delivered (e.g. transaction markers)
    const d0 = await readChain(0);
    const d1 = await readChain(1);
    expect(d0.body).toMatchObject({ seq: 0, from: '0', to: '9', prev: null, skipped: [] });
    expect(d1.body).toMatchObject({ seq: 1, from: '10', to: '19', skipped: [['10', '14']], prev: { seq: 0, sha256: createHash('sha256').update(d0.bytes).digest('hex') } });
  });

  it('a new writer finds the head by probing, and a cut already covered is not appended again', async () => {
    const key = signer();
    const first = new DigestChainWriter(store, key, 't', 'a');
    for (let i = 0; i < 37; i++) await first.append(cut(i * 10, i * 10 + 9));
    const second = new DigestChainWriter(store, key, 't', 'b');
    expect(await second.storedThrough(0)).toBe(369n);
    await second.append(cut(360, 369)); // a replay of the last cut (crash between digest and commit)
    expect(await store.get(chainKey('t', 0, 37))).toBeNull();
    await second.append(cut(370, 379));
    expect((await readChain(37)).body).toMatchObject({ from: '370', prev: { seq: 36 } });
  });

  it('two writers of one partition (a rebalance) never fork the chain', async () => {
    // Two keys, both trusted by both (AUDIT_TRUSTED_KEYS_FILE): a member reads the other's digests.
    const [sa, sb] = [signer(), signer()];
    const keys = new TrustedKeys([sa, sb].map((s) => TrustedKeys.keyFromPem(s.publicKeyPem, 'test')));
    const a = new DigestChainWriter(store, sa, 't', 'a', keys);
    const b = new DigestChainWriter(store, sb, 't', 'b', keys);
    await a.append(cut(0, 9));
    expect(await b.storedThrough(0)).toBe(9n);
    await a.append(cut(10, 19));
    // b still believes the head is digest 0: its put of number 1 loses, it reads the winner's and stops.
    await b.append(cut(10, 19));
    await b.append(cut(20, 29));
    const bodies = await Promise.all([0, 1, 2].map(readChain));
    expect(bodies.map((d) => [d.body.from, d.body.to, d.body.writer])).toEqual([['0', '9', 'a'], ['10', '19', 'a'], ['20', '29', 'b']]);
    expect(await store.get(chainKey('t', 0, 3))).toBeNull();
  });
});

describe('Parquet bytes of a replayed cut', () => {
  it('are identical, so a member that lost a race overwrites a file with the same bytes its digest signs', async () => {
    const writer = await ParquetWriter.create({ rowGroupRows: 1024 });
    const rows = Array.from({ length: 500 }, (_, i) => sampleRecord({ object_id: String(i % 37), occurred_at: 1_767_225_600_000_000 + i * 1_000 }));
    const staged = () => rows.map((record, i) => stageRow({ record, partition: 0, offset: String(i), size: 100 }));
    await writer.writeStaged(staged(), join(dir, 'a.parquet'));
    await writer.writeStaged(staged(), join(dir, 'b.parquet'));
    const sha = async (f: string) => createHash('sha256').update(await readFile(join(dir, f))).digest('hex');
    expect(await sha('a.parquet')).toBe(await sha('b.parquet'));
    expect(await writer.rowHash(join(dir, 'a.parquet'))).toEqual(await writer.rowHash(join(dir, 'b.parquet')));
    writer.close();
  });
});

describe('verifyStore on a local store', () => {
  const sealChain = (s: DigestSigner, seq: number, from: number, to: number, files: FileEntry[], prevBytes: string | null) => {
    const body: ChainDigest = {
      kind: 'chain', topic: 't', partition: 0, seq, from: String(from), to: String(to), files, deadLetters: [], skipped: [],
      prev: prevBytes === null ? null : { seq: seq - 1, sha256: createHash('sha256').update(prevBytes).digest('hex') }, writtenAt: new Date().toISOString(), writer: 'w',
    };
    return s.seal(body);
  };
  const put = async (key: string, body: string) => {
    await store.put(key, body);
    return { key, size: Buffer.byteLength(body), sha256: createHash('sha256').update(body).digest('hex') };
  };

  it('checks compaction arithmetic: rows and row hashes must add up to the inputs the chain signed', async () => {
    const s = signer();
    await s.publish(store, 'test');
    const a = { ...entry('dt=2026-01-01/t-0-0-4.parquet', 0, 4), ...(await put('dt=2026-01-01/t-0-0-4.parquet', 'a')) };
    const b = { ...entry('dt=2026-01-01/t-0-5-9.parquet', 5, 9), ...(await put('dt=2026-01-01/t-0-5-9.parquet', 'b')) };
    const d0 = sealChain(s, 0, 0, 9, [a, b], null);
    await store.put(chainKey('t', 0, 0), d0);
    expect((await verifyStore({ store, since: null, until: null, concurrency: 4 })).findings).toEqual([]);

    const cKey = 'dt=2026-01-01/t-0-0-9.c1-abcd.parquet';
    const c = { ...(await put(cKey, 'c')), rows: 10, first: '0', last: '9', rowHash: xorRowHashes([a.rowHash, b.rowHash]) };
    await store.put('dt=2026-01-01/_live/0000000001.json', JSON.stringify({
      format: 'audit-live/1', dt: '2026-01-01', generation: 1, committedAt: 0,
      files: [{ key: cKey, size: c.size, rows: 10, topic: 't', partition: 0, first: '0', last: '9' }], replaced: { 't/0': [['0', '4', 0], ['5', '9', 0]] }, retired: [],
    }));
    const compaction = (file: FileEntry): CompactionDigest => ({ kind: 'compaction', dt: '2026-01-01', topic: 't', partition: 0, file, replaced: [a, b], dropped: { offsets: [], rowHash: '0'.repeat(32) }, generation: 1, writtenAt: 'x', writer: 'w' });
    await store.put(compactionDigestKey(cKey), s.seal(compaction(c)));
    expect((await verifyStore({ store, since: null, until: null, concurrency: 4 })).findings).toEqual([]);

    // A merge that lost a row: signed honestly, the arithmetic exposes it.
    await store.put(compactionDigestKey(cKey), s.seal(compaction({ ...c, rows: 9, rowHash: a.rowHash })));
    const bad = await verifyStore({ store, since: null, until: null, concurrency: 4 });
    expect(bad.findings.map((f) => f.code)).toEqual(['compaction-mismatch', 'compaction-mismatch']);
  });

  it('refuses to run on a store without digests', async () => {
    await expect(verifyStore({ store, since: null, until: null, concurrency: 4 })).rejects.toThrow(/no published digest keys/);
  });
});
