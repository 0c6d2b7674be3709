import type * as avro from 'avsc';
import { CURRENT_SCHEMA_ID, schemaType, UnknownSchemaError } from './registry';
import type { AuditRecord } from './types';

/**
 * Wire format: the Confluent framing (magic byte 0, 4-byte big-endian schema id,
 * Avro binary body), so that Kafka tooling that understands it can read our
 * topic. The id is our schema version (schemas/registry.ts), not a registry id.
 */
const MAGIC = 0;
const HEADER_BYTES = 5;

export class AuditDecodeError extends Error {
  constructor(message: string, override readonly cause?: unknown) {
    super(message);
    this.name = 'AuditDecodeError';
  }
}

export function encodeRecord(record: AuditRecord, schemaId: number = CURRENT_SCHEMA_ID): Buffer {
  const body = schemaType(schemaId).toBuffer(record);
  const out = Buffer.allocUnsafe(HEADER_BYTES + body.length);
  out.writeUInt8(MAGIC, 0);
  out.writeInt32BE(schemaId, 1);
  body.copy(out, HEADER_BYTES);
  return out;
}

export function readSchemaId(buf: Buffer): number {
  if (buf.length < HEADER_BYTES || buf.readUInt8(0) !== MAGIC) {
    throw new AuditDecodeError(`not an audit record: missing magic byte/schema id header (${buf.length} bytes)`);
  }
  return buf.readInt32BE(1);
}

/** Reads a record written with any known schema version as the current version. */
export class RecordDecoder {
  private readonly reader: avro.Type;
  private readonly resolvers = new Map<number, avro.Type | avro.Resolver>();

  constructor(readonly readerSchemaId: number = CURRENT_SCHEMA_ID) {
    this.reader = schemaType(readerSchemaId);
  }

  decode(buf: Buffer | null): AuditRecord {
    if (!buf) throw new AuditDecodeError('empty message value');
    const id = readSchemaId(buf);
    let resolver = this.resolvers.get(id);
    if (!resolver) {
      let writer: avro.Type;
      try {
        writer = schemaType(id);
      } catch (err) {
        if (err instanceof UnknownSchemaError) throw new AuditDecodeError(err.message, err);
        throw err;
      }
      resolver = id === this.readerSchemaId ? this.reader : this.reader.createResolver(writer);
      this.resolvers.set(id, resolver);
    }
    try {
      const body = buf.subarray(HEADER_BYTES);
      const value: unknown =
        resolver === this.reader
          ? this.reader.fromBuffer(body)
          : this.reader.fromBuffer(body, resolver as avro.Resolver);
      return value as AuditRecord;
    } catch (err) {
      throw new AuditDecodeError(`undecodable Avro body for schema id ${id}: ${(err as Error).message}`, err);
    }
  }
}
