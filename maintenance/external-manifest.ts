import type { ObjectStore } from '../storage';

/**
 * The day's live files for engines outside the project (Athena, Trino, Spark,
 * Hive): `_symlink_format_manifest/dt=YYYY-MM-DD/manifest`, one absolute URI
 * per line, the format of Hive's SymlinkTextInputFormat (the one Delta Lake
 * generates for the same engines). A table declared over it reads each day's
 * live files and never a superseded one, whatever is left in `dt=` during the
 * grace period. Each manifest is one PUT, so a reader sees the day's previous
 * or next list, never a mix. It lags the consumer by up to one maintenance
 * interval: files written since the last pass are not in it yet.
 */
export const EXTERNAL_MANIFEST_PREFIX = '_symlink_format_manifest/';

export function externalManifestKey(dt: string): string {
  return `${EXTERNAL_MANIFEST_PREFIX}dt=${dt}/manifest`;
}

export function externalManifestBody(store: Pick<ObjectStore, 'uri'>, liveKeys: readonly string[]): string {
  if (!store.uri) throw new Error('this store cannot name its objects for external engines');
  return [...liveKeys].sort().map((k) => `${store.uri!(k)}\n`).join('');
}

/** Writes the day's manifest unless it already says the same; true when written. */
export async function writeExternalManifest(store: ObjectStore, dt: string, liveKeys: readonly string[]): Promise<boolean> {
  const key = externalManifestKey(dt);
  const body = externalManifestBody(store, liveKeys);
  const current = await store.get(key);
  if (current !== null && current.toString('utf8') === body) return false;
  await store.put(key, body);
  return true;
}
