import * as avro from 'avsc';

/**
 * The Avro specification's schema fingerprint: CRC-64-AVRO (a 64-bit Rabin
 * fingerprint) of the schema's Parsing Canonical Form. It names a schema in the
 * single-object encoding, and is how a schema fetched from a registry is matched
 * to a version this build knows. avsc 5 computes the canonical form
 * (`Type#schema()`, checked against fastavro's in the interop test) but its
 * `fingerprint()` only offers crypto hashes, so the CRC is computed here.
 */

const EMPTY = 0xc15d213aa4d7a795n;
const MASK = 0xffffffffffffffffn;

const TABLE: bigint[] = (() => {
  const t: bigint[] = [];
  for (let i = 0; i < 256; i++) {
    let fp = BigInt(i);
    for (let j = 0; j < 8; j++) fp = (fp >> 1n) ^ (EMPTY & -(fp & 1n));
    t.push(fp & MASK);
  }
  return t;
})();

/** CRC-64-AVRO of some bytes (the specification's reference algorithm). */
export function crc64Avro(data: Buffer | string): bigint {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let fp = EMPTY;
  for (const b of bytes) fp = (fp >> 8n) ^ TABLE[Number((fp ^ BigInt(b)) & 0xffn)]!;
  return fp;
}

/** The Parsing Canonical Form of a schema (doc, defaults, aliases and logical types stripped). */
export function canonicalForm(schema: avro.Schema | avro.Type): string {
  const type = schema instanceof avro.Type ? schema : avro.Type.forSchema(schema);
  return JSON.stringify(type.schema());
}

/** The schema's fingerprint as the single-object encoding writes it: 8 bytes, little-endian. */
export function fingerprintBytes(schema: avro.Schema | avro.Type): Buffer {
  const out = Buffer.alloc(8);
  out.writeBigUInt64LE(crc64Avro(canonicalForm(schema)));
  return out;
}
