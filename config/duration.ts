/**
 * Durations as operators write them in the environment: `30s`, `15m`, `1h`,
 * `400d`, `7y` (a year is 365 days: retention is about calendar days kept, and
 * a day more or less over seven years is not worth leap-year arithmetic).
 */
const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
  y: 365 * 86_400_000,
};

const DURATION_RE = /^(\d+)\s*(ms|s|m|h|d|w|y)$/;

/** Milliseconds of a duration such as `15m`; null when the text is not one. */
export function parseDuration(text: string): number | null {
  const m = DURATION_RE.exec(text.trim());
  if (!m) return null;
  const ms = Number(m[1]) * UNIT_MS[m[2]!]!;
  return Number.isSafeInteger(ms) ? ms : null;
}

/** A short human form of a duration, for logs and dry runs. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [['y', UNIT_MS.y!], ['d', UNIT_MS.d!], ['h', UNIT_MS.h!], ['m', UNIT_MS.m!], ['s', UNIT_MS.s!]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
