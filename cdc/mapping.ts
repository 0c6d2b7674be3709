import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from '../config/env';
import { DEFAULT_MASKED_FIELDS, fieldMatcher, type FieldMatcher } from '../producer/mask';

const names = z.array(z.string().min(1));

const tableSchema = z
  .object({
    /** Object type of the table's events (default: the table name). */
    objectType: z.string().min(1).optional(),
    /** Columns forming the object id, joined with `:` (default: the replica identity key, normally the primary key). */
    id: names.min(1).optional(),
    /** Only these columns appear in before/after/changes (the id columns still make the id). */
    include: names.optional(),
    /** These columns never appear. */
    exclude: names.optional(),
    /** These columns are masked (on top of the producer's default names). */
    mask: names.optional(),
    /** Not audited at all. */
    skip: z.boolean().optional(),
  })
  .strict();

export const mappingSchema = z
  .object({
    /** Keyed by `schema.table`, or `table` for the public schema. */
    tables: z.record(z.string(), tableSchema).default({}),
    /** Column names masked in every table (added to the producer's defaults). */
    mask: names.default([]),
    /** Column names left out of every table. */
    exclude: names.default([]),
  })
  .strict();

export type CdcMapping = z.infer<typeof mappingSchema>;
export type TableMapping = z.infer<typeof tableSchema>;

/** `AUDIT_CDC_MAPPING`: JSON text, or `@path` to a JSON file; unset = every table by its own name. */
export function loadMapping(value: string | undefined): CdcMapping {
  if (!value) return mappingSchema.parse({});
  let text = value;
  if (value.startsWith('@')) {
    try {
      text = readFileSync(value.slice(1), 'utf8');
    } catch (err) {
      throw new ConfigError(`AUDIT_CDC_MAPPING: cannot read ${value.slice(1)}: ${(err as Error).message}`);
    }
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`AUDIT_CDC_MAPPING: not JSON: ${(err as Error).message}`);
  }
  const parsed = mappingSchema.safeParse(json);
  if (!parsed.success) {
    throw new ConfigError(`AUDIT_CDC_MAPPING: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  return parsed.data;
}

/** What to do with one table's rows, computed once per relation. */
export interface TablePolicy {
  skip: boolean;
  objectType: string;
  /** null: the relation's key columns. */
  idColumns: readonly string[] | null;
  keepColumn: (name: string) => boolean;
  isMasked: FieldMatcher;
}

export function tablePolicy(mapping: CdcMapping, schema: string, table: string): TablePolicy {
  const qualified = `${schema}.${table}`;
  const t: TableMapping = mapping.tables[qualified] ?? (schema === 'public' ? mapping.tables[table] : undefined) ?? {};
  const include = t.include ? new Set(t.include) : null;
  const exclude = new Set([...mapping.exclude, ...(t.exclude ?? [])]);
  return {
    skip: t.skip === true,
    objectType: t.objectType ?? (schema === 'public' ? table : qualified),
    idColumns: t.id ?? null,
    keepColumn: (name) => (include === null || include.has(name)) && !exclude.has(name),
    // Named columns match exactly (a column `name` must not mask `username`); the defaults match anywhere, as in the producer.
    isMasked: fieldMatcher([...DEFAULT_MASKED_FIELDS, ...[...mapping.mask, ...(t.mask ?? [])].map(exactName)]),
  };
}

function exactName(name: string): RegExp {
  return new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'i');
}
