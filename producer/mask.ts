/** Field names whose values never leave the app in clear. Matched case-insensitively, anywhere in the name. */
export const DEFAULT_MASKED_FIELDS: readonly (string | RegExp)[] = [
  'password',
  'passwd',
  'secret',
  'token',
  'authorization',
  'cookie',
  'api_key',
  'apikey',
  'credit_card',
  'card_number',
  'cardnumber',
  'cvv',
  'ssn',
];

export const MASK = '[MASKED]';

// 13-19 digits, optionally grouped by spaces or dashes: card numbers inside free text.
const CARD_NUMBER = /\b(?:\d[ -]?){12,18}\d\b/g;

export type FieldMatcher = (name: string) => boolean;

/** Field names remembered per matcher: an app has few distinct ones, and each is asked about for every event. */
const MATCHER_MEMO_MAX = 4096;

export function fieldMatcher(patterns: readonly (string | RegExp)[]): FieldMatcher {
  const lowered = patterns.map((p) => (typeof p === 'string' ? p.toLowerCase() : p));
  const test = (name: string) => {
    const n = name.toLowerCase();
    return lowered.some((p) => (typeof p === 'string' ? n.includes(p) : p.test(name)));
  };
  const memo = new Map<string, boolean>();
  return (name) => {
    let hit = memo.get(name);
    if (hit === undefined) {
      hit = test(name);
      // Bounded: field names taken from user data (map keys) must not grow it for ever.
      if (memo.size >= MATCHER_MEMO_MAX) memo.clear();
      memo.set(name, hit);
    }
    return hit;
  };
}

/** Replaces card-number-like digit runs that pass the Luhn check. */
export function maskCardNumbers(text: string): string {
  if (!hasCardLengthDigits(text)) return text;
  return text.replace(CARD_NUMBER, (match) => (luhn(match.replace(/[ -]/g, '')) ? MASK : match));
}

/** At least 13 digits in the text: what CARD_NUMBER needs; most strings have fewer and skip the regex. */
function hasCardLengthDigits(text: string): boolean {
  if (text.length < 13) return false;
  let digits = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57 && ++digits >= 13) return true;
  }
  return false;
}

function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/**
 * A deep copy of `value` with sensitive fields and card numbers masked. Objects are
 * copied without a prototype, so a key named `__proto__` stays an ordinary entry.
 */
export function maskValue(value: unknown, isSensitive: FieldMatcher, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return maskCardNumbers(value);
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return value;
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => maskValue(v, isSensitive, seen));
  const out = Object.create(null) as Record<string, unknown>;
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    out[k] = isSensitive(k) ? MASK : maskValue(v, isSensitive, seen);
  }
  return out;
}

/**
 * `toJson(maskValue(value))` in one copy: the masked copy already has no cycles
 * (they became "[Circular]") and its BigInts become strings here, so the plain
 * JSON.stringify gives the same text without toJson's per-key replacer.
 */
export function maskedJson(value: unknown, isSensitive: FieldMatcher): string {
  return JSON.stringify(maskForJson(value, isSensitive, new WeakSet<object>())) ?? 'null';
}

function maskForJson(value: unknown, isSensitive: FieldMatcher, seen: WeakSet<object>): unknown {
  if (typeof value === 'string') return maskCardNumbers(value);
  if (typeof value === 'bigint') return value.toString();
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return value;
  if (seen.has(value)) return '[Circular]';
  seen.add(value);
  if (Array.isArray(value)) return value.map((v) => maskForJson(v, isSensitive, seen));
  const out = Object.create(null) as Record<string, unknown>;
  for (const k in value) {
    if (!Object.prototype.hasOwnProperty.call(value, k)) continue;
    const v = (value as Record<string, unknown>)[k];
    out[k] = isSensitive(k) ? MASK : maskForJson(v, isSensitive, seen);
  }
  return out;
}
