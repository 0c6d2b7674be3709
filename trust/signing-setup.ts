import { ConfigError } from '../config/env';
import type { ObjectStore } from '../storage/object-store';
import { DIGEST_ROOT } from './format';
import { DigestSigner, SigningKeyError } from './signer';

/**
 * The signer a service starts with. Without a key, digests are off, unless
 * the store already holds published keys: a writer without one would leave a
 * gap in the chains that `verify` reports, so it refuses to start instead.
 * Key problems are configuration errors (exit 2).
 */
export async function signerForService(
  env: { AUDIT_SIGNING_KEY?: string; AUDIT_SIGNING_KEY_FILE?: string },
  store: Pick<ObjectStore, 'list' | 'putIfAbsent' | 'get'>,
  role: string,
): Promise<DigestSigner | null> {
  const signer = await loadSigner(env);
  if (signer === null) {
    for await (const key of store.list(`${DIGEST_ROOT}keys/`)) {
      throw new ConfigError(
        `the store holds signed digests (${key.key}) but AUDIT_SIGNING_KEY_FILE is unset: writing without a key would break the chains verify checks`,
      );
    }
    return null;
  }
  await signer.publish(store, role);
  return signer;
}

/**
 * AUDIT_SIGNING_KEY or AUDIT_SIGNING_KEY_FILE, loaded and checked but not published (a dry run,
 * `audit-query index build`); a bad key is a configuration error (exit 2). Null when neither is set.
 */
export async function loadSigner(env: { AUDIT_SIGNING_KEY?: string; AUDIT_SIGNING_KEY_FILE?: string }): Promise<DigestSigner | null> {
  try {
    return await DigestSigner.fromEnv(env);
  } catch (err) {
    if (err instanceof SigningKeyError) throw new ConfigError(err.message);
    throw err;
  }
}
