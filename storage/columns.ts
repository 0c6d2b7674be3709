import { LINEAGE_COLUMNS, RECORD_FIELDS, type ColumnType } from '../schemas/fields';

/**
 * The columns of the Parquet files, in order: the record's fields as the newest
 * .avsc lists them (schemas/fields.ts), then the Kafka lineage columns. Maps
 * and records are stored as JSON text so that every Parquet reader (including
 * minimal ones) can read them.
 *
 * `event_id` is a UUID: 16 bytes (FIXED_LEN_BYTE_ARRAY, UUID logical type)
 * instead of 36 characters of text, which saved ~4.5 of ~61 bytes per event on
 * random v4 ids (they do not compress either way). The consumer only stores
 * ids that passed the UUID check (others go to the dead-letter topic); DuckDB
 * reads them back as UUID and prints the usual lowercase text, and files
 * written before (VARCHAR) are read together with these (union_by_name makes
 * the column VARCHAR then).
 *
 * The order and types are part of the row hash's text form (trust/row-hash.ts):
 * a schema version that changes them needs a new digest format.
 */
export const COLUMN_TYPES: readonly (readonly [string, ColumnType])[] = [
  ...RECORD_FIELDS.map((f) => [f.name, f.column] as const),
  ...LINEAGE_COLUMNS,
];

/** The columns and their types as an SQL column list (`CREATE TABLE audit (...)`). */
export const PARQUET_COLUMNS = COLUMN_TYPES.map(([name, type]) => `${name} ${type}`).join(', ');
