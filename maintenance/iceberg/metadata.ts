import { randomUUID } from 'node:crypto';
import { type IcebergSchema, SORT_ORDER_ID, evolveSchema, nameMapping, partitionSpec, sortOrders, PARTITION_FIELD_ID } from './schema';

/**
 * The table metadata file (`metadata/vN.metadata.json`) of an Iceberg v2
 * table, and the pure steps of a commit: a new snapshot, expiry of old ones,
 * and the metadata log kept short.
 */

export type SnapshotOperation = 'append' | 'replace' | 'overwrite' | 'delete';

export interface Snapshot {
  'snapshot-id': number;
  'parent-snapshot-id'?: number;
  'sequence-number': number;
  'timestamp-ms': number;
  'manifest-list': string;
  summary: { operation: SnapshotOperation } & Record<string, string>;
  'schema-id': number;
}

export interface TableMetadata {
  'format-version': 2;
  'table-uuid': string;
  location: string;
  'last-sequence-number': number;
  'last-updated-ms': number;
  'last-column-id': number;
  schemas: IcebergSchema[];
  'current-schema-id': number;
  'partition-specs': ReturnType<typeof partitionSpec>[];
  'default-spec-id': number;
  'last-partition-id': number;
  properties: Record<string, string>;
  'current-snapshot-id': number | null;
  snapshots: Snapshot[];
  'snapshot-log': { 'snapshot-id': number; 'timestamp-ms': number }[];
  'metadata-log': { 'metadata-file': string; 'timestamp-ms': number }[];
  'sort-orders': ReturnType<typeof sortOrders>;
  'default-sort-order-id': number;
  refs: Record<string, { 'snapshot-id': number; type: 'branch' | 'tag' }>;
}

/** How many earlier metadata files the log keeps; older ones are deleted after a commit. */
export const PREVIOUS_VERSIONS_MAX = 10;

export function tableProperties(schema: IcebergSchema): Record<string, string> {
  return {
    'schema.name-mapping.default': nameMapping(schema),
    'write.metadata.delete-after-commit.enabled': 'true',
    'write.metadata.previous-versions-max': String(PREVIOUS_VERSIONS_MAX),
    'write.format.default': 'parquet',
    // Nobody but the maintainer may commit: the files are the pipeline's, named by its live-set rule.
    'audit.writer': 'audit-admin maintain',
  };
}

export function newTable(location: string, now: number): TableMetadata {
  const schema = evolveSchema(null);
  return {
    'format-version': 2,
    'table-uuid': randomUUID(),
    location,
    'last-sequence-number': 0,
    'last-updated-ms': now,
    'last-column-id': Math.max(...schema.fields.map((f) => f.id)),
    schemas: [schema],
    'current-schema-id': schema['schema-id'],
    'partition-specs': [partitionSpec(schema)],
    'default-spec-id': 0,
    'last-partition-id': PARTITION_FIELD_ID,
    properties: tableProperties(schema),
    'current-snapshot-id': null,
    snapshots: [],
    'snapshot-log': [],
    'metadata-log': [],
    'sort-orders': sortOrders(schema),
    'default-sort-order-id': SORT_ORDER_ID,
    refs: {},
  };
}

export class TableMetadataError extends Error {
  constructor(
    readonly key: string,
    why: string,
  ) {
    super(`unusable Iceberg metadata ${key}: ${why}`);
    this.name = 'TableMetadataError';
  }
}

const REQUIRED: readonly (keyof TableMetadata)[] = [
  'format-version', 'table-uuid', 'location', 'last-sequence-number', 'last-updated-ms', 'last-column-id', 'schemas',
  'current-schema-id', 'partition-specs', 'default-spec-id', 'last-partition-id', 'sort-orders', 'default-sort-order-id',
];

export function decodeMetadata(body: Buffer, key: string): TableMetadata {
  let m: Partial<TableMetadata>;
  try {
    m = JSON.parse(body.toString('utf8')) as Partial<TableMetadata>;
  } catch (err) {
    throw new TableMetadataError(key, (err as Error).message);
  }
  for (const f of REQUIRED) if (m[f] === undefined) throw new TableMetadataError(key, `missing ${f}`);
  if (m['format-version'] !== 2) throw new TableMetadataError(key, `format-version ${String(m['format-version'])}, this writer knows 2`);
  return { properties: {}, snapshots: [], 'snapshot-log': [], 'metadata-log': [], refs: {}, 'current-snapshot-id': null, ...m } as TableMetadata;
}

export function currentSnapshot(m: TableMetadata): Snapshot | null {
  return m.snapshots.find((s) => s['snapshot-id'] === m['current-snapshot-id']) ?? null;
}

/** The schema for the store's columns now, added to the metadata (ids kept) when it evolved. */
export function withCurrentSchema(m: TableMetadata): TableMetadata {
  const current = m.schemas.find((s) => s['schema-id'] === m['current-schema-id']) ?? null;
  const schema = evolveSchema(current);
  if (schema === current) return m;
  return {
    ...m,
    schemas: [...m.schemas, schema],
    'current-schema-id': schema['schema-id'],
    'last-column-id': Math.max(m['last-column-id'], ...schema.fields.map((f) => f.id)),
    properties: { ...m.properties, 'schema.name-mapping.default': nameMapping(schema) },
  };
}

/** A random positive id that a JSON number and a Java long both hold exactly. */
export function newSnapshotId(): number {
  return Math.floor(Math.random() * (Number.MAX_SAFE_INTEGER - 1)) + 1;
}

/** The metadata with `snapshot` made current on `main`. */
export function addSnapshot(m: TableMetadata, snapshot: Snapshot): TableMetadata {
  return {
    ...m,
    'last-sequence-number': snapshot['sequence-number'],
    'last-updated-ms': snapshot['timestamp-ms'],
    'current-snapshot-id': snapshot['snapshot-id'],
    snapshots: [...m.snapshots, snapshot],
    'snapshot-log': [...m['snapshot-log'], { 'snapshot-id': snapshot['snapshot-id'], 'timestamp-ms': snapshot['timestamp-ms'] }],
    refs: { ...m.refs, main: { 'snapshot-id': snapshot['snapshot-id'], type: 'branch' } },
  };
}

/** The metadata without the snapshots named (never the current one); the log forgets them too. */
export function removeSnapshots(m: TableMetadata, ids: ReadonlySet<number>): TableMetadata {
  const gone = (id: number) => ids.has(id) && id !== m['current-snapshot-id'];
  return {
    ...m,
    snapshots: m.snapshots.filter((s) => !gone(s['snapshot-id'])),
    'snapshot-log': m['snapshot-log'].filter((e) => !gone(e['snapshot-id'])),
  };
}

/**
 * The metadata of the next version, whose log names the previous file. The log
 * keeps the last PREVIOUS_VERSIONS_MAX entries, and longer any file superseded
 * less than `keepMs` ago (the grace period): a catalog registered with a fixed
 * metadata file keeps loading it, and reading the same snapshot, for one grace
 * period after the pass that superseded it; its snapshot's files stay that long
 * too (cleanup and snapshot expiry run on the same period). The entries
 * dropped are returned, for deletion once the new version is committed.
 */
export function nextVersion(m: TableMetadata, previousFile: string | null, now: number, keepMs = 0): { metadata: TableMetadata; dropped: string[] } {
  const log = previousFile ? [...m['metadata-log'], { 'metadata-file': previousFile, 'timestamp-ms': m['last-updated-ms'] }] : m['metadata-log'];
  const updated = Math.max(now, m['last-updated-ms']);
  // Each file was superseded when the next one was written; the newest by the version being written now.
  const supersededAt = (i: number) => (i + 1 < log.length ? log[i + 1]!['timestamp-ms'] : updated);
  let cut = 0;
  while (cut < log.length - PREVIOUS_VERSIONS_MAX && now - supersededAt(cut) >= keepMs) cut++;
  return {
    metadata: { ...m, 'last-updated-ms': updated, 'metadata-log': log.slice(cut) },
    dropped: log.slice(0, cut).map((e) => e['metadata-file']),
  };
}
