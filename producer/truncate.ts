import type { AuditRecord } from '../schemas';
import { encodeCurrent } from './encode';

/** `metadata["audit.truncated"]`: comma-separated names (or JSON paths) of what was shortened. */
export const TRUNCATED_MARKER_KEY = 'audit.truncated';

/** Key of the object that replaces a whole JSON value, when shortening its leaves was not enough. */
export const TRUNCATED_VALUE_KEY = '__truncated__';

/** Paths listed per JSON field in the marker; beyond it, `<field>.…(+N)`. */
const MAX_LISTED_PATHS = 10;

const TEXT_FIELDS = ['user_agent', 'http_path', 'error_message', 'error_stack'] as const;
const JSON_FIELDS = ['before', 'after'] as const;

/** Shortens text to at most `maxBytes` of its UTF-8, plus the marker `…[truncated N bytes]`. */
function truncateText(value: string, maxBytes: number): string {
  const buf = Buffer.from(value, 'utf8');
  if (buf.length <= maxBytes) return value;
  // Cut on a character boundary: decoding a sliced buffer drops a split code point as U+FFFD.
  const cut = buf.subarray(0, Math.max(0, maxBytes)).toString('utf8').replace(/\uFFFD$/, '');
  return `${cut}…[truncated ${buf.length - Buffer.byteLength(cut)} bytes]`;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Length of the longest string (value or key) in a parsed JSON value. */
function longestString(v: Json): number {
  if (typeof v === 'string') return v.length;
  if (v === null || typeof v !== 'object') return 0;
  let max = 0;
  if (Array.isArray(v)) {
    for (const x of v) max = Math.max(max, longestString(x));
  } else {
    for (const k of Object.keys(v)) max = Math.max(max, longestString(v[k]!));
  }
  return max;
}

/**
 * A copy of `v` where every string value longer than `cap` UTF-16 units is cut to
 * about `cap` bytes with the text marker; the paths of the cut values go to `paths`.
 * Objects are copied without a prototype so that a `__proto__` key survives.
 */
function capLeaves(v: Json, cap: number, path: string, paths: string[]): Json {
  if (typeof v === 'string') {
    if (v.length <= cap) return v;
    const cut = truncateText(v, cap);
    if (cut === v) return v;
    paths.push(path);
    return cut;
  }
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map((x, i) => capLeaves(x, cap, `${path}[${i}]`, paths));
  const out = Object.create(null) as { [key: string]: Json };
  for (const k of Object.keys(v)) out[k] = capLeaves(v[k]!, cap, `${path}.${k}`, paths);
  return out;
}

/**
 * Shortens a JSON text to at most `maxBytes` while keeping it valid JSON of the
 * same shape: only the longest string values are cut (each ends with
 * `…[truncated N bytes]`), every other field is kept as it was, so `--as-of` still
 * rebuilds the object's state. The cap on string length is the largest that fits
 * (found by bisection). Only when cutting every string is not enough (a huge array
 * of numbers, thousands of keys) is the whole value replaced by
 * `{"__truncated__": true, "bytes": N, "preview": "…"}`.
 * Returns the new text and the paths that were cut (`name` alone when replaced whole).
 */
function truncateJson(value: string, maxBytes: number, name: string): { text: string; paths: string[] } {
  const size = Buffer.byteLength(value);
  if (size <= maxBytes) return { text: value, paths: [] };
  let parsed: Json;
  try {
    parsed = JSON.parse(value) as Json;
  } catch {
    parsed = value; // not JSON (never from buildRecord): treat as one string
  }
  let best: { text: string; paths: string[] } | null = null;
  let lo = 0;
  let hi = longestString(parsed);
  while (lo <= hi) {
    const cap = Math.floor((lo + hi) / 2);
    const paths: string[] = [];
    const text = JSON.stringify(capLeaves(parsed, cap, name, paths));
    if (Buffer.byteLength(text) <= maxBytes) {
      best = { text, paths };
      lo = cap + 1;
    } else {
      hi = cap - 1;
    }
  }
  if (best && best.paths.length > 0) return best;
  // The preview's escaping (quotes of the JSON text) adds bytes: shrink it until the whole fits.
  let budget = maxBytes - 64;
  let text: string;
  for (;;) {
    text = JSON.stringify({ [TRUNCATED_VALUE_KEY]: true, bytes: size, preview: truncateText(value, Math.max(0, budget)) });
    const over = Buffer.byteLength(text) - maxBytes;
    if (over <= 0 || budget <= 0) break;
    budget -= over;
  }
  return { text, paths: [name] };
}

function listed(field: string, paths: string[]): string[] {
  if (paths.length <= MAX_LISTED_PATHS) return paths;
  return [...paths.slice(0, MAX_LISTED_PATHS), `${field}.…(+${paths.length - MAX_LISTED_PATHS})`];
}

/** UTF-8 bytes of `v` exceed `max`; most strings are decided by their length alone (UTF-8 is at most 3 bytes per UTF-16 unit). */
function over(v: string, max: number): boolean {
  return v.length * 3 > max && Buffer.byteLength(v) > max;
}

/** Whether truncateRecord would cut anything: the same tests, without copying or changing the record. */
export function needsTruncation(record: AuditRecord, maxFieldBytes: number): boolean {
  for (const f of TEXT_FIELDS) {
    const v = record[f];
    if (typeof v === 'string' && over(v, maxFieldBytes)) return true;
  }
  for (const f of JSON_FIELDS) {
    const v = record[f];
    if (typeof v === 'string' && over(v, maxFieldBytes)) return true;
  }
  for (const field in record.changes) {
    const change = record.changes[field]!;
    if ((change.old !== null && over(change.old, maxFieldBytes)) || (change.new !== null && over(change.new, maxFieldBytes))) return true;
  }
  for (const k in record.metadata) {
    if (k !== TRUNCATED_MARKER_KEY && over(record.metadata[k]!, maxFieldBytes)) return true;
  }
  return false;
}

/**
 * Shortens oversized fields in place and records what was cut in
 * `metadata["audit.truncated"]`: text fields by name (`user_agent`), JSON fields by
 * the path of each cut value (`after.attachment.data`, `after.lines[3].note`,
 * `changes.body.new`; `after` alone when the value was replaced whole). Returns
 * those names. Call it on a fresh record: cutting an already cut value again would
 * miscount the bytes removed.
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
      const t = truncateJson(v, maxFieldBytes, f);
      record[f] = t.text;
      cut.push(...listed(f, t.paths));
    }
  }
  for (const field of Object.keys(record.changes)) {
    const change = record.changes[field]!;
    for (const side of ['old', 'new'] as const) {
      const v = change[side];
      if (v !== null && Buffer.byteLength(v) > maxFieldBytes) {
        const name = `changes.${field}.${side}`;
        const t = truncateJson(v, maxFieldBytes, name);
        change[side] = t.text;
        cut.push(...listed(name, t.paths));
      }
    }
  }
  for (const k of Object.keys(record.metadata)) {
    const v = record.metadata[k]!;
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

/** The encoded record with its fields cut to `limit` bytes (on a copy), and the names of what was cut. */
export function truncatedValue(built: AuditRecord, limit: number, header: Buffer): { value: Buffer; cut: string[] } {
  // The common case, nothing over the limit: encoded as built, no copy.
  if (!needsTruncation(built, limit)) return { value: encodeCurrent(built, header), cut: [] };
  const record = copyForTruncation(built);
  const cut = truncateRecord(record, limit);
  return { value: encodeCurrent(record, header), cut };
}

/** What truncateRecord changes (top-level fields, the maps, each change), copied; prototype-less maps stay so. */
function copyForTruncation(r: AuditRecord): AuditRecord {
  const changes = Object.create(null) as AuditRecord['changes'];
  for (const k of Object.keys(r.changes)) changes[k] = { ...r.changes[k]! };
  return { ...r, changes, metadata: Object.assign(Object.create(null) as AuditRecord['metadata'], r.metadata) };
}
