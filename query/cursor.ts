import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from './args';

/**
 * The search cursor: where the last page ended, as a position in the event
 * order (event time µs, Kafka partition, offset, event_id), never as a file, so
 * compaction (which rewrites files but keeps every row's partition and offset)
 * cannot invalidate it. It carries a hash of the query and scope it belongs to
 * and an HMAC-SHA256 under the reader's key: a cursor cannot be forged, nor
 * replayed against another query or a wider tenant scope.
 *
 * Text: base64url(JSON payload) "." base64url(HMAC).
 */
export interface CursorPosition {
  /** Event time, µs since the epoch (a decimal string: beyond 2^53). */
  occurredUs: string;
  partition: number;
  /** Kafka offset (decimal string). */
  offset: string;
  eventId: string;
}

interface CursorPayload {
  v: 1;
  q: string;
  t: string;
  p: number;
  o: string;
  e: string;
}

const DECIMAL = /^-?\d{1,20}$/;

/** The hash a cursor is bound to: the query's filters and scope, not its page size. */
export function queryHash(parts: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url').slice(0, 22);
}

function mac(key: Buffer, payload: string): Buffer {
  return createHmac('sha256', key).update(`audit-query-cursor\u0000${payload}`).digest();
}

export function encodeCursor(key: Buffer, query: string, pos: CursorPosition): string {
  const payload: CursorPayload = { v: 1, q: query, t: pos.occurredUs, p: pos.partition, o: pos.offset, e: pos.eventId };
  const body = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
  return `${body}.${mac(key, body).toString('base64url')}`;
}

/** The position a cursor holds; UsageError when it is malformed, forged, or made for another query or scope. */
export function decodeCursor(key: Buffer, query: string, text: string): CursorPosition {
  const bad = (why: string) => new UsageError(`--cursor ${why}`);
  const dot = text.indexOf('.');
  if (text.length > 2048 || dot <= 0 || !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(text)) throw bad('is not a cursor of this command');
  const body = text.slice(0, dot);
  const given = Buffer.from(text.slice(dot + 1), 'base64url');
  const expected = mac(key, body);
  // Spelt exactly as issued: base64's spare bits in the last character would otherwise let an
  // altered cursor through with the same MAC bytes.
  const canonical = given.toString('base64url') === text.slice(dot + 1);
  if (!canonical || given.length !== expected.length || !timingSafeEqual(given, expected)) throw bad('is not valid here (forged, altered, or issued with another key)');
  let p: Partial<CursorPayload>;
  try {
    p = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Partial<CursorPayload>;
  } catch {
    throw bad('is not a cursor of this command');
  }
  if (p.v !== 1 || typeof p.t !== 'string' || !DECIMAL.test(p.t) || !Number.isSafeInteger(p.p) || typeof p.o !== 'string' || !DECIMAL.test(p.o) || typeof p.e !== 'string') {
    throw bad('is not a cursor of this command');
  }
  if (p.q !== query) throw bad('belongs to another search (other filters, time range or tenant scope)');
  return { occurredUs: p.t, partition: p.p!, offset: p.o, eventId: p.e };
}

/**
 * The CLI's cursor key: AUDIT_QUERY_CURSOR_KEY, else a random key kept in the
 * cache directory (created on first use, owner-only), so cursors stay valid
 * across runs of the same user.
 */
export async function cliCursorKey(configured: string | undefined, cacheDir: string): Promise<Buffer> {
  if (configured !== undefined) return Buffer.from(configured, 'utf8');
  const path = join(cacheDir, 'cursor.key');
  try {
    const existing = await readFile(path);
    if (existing.length >= 32) return existing;
  } catch {
    // none yet
  }
  await mkdir(cacheDir, { recursive: true });
  const key = randomBytes(32);
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, key, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, path);
  // Two first runs at once: whichever rename came last is the key both read back.
  return readFile(path);
}
