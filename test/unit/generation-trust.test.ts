/**
 * Day generations under a trust policy (catalog/live-set.ts, generation-backing.ts),
 * the closed layout (storage/layout.ts) and verify's retention excuse rule, on a
 * `file://` store: a generation that fails the check is never acted on.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileObjectStore, classifyKey, isDt, parseDataKey } from '../../storage';
import { type DayGeneration, LIVE_FORMAT, encodeGeneration, generationKey, parseStoredFile, readDay, signedGenerationBody } from '../../catalog';
import { type CompactionDigest, compactionDigestKey } from '../../trust/format';
import { DigestSigner, generateSigningKey } from '../../trust/signer';
import type { TrustPolicy } from '../../trust/trust-policy';
import { TrustedKeys } from '../../trust/trusted-keys';
import { excusedByRetention } from '../../verify/verify';
import { unsignedTrust } from '../helpers/trust';

const DT = '2026-05-01';
const T = 'audit.events';
const raw = (first: number, last: number) => `dt=${DT}/${T}-0-${first}-${last}.parquet`;
const C1 = `dt=${DT}/${T}-0-0-19.c1-aaaa0001.parquet`;

function signer(): DigestSigner {
  return DigestSigner.fromPem(generateSigningKey().privateKeyPem, 'test');
}

function pinned(...signers: DigestSigner[]): TrustPolicy {
  return { mode: 'pinned', keys: new TrustedKeys(signers.map((s) => TrustedKeys.keyFromPem(s.publicKeyPem, 'test'))), notice: null };
}

/** Generation n naming C1, which holds raw 0-9 and 10-19. */
function gen1(n = 1): DayGeneration {
  return {
    format: LIVE_FORMAT,
    dt: DT,
    generation: n,
    committedAt: Date.UTC(2026, 4, 2),
    files: [{ key: C1, size: 3, rows: 20, topic: T, partition: 0, first: '0', last: '19' }],
    replaced: { [`${T}/0`]: [['0', '9', 1], ['10', '19', 1]] },
    retired: [],
  };
}

/** What an attacker with PutObject writes: every file hidden, the compacted one retired at time 0. */
function forged(n: number): DayGeneration {
  return { ...gen1(n), files: [], replaced: { [`${T}/0`]: [['0', '9', 0], ['10', '19', 0], ['20', '29', 0]] }, retired: [{ key: C1, at: 0 }] };
}

function compactionDigest(): CompactionDigest {
  const entry = (key: string, first: string, last: string) => ({ key, size: 1, sha256: 'x', rows: 10, first, last, rowHash: 'y' });
  return {
    kind: 'compaction', dt: DT, topic: T, partition: 0, file: { ...entry(C1, '0', '19'), rows: 20 },
    replaced: [entry(raw(0, 9), '0', '9'), entry(raw(10, 19), '10', '19')], dropped: { offsets: [], rowHash: '0' }, generation: 1,
    writtenAt: new Date().toISOString(), writer: 'test',
  };
}

describe('the closed layout', () => {
  it('isDt accepts real dates only', () => {
    expect(['2026-05-01', '2024-02-29', '2026-12-31'].map(isDt)).toEqual([true, true, true]);
    expect(['2026-13-01', '2026-02-30', '2026-02-29', '2026-00-10', '2026-5-01', 'x'].map(isDt)).toEqual([false, false, false, false, false, false]);
  });

  it('classifies every object the pipeline writes, and nothing else', () => {
    const inside: [string, string][] = [
      [raw(0, 9), 'data'],
      [C1, 'compacted'],
      [generationKey(DT, 3), 'generation'],
      [`_index/dt=${DT}/${T}-0-0-9.json`, 'file-index'],
      [`_index/dt=${DT}/${T}-0-0-19.c1-aaaa0001.json`, 'file-index'],
      [`_index/dt=${DT}/_manifest.bin`, 'day-manifest'],
      [`_symlink_format_manifest/dt=${DT}/manifest`, 'external-manifest'],
      [`_cuts/${T}/0/120.json`, 'cut-claim'],
      [`_digests/chain/${T}/0/000000000004.json`, 'chain-digest'],
      [compactionDigestKey(C1), 'compaction-digest'],
      [`_digests/retention/dt=${DT}.json`, 'retention-digest'],
      ['_digests/keys/0123456789abcdef.json', 'public-key'],
      ['_selfcheck/2026-05-01/2026-05-01T00:00:00.000Z-consumer-1-uuid-0.json', 'self-check'],
      ['_iceberg/metadata/v12.metadata.json', 'iceberg-metadata'],
      ['_iceberg/metadata/version-hint.text', 'iceberg-metadata'],
      ['_iceberg/metadata/snap-6051917342791123-1-0b6a4a7e-9d2c-4f4e-8a51-3c2f1e0d9b8a.avro', 'iceberg-metadata'],
      [`_iceberg/metadata/m-${DT}-0123456789abcdef-6051917342791123.avro`, 'iceberg-metadata'],
    ];
    expect(inside.map(([k]) => [k, classifyKey(k)])).toEqual(inside);
    const outside = [
      `dt=2026-13-01/${T}-0-0-9.parquet`,
      `dt=2026-02-30/${T}-0-0-9.parquet`,
      `dt=${DT}/sub/${T}-0-0-9.parquet`,
      `dt=${DT}/notes.txt`,
      `dt=${DT}/_live/1.json`,
      'events.parquet',
      `_index/dt=2026-13-01/_manifest.bin`,
      '_iceberg/metadata/v1.metadata.json.bak',
      '_iceberg/data/x.parquet',
    ];
    expect(outside.map(classifyKey)).toEqual(outside.map(() => null));
    // Readers take data from the same patterns: nothing outside a real day folder.
    expect(parseDataKey(outside[0]!)).toBeNull();
    expect(parseStoredFile(outside[2]!)).toBeNull();
    expect(parseStoredFile(`dt=2026-02-30/${T}-0-0-19.c1-aaaa0001.parquet`)).toBeNull();
  });
});

describe('generations under a trust policy', () => {
  let dir: string;
  let store: FileObjectStore;
  const maintainer = signer();

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gen-trust-'));
    store = new FileObjectStore(dir);
    for (const k of [raw(0, 9), raw(10, 19), raw(20, 29), C1]) await store.put(k, 'pq');
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const liveKeys = (d: Awaited<ReturnType<typeof readDay>>) => d.live.map((f) => f.key).sort();

  it('acts on a generation signed by a trusted key', async () => {
    await store.put(generationKey(DT, 1), maintainer.seal(signedGenerationBody(gen1(), 'test', Date.now())));
    const day = await readDay(store, DT, pinned(maintainer));
    expect({ generation: day.generation?.generation, rejected: day.rejected, live: liveKeys(day) }).toEqual({ generation: 1, rejected: [], live: [C1, raw(20, 29)] });
  });

  it('never acts on a forged, other-key, edited or moved generation: the newest one that passes is used', async () => {
    await store.put(generationKey(DT, 1), maintainer.seal(signedGenerationBody(gen1(), 'test', Date.now())));
    const cases: [string, string][] = [
      ['unsigned', encodeGeneration(forged(2))],
      ['untrusted-key', signer().seal(signedGenerationBody(forged(2), 'mallory', Date.now()))],
      ['bad-signature', maintainer.seal(signedGenerationBody(gen1(2), 'test', Date.now())).replace('"generation\\":2', '"generation\\":2 ')],
      ['malformed', maintainer.seal(signedGenerationBody(gen1(1), 'test', Date.now()))],
      ['malformed', 'not json at all'],
    ];
    for (const [code, bytes] of cases) {
      await store.put(generationKey(DT, 2), bytes);
      const day = await readDay(store, DT, pinned(maintainer));
      expect({ code, rejected: day.rejected.map((r) => [r.key, r.code]), generation: day.generation?.generation, live: liveKeys(day) }).toEqual({
        code,
        rejected: [[generationKey(DT, 2), code]],
        generation: 1,
        live: [C1, raw(20, 29)],
      });
    }
  });

  it('with no generation passing, every consumer file is live and no compacted one (no row twice)', async () => {
    await store.put(generationKey(DT, 1), encodeGeneration(forged(1)));
    const day = await readDay(store, DT, pinned(maintainer));
    expect({ generation: day.generation, rejected: day.rejected.map((r) => r.code), live: liveKeys(day) }).toEqual({
      generation: null,
      rejected: ['unsigned'],
      live: [raw(0, 9), raw(10, 19), raw(20, 29)],
    });
  });

  it('unsigned mode (no keys anywhere) keeps the behaviour of stores without signing', async () => {
    await store.put(generationKey(DT, 1), encodeGeneration(gen1()));
    const day = await readDay(store, DT, unsignedTrust());
    expect({ generation: day.generation?.generation, rejected: day.rejected, live: liveKeys(day) }).toEqual({ generation: 1, rejected: [], live: [C1, raw(20, 29)] });
  });

  it("takes a previous release's unsigned generation only when the signed compaction digests imply it", async () => {
    await store.put(compactionDigestKey(C1), maintainer.seal(compactionDigest()));
    await store.put(generationKey(DT, 1), encodeGeneration(gen1()));
    const backed = await readDay(store, DT, pinned(maintainer));
    expect({ generation: backed.generation?.generation, rejected: backed.rejected, live: liveKeys(backed) }).toEqual({ generation: 1, rejected: [], live: [C1, raw(20, 29)] });

    // The same shape with one more file hidden, or the compacted file left out: refused.
    const hidesMore = { ...gen1(2), replaced: { [`${T}/0`]: [['0', '9', 1], ['10', '19', 1], ['20', '29', 1]] } } as DayGeneration;
    const dropsC1 = { ...gen1(2), files: [], replaced: {}, retired: [{ key: C1, at: 0 }] } as DayGeneration;
    for (const [g, why] of [[hidesMore, /hides .*-20-29\.parquet/], [dropsC1, /retires|leaves out/]] as const) {
      await store.put(generationKey(DT, 2), encodeGeneration(g));
      const day = await readDay(store, DT, pinned(maintainer));
      expect(day.rejected.map((r) => r.code)).toEqual(['unsigned']);
      expect(day.rejected[0]!.reason).toMatch(why);
      expect(day.generation?.generation).toBe(1);
    }
    // A digest signed by another key vouches for nothing.
    await rm(join(dir, generationKey(DT, 2)));
    await store.put(compactionDigestKey(C1), signer().seal(compactionDigest()));
    expect((await readDay(store, DT, pinned(maintainer))).rejected.map((r) => r.code)).toEqual(['unsigned']);
  });
});

describe('verify: a removal by policy, told from a later deletion', () => {
  it('excuses a missing file only if it was listed before the retention digest', () => {
    expect(excusedByRetention('2026-05-02T00:00:00.000Z', '2027-06-01T00:00:00.000Z')).toBe(true);
    expect(excusedByRetention('2027-06-02T00:00:00.000Z', '2027-06-01T00:00:00.000Z')).toBe(false);
    expect(excusedByRetention('2026-05-02T00:00:00.000Z', undefined)).toBe(false);
    expect(excusedByRetention('not a time', '2027-06-01T00:00:00.000Z')).toBe(false);
  });
});
