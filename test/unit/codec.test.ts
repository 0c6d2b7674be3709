import * as avro from 'avsc';
import {
  AuditDecodeError,
  RecordDecoder,
  type RegistryEntry,
  canonicalForm,
  confluentHeader,
  crc64Avro,
  encodeRecord,
  fingerprintBytes,
  schemaJson,
  schemaType,
  readFraming,
  singleObjectHeader,
  InvalidRecordError,
  assertValidRecord,
} from '../../schemas';
import { sampleRecord } from '../helpers/records';

function v1Record() {
  const { duration_ms, error_type, error_message, error_stack, ...v1fields } = sampleRecord();
  void duration_ms, error_type, error_message, error_stack;
  return { ...v1fields, schema_version: 1 };
}

describe('schema fingerprints (CRC-64-AVRO of the Parsing Canonical Form)', () => {
  it('match the Avro specification test vectors', () => {
    // From the Avro specification's schema-tests data (64-bit Rabin fingerprints, signed).
    expect(BigInt.asIntN(64, crc64Avro('"null"'))).toBe(7195948357588979594n);
    expect(BigInt.asIntN(64, crc64Avro('"boolean"'))).toBe(-6970731678124411036n);
    expect(BigInt.asIntN(64, crc64Avro('"int"'))).toBe(8247732601305521295n);
  });

  it('ignore doc, defaults and logical types, and tell the versions apart', () => {
    const v2 = schemaJson(2) as unknown as { doc: string };
    expect(canonicalForm({ ...v2, doc: 'other' } as never)).toBe(canonicalForm(schemaType(2)));
    expect(canonicalForm(schemaType(2))).not.toContain('logicalType');
    expect(fingerprintBytes(schemaType(1)).equals(fingerprintBytes(schemaType(2)))).toBe(false);
  });
});

describe('Avro codec', () => {
  it('writes the single-object encoding by default: C3 01 + fingerprint, never byte 0 + a small id', () => {
    const rec = sampleRecord({ changes: { status: { old: '"draft"', new: '"sent"' } }, metadata: { a: 'b' }, http_status: 201, duration_ms: 12.5 });
    const buf = encodeRecord(rec);
    expect([buf[0], buf[1]]).toEqual([0xc3, 0x01]);
    expect(buf.subarray(2, 10).equals(fingerprintBytes(schemaType(2)))).toBe(true);
    expect(readFraming(buf)).toEqual({ kind: 'single-object', fingerprint: fingerprintBytes(schemaType(2)).toString('hex'), headerBytes: 10 });
    expect(new RecordDecoder().decode(buf)).toEqual(rec);
    expect(encodeRecord(v1Record() as never, 1).subarray(0, 10).equals(singleObjectHeader(1))).toBe(true);
  });

  it('reads the legacy framing (byte 0 + our version as id) without a registry', () => {
    const rec = sampleRecord();
    const legacy = encodeRecord(rec, 2, confluentHeader(2));
    expect(new RecordDecoder().decode(legacy)).toEqual(rec);
    const v1 = encodeRecord(v1Record() as never, 1, confluentHeader(1));
    expect(new RecordDecoder().decode(v1)).toMatchObject({ schema_version: 1, duration_ms: null });
  });

  it('with a registry, reads its ids by the schema it names, legacy ids it lacks, and unknown schemas by resolution', () => {
    const v3 = { ...(schemaJson(2) as object), fields: [...(schemaJson(2) as unknown as { fields: object[] }).fields, { name: 'extra', type: 'string', default: '' }] };
    const v3Type = avro.Type.forSchema(v3 as avro.Schema);
    const entries = new Map<number, RegistryEntry>([
      [1, { kind: 'found', version: 2, type: schemaType(2) }], // the registry's id 1 is our v2
      [2, { kind: 'absent' }],
      [77, { kind: 'found', version: 1, type: schemaType(1) }],
      [78, { kind: 'found', version: null, type: v3Type }],
      [79, { kind: 'absent' }],
    ]);
    const d = new RecordDecoder(undefined, (id) => entries.get(id));
    const rec = sampleRecord();
    expect(d.decode(encodeRecord(rec, 2, confluentHeader(1)))).toEqual(rec);
    // A legacy v1 record whose id the registry gave to v2: the v2 reading fails, the legacy one is used.
    expect(d.decode(encodeRecord(v1Record() as never, 1, confluentHeader(1)))).toMatchObject({ schema_version: 1 });
    expect(d.decode(encodeRecord(rec, 2, confluentHeader(2)))).toEqual(rec);
    expect(d.decode(encodeRecord(v1Record() as never, 1, confluentHeader(77)))).toMatchObject({ schema_version: 1 });
    const fromV3 = Buffer.concat([confluentHeader(78), v3Type.toBuffer({ ...rec, extra: 'x' })]);
    expect(d.decode(fromV3)).toEqual(rec);
    expect(() => d.decode(encodeRecord(rec, 2, confluentHeader(79)))).toThrow(/schema id 79 is not in the schema registry/);
    expect(() => d.decode(encodeRecord(rec, 2, confluentHeader(80)))).toThrow(/not resolved/);
    expect(() => d.decode(encodeRecord(rec, 2, confluentHeader(80)))).not.toThrow(AuditDecodeError);
  });

  it('reads a v1 record as the current schema, with the new fields defaulted', () => {
    const v1 = avro.Type.forSchema(schemaJson(1));
    const { duration_ms, error_type, error_message, error_stack, ...v1fields } = sampleRecord();
    void duration_ms, error_type, error_message, error_stack;
    const body = v1.toBuffer({ ...v1fields, schema_version: 1 });
    const framed = Buffer.concat([singleObjectHeader(1), body]);
    const decoded = new RecordDecoder().decode(framed);
    expect(decoded).toMatchObject({ ...v1fields, schema_version: 1, duration_ms: null, error_message: null });
  });

  it('a v1 reader reads v2 records (forward compatibility)', () => {
    const rec = sampleRecord({ duration_ms: 3 });
    const decoded = new RecordDecoder(1).decode(encodeRecord(rec));
    expect(decoded.object_id).toBe('42');
    expect((decoded as unknown as Record<string, unknown>).duration_ms).toBeUndefined();
  });

  it('rejects garbage, unknown schema ids and fingerprints, and truncated bodies with AuditDecodeError', () => {
    const d = new RecordDecoder();
    expect(() => d.decode(Buffer.from('hello world'))).toThrow(AuditDecodeError);
    expect(() => d.decode(Buffer.from([0, 0, 0, 0, 99, 1, 2]))).toThrow(/unknown audit schema id 99/);
    expect(() => d.decode(Buffer.from([0xc3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2]))).toThrow(/unknown audit schema fingerprint 0102030405060708/);
    expect(() => d.decode(encodeRecord(sampleRecord()).subarray(0, 20))).toThrow(AuditDecodeError);
    expect(() => d.decode(null)).toThrow(AuditDecodeError);
  });

  it('flags semantically invalid records', () => {
    expect(() => assertValidRecord(sampleRecord({ event_id: 'nope' }))).toThrow(InvalidRecordError);
    expect(() => assertValidRecord(sampleRecord({ object_id: '' }))).toThrow(/object_id is empty/);
    expect(() => assertValidRecord(sampleRecord({ occurred_at: -5 }))).toThrow(/occurred_at out of range/);
    expect(() => assertValidRecord(sampleRecord())).not.toThrow();
  });
});
