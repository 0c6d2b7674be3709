import * as avro from 'avsc';
import { AuditDecodeError, RecordDecoder, encodeRecord, schemaJson, readSchemaId, InvalidRecordError, assertValidRecord } from '../../schemas';
import { sampleRecord } from '../helpers/records';

describe('Avro codec', () => {
  it('round-trips a record with the Confluent framing', () => {
    const rec = sampleRecord({ changes: { status: { old: '"draft"', new: '"sent"' } }, metadata: { a: 'b' }, http_status: 201, duration_ms: 12.5 });
    const buf = encodeRecord(rec);
    expect(buf[0]).toBe(0);
    expect(readSchemaId(buf)).toBe(2);
    expect(new RecordDecoder().decode(buf)).toEqual(rec);
  });

  it('reads a v1 record as the current schema, with the new fields defaulted', () => {
    const v1 = avro.Type.forSchema(schemaJson(1));
    const { duration_ms, error_type, error_message, error_stack, ...v1fields } = sampleRecord();
    void duration_ms, error_type, error_message, error_stack;
    const body = v1.toBuffer({ ...v1fields, schema_version: 1 });
    const framed = Buffer.concat([Buffer.from([0, 0, 0, 0, 1]), body]);
    const decoded = new RecordDecoder().decode(framed);
    expect(decoded).toMatchObject({ ...v1fields, schema_version: 1, duration_ms: null, error_message: null });
  });

  it('a v1 reader reads v2 records (forward compatibility)', () => {
    const rec = sampleRecord({ duration_ms: 3 });
    const decoded = new RecordDecoder(1).decode(encodeRecord(rec));
    expect(decoded.object_id).toBe('42');
    expect((decoded as unknown as Record<string, unknown>).duration_ms).toBeUndefined();
  });

  it('rejects garbage, unknown schema ids and truncated bodies with AuditDecodeError', () => {
    const d = new RecordDecoder();
    expect(() => d.decode(Buffer.from('hello world'))).toThrow(AuditDecodeError);
    expect(() => d.decode(Buffer.from([0, 0, 0, 0, 99, 1, 2]))).toThrow(/unknown audit schema id 99/);
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
