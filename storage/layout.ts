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

/** A real calendar date as YYYY-MM-DD (Date.parse alone takes 2026-02-30 as March 2). */
export function isDt(value: string): boolean {
  if (!DT_RE.test(value)) return false;
  const t = Date.parse(`${value}T00:00:00Z`);
  return !Number.isNaN(t) && new Date(t).toISOString().slice(0, 10) === value;
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

/** Kafka topic names: letters, digits, `.`, `_`, `-` (so a key cannot smuggle a sub-folder into a day). */
const TOPIC = '[A-Za-z0-9._-]+';
const DT = '(\\d{4}-\\d{2}-\\d{2})';
export const DATA_KEY_RE = new RegExp(`^dt=${DT}/(${TOPIC})-(\\d+)-(\\d+)-(\\d+)\\.parquet$`);
export const COMPACTED_KEY_RE = new RegExp(`^dt=${DT}/(${TOPIC})-(\\d+)-(\\d+)-(\\d+)\\.c(\\d+)-([0-9a-z]+)\\.parquet$`);
export const GENERATION_KEY_RE = new RegExp(`^dt=${DT}/_live/(\\d{10})\\.json$`);

/** Parses a consumer data key; null for anything else, and for a folder that is not a real date (dt=2026-13-01). */
export function parseDataKey(key: string): DataFileRef | null {
  const m = DATA_KEY_RE.exec(key);
  if (!m || !isDt(m[1]!)) return null;
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

/**
 * Every kind of object the pipeline writes under the store's prefix: the layout
 * is closed. Readers take data only from keys classified `data` or `compacted`,
 * and `audit-query verify` reports any other object (`outside-layout`): valid
 * Parquet copied under `dt=2026-13-01/` is read by no one and named by verify.
 * A new kind of object is one entry here (its `dt` group, if any, must be a real
 * date).
 */
export type LayoutKind =
  | 'data'
  | 'compacted'
  | 'generation'
  | 'file-index'
  | 'day-manifest'
  | 'external-manifest'
  | 'cut-claim'
  | 'chain-digest'
  | 'compaction-digest'
  | 'retention-digest'
  | 'public-key'
  | 'self-check'
  | 'iceberg-metadata'
  | 'object-shard';

interface LayoutEntry {
  kind: LayoutKind;
  re: RegExp;
  /** Capture group holding the day, checked with isDt. */
  dtGroup?: number;
}

export const LAYOUT: readonly LayoutEntry[] = [
  { kind: 'data', re: DATA_KEY_RE, dtGroup: 1 },
  { kind: 'compacted', re: COMPACTED_KEY_RE, dtGroup: 1 },
  { kind: 'generation', re: GENERATION_KEY_RE, dtGroup: 1 },
  { kind: 'day-manifest', re: new RegExp(`^_index/dt=${DT}/_manifest\\.bin$`), dtGroup: 1 },
  { kind: 'object-shard', re: new RegExp(`^_index/dt=${DT}/_objects/\\d{2}\\.bin$`), dtGroup: 1 },
  { kind: 'file-index', re: new RegExp(`^_index/dt=${DT}/${TOPIC}-\\d+-\\d+-\\d+(\\.c\\d+-[0-9a-z]+)?\\.json$`), dtGroup: 1 },
  { kind: 'external-manifest', re: new RegExp(`^_symlink_format_manifest/dt=${DT}/manifest$`), dtGroup: 1 },
  { kind: 'cut-claim', re: new RegExp(`^_cuts/${TOPIC}/\\d+/\\d+\\.json$`) },
  { kind: 'chain-digest', re: new RegExp(`^_digests/chain/${TOPIC}/\\d+/\\d{12}\\.json$`) },
  { kind: 'compaction-digest', re: new RegExp(`^_digests/compaction/dt=${DT}/${TOPIC}-\\d+-\\d+-\\d+\\.c\\d+-[0-9a-z]+\\.json$`), dtGroup: 1 },
  { kind: 'retention-digest', re: new RegExp(`^_digests/retention/dt=${DT}\\.json$`), dtGroup: 1 },
  { kind: 'public-key', re: /^_digests\/keys\/[0-9a-f]{16}\.json$/ },
  { kind: 'self-check', re: /^_selfcheck\/[^/]+\/[^/]+\.json$/ },
  // The Iceberg table the maintainer publishes (maintenance/iceberg/): metadata files, the version hint,
  // manifest lists (snap-<snapshot>-1-<uuid>.avro) and one manifest per day (m-<dt>-<hash>-<snapshot>.avro).
  { kind: 'iceberg-metadata', re: /^_iceberg\/metadata\/(v\d+\.metadata\.json|version-hint\.text|snap-\d+-1-[0-9a-f-]{36}\.avro)$/ },
  { kind: 'iceberg-metadata', re: new RegExp(`^_iceberg/metadata/m-${DT}-[0-9a-f]{16}-\\d+\\.avro$`), dtGroup: 1 },
];

/** What a key is in the layout; null for an object outside it (a finding for verify, ignored by readers). */
export function classifyKey(key: string): LayoutKind | null {
  for (const e of LAYOUT) {
    const m = e.re.exec(key);
    if (m && (e.dtGroup === undefined || isDt(m[e.dtGroup]!))) return e.kind;
  }
  return null;
}
