import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CURRENT_SCHEMA_ID, SCHEMA_FILES, type AuditRecord } from '../../schemas';
import { LINEAGE_COLUMNS, RECORD_FIELDS } from '../../schemas/fields';
import { COLUMN_TYPES } from '../../storage/columns';
import { sqlString } from '../../storage/sql';
import { ParquetWriter } from '../../consumer/parquet-writer';
import { stageRow } from '../../consumer/staging/staged-row';
import { openDuckDb, type HistoryEvent } from '../../query/history';
import { sampleRecord } from '../helpers/records';

const AVRO_DIR = join(__dirname, '..', '..', 'schemas', 'avro');

type AvscType = string | { type: string; logicalType?: string } | AvscType[];

// The query's event type and the record must name the same fields: one is derived from the other at run time.
type SameKeys<A, B> = [Exclude<keyof A, keyof B>, Exclude<keyof B, keyof A>] extends [never, never] ? true : false;
const sameKeys: SameKeys<HistoryEvent, AuditRecord> = true;

describe('the record fields', () => {
  it('come from the newest .avsc in the schema directory', () => {
    const newest = readdirSync(AVRO_DIR)
      .map((f) => /^audit-event\.v(\d+)\.avsc$/.exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .sort((a, b) => Number(b[1]) - Number(a[1]))[0]!;
    expect(Number(newest[1])).toBe(CURRENT_SCHEMA_ID);
    expect(newest[0]).toBe(SCHEMA_FILES[CURRENT_SCHEMA_ID]);
    const avsc = JSON.parse(readFileSync(join(AVRO_DIR, newest[0]), 'utf8')) as { fields: { name: string; type: AvscType }[] };

    expect(RECORD_FIELDS.map((f) => f.name)).toEqual(avsc.fields.map((f) => f.name));
    for (const [i, f] of avsc.fields.entries()) {
      const nullable = Array.isArray(f.type) && f.type.includes('null');
      const inner = Array.isArray(f.type) ? f.type.find((t) => t !== 'null')! : f.type;
      const type = typeof inner === 'string' ? inner : Array.isArray(inner) ? 'union' : (inner.logicalType ?? inner.type);
      expect({ name: RECORD_FIELDS[i]!.name, type: RECORD_FIELDS[i]!.type, nullable: RECORD_FIELDS[i]!.nullable }).toEqual({ name: f.name, type, nullable });
    }
    expect(sameKeys).toBe(true);
  });

  it('give the stored columns in the order and types files have always had', () => {
    // Pinned: the column order of written files, of --format json and of the row hash's text form.
    expect(COLUMN_TYPES.map(([n, t]) => `${n} ${t}`).join(', ')).toBe(
      'event_id UUID, occurred_at TIMESTAMPTZ, object_type VARCHAR, object_id VARCHAR, action VARCHAR, ' +
        'actor_id VARCHAR, actor_type VARCHAR, tenant_id VARCHAR, request_id VARCHAR, trace_id VARCHAR, ' +
        'ip VARCHAR, user_agent VARCHAR, http_method VARCHAR, http_path VARCHAR, http_status INTEGER, ' +
        'changes VARCHAR, before VARCHAR, after VARCHAR, metadata VARCHAR, source_service VARCHAR, ' +
        'schema_version INTEGER, duration_ms DOUBLE, error_type VARCHAR, error_message VARCHAR, error_stack VARCHAR, ' +
        'kafka_partition INTEGER, kafka_offset BIGINT',
    );
    expect(COLUMN_TYPES.slice(RECORD_FIELDS.length)).toEqual(LINEAGE_COLUMNS);
    expect(RECORD_FIELDS.filter((f) => f.json).map((f) => f.name)).toEqual(['changes', 'before', 'after', 'metadata']);
  });

  it('are the columns of the Parquet files the consumer writes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fields-'));
    const writer = await ParquetWriter.create({ rowGroupRows: 1024 });
    try {
      const path = join(dir, 'one.parquet');
      await writer.writeStaged([stageRow({ record: sampleRecord({ changes: { a: { old: '1', new: '2' } } }), partition: 0, offset: '7', size: 100 })], path);
      const { conn } = await openDuckDb();
      const described = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM read_parquet(${sqlString(path)})`)).getRowObjects();
      expect(described.map((r) => [String(r.column_name), String(r.column_type).replace('TIMESTAMP WITH TIME ZONE', 'TIMESTAMPTZ')])).toEqual(
        COLUMN_TYPES.map(([n, t]) => [n, t]),
      );
    } finally {
      writer.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
