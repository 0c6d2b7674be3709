import { oneLine } from '../config/bin';
import type { StorageError } from '../storage';

/**
 * The one line audit-query prints for a store it could not open: a store that is not there
 * is named with the variable that points at it (a reader run from another folder, a mistyped
 * bucket), anything else is "unavailable", with the endpoint when one is set.
 */
export function storageMessage(err: StorageError, source: NodeJS.ProcessEnv = process.env): string {
  const endpoint = source.AUDIT_S3_ENDPOINT;
  const where = endpoint && err.location.startsWith('s3://') ? ` (endpoint ${endpoint})` : '';
  if (err.code === 'NoSuchStore' || err.code === 'NoSuchBucket') {
    const url = source.AUDIT_STORE_URL || 'file://./.audit-data (the default)';
    return `no store at ${url} (AUDIT_STORE_URL): ${oneLine(err.cause instanceof Error ? err.cause.message : String(err.cause))}${where}`;
  }
  return `storage unavailable: ${oneLine(err.message)}${where}`;
}
