import type { ObjectStore } from '../storage/object-store';
import { DIGEST_ROOT, type PublishedKey } from './format';
import { type Opened, type SignedBody, UntrustedObjectError, openSigned, parseEnvelope } from './signed-object';
import type { DigestSigner } from './signer';
import { TrustedKeys, TrustedKeysError } from './trusted-keys';

/**
 * Which keys a process trusts for what it reads from the bucket, decided once
 * at start-up:
 *
 * - `pinned`: AUDIT_TRUSTED_KEYS_FILE is set: those keys (plus the process's own
 *   signing key). The only mode in which a bucket writer without a key can
 *   change nothing a reader acts on.
 * - `own-key`: no trust file, but the process signs: only its own key. A store
 *   signed by several keys (rotation, one key per service) needs the file.
 * - `store-keys`: a reader without a trust file on a signed store: the keys
 *   published in the store, with a warning, since anyone who can write the
 *   bucket can publish one (`verify --trust` still names such a key).
 * - `unsigned`: no key anywhere: objects are taken as written (the behaviour of
 *   stores from before signing), with a warning that nothing can be proven.
 */
export type TrustMode = 'pinned' | 'own-key' | 'store-keys' | 'unsigned';

export interface TrustPolicy {
  mode: TrustMode;
  keys: TrustedKeys;
  /** One line for the process to log once at start-up (a warning), or null. */
  notice: string | null;
}

export interface ResolveTrustOptions {
  /** AUDIT_TRUSTED_KEYS_FILE. */
  trustedKeysFile?: string | undefined;
  /** Pinned keys given otherwise (`verify --trust FILE.pub`), SPKI PEM with where each came from. */
  pinned?: { pem: string; source: string }[] | undefined;
  /** The process's own signer, if it signs. */
  signer?: DigestSigner | null | undefined;
  store: Pick<ObjectStore, 'list' | 'get'>;
  /** Who asks, for messages. */
  role: string;
}

export async function resolveTrust(o: ResolveTrustOptions): Promise<TrustPolicy> {
  const keys = o.trustedKeysFile ? await TrustedKeys.fromFile(o.trustedKeysFile) : new TrustedKeys();
  for (const p of o.pinned ?? []) keys.add(TrustedKeys.keyFromPem(p.pem, p.source));
  if (o.signer) keys.add(TrustedKeys.keyFromPem(o.signer.publicKeyPem, `${o.role}'s signing key`));
  if (o.trustedKeysFile || o.pinned?.length) return { mode: 'pinned', keys, notice: null };
  if (o.signer) return { mode: 'own-key', keys, notice: null };
  const published = await publishedKeys(o.store);
  if (published.length > 0) {
    for (const k of published) {
      try {
        // A published key retires at its validUntil, as verify has it; its validFrom is bucket content and proves nothing.
        keys.add(TrustedKeys.keyFromPem(k.publicKey, `the store's ${DIGEST_ROOT}keys/${k.keyId}.json`, k.validUntil ? { validUntil: k.validUntil } : {}));
      } catch (err) {
        if (!(err instanceof TrustedKeysError)) throw err;
      }
    }
    return {
      mode: 'store-keys',
      keys,
      notice: `${o.role}: AUDIT_TRUSTED_KEYS_FILE is unset, so the keys published in the store are trusted; anyone who can write the bucket can publish one (trust/README.md)`,
    };
  }
  return {
    mode: 'unsigned',
    keys,
    notice: `${o.role}: the store has no signing keys and none is configured (AUDIT_SIGNING_KEY_FILE, AUDIT_TRUSTED_KEYS_FILE): nothing it stores can be proven complete or untampered (trust/README.md)`,
  };
}

async function publishedKeys(store: Pick<ObjectStore, 'list' | 'get'>): Promise<PublishedKey[]> {
  const out: PublishedKey[] = [];
  for await (const obj of store.list(`${DIGEST_ROOT}keys/`)) {
    const bytes = await store.get(obj.key);
    if (bytes === null) continue;
    try {
      const k = JSON.parse(bytes.toString('utf8')) as PublishedKey;
      if (typeof k.publicKey === 'string' && typeof k.keyId === 'string') out.push(k);
    } catch {
      // An unreadable key object is verify's finding; discovery skips it.
    }
  }
  return out;
}

/**
 * Opens an object under the policy. Signed modes accept only trusted
 * envelopes. Unsigned mode takes what is there: an envelope's body unchecked,
 * or a bare object through `legacy` (the format written before signing).
 */
export function openUnderPolicy<T extends SignedBody>(
  policy: TrustPolicy,
  bytes: Buffer,
  key: string,
  kind: string,
  legacy: (bytes: Buffer) => T,
): Opened<T> {
  if (policy.mode !== 'unsigned') return openSigned<T>(bytes, key, policy.keys, kind);
  const envelope = parseEnvelope(bytes);
  if (envelope === null) {
    try {
      return { body: legacy(bytes), keyId: null };
    } catch (err) {
      throw new UntrustedObjectError(key, 'malformed', (err as Error).message);
    }
  }
  let body: T;
  try {
    body = JSON.parse(envelope.body) as T;
  } catch (err) {
    throw new UntrustedObjectError(key, 'malformed', `unreadable signed body (${(err as Error).message})`);
  }
  if (body?.kind !== kind) throw new UntrustedObjectError(key, 'malformed', `holds a ${String(body?.kind)} where a ${kind} was expected`);
  return { body, keyId: envelope.keyId };
}
