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

export function fieldMatcher(patterns: readonly (string | RegExp)[]): FieldMatcher {
  const lowered = patterns.map((p) => (typeof p === 'string' ? p.toLowerCase() : p));
  return (name) => {
    const n = name.toLowerCase();
    return lowered.some((p) => (typeof p === 'string' ? n.includes(p) : p.test(name)));
  };
}

/** Replaces card-number-like digit runs that pass the Luhn check. */
export function maskCardNumbers(text: string): string {
  return text.replace(CARD_NUMBER, (match) => (luhn(match.replace(/[ -]/g, '')) ? MASK : match));
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
