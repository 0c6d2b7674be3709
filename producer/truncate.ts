import type { AuditRecord } from '../schemas';

export const TRUNCATED_MARKER_KEY = 'audit.truncated';

const TEXT_FIELDS = ['user_agent', 'http_path', 'error_message', 'error_stack'] as const;
const JSON_FIELDS = ['before', 'after'] as const;

function truncateText(value: string, maxBytes: number): string {
  const buf = Buffer.from(value, 'utf8');
  if (buf.length <= maxBytes) return value;
  // Cut on a character boundary: decoding a sliced buffer drops a split code point as U+FFFD.
  const cut = buf.subarray(0, Math.max(0, maxBytes)).toString('utf8').replace(/\uFFFD$/, '');
  return `${cut}…[truncated ${buf.length - Buffer.byteLength(cut)} bytes]`;
}

/** Keeps a JSON field valid JSON when shortened: the preview is wrapped in a marker object. */
function truncateJson(value: string, maxBytes: number): string {
  const size = Buffer.byteLength(value);
  if (size <= maxBytes) return value;
  return JSON.stringify({ __truncated__: true, bytes: size, preview: truncateText(value, Math.max(0, maxBytes - 64)) });
}

/**
 * Shortens oversized fields in place and records their names in
 * `metadata["audit.truncated"]`. Returns the names of the fields shortened.
 */
export function truncateRecord(record: AuditRecord, maxFieldBytes: number): string[] {
  const cut: string[] = [];
  for (const f of TEXT_FIELDS) {
    const v = record[f];
    if (typeof v === 'string' && Buffer.byteLength(v) > maxFieldBytes) {
      record[f] = truncateText(v, maxFieldBytes);
      cut.push(f);
    }
  }
  for (const f of JSON_FIELDS) {
    const v = record[f];
    if (typeof v === 'string' && Buffer.byteLength(v) > maxFieldBytes) {
      record[f] = truncateJson(v, maxFieldBytes);
      cut.push(f);
    }
  }
  for (const [field, change] of Object.entries(record.changes)) {
    for (const side of ['old', 'new'] as const) {
      const v = change[side];
      if (v !== null && Buffer.byteLength(v) > maxFieldBytes) {
        change[side] = truncateJson(v, maxFieldBytes);
        cut.push(`changes.${field}.${side}`);
      }
    }
  }
  for (const [k, v] of Object.entries(record.metadata)) {
    if (k !== TRUNCATED_MARKER_KEY && Buffer.byteLength(v) > maxFieldBytes) {
      record.metadata[k] = truncateText(v, maxFieldBytes);
      cut.push(`metadata.${k}`);
    }
  }
  if (cut.length > 0) {
    const previous = record.metadata[TRUNCATED_MARKER_KEY];
    record.metadata[TRUNCATED_MARKER_KEY] = previous ? `${previous},${cut.join(',')}` : cut.join(',');
  }
  return cut;
}
