import { createHash } from 'node:crypto';

// A fixed namespace, so every audit-cdc deployment derives the same id for the same change.
const NAMESPACE = Buffer.from('6f1c8a52e3b44d0f9a7e2b5d4c3a1f08', 'hex');

/**
 * A name-based (version 5, SHA-1) UUID of one row change. A replay after a crash
 * decodes the same transaction into the same changes in the same order, so the
 * same inputs give the same id and the query side hides the repeat.
 */
export function changeEventId(commitLsn: string, ordinal: number, table: string, key: string): string {
  const h = createHash('sha1').update(NAMESPACE).update(`${commitLsn}\u0000${ordinal}\u0000${table}\u0000${key}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.toString('hex', 0, 16);
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}
