/**
 * The maintainer's removal of cut claims under the trust policy
 * (maintenance/claims.ts), on a `file://` store: only a claim whose own signed
 * `last` is below the committed offset goes; an unsigned claim on a signed
 * store is kept and named; a claim signed by another key or edited stops the
 * pass with nothing removed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import type { CommittedOffsets } from '../../kafka/committed-offsets';
import type { CutClaim } from '../../storage/cut-claim';
import { UntrustedClaimError, scanClaims } from '../../maintenance/claims';
import type { Compactor } from '../../maintenance/compactor';
import { Maintainer } from '../../maintenance/maintainer';
import { createMaintenanceMetrics, recordPass } from '../../maintenance/metrics';
import { FileObjectStore, cutKey } from '../../storage';
import { DigestSigner, generateSigningKey } from '../../trust/signer';
import type { TrustPolicy } from '../../trust/trust-policy';
import { TrustedKeys } from '../../trust/trusted-keys';
import { unsignedTrust } from '../helpers/trust';

const T = 'audit.events';

function signer(): DigestSigner {
  return DigestSigner.fromPem(generateSigningKey().privateKeyPem, 'test');
}

function pinned(s: DigestSigner): TrustPolicy {
  return { mode: 'pinned', keys: new TrustedKeys([TrustedKeys.keyFromPem(s.publicKeyPem, 'test')]), notice: null };
}

function claim(first: number, last: number, over: Partial<CutClaim> = {}): CutClaim {
  const at = new Date().toISOString();
  return { kind: 'cut', topic: T, partition: 0, first: String(first), last: String(last), owner: 'c1', claimedAt: at, writtenAt: at, ...over };
}

const committedAt = (upTo: bigint): CommittedOffsets => ({
  read: async () => new Map([[`${T}/0`, upTo]]),
  earliest: async () => new Map(),
  close: async () => undefined,
});

describe('cut claims under the trust policy (maintenance/claims.ts)', () => {
  let dir: string;
  let store: FileObjectStore;
  const key = signer();
  const policy = pinned(key);
  const keys = async () => {
    const out: string[] = [];
    for await (const o of store.list('_cuts/')) out.push(o.key);
    return out.sort();
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'claims-trust-'));
    store = new FileObjectStore(dir);
    // Three signed cuts, 0-9, 10-19, 20-29; the group has committed through 19 (next offset 20).
    for (const [a, z] of [[0, 9], [10, 19], [20, 29]] as const) await store.put(cutKey(T, 0, String(a)), key.seal(claim(a, z)));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('removes exactly the signed claims whose own last is below the committed offset', async () => {
    const scan = await scanClaims(store, new Map([[`${T}/0`, 20n]]), policy, 4);
    expect(scan.done.sort()).toEqual([cutKey(T, 0, '0'), cutKey(T, 0, '10')]);
    expect(scan.kept).toEqual([]);
  });

  it('a planted claim name decides nothing about its neighbours, and its own word is read from the signed body', async () => {
    // An honest claim 20-29 is not done at committed 25, even with a planted unsigned claim at 21 between them.
    await store.put(cutKey(T, 0, '21'), JSON.stringify(claim(21, 22)));
    const scan = await scanClaims(store, new Map([[`${T}/0`, 25n]]), policy, 4);
    expect(scan.done.sort()).toEqual([cutKey(T, 0, '0'), cutKey(T, 0, '10')]);
    expect(scan.kept.map((e) => [e.key, e.code])).toEqual([[cutKey(T, 0, '21'), 'unsigned']]);
  });

  it.each([
    ['signed by a key that is not trusted', () => signer().seal(claim(10, 19))],
    ['edited after signing', () => {
      const e = JSON.parse(key.seal(claim(10, 19))) as { body: string };
      return JSON.stringify({ ...e, body: e.body.replace('"last":"19"', '"last":"1"') });
    }],
    ['signed, but naming another first offset than its key', () => key.seal(claim(11, 19))],
    ['signed, with last before first', () => key.seal(claim(10, 5))],
  ])('a claim %s stops the scan (UntrustedClaimError)', async (_what, bytes) => {
    await store.put(cutKey(T, 0, '10'), bytes());
    await expect(scanClaims(store, new Map([[`${T}/0`, 20n]]), policy, 4)).rejects.toBeInstanceOf(UntrustedClaimError);
  });

  it('unsigned mode (no keys anywhere) takes bare claims as written, as before signing', async () => {
    await store.put(cutKey(T, 0, '30'), JSON.stringify({ topic: T, partition: 0, first: '30', last: '39', owner: 'old', claimedAt: new Date().toISOString() }));
    const scan = await scanClaims(store, new Map([[`${T}/0`, 40n]]), unsignedTrust(), 4);
    expect(scan.done.sort()).toEqual([cutKey(T, 0, '0'), cutKey(T, 0, '10'), cutKey(T, 0, '20'), cutKey(T, 0, '30')]);
  });

  describe('in a maintenance pass', () => {
    const maintainer = (upTo: bigint, lines: string[]) =>
      new Maintainer({
        store,
        // No day in the store: the pass never merges.
        compactor: null as unknown as Compactor,
        committed: committedAt(upTo),
        minAgeMs: 0,
        graceMs: 0,
        retentionMs: null,
        concurrency: 4,
        workDir: join(dir, 'work'),
        dryRun: false,
        log: pino({ level: 'silent' }),
        say: (l) => lines.push(l),
        signer: key,
        owner: 'test',
        trust: policy,
      });

    it('a wrongly signed claim halts the pass and no claim is removed', async () => {
      await store.put(cutKey(T, 0, '0'), signer().seal(claim(0, 9)));
      const before = await keys();
      const err = await maintainer(30n, []).pass({ since: null, until: null }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UntrustedClaimError);
      expect((err as UntrustedClaimError).untrusted.code).toBe('untrusted-key');
      expect((err as Error).message).toContain(cutKey(T, 0, '0'));
      expect(await keys()).toEqual(before);
    });

    it('an unsigned claim is kept and named, the signed ones go, and the report and metrics count both', async () => {
      await store.put(cutKey(T, 0, '0'), JSON.stringify(claim(0, 9)));
      const lines: string[] = [];
      const report = await maintainer(30n, lines).pass({ since: null, until: null });
      expect(await keys()).toEqual([cutKey(T, 0, '0')]);
      expect({ removed: report.claimsRemoved, kept: report.claimsKept }).toEqual({ removed: 2, kept: 1 });
      expect(lines.filter((l) => l.startsWith('kept cut claim'))).toEqual([expect.stringContaining(cutKey(T, 0, '0'))]);
      const m = createMaintenanceMetrics();
      recordPass(m, { ...report, indexesRejected: 3, indexesRebuilt: 2 }, 1);
      const text = await m.registry.metrics();
      expect(text).toMatch(/^audit_maintainer_claims_kept_total 1$/m);
      expect(text).toMatch(/^audit_maintainer_indexes_rejected_total 3$/m);
      expect(text).toMatch(/^audit_maintainer_indexes_rebuilt_total 2$/m);
    });
  });
});
