import type { SubjectStrategy } from '../config/registry-env';
import { CURRENT_SCHEMA_ID, confluentHeader, schemaJson, schemaType } from '../schemas';
import { type RegistryClient, subjectFor } from './client';

export interface WriterSchema {
  /** The registry's id for the schema, written in every record's header. */
  id: number;
  subject: string;
  version: number;
  /** Byte 0 + the id: the Confluent framing registry-aware readers expect. */
  header: Buffer;
}

/**
 * Finds or registers one of our schema versions under the topic's subject. The
 * registry runs its compatibility check on a new version, so an incompatible
 * change is refused here (SchemaIncompatibleError, one line), before a record
 * is sent.
 */
export async function registerWriterSchema(
  client: RegistryClient,
  topic: string,
  strategy: SubjectStrategy,
  version: number = CURRENT_SCHEMA_ID,
): Promise<WriterSchema> {
  const subject = subjectFor(strategy, topic, schemaType(version).name ?? 'AuditEvent');
  const id = await client.idFor(subject, schemaJson(version));
  return { id, subject, version, header: confluentHeader(id) };
}
