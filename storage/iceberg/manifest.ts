import { createHash } from 'node:crypto';
import {
  ADDED, DELETED, EXISTING, MANIFEST_ENTRY_AVRO, MANIFEST_FILE_AVRO,
  type DataFileRecord, type ManifestEntryRecord, type ManifestFileRecord, writeContainer,
} from './avro';
import { PARTITION_FIELD_NAME, type IcebergSchema, fieldId, partitionSpec, SORT_ORDER_ID } from './schema';

/**
 * The table keeps one manifest per day, named after the day and a hash of the
 * day's live keys: a commit rewrites only the manifests of days whose live set
 * changed (known without reading anything), and reuses the others. That keeps
 * a pass's metadata writes proportional to the days it changed, and the
 * manifest list at one entry per day.
 */

export interface TableFile {
  /** Store key (relative to the store's prefix). */
  key: string;
  size: number;
  rows: number;
  /** Event time bounds, µs UTC. */
  minOccurredAt: number;
  maxOccurredAt: number;
  /** Written by compaction, in the table's sort order. */
  sorted: boolean;
}

const DAY_MS = 86_400_000;

export function dayNumber(dt: string): number {
  return Date.parse(`${dt}T00:00:00Z`) / DAY_MS;
}

export function liveHash(keys: Iterable<string>): string {
  return createHash('sha256').update([...keys].sort().join('\n')).digest('hex').slice(0, 16);
}

const MANIFEST_NAME_RE = /\/m-(\d{4}-\d{2}-\d{2})-([0-9a-f]{16})-\d+\.avro$/;

export function manifestName(dt: string, hash: string, snapshotId: number): string {
  return `m-${dt}-${hash}-${snapshotId}.avro`;
}

/** The (day, live hash) a manifest's path names; null for a manifest this writer did not name. */
export function parseManifestPath(path: string): { dt: string; hash: string } | null {
  const m = MANIFEST_NAME_RE.exec(path);
  return m ? { dt: m[1]!, hash: m[2]! } : null;
}

function longLE(v: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigInt64LE(BigInt(v));
  return b;
}

export function dataFileRecord(file: TableFile, uri: string, dt: string, schema: IcebergSchema): DataFileRecord {
  const t = fieldId(schema, 'occurred_at');
  return {
    content: 0,
    file_path: uri,
    file_format: 'PARQUET',
    partition: { [PARTITION_FIELD_NAME]: dayNumber(dt) },
    record_count: file.rows,
    file_size_in_bytes: file.size,
    column_sizes: null,
    value_counts: null,
    null_value_counts: null,
    nan_value_counts: null,
    // Event-time bounds (single-value serialization: µs as a little-endian long) let engines skip files within a day.
    lower_bounds: [{ key: t, value: longLE(file.minOccurredAt) }],
    upper_bounds: [{ key: t, value: longLE(file.maxOccurredAt) }],
    key_metadata: null,
    split_offsets: null,
    equality_ids: null,
    sort_order_id: file.sorted ? SORT_ORDER_ID : 0,
  };
}

/** Entries of a day's manifest as read back: data and file sequence numbers resolved (inheritance applied). */
export interface ResolvedEntry {
  status: ManifestEntryRecord['status'];
  snapshotId: number;
  sequenceNumber: number;
  fileSequenceNumber: number;
  dataFile: DataFileRecord;
}

export function resolveEntries(entries: readonly ManifestEntryRecord[], manifest: ManifestFileRecord): ResolvedEntry[] {
  return entries.map((e) => ({
    status: e.status,
    snapshotId: e.snapshot_id ?? manifest.added_snapshot_id,
    // Null only on ADDED entries: they inherit the sequence number of the snapshot that added the manifest.
    sequenceNumber: e.sequence_number ?? manifest.sequence_number,
    fileSequenceNumber: e.file_sequence_number ?? manifest.sequence_number,
    dataFile: e.data_file,
  }));
}

export interface DayManifestInput {
  dt: string;
  schema: IcebergSchema;
  snapshotId: number;
  /** The day's entries in the current snapshot (empty for a new day). */
  previous: readonly ResolvedEntry[];
  /** The day's live files now, by URI; `added` gives the new ones their records. */
  live: ReadonlySet<string>;
  added: readonly DataFileRecord[];
}

export interface DayManifest {
  body: Buffer;
  entries: ManifestEntryRecord[];
  added: { files: number; rows: number };
  existing: { files: number; rows: number };
  deleted: { files: number; rows: number };
}

/** The day's manifest for the new snapshot: previous live files kept (EXISTING) or dropped (DELETED), new ones ADDED. */
export function buildDayManifest(input: DayManifestInput): DayManifest {
  const { snapshotId } = input;
  const entries: ManifestEntryRecord[] = [];
  const out: DayManifest = { body: Buffer.alloc(0), entries, added: { files: 0, rows: 0 }, existing: { files: 0, rows: 0 }, deleted: { files: 0, rows: 0 } };
  const seen = new Set<string>();
  for (const e of input.previous) {
    if (e.status === DELETED) continue; // recorded by the snapshot that deleted it
    seen.add(e.dataFile.file_path);
    const keep = input.live.has(e.dataFile.file_path);
    entries.push({
      status: keep ? EXISTING : DELETED,
      snapshot_id: keep ? e.snapshotId : snapshotId,
      sequence_number: e.sequenceNumber,
      file_sequence_number: e.fileSequenceNumber,
      data_file: e.dataFile,
    });
    const n = keep ? out.existing : out.deleted;
    n.files++;
    n.rows += e.dataFile.record_count;
  }
  for (const f of input.added) {
    if (seen.has(f.file_path)) continue;
    entries.push({ status: ADDED, snapshot_id: snapshotId, sequence_number: null, file_sequence_number: null, data_file: f });
    out.added.files++;
    out.added.rows += f.record_count;
  }
  out.body = writeContainer(MANIFEST_ENTRY_AVRO, entries, {
    schema: JSON.stringify(input.schema),
    'schema-id': String(input.schema['schema-id']),
    'partition-spec': JSON.stringify(partitionSpec(input.schema).fields),
    'partition-spec-id': '0',
    'format-version': '2',
    content: 'data',
  });
  return out;
}

function dateBytes(day: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(day);
  return b;
}

/** The manifest list's record of a day manifest written by this snapshot. */
export function manifestFileRecord(path: string, dt: string, m: DayManifest, snapshotId: number, sequenceNumber: number): ManifestFileRecord {
  const liveSeqs = m.entries.filter((e) => e.status === EXISTING).map((e) => e.sequence_number ?? sequenceNumber);
  const day = dateBytes(dayNumber(dt));
  return {
    manifest_path: path,
    manifest_length: m.body.length,
    partition_spec_id: 0,
    content: 0,
    sequence_number: sequenceNumber,
    min_sequence_number: Math.min(sequenceNumber, ...liveSeqs),
    added_snapshot_id: snapshotId,
    added_files_count: m.added.files,
    existing_files_count: m.existing.files,
    deleted_files_count: m.deleted.files,
    added_rows_count: m.added.rows,
    existing_rows_count: m.existing.rows,
    deleted_rows_count: m.deleted.rows,
    partitions: [{ contains_null: false, contains_nan: false, lower_bound: day, upper_bound: day }],
    key_metadata: null,
  };
}

export function writeManifestList(records: readonly ManifestFileRecord[], snapshotId: number, parentId: number | null, sequenceNumber: number): Buffer {
  return writeContainer(MANIFEST_FILE_AVRO, records, {
    'snapshot-id': String(snapshotId),
    'parent-snapshot-id': parentId === null ? 'null' : String(parentId),
    'sequence-number': String(sequenceNumber),
    'format-version': '2',
  });
}
