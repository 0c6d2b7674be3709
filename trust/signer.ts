import { type KeyObject, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { ObjectStore } from '../storage/object-store';
import { ENVELOPE_FORMAT, type Envelope, KEY_FORMAT, type PublishedKey, keyObjectKey, sha256Hex } from './format';

/**
 * Ed25519 signing of digests (node:crypto). The private key comes from the
 * environment or a file and never enters the store; its public half is
 * published under `_digests/keys/<keyId>.json`, the key id being the first 16
 * hex digits of the SHA-256 of the public key (SPKI DER).
 */

export class SigningKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SigningKeyError';
  }
}

export class DigestSigner {
  readonly keyId: string;
  readonly publicKeyPem: string;

  private constructor(private readonly key: KeyObject) {
    const pub = createPublicKey(key);
    this.publicKeyPem = pub.export({ type: 'spki', format: 'pem' }).toString();
    this.keyId = keyIdOf(pub);
  }

  /** From PEM text (PKCS#8); `source` names where it came from, for messages. */
  static fromPem(pem: string, source: string): DigestSigner {
    let key: KeyObject;
    try {
      key = createPrivateKey(pem);
    } catch (err) {
      throw new SigningKeyError(`${source}: not a PEM private key (${(err as Error).message})`);
    }
    if (key.asymmetricKeyType !== 'ed25519') throw new SigningKeyError(`${source}: an ${String(key.asymmetricKeyType)} key; digests are signed with Ed25519`);
    return new DigestSigner(key);
  }

  /** AUDIT_SIGNING_KEY (PEM text) or AUDIT_SIGNING_KEY_FILE (a PEM file); null when neither is set. */
  static async fromEnv(env: { AUDIT_SIGNING_KEY?: string; AUDIT_SIGNING_KEY_FILE?: string }): Promise<DigestSigner | null> {
    if (env.AUDIT_SIGNING_KEY) return DigestSigner.fromPem(env.AUDIT_SIGNING_KEY, 'AUDIT_SIGNING_KEY');
    if (!env.AUDIT_SIGNING_KEY_FILE) return null;
    let pem: string;
    try {
      pem = await readFile(env.AUDIT_SIGNING_KEY_FILE, 'utf8');
    } catch (err) {
      throw new SigningKeyError(`AUDIT_SIGNING_KEY_FILE: cannot read ${env.AUDIT_SIGNING_KEY_FILE} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    return DigestSigner.fromPem(pem, `AUDIT_SIGNING_KEY_FILE ${env.AUDIT_SIGNING_KEY_FILE}`);
  }

  /** The stored bytes of a signed object (a digest, a cut claim, a generation, an index: trust/signed-object.ts). */
  seal<B extends { kind: string; writtenAt: string }>(body: B): string {
    const text = JSON.stringify(body);
    const envelope: Envelope = { format: ENVELOPE_FORMAT, keyId: this.keyId, body: text, signature: sign(null, Buffer.from(text, 'utf8'), this.key).toString('base64') };
    return JSON.stringify(envelope);
  }

  /**
   * Publishes the public key (create-if-absent, so its first publication's
   * validity stands). A key object already there with another key under the
   * same id is refused: it would mean the store holds a forged key.
   */
  async publish(store: Pick<ObjectStore, 'putIfAbsent' | 'get'>, role: string, now = new Date()): Promise<void> {
    const key = keyObjectKey(this.keyId);
    const published: PublishedKey = { format: KEY_FORMAT, keyId: this.keyId, algorithm: 'ed25519', publicKey: this.publicKeyPem, role, validFrom: now.toISOString() };
    if (await store.putIfAbsent(key, JSON.stringify(published, null, 2))) return;
    const existing = await store.get(key);
    if (existing === null) throw new SigningKeyError(`public key ${key} vanished while being read`);
    const other = JSON.parse(existing.toString('utf8')) as Partial<PublishedKey>;
    if (typeof other.publicKey !== 'string' || keyIdOf(createPublicKey(other.publicKey)) !== this.keyId) {
      throw new SigningKeyError(`the store's ${key} holds another public key than this signer's: refusing to sign under it`);
    }
  }
}

export function keyIdOf(pub: KeyObject): string {
  return sha256Hex(pub.export({ type: 'spki', format: 'der' })).slice(0, 16);
}

/** Checks an envelope's signature with a public key (SPKI PEM). */
export function verifySignature(envelope: Envelope, publicKeyPem: string): boolean {
  try {
    return verify(null, Buffer.from(envelope.body, 'utf8'), createPublicKey(publicKeyPem), Buffer.from(envelope.signature, 'base64'));
  } catch {
    return false;
  }
}

/** A new Ed25519 key pair, PEM (for `audit-admin keygen`). */
export function generateSigningKey(): { privateKeyPem: string; publicKeyPem: string; keyId: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    keyId: keyIdOf(publicKey),
  };
}
