import type { ObjectRef } from './locate';
import { OUTPUT_FORMATS, type OutputFormat } from './format';

/** A bad command line: reported in one line, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** `TYPE:ID`: the id is everything after the first colon, so ids may contain colons. */
export function parseObjectRef(text: string): ObjectRef {
  const colon = text.indexOf(':');
  if (colon <= 0 || colon === text.length - 1) {
    throw new UsageError(`--object must be TYPE:ID (got ${JSON.stringify(text)})`);
  }
  return { type: text.slice(0, colon), id: text.slice(colon + 1) };
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * ISO-8601 instant in microseconds UTC. A date alone means the start of that
 * day, or with `endOfDay` its last microsecond (so `--until 2026-01-31` includes the 31st).
 * A time without offset is taken as UTC.
 */
export function parseInstant(flag: string, text: string, endOfDay = false): number {
  const t = text.trim();
  let ms: number;
  let fraction = 0;
  const dateOnly = DATE_ONLY.test(t);
  if (dateOnly) {
    ms = Date.parse(`${t}T00:00:00Z`);
  } else if (DATE_TIME.test(t)) {
    const hasZone = /(Z|[+-]\d{2}:?\d{2})$/i.test(t);
    const frac = /\.(\d{1,9})/.exec(t);
    if (frac) fraction = Math.floor(Number(`0.${frac[1]}`) * 1e6) % 1000;
    ms = Date.parse(hasZone ? t.replace(' ', 'T') : `${t.replace(' ', 'T')}Z`);
  } else {
    ms = NaN;
  }
  if (!Number.isFinite(ms)) throw new UsageError(`${flag} is not an ISO-8601 date or time: ${JSON.stringify(text)}`);
  const check = new Date(ms).toISOString().slice(0, 10);
  if (t.slice(0, 10) !== check && /Z$|^\d{4}-\d{2}-\d{2}$/.test(t)) {
    // Date.parse rolls 2026-02-30 over to March; refuse impossible dates.
    throw new UsageError(`${flag} is not a valid date: ${JSON.stringify(text)}`);
  }
  if (dateOnly && endOfDay) return (ms + 86_400_000) * 1000 - 1;
  return ms * 1000 + fraction;
}

export function parseFormat(value: string | undefined, isTty: boolean): OutputFormat {
  if (value === undefined) return isTty ? 'table' : 'ndjson';
  if (!(OUTPUT_FORMATS as readonly string[]).includes(value)) {
    throw new UsageError(`--format must be one of ${OUTPUT_FORMATS.join('|')} (got ${JSON.stringify(value)})`);
  }
  return value as OutputFormat;
}
