import { ConfigError, type Env } from '../../config/env';
import { EmbedTokenRequestError, readEmbedKeyFile } from './token';

export interface EmbedConfig {
  key: Buffer;
  allowedOrigins: readonly string[];
}

/**
 * The embed settings of the environment, or null when AUDIT_EMBED_KEY_FILE is unset (no
 * embed routes). An unreadable or short key is a ConfigError naming the variable, raised
 * at start-up rather than at the first embed request.
 */
export function embedConfig(env: Env): EmbedConfig | null {
  if (env.AUDIT_EMBED_KEY_FILE === undefined) return null;
  return { key: embedKey(env), allowedOrigins: env.AUDIT_EMBED_ORIGINS ?? [] };
}

/** The key alone (audit-admin embed-token needs no origins); ConfigError when unset or unusable. */
export function embedKey(env: Env): Buffer {
  const path = env.AUDIT_EMBED_KEY_FILE;
  if (path === undefined) throw new ConfigError('invalid configuration: AUDIT_EMBED_KEY_FILE is not set (a file of 32 or more random bytes)');
  try {
    return readEmbedKeyFile(path);
  } catch (err) {
    if (err instanceof EmbedTokenRequestError) throw new ConfigError(`invalid configuration: AUDIT_EMBED_KEY_FILE: ${err.message}`);
    throw err;
  }
}
