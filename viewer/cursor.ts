import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Paging cursors the viewer hands out: opaque, MAC'd, and bound to the query
 * and scope that made them, so a cursor cannot be edited, nor replayed on
 * another search or by a viewer of another scope to reach rows it was not given.
 */

export class BadCursor extends Error {
  constructor() {
    super('cursor is not valid for this search');
    this.name = 'BadCursor';
  }
}

export function queryFingerprint(parts: readonly unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url').slice(0, 22);
}

export class CursorCodec {
  constructor(private readonly key: Buffer) {}

  private mac(body: string): string {
    return createHmac('sha256', this.key).update(`audit-viewer-cursor\u0000${body}`).digest('base64url').slice(0, 32);
  }

  encode(fingerprint: string, offset: number): string {
    const body = Buffer.from(JSON.stringify({ q: fingerprint, o: offset })).toString('base64url');
    return `${body}.${this.mac(body)}`;
  }

  /** The offset of a cursor made for this query; BadCursor for anything else. */
  decode(fingerprint: string, cursor: string): number {
    const [body, sig, extra] = cursor.split('.');
    if (!body || !sig || extra !== undefined || sig.length !== 32) throw new BadCursor();
    if (!timingSafeEqual(Buffer.from(sig), Buffer.from(this.mac(body)))) throw new BadCursor();
    let parsed: { q?: unknown; o?: unknown };
    try {
      parsed = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as { q?: unknown; o?: unknown };
    } catch {
      throw new BadCursor();
    }
    if (parsed.q !== fingerprint || typeof parsed.o !== 'number' || !Number.isSafeInteger(parsed.o) || parsed.o < 0) throw new BadCursor();
    return parsed.o;
  }
}
