import { CURRENT_SCHEMA_ID, schemaJson } from './registry';
import type { AuditRecord } from './types';

/**
 * The record's fields, read from the newest published .avsc rather than
 * written out again: the schemas are the contract (non-JS readers use them
 * too), and versions are only ever added, so every place that lists the fields
 * (the Parquet columns, the staging line, the query's events) follows a new
 * version without being edited field by field.
 */

/** The Avro type of a field, without its null branch. */
export type AvroFieldType = 'string' | 'uuid' | 'timestamp-micros' | 'int' | 'long' | 'double' | 'map';

/** The column types the store's Parquet files use, as DuckDB names them. */
export type ColumnType = 'UUID' | 'TIMESTAMPTZ' | 'VARCHAR' | 'INTEGER' | 'BIGINT' | 'DOUBLE';

export interface RecordField {
  name: keyof AuditRecord;
  type: AvroFieldType;
  /** A `["null", T]` union. */
  nullable: boolean;
  /** The column it is stored in. Maps and JSON texts are stored as JSON text (VARCHAR), which every Parquet reader can read. */
  column: ColumnType;
  /** Stored as JSON text that the query side parses back (maps, and the strings documented as JSON text). */
  json: boolean;
}

/** Where each Avro type is stored. Anything the newest .avsc uses must be here, or loading fails. */
const COLUMN_OF: Readonly<Record<AvroFieldType, ColumnType>> = {
  string: 'VARCHAR',
  uuid: 'UUID',
  'timestamp-micros': 'TIMESTAMPTZ',
  int: 'INTEGER',
  long: 'BIGINT',
  double: 'DOUBLE',
  map: 'VARCHAR',
};

/** Strings that carry JSON text (the .avsc says so only in their doc), which the query side parses. */
const JSON_TEXT_FIELDS: ReadonlySet<string> = new Set(['before', 'after']);

/** The columns each stored row has after the record's fields: where it came from in Kafka (lineage and ordering), not part of the record. */
export const LINEAGE_COLUMNS: readonly (readonly [string, ColumnType])[] = [
  ['kafka_partition', 'INTEGER'],
  ['kafka_offset', 'BIGINT'],
];

type SchemaType = string | { type: string; logicalType?: string } | SchemaType[];

interface SchemaField {
  name: string;
  type: SchemaType;
  doc?: string;
}

function fieldType(name: string, type: SchemaType): { type: AvroFieldType; nullable: boolean } {
  if (Array.isArray(type)) {
    const rest = type.filter((t) => t !== 'null');
    if (rest.length !== 1 || rest.length === type.length) throw new Error(`audit schema field ${name}: only ["null", T] unions are supported`);
    return { type: fieldType(name, rest[0]!).type, nullable: true };
  }
  const t = typeof type === 'string' ? type : (type.logicalType ?? type.type);
  if (!(t in COLUMN_OF)) throw new Error(`audit schema field ${name}: no column type for Avro type ${t}`);
  return { type: t as AvroFieldType, nullable: false };
}

/** The fields of schema version `id`, in schema order. */
function recordFieldsOf(id: number): RecordField[] {
  const fields = (schemaJson(id) as unknown as { fields: SchemaField[] }).fields;
  return fields.map((f) => {
    const { type, nullable } = fieldType(f.name, f.type);
    const json = type === 'map' || JSON_TEXT_FIELDS.has(f.name);
    return { name: f.name as keyof AuditRecord, type, nullable, column: COLUMN_OF[type], json };
  });
}

/** The record's fields in the newest schema, in schema order (the order of the stored columns). */
export const RECORD_FIELDS: readonly RecordField[] = recordFieldsOf(CURRENT_SCHEMA_ID);
