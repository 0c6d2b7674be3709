import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DigestSigner, generateSigningKey } from '../../trust/signer';
import { TrustedKeys, TrustedKeysError } from '../../trust/trusted-keys';
import { UntrustedObjectError, openSigned } from '../../trust/signed-object';
import { openUnderPolicy, resolveTrust } from '../../trust/trust-policy';
import type { ObjectInfo } from '../../storage/object-store';

const signer = () => DigestSigner.fromPem(generateSigningKey().privateKeyPem, 'test');

/** A store holding only the given objects. */
function storeOf(objects: Record<string, string>) {
  return {
    async *list(prefix: string): AsyncIterable<ObjectInfo> {
      for (const [key, v] of Object.entries(objects)) if (key.startsWith(prefix)) yield { key, size: v.length } as ObjectInfo;
    },
    async get(key: string) {
      return key in objects ? Buffer.from(objects[key]!) : null;
    },
  };
}

const codeOf = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    if (err instanceof UntrustedObjectError) return err.code;
    throw err;
  }
  return 'opened';
};

describe('TrustedKeys and openSigned', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'trusted-keys-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('reads AUDIT_TRUSTED_KEYS_FILE with key files relative to it and enforces validFrom and validUntil', async () => {
    const a = signer();
    const b = signer();
    await writeFile(join(dir, 'a.pub'), a.publicKeyPem);
    const file = join(dir, 'trusted.json');
    await writeFile(
      file,
      JSON.stringify([
        { publicKeyFile: 'a.pub', validFrom: '2026-01-01T00:00:00Z', validUntil: '2026-06-30T00:00:00Z' },
        { publicKey: b.publicKeyPem, note: 'no bounds' },
      ]),
    );
    const keys = await TrustedKeys.fromFile(file);
    expect(keys.ids().sort()).toEqual([a.keyId, b.keyId].sort());
    const at = (s: DigestSigner, writtenAt: string) => Buffer.from(s.seal({ kind: 'cut', writtenAt, last: '9' }));
    expect(openSigned(at(a, '2026-03-01T00:00:00Z'), 'k', keys, 'cut').body).toMatchObject({ last: '9' });
    expect(codeOf(() => openSigned(at(a, '2025-12-31T23:59:59Z'), 'k', keys, 'cut'))).toBe('key-not-valid');
    expect(codeOf(() => openSigned(at(a, '2026-07-01T00:00:00Z'), 'k', keys, 'cut'))).toBe('key-not-valid');
    expect(codeOf(() => openSigned(at(b, '1999-01-01T00:00:00Z'), 'k', keys, 'cut'))).toBe('opened');
  });

  it('fingerprints the keys with their validity, so a retired key changes it', () => {
    const a = signer();
    const open = new TrustedKeys([TrustedKeys.keyFromPem(a.publicKeyPem, 'x')]);
    const retired = new TrustedKeys([TrustedKeys.keyFromPem(a.publicKeyPem, 'x', { validUntil: '2026-06-30T00:00:00Z' })]);
    expect(open.fingerprint()).toContain(a.keyId);
    expect(retired.fingerprint()).not.toBe(open.fingerprint());
  });

  it('names the bad entry of a trust file', async () => {
    const file = join(dir, 'trusted.json');
    await writeFile(file, JSON.stringify([{ publicKey: 'nonsense' }]));
    await expect(TrustedKeys.fromFile(file)).rejects.toThrow(/entry 0: not an Ed25519 public key/);
    await writeFile(file, JSON.stringify([{ publicKeyFile: 'x.pub', publicKey: 'y' }]));
    await expect(TrustedKeys.fromFile(file)).rejects.toThrow(TrustedKeysError);
    await writeFile(file, '[]');
    await expect(TrustedKeys.fromFile(file)).rejects.toThrow(/at least one key/);
    await expect(TrustedKeys.fromFile(join(dir, 'missing.json'))).rejects.toThrow(/cannot read/);
  });

  it('refuses unsigned, forged, edited and other-kind objects with a code', () => {
    const a = signer();
    const keys = new TrustedKeys([TrustedKeys.keyFromPem(a.publicKeyPem, 'test')]);
    const sealed = a.seal({ kind: 'generation', writtenAt: new Date().toISOString(), generation: 3 });
    expect(codeOf(() => openSigned(Buffer.from(sealed), 'k', keys, 'generation'))).toBe('opened');
    expect(codeOf(() => openSigned(Buffer.from('{"generation":3}'), 'k', keys, 'generation'))).toBe('unsigned');
    expect(codeOf(() => openSigned(Buffer.from(signer().seal({ kind: 'generation', writtenAt: 'x' })), 'k', keys, 'generation'))).toBe('untrusted-key');
    const envelope = JSON.parse(sealed) as { body: string };
    const edited = JSON.stringify({ ...envelope, body: envelope.body.replace('"generation":3', '"generation":4') });
    expect(edited).not.toBe(sealed);
    expect(codeOf(() => openSigned(Buffer.from(edited), 'k', keys, 'generation'))).toBe('bad-signature');
    expect(codeOf(() => openSigned(Buffer.from(sealed), 'k', keys, 'cut'))).toBe('malformed');
  });
});

describe('resolveTrust', () => {
  it('pins the trust file, else the own key, else the store keys with a warning, else unsigned with a warning', async () => {
    const own = signer();
    const planted = signer();
    const signedStore = storeOf({ [`_digests/keys/${planted.keyId}.json`]: JSON.stringify({ keyId: planted.keyId, publicKey: planted.publicKeyPem }) });

    const ownKey = await resolveTrust({ signer: own, store: signedStore, role: 'consumer' });
    expect(ownKey.mode).toBe('own-key');
    expect(ownKey.keys.ids()).toEqual([own.keyId]);

    const reader = await resolveTrust({ store: signedStore, role: 'audit-query' });
    expect(reader.mode).toBe('store-keys');
    expect(reader.keys.ids()).toEqual([planted.keyId]);
    expect(reader.notice).toMatch(/AUDIT_TRUSTED_KEYS_FILE is unset/);

    const pinned = await resolveTrust({ pinned: [{ pem: own.publicKeyPem, source: '--trust' }], store: signedStore, role: 'verify' });
    expect(pinned.mode).toBe('pinned');
    expect(pinned.keys.ids()).toEqual([own.keyId]);

    const unsigned = await resolveTrust({ store: storeOf({}), role: 'audit-consumer' });
    expect(unsigned.mode).toBe('unsigned');
    expect(unsigned.notice).toMatch(/nothing it stores can be proven/);
    // Unsigned mode reads the format from before signing; signed modes refuse it.
    const legacy = (b: Buffer) => ({ kind: 'cut', writtenAt: '', ...(JSON.parse(b.toString()) as object) });
    expect(openUnderPolicy(unsigned, Buffer.from('{"last":"5"}'), 'k', 'cut', legacy).body).toMatchObject({ last: '5' });
    expect(() => openUnderPolicy(ownKey, Buffer.from('{"last":"5"}'), 'k', 'cut', legacy)).toThrow(UntrustedObjectError);
  });
});
