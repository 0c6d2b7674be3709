import { fingerprintBytes } from './fingerprint';
import { schemaType } from './registry';

/**
 * The header in front of each record's Avro body. Three framings exist on audit
 * topics (see schemas/README.md, "Wire format"):
 *
 * - single-object (the default, no registry): `C3 01` + the writer schema's
 *   CRC-64-AVRO fingerprint, 8 bytes little-endian (the Avro specification's
 *   single-object encoding). No registry-aware reader can take it for one of its ids.
 * - Confluent, registry ids (with `AUDIT_SCHEMA_REGISTRY_URL`): byte 0 + a 4-byte
 *   big-endian id issued by the schema registry.
 * - Confluent, legacy ids (written before this release): byte 0 + our schema
 *   version (1 or 2) as if it were a registry id. Read, never written.
 */
export const CONFLUENT_MAGIC = 0;
export const CONFLUENT_HEADER_BYTES = 5;
export const SINGLE_OBJECT_MARKER_0 = 0xc3;
export const SINGLE_OBJECT_MARKER_1 = 0x01;
export const SINGLE_OBJECT_HEADER_BYTES = 10;

export type Framing =
  | { kind: 'confluent'; schemaId: number; headerBytes: typeof CONFLUENT_HEADER_BYTES }
  | { kind: 'single-object'; fingerprint: string; headerBytes: typeof SINGLE_OBJECT_HEADER_BYTES };

/** The framing of a message, or null when it has neither header. */
export function readFraming(buf: Buffer): Framing | null {
  if (buf.length >= SINGLE_OBJECT_HEADER_BYTES && buf[0] === SINGLE_OBJECT_MARKER_0 && buf[1] === SINGLE_OBJECT_MARKER_1) {
    return { kind: 'single-object', fingerprint: buf.toString('hex', 2, 10), headerBytes: SINGLE_OBJECT_HEADER_BYTES };
  }
  if (buf.length >= CONFLUENT_HEADER_BYTES && buf[0] === CONFLUENT_MAGIC) {
    return { kind: 'confluent', schemaId: buf.readInt32BE(1), headerBytes: CONFLUENT_HEADER_BYTES };
  }
  return null;
}

const singleObjectHeaders = new Map<number, Buffer>();

/** `C3 01` + the fingerprint of one of our schema versions. */
export function singleObjectHeader(version: number): Buffer {
  let header = singleObjectHeaders.get(version);
  if (!header) {
    header = Buffer.concat([Buffer.from([SINGLE_OBJECT_MARKER_0, SINGLE_OBJECT_MARKER_1]), fingerprintBytes(schemaType(version))]);
    singleObjectHeaders.set(version, header);
  }
  return header;
}

/** Byte 0 + a 4-byte big-endian schema id (a registry's id; our version for the legacy framing). */
export function confluentHeader(schemaId: number): Buffer {
  const header = Buffer.alloc(CONFLUENT_HEADER_BYTES);
  header.writeUInt8(CONFLUENT_MAGIC, 0);
  header.writeInt32BE(schemaId, 1);
  return header;
}

/** The version whose fingerprint a single-object header carries (hex, as in `Framing`), if this build knows it. */
export function versionOfFingerprint(fingerprintHex: string, versions: readonly number[]): number | undefined {
  for (const v of versions) if (singleObjectHeader(v).toString('hex', 2, 10) === fingerprintHex) return v;
  return undefined;
}
