import { randomBytes } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';
import * as avro from 'avsc';
import { PARTITION_FIELD_ID, PARTITION_FIELD_NAME } from './schema';

/**
 * Manifests and manifest lists as Avro object container files, with the v2
 * schemas of the Iceberg spec (field ids included: readers bind by them). The
 * container is written here rather than by avsc's BlockEncoder so the header
 * carries our schema JSON verbatim (avsc drops field attributes such as
 * `field-id` when it re-exports a schema) and so writing stays synchronous.
 */

const opt = (type: unknown) => ['null', type];
const intMap = (keyId: number, valueId: number, value: string) => ({
  type: 'array',
  logicalType: 'map',
  items: {
    type: 'record',
    name: `k${keyId}_v${valueId}`,
    fields: [
      { name: 'key', type: 'int', 'field-id': keyId },
      { name: 'value', type: value, 'field-id': valueId },
    ],
  },
});

/** The partition tuple of our spec: the day of `occurred_at` (an Iceberg date: days since 1970-01-01). */
export const PARTITION_AVRO = {
  type: 'record',
  name: 'r102',
  fields: [{ name: PARTITION_FIELD_NAME, type: opt({ type: 'int', logicalType: 'date' }), default: null, 'field-id': PARTITION_FIELD_ID }],
};

export const DATA_FILE_AVRO = {
  type: 'record',
  name: 'r2',
  fields: [
    { name: 'content', type: 'int', 'field-id': 134 },
    { name: 'file_path', type: 'string', 'field-id': 100 },
    { name: 'file_format', type: 'string', 'field-id': 101 },
    { name: 'partition', type: PARTITION_AVRO, 'field-id': 102 },
    { name: 'record_count', type: 'long', 'field-id': 103 },
    { name: 'file_size_in_bytes', type: 'long', 'field-id': 104 },
    { name: 'column_sizes', type: opt(intMap(117, 118, 'long')), default: null, 'field-id': 108 },
    { name: 'value_counts', type: opt(intMap(119, 120, 'long')), default: null, 'field-id': 109 },
    { name: 'null_value_counts', type: opt(intMap(121, 122, 'long')), default: null, 'field-id': 110 },
    { name: 'nan_value_counts', type: opt(intMap(138, 139, 'long')), default: null, 'field-id': 137 },
    { name: 'lower_bounds', type: opt(intMap(126, 127, 'bytes')), default: null, 'field-id': 125 },
    { name: 'upper_bounds', type: opt(intMap(129, 130, 'bytes')), default: null, 'field-id': 128 },
    { name: 'key_metadata', type: opt('bytes'), default: null, 'field-id': 131 },
    { name: 'split_offsets', type: opt({ type: 'array', items: 'long', 'element-id': 133 }), default: null, 'field-id': 132 },
    { name: 'equality_ids', type: opt({ type: 'array', items: 'int', 'element-id': 136 }), default: null, 'field-id': 135 },
    { name: 'sort_order_id', type: opt('int'), default: null, 'field-id': 140 },
  ],
};

export const MANIFEST_ENTRY_AVRO = {
  type: 'record',
  name: 'manifest_entry',
  fields: [
    { name: 'status', type: 'int', 'field-id': 0 },
    { name: 'snapshot_id', type: opt('long'), default: null, 'field-id': 1 },
    { name: 'sequence_number', type: opt('long'), default: null, 'field-id': 3 },
    { name: 'file_sequence_number', type: opt('long'), default: null, 'field-id': 4 },
    { name: 'data_file', type: DATA_FILE_AVRO, 'field-id': 2 },
  ],
};

export const MANIFEST_FILE_AVRO = {
  type: 'record',
  name: 'manifest_file',
  fields: [
    { name: 'manifest_path', type: 'string', 'field-id': 500 },
    { name: 'manifest_length', type: 'long', 'field-id': 501 },
    { name: 'partition_spec_id', type: 'int', 'field-id': 502 },
    { name: 'content', type: 'int', 'field-id': 517 },
    { name: 'sequence_number', type: 'long', 'field-id': 515 },
    { name: 'min_sequence_number', type: 'long', 'field-id': 516 },
    { name: 'added_snapshot_id', type: 'long', 'field-id': 503 },
    { name: 'added_files_count', type: 'int', 'field-id': 504 },
    { name: 'existing_files_count', type: 'int', 'field-id': 505 },
    { name: 'deleted_files_count', type: 'int', 'field-id': 506 },
    { name: 'added_rows_count', type: 'long', 'field-id': 512 },
    { name: 'existing_rows_count', type: 'long', 'field-id': 513 },
    { name: 'deleted_rows_count', type: 'long', 'field-id': 514 },
    {
      name: 'partitions',
      type: opt({
        type: 'array',
        'element-id': 508,
        items: {
          type: 'record',
          name: 'r508',
          fields: [
            { name: 'contains_null', type: 'boolean', 'field-id': 509 },
            { name: 'contains_nan', type: opt('boolean'), default: null, 'field-id': 518 },
            { name: 'lower_bound', type: opt('bytes'), default: null, 'field-id': 510 },
            { name: 'upper_bound', type: opt('bytes'), default: null, 'field-id': 511 },
          ],
        },
      }),
      default: null,
      'field-id': 507,
    },
    { name: 'key_metadata', type: opt('bytes'), default: null, 'field-id': 519 },
  ],
};

/** Manifest entry status. */
export const EXISTING = 0;
export const ADDED = 1;
export const DELETED = 2;

export interface DataFileRecord {
  content: 0;
  file_path: string;
  file_format: 'PARQUET';
  partition: { [PARTITION_FIELD_NAME]: number | null };
  record_count: number;
  file_size_in_bytes: number;
  column_sizes: null;
  value_counts: null;
  null_value_counts: null;
  nan_value_counts: null;
  lower_bounds: { key: number; value: Buffer }[] | null;
  upper_bounds: { key: number; value: Buffer }[] | null;
  key_metadata: null;
  split_offsets: null;
  equality_ids: null;
  sort_order_id: number | null;
}

export interface ManifestEntryRecord {
  status: typeof EXISTING | typeof ADDED | typeof DELETED;
  snapshot_id: number | null;
  sequence_number: number | null;
  file_sequence_number: number | null;
  data_file: DataFileRecord;
}

export interface ManifestFileRecord {
  manifest_path: string;
  manifest_length: number;
  partition_spec_id: number;
  content: 0;
  sequence_number: number;
  min_sequence_number: number;
  added_snapshot_id: number;
  added_files_count: number;
  existing_files_count: number;
  deleted_files_count: number;
  added_rows_count: number;
  existing_rows_count: number;
  deleted_rows_count: number;
  partitions: { contains_null: boolean; contains_nan: boolean | null; lower_bound: Buffer | null; upper_bound: Buffer | null }[] | null;
  key_metadata: null;
}

export class IcebergAvroError extends Error {
  constructor(
    readonly what: string,
    why: string,
  ) {
    super(`${what}: ${why}`);
    this.name = 'IcebergAvroError';
  }
}

const HEADER = avro.Type.forSchema({
  type: 'record',
  name: 'org.apache.avro.file.Header',
  fields: [
    { name: 'magic', type: { type: 'fixed', name: 'Magic', size: 4 } },
    { name: 'meta', type: { type: 'map', values: 'bytes' } },
    { name: 'sync', type: { type: 'fixed', name: 'Sync', size: 16 } },
  ],
});
const MAGIC = Buffer.from('Obj\x01', 'latin1');
const LONG = avro.Type.forSchema('long');

const typeCache = new Map<object, avro.Type>();
function typeOf(schema: object): avro.Type {
  let t = typeCache.get(schema);
  if (!t) typeCache.set(schema, (t = avro.Type.forSchema(schema as avro.Schema)));
  return t;
}

/** One uncompressed container file holding `records` in one block; `meta` values are written as UTF-8. */
export function writeContainer(schema: object, records: readonly object[], meta: Record<string, string>): Buffer {
  const type = typeOf(schema);
  const sync = randomBytes(16);
  const metaBytes: Record<string, Buffer> = { 'avro.schema': Buffer.from(JSON.stringify(schema)), 'avro.codec': Buffer.from('null') };
  for (const [k, v] of Object.entries(meta)) metaBytes[k] = Buffer.from(v);
  const parts: Buffer[] = [HEADER.toBuffer({ magic: MAGIC, meta: metaBytes, sync })];
  if (records.length > 0) {
    const body = Buffer.concat(records.map((r) => type.toBuffer(r)));
    parts.push(LONG.toBuffer(records.length), LONG.toBuffer(body.length), body, sync);
  }
  return Buffer.concat(parts);
}

/** Reads a container file (any block count, codec `null` or `deflate`); records decoded with the writer's schema. */
export function readContainer<T>(buf: Buffer, what: string): { records: T[]; meta: Record<string, string> } {
  let pos = 0;
  let header: { magic: Buffer; meta: Record<string, Buffer>; sync: Buffer };
  try {
    const r = HEADER.decode(buf, 0);
    if (r.offset < 0 || !r.value) throw new Error('truncated header');
    header = r.value as typeof header;
    pos = r.offset;
  } catch (err) {
    throw new IcebergAvroError(what, `not an Avro container file (${(err as Error).message})`);
  }
  if (!header.magic.equals(MAGIC)) throw new IcebergAvroError(what, 'bad magic');
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(header.meta)) meta[k] = v.toString('utf8');
  const codec = meta['avro.codec'] ?? 'null';
  if (codec !== 'null' && codec !== 'deflate') throw new IcebergAvroError(what, `unsupported codec ${codec}`);
  const type = avro.Type.forSchema(JSON.parse(meta['avro.schema'] ?? 'null') as avro.Schema);
  const records: T[] = [];
  while (pos < buf.length) {
    const count = LONG.decode(buf, pos);
    const size = LONG.decode(buf, count.offset);
    if (count.offset < 0 || size.offset < 0) throw new IcebergAvroError(what, 'truncated block header');
    const start = size.offset;
    const end = start + (size.value as number);
    if (end + 16 > buf.length) throw new IcebergAvroError(what, 'truncated block');
    const block = codec === 'deflate' ? inflateRawSync(buf.subarray(start, end)) : buf.subarray(start, end);
    let p = 0;
    for (let i = 0; i < (count.value as number); i++) {
      const r = type.decode(block, p);
      if (r.offset < 0) throw new IcebergAvroError(what, 'truncated record');
      records.push(r.value as T);
      p = r.offset;
    }
    if (!buf.subarray(end, end + 16).equals(header.sync)) throw new IcebergAvroError(what, 'sync marker mismatch');
    pos = end + 16;
  }
  return { records, meta };
}
