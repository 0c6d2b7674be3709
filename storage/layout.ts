/**
 * The storage layout, shared by the consumer (writer) and the query side (reader):
 *
 *   <prefix>/dt=YYYY-MM-DD/<topic>-<partition>-<firstOffset>-<lastOffset>.parquet   data
 *   <prefix>/_index/dt=YYYY-MM-DD/<same name>.json                                  per-file index
 *   <prefix>/_cuts/<topic>/<partition>/<firstOffset>.json                             cut claims
 *
 * `dt` is the UTC date of the event time. Data file names come from Kafka offsets,
 * so replaying the same offset range writes the same key.
 */

const DT_RE = /^\d{4}-\d{2}-\d{2}$/;

const DAY_MICROS = 86_400_000_000;
const dtByDay = new Map<number, string>();

/** UTC date of an event time (memoized per day: this runs once per stored row). */
export function dtOfMicros(micros: number): string {
  const day = Math.floor(micros / DAY_MICROS);
  let dt = dtByDay.get(day);
  if (dt === undefined) {
    dt = new Date(day * 86_400_000).toISOString().slice(0, 10);
    if (dtByDay.size < 100_000) dtByDay.set(day, dt);
  }
  return dt;
}

export function isDt(value: string): boolean {
  return DT_RE.test(value) && !Number.isNaN(Date.parse(`${value}T00:00:00Z`));
}

export function dataFileName(topic: string, partition: number, firstOffset: string, lastOffset: string): string {
  return `${topic}-${partition}-${firstOffset}-${lastOffset}.parquet`;
}

export function dataKey(dt: string, fileName: string): string {
  return `dt=${dt}/${fileName}`;
}

export function indexKey(dt: string, fileName: string): string {
  return `_index/dt=${dt}/${fileName.replace(/\.parquet$/, '.json')}`;
}

export function cutKey(topic: string, partition: number, firstOffset: string): string {
  return `_cuts/${topic}/${partition}/${firstOffset}.json`;
}

export interface DataFileRef {
  key: string;
  dt: string;
  topic: string;
  partition: number;
  firstOffset: string;
  lastOffset: string;
}

const DATA_KEY_RE = /^dt=(\d{4}-\d{2}-\d{2})\/(.+)-(\d+)-(\d+)-(\d+)\.parquet$/;

/** Parses a data key; null for anything else (index files, temp files, foreign objects). */
export function parseDataKey(key: string): DataFileRef | null {
  const m = DATA_KEY_RE.exec(key);
  if (!m) return null;
  return { key, dt: m[1]!, topic: m[2]!, partition: Number(m[3]), firstOffset: m[4]!, lastOffset: m[5]! };
}

export const DATA_PREFIX = 'dt=';
export const INDEX_PREFIX = '_index/';

/** Every date from `from` to `to` inclusive (YYYY-MM-DD strings). */
export function datesBetween(from: string, to: string): string[] {
  const out: string[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += 86_400_000) {
    out.push(new Date(t).toISOString().slice(0, 10));
  }
  return out;
}
