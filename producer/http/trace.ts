import { randomUUID } from 'node:crypto';

export interface TraceParent {
  version: string;
  traceId: string;
  parentId: string;
  flags: string;
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** W3C Trace Context `traceparent` header; `null` when absent or invalid (all-zero ids, version ff). */
export function parseTraceparent(header: string | readonly string[] | undefined): TraceParent | null {
  const value = typeof header === 'string' ? header : header?.[0];
  if (!value || value.length > 512) return null;
  const m = TRACEPARENT.exec(value.trim().toLowerCase());
  if (!m) return null;
  const [, version, traceId, parentId, flags, rest] = m;
  if (version === 'ff' || (version === '00' && rest !== undefined)) return null;
  if (/^0+$/.test(traceId!) || /^0+$/.test(parentId!)) return null;
  return { version: version!, traceId: traceId!, parentId: parentId!, flags: flags! };
}

// Printable ASCII without spaces, quotes or backslashes: safe to log and echo back.
const SAFE_ID = /^[A-Za-z0-9._:@\-+=/]{1,200}$/;

/** The caller's request id when it is a sane token, otherwise a new UUID. */
export function requestIdFrom(header: string | readonly string[] | undefined, generate: () => string = randomUUID): string {
  const value = typeof header === 'string' ? header : header?.[0];
  return value !== undefined && SAFE_ID.test(value) ? value : generate();
}
