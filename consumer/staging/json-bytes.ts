/**
 * Byte-level JSON and text helpers of the staging transcoder: escaping as
 * JSON.stringify does, recognising values that need no normalising, and reading
 * strings out of Avro bytes without decoding more than needed.
 */

const HEX = Buffer.from('0123456789abcdef', 'latin1');
const TRUE_BYTES = Buffer.from('true', 'latin1');
const FALSE_BYTES = Buffer.from('false', 'latin1');
export const NULL = Buffer.from('null', 'latin1');

/** The one-letter escapes JSON.stringify uses (", \, \b, \t, \n, \f, \r); 0 means \u00xx. */
const SHORT_ESCAPE = new Uint8Array(256);
for (const [byte, letter] of [[0x22, '"'], [0x5c, '\\'], [0x08, 'b'], [0x09, 't'], [0x0a, 'n'], [0x0c, 'f'], [0x0d, 'r']] as const) {
  SHORT_ESCAPE[byte] = letter.charCodeAt(0);
}

/** Writes what follows the backslash of a JSON escape for byte `b` (a quote, backslash or control). */
export function escapeTail(out: Buffer, o: number, b: number): number {
  const letter = SHORT_ESCAPE[b]!;
  if (letter !== 0) {
    out[o++] = letter;
    return o;
  }
  out[o++] = 0x75;
  out[o++] = 0x30;
  out[o++] = 0x30;
  out[o++] = HEX[b >> 4]!;
  out[o++] = HEX[b & 15]!;
  return o;
}

/** 1 for the bytes of hex digits (either case). */
const HEX_DIGIT = new Uint8Array(256);
for (const c of '0123456789abcdefABCDEF') HEX_DIGIT[c.charCodeAt(0)] = 1;

export function isUuid(src: Buffer, start: number, len: number): boolean {
  if (len !== 36) return false;
  if (src[start + 8] !== 0x2d || src[start + 13] !== 0x2d || src[start + 18] !== 0x2d || src[start + 23] !== 0x2d) return false;
  let hex = 0;
  for (let i = 0; i < 36; i++) hex += HEX_DIGIT[src[start + i]!]!;
  return hex === 32;
}

/** Keys JavaScript orders numerically in an object (array indices: 0 .. 2^32 - 2). */
export function isArrayIndex(src: Buffer, start: number, len: number): boolean {
  if (len === 0 || len > 10) return false;
  let n = 0;
  for (let i = start; i < start + len; i++) {
    const c = src[i]!;
    if (c < 0x30 || c > 0x39) return false;
    n = n * 10 + (c - 0x30);
  }
  if (len > 1 && src[start] === 0x30) return false;
  return n < 4294967295;
}

function matches(src: Buffer, start: number, bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) if (src[start + i] !== bytes[i]) return false;
  return true;
}

/**
 * Strings for a low-cardinality column (object_type), reused instead of decoded
 * for every record: a few recent values are compared byte by byte.
 */
export class StringCache {
  private readonly bytes: Buffer[] = [];
  private readonly strings: string[] = [];

  get(src: Buffer, start: number, end: number): string {
    const len = end - start;
    for (let i = 0; i < this.bytes.length; i++) {
      const b = this.bytes[i]!;
      if (b.length === len && matches(src, start, b)) return this.strings[i]!;
    }
    const s = utf8(src, start, end);
    if (this.bytes.length >= 16) {
      this.bytes.pop();
      this.strings.pop();
    }
    this.bytes.unshift(Buffer.from(src.subarray(start, end)));
    this.strings.unshift(s);
    return s;
  }
}

/**
 * Decodes UTF-8 without Buffer#toString's argument handling (a measurable share
 * per record); utf8Slice is the binding toString itself ends in, also used by avsc.
 */
export function utf8(src: Buffer, start: number, end: number): string {
  return (src as Buffer & { utf8Slice(start: number, end: number): string }).utf8Slice(start, end);
}

function isDigit(b: number | undefined): boolean {
  return b !== undefined && b >= 0x30 && b <= 0x39;
}

/** The byte form of `SIMPLE_JSON`: a JSON number, literal, or string without escapes. */
export function isSimpleJson(s: Buffer, start: number, end: number): boolean {
  const len = end - start;
  if (len === 0) return false;
  const first = s[start]!;
  if (first === 0x22) {
    if (len < 2 || s[end - 1] !== 0x22) return false;
    for (let i = start + 1; i < end - 1; i++) {
      const b = s[i]!;
      if (b < 0x20 || b === 0x22 || b === 0x5c) return false;
    }
    return true;
  }
  if (len === 4 && matches(s, start, TRUE_BYTES)) return true;
  if (len === 4 && matches(s, start, NULL)) return true;
  if (len === 5 && matches(s, start, FALSE_BYTES)) return true;
  let i = start;
  if (s[i] === 0x2d) i++;
  if (!isDigit(s[i])) return false;
  if (s[i] === 0x30) i++;
  else while (i < end && isDigit(s[i])) i++;
  if (i < end && s[i] === 0x2e) {
    i++;
    if (i >= end || !isDigit(s[i])) return false;
    while (i < end && isDigit(s[i])) i++;
  }
  if (i < end && (s[i] === 0x65 || s[i] === 0x45)) {
    i++;
    if (i < end && (s[i] === 0x2b || s[i] === 0x2d)) i++;
    if (i >= end || !isDigit(s[i])) return false;
    while (i < end && isDigit(s[i])) i++;
  }
  return i === end;
}
