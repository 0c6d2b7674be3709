import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as avro from 'avsc';

/**
 * The schema versions this build knows. Ids are permanent: a version, once
 * published, is never edited; a new one is added with only defaulted fields so
 * that old and new writers stay mutually readable (Avro full compatibility).
 */
export const SCHEMA_FILES: Readonly<Record<number, string>> = {
  1: 'audit-event.v1.avsc',
  2: 'audit-event.v2.avsc',
};

export const CURRENT_SCHEMA_ID = 2;

// The .avsc files are read at run time (they are the source of truth for
// non-JS consumers too), from the source tree or from next to the compiled JS.
function schemaDir(): string {
  const candidates = [join(__dirname, 'avro'), join(__dirname, '..', '..', 'schemas', 'avro')];
  for (const dir of candidates) {
    try {
      readFileSync(join(dir, SCHEMA_FILES[CURRENT_SCHEMA_ID]!));
      return dir;
    } catch {
      // try the next location
    }
  }
  throw new Error(`Avro schema files not found (looked in ${candidates.join(', ')})`);
}

const dir = schemaDir();
const types = new Map<number, avro.Type>();

export function schemaJson(id: number): avro.Schema {
  const file = SCHEMA_FILES[id];
  if (!file) throw new UnknownSchemaError(id);
  return JSON.parse(readFileSync(join(dir, file), 'utf8')) as avro.Schema;
}

export function schemaType(id: number): avro.Type {
  let type = types.get(id);
  if (!type) {
    type = avro.Type.forSchema(schemaJson(id));
    types.set(id, type);
  }
  return type;
}

export function knownSchemaIds(): number[] {
  return Object.keys(SCHEMA_FILES).map(Number);
}

export class UnknownSchemaError extends Error {
  constructor(readonly schemaId: number) {
    super(`unknown audit schema id ${schemaId} (this build knows ${Object.keys(SCHEMA_FILES).join(', ')})`);
    this.name = 'UnknownSchemaError';
  }
}
