/**
 * `audit-pipeline/embed`: what an app needs to mint embed tokens for its users. Only the
 * token module: an app importing this loads neither the viewer nor its dependencies.
 */
export {
  mintEmbedToken,
  readEmbedKeyFile,
  DEFAULT_TTL_SECONDS,
  MAX_TTL_SECONDS,
  MIN_KEY_BYTES,
  EmbedTokenRequestError,
} from './token';
export type { EmbedTokenRequest } from './token';
