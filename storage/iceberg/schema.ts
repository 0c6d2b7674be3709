import { COLUMN_TYPES } from '../columns';

/**
 * The table's schema, partition spec and sort order, from the Parquet layout
 * (storage/columns.ts, itself the Avro record of schemas/avro plus lineage).
 *
 * Field ids are what Iceberg readers bind columns by, so they must never move:
 * a column keeps the id the table first gave it (taken from the table's newest
 * schema), and a new column gets the next unused id. Our Parquet files carry no
 * field ids, so readers resolve columns by name through the name mapping
 * (`schema.name-mapping.default`), which lists every id with its name.
 */

export type IcebergPrimitive = 'uuid' | 'timestamptz' | 'string' | 'int' | 'long' | 'double';

export interface IcebergField {
  id: number;
  name: string;
  required: boolean;
  type: IcebergPrimitive;
  doc?: string;
}

export interface IcebergSchema {
  type: 'struct';
  'schema-id': number;
  fields: IcebergField[];
}

/**
 * DuckDB type of a Parquet column -> Iceberg type. `event_id` is `uuid`: the
 * consumer and compaction write it as a Parquet UUID (16-byte fixed with the
 * UUID logical type), which is exactly Iceberg's physical form for `uuid`, and
 * Spark/Trino show it as the usual text. Files of releases before that hold it
 * as text; Iceberg has no string->uuid promotion, so they read correctly only
 * once compaction has rewritten them (it casts to UUID).
 */
const TYPE_OF: Record<string, IcebergPrimitive> = {
  UUID: 'uuid',
  TIMESTAMPTZ: 'timestamptz',
  VARCHAR: 'string',
  INTEGER: 'int',
  BIGINT: 'long',
  DOUBLE: 'double',
};

export class IcebergSchemaError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IcebergSchemaError';
  }
}

/** The columns the store's files hold now, as (name, Iceberg type). */
export function storeColumns(): [string, IcebergPrimitive][] {
  return COLUMN_TYPES.map(([name, duck]) => {
    const type = TYPE_OF[duck];
    if (!type) throw new IcebergSchemaError(`column ${name}: no Iceberg type for ${duck}`);
    return [name, type];
  });
}

/**
 * The schema for the store's columns, keeping every id of `previous` (the
 * table's newest schema, if any). Returns `previous` itself when nothing
 * changed, so a commit adds a schema only on evolution. Columns the store no
 * longer writes stay (optional): old files still hold them.
 */
export function evolveSchema(previous: IcebergSchema | null, columns = storeColumns()): IcebergSchema {
  if (previous) {
    const byName = new Map(previous.fields.map((f) => [f.name, f]));
    const missing = columns.filter(([name]) => !byName.has(name));
    for (const [name, type] of columns) {
      const old = byName.get(name);
      // Changing a column's type would make old files unreadable under the same id.
      if (old && old.type !== type) throw new IcebergSchemaError(`column ${name} is ${old.type} in the table and ${type} in the store`);
    }
    if (missing.length === 0) return previous;
    let next = Math.max(0, ...previous.fields.map((f) => f.id));
    return {
      type: 'struct',
      'schema-id': previous['schema-id'] + 1,
      fields: [...previous.fields, ...missing.map(([name, type]) => ({ id: ++next, name, required: false, type }))],
    };
  }
  // Optional throughout: files of older schema versions lack the later columns.
  return { type: 'struct', 'schema-id': 0, fields: columns.map(([name, type], i) => ({ id: i + 1, name, required: false, type })) };
}

export function fieldId(schema: IcebergSchema, name: string): number {
  const f = schema.fields.find((x) => x.name === name);
  if (!f) throw new IcebergSchemaError(`the table has no column ${name}`);
  return f.id;
}

/** `schema.name-mapping.default`: how a reader finds a column in a file without field ids. */
export function nameMapping(schema: IcebergSchema): string {
  return JSON.stringify(schema.fields.map((f) => ({ 'field-id': f.id, names: [f.name] })));
}

export const PARTITION_FIELD_ID = 1000;
export const PARTITION_FIELD_NAME = 'occurred_at_day';
export const SORT_ORDER_ID = 1;

/** Hidden day partitioning: `WHERE occurred_at BETWEEN …` prunes days without users naming a partition column. */
export function partitionSpec(schema: IcebergSchema) {
  return {
    'spec-id': 0,
    fields: [{ 'source-id': fieldId(schema, 'occurred_at'), 'field-id': PARTITION_FIELD_ID, name: PARTITION_FIELD_NAME, transform: 'day' }],
  };
}

/** The order compaction writes (object, then time); consumer files are declared unsorted (order 0). */
export function sortOrders(schema: IcebergSchema) {
  const asc = (name: string) => ({ transform: 'identity', 'source-id': fieldId(schema, name), direction: 'asc', 'null-order': 'nulls-first' });
  return [
    { 'order-id': 0, fields: [] },
    { 'order-id': SORT_ORDER_ID, fields: [asc('object_type'), asc('object_id'), asc('occurred_at')] },
  ];
}
