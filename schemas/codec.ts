import type * as avro from 'avsc';
import { readFraming, singleObjectHeader, versionOfFingerprint } from './framing';
import { CURRENT_SCHEMA_ID, knownSchemaIds, schemaType, UnknownSchemaError } from './registry';
import type { AuditRecord } from './types';

/**
 * Encoding and decoding of audit records: a framing header (schemas/framing.ts)
 * followed by the Avro binary body.
 */

export class AuditDecodeError extends Error {
  constructor(message: string, override readonly cause?: unknown) {
    super(message);
    this.name = 'AuditDecodeError';
  }
}

/**
 * `header` defaults to the single-object encoding of `version`; a producer using
 * a schema registry passes the Confluent header with the registry's id.
 */
export function encodeRecord(record: AuditRecord, version: number = CURRENT_SCHEMA_ID, header: Buffer = singleObjectHeader(version)): Buffer {
  const body = schemaType(version).toBuffer(record);
  const out = Buffer.allocUnsafe(header.length + body.length);
  header.copy(out, 0);
  body.copy(out, header.length);
  return out;
}

/**
 * What a schema registry said about a Confluent-framed id: its schema (with the
 * version of ours it is, by canonical fingerprint, or null for a schema this
 * build does not know, read by Avro schema resolution), or `absent` (no such id).
 */
export type RegistryEntry = { kind: 'found'; version: number | null; type: avro.Type } | { kind: 'absent' };

/** Synchronous view of resolved registry ids; undefined = not resolved yet (the consumer resolves before decoding). */
export type RegistryLookup = (id: number) => RegistryEntry | undefined;

export function isKnownVersion(id: number): boolean {
  return knownSchemaIds().includes(id);
}

/**
 * Reads a record in any of the three framings as the reader version.
 *
 * Confluent ids: without a registry they are our legacy version ids. With one,
 * the registry decides; an id it does not have is read as a legacy version id
 * (topics written before the registry was turned on), and when the registry's
 * schema for an id that is also a legacy version id does not decode the body,
 * the legacy reading is tried before giving up (registries number from 1 too).
 */
export class RecordDecoder {
  private readonly reader: avro.Type;
  private readonly resolvers = new Map<avro.Type, avro.Type | avro.Resolver>();

  constructor(
    readonly readerSchemaId: number = CURRENT_SCHEMA_ID,
    private readonly registry?: RegistryLookup,
  ) {
    this.reader = schemaType(readerSchemaId);
  }

  decode(buf: Buffer | null): AuditRecord {
    if (!buf) throw new AuditDecodeError('empty message value');
    const framing = readFraming(buf);
    if (!framing) {
      throw new AuditDecodeError(
        `not an audit record: neither the single-object header (C3 01 + fingerprint) nor the Confluent header (0 + schema id) (${buf.length} bytes)`,
      );
    }
    let writers: avro.Type[];
    let what: string;
    if (framing.kind === 'single-object') {
      what = `schema fingerprint ${framing.fingerprint}`;
      const version = versionOfFingerprint(framing.fingerprint, knownSchemaIds());
      if (version === undefined) throw new AuditDecodeError(`unknown audit ${what} (this build knows versions ${knownSchemaIds().join(', ')})`);
      writers = [schemaType(version)];
    } else {
      const id = framing.schemaId;
      what = `schema id ${id}`;
      writers = this.writersOfId(id);
    }
    const body = buf.subarray(framing.headerBytes);
    let first: Error | undefined;
    for (const writer of writers) {
      try {
        const resolver = this.resolver(writer);
        const value: unknown = resolver === this.reader ? this.reader.fromBuffer(body) : this.reader.fromBuffer(body, resolver as avro.Resolver);
        return value as AuditRecord;
      } catch (err) {
        first ??= err as Error;
      }
    }
    throw new AuditDecodeError(`undecodable Avro body for ${what}: ${first?.message}`, first);
  }

  private writersOfId(id: number): avro.Type[] {
    if (!this.registry) return [this.legacyType(id)];
    const entry = this.registry(id);
    if (entry === undefined) throw new Error(`schema id ${id} was not resolved through the registry before decoding`);
    if (entry.kind === 'absent') {
      if (isKnownVersion(id)) return [schemaType(id)];
      throw new AuditDecodeError(`schema id ${id} is not in the schema registry`);
    }
    return isKnownVersion(id) && entry.version !== id ? [entry.type, schemaType(id)] : [entry.type];
  }

  private legacyType(id: number): avro.Type {
    try {
      return schemaType(id);
    } catch (err) {
      if (err instanceof UnknownSchemaError) throw new AuditDecodeError(err.message, err);
      throw err;
    }
  }

  private resolver(writer: avro.Type): avro.Type | avro.Resolver {
    let resolver = this.resolvers.get(writer);
    if (!resolver) {
      try {
        resolver = writer === this.reader ? this.reader : this.reader.createResolver(writer);
      } catch (err) {
        throw new AuditDecodeError(`the writer schema cannot be read as audit schema v${this.readerSchemaId}: ${(err as Error).message}`, err);
      }
      this.resolvers.set(writer, resolver);
    }
    return resolver;
  }
}
