import type { Type } from 'avsc';
import { CURRENT_SCHEMA_ID, schemaType, type AuditRecord } from '../schemas';

/** Grows to the largest record seen (bounded by maxMessageBytes through the client's checks). */
let scratch = Buffer.allocUnsafe(64 * 1024);
let type: Type | null = null;

/**
 * encodeRecord(record, CURRENT_SCHEMA_ID, header) with one copy instead of two:
 * the header and the Avro body are written into a reused scratch buffer, then the
 * exact bytes copied out (encodeRecord lets avsc copy the body out, then copies
 * it again behind the header). Same bytes.
 */
export function encodeCurrent(record: AuditRecord, header: Buffer): Buffer {
  type ??= schemaType(CURRENT_SCHEMA_ID);
  for (;;) {
    header.copy(scratch, 0);
    const end = type.encode(record, scratch, header.length);
    if (end >= 0) {
      const out = Buffer.allocUnsafe(end);
      scratch.copy(out, 0, 0, end);
      return out;
    }
    // avsc returns minus the bytes missing.
    scratch = Buffer.allocUnsafe(Math.max(scratch.length * 2, scratch.length - end));
  }
}
