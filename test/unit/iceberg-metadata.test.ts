import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as avro from 'avsc';
import pino from 'pino';
import { FileObjectStore, type FileIndex, indexKey } from '../../storage';
import { type DayState, readDay } from '../../catalog';
import { IcebergPublisher } from '../../maintenance/iceberg/publisher';
import { METADATA_PREFIX, loadTable, newestSnapshotFiles } from '../../storage/iceberg/table-io';
import { evolveSchema } from '../../storage/iceberg/schema';
import { LIVE_FORMAT, encodeGeneration, generationKey } from '../../catalog/live-set';
import { unsignedTrust } from '../helpers/trust';
import { classifyKey } from '../../storage/layout';

/** Field ids of the spec's v2 manifest list and manifest entry (https://iceberg.apache.org/spec/#manifests), written out independently of the writer. */
const SPEC_LIST_IDS: Record<string, number> = {
  manifest_path: 500, manifest_length: 501, partition_spec_id: 502, content: 517, sequence_number: 515, min_sequence_number: 516,
  added_snapshot_id: 503, added_files_count: 504, existing_files_count: 505, deleted_files_count: 506, added_rows_count: 512,
  existing_rows_count: 513, deleted_rows_count: 514, partitions: 507, key_metadata: 519,
};
const SPEC_ENTRY_IDS: Record<string, number> = { status: 0, snapshot_id: 1, sequence_number: 3, file_sequence_number: 4, data_file: 2 };
const SPEC_DATA_FILE_IDS: Record<string, number> = {
  content: 134, file_path: 100, file_format: 101, partition: 102, record_count: 103, file_size_in_bytes: 104, lower_bounds: 125, upper_bounds: 128, sort_order_id: 140,
};
const V2_REQUIRED = [
  'format-version', 'table-uuid', 'location', 'last-sequence-number', 'last-updated-ms', 'last-column-id', 'schemas', 'current-schema-id',
  'partition-specs', 'default-spec-id', 'last-partition-id', 'sort-orders', 'default-sort-order-id',
];

interface Decoded {
  schema: { fields: { name: string; 'field-id': number; type: unknown }[] };
  meta: Record<string, string>;
  records: Record<string, unknown>[];
}

/** Decodes with avsc's own container reader (not the writer's code). */
function decodeFile(path: string): Promise<Decoded> {
  return new Promise((resolve, reject) => {
    const records: Record<string, unknown>[] = [];
    let meta: Record<string, string> = {};
    let schema: Decoded['schema'] | null = null;
    avro
      .createFileDecoder(path)
      .on('metadata', (_type: avro.Type, _codec: string, header: { meta: Record<string, Buffer> }) => {
        meta = Object.fromEntries(Object.entries(header.meta).map(([k, v]) => [k, v.toString('utf8')]));
        schema = JSON.parse(meta['avro.schema']!) as Decoded['schema'];
      })
      .on('data', (r: Record<string, unknown>) => records.push(r))
      .on('error', reject)
      .on('end', () => resolve({ schema: schema!, meta, records }));
  });
}

const ids = (fields: { name: string; 'field-id': number }[]) => Object.fromEntries(fields.map((f) => [f.name, f['field-id']]));

describe('Iceberg metadata written by the maintainer', () => {
  let root: string;
  let store: FileObjectStore;
  const lines: string[] = [];
  const dt = '2026-03-04';
  const t0 = Date.parse(`${dt}T10:00:00Z`) * 1000;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'iceberg-unit-'));
    store = new FileObjectStore(root);
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  async function dataFile(name: string, rows: number): Promise<void> {
    await store.put(`dt=${dt}/${name}`, Buffer.alloc(100 + rows));
    const index: FileIndex = { version: 1, key: `dt=${dt}/${name}`, rows, bytes: 100 + rows, minOccurredAt: t0, maxOccurredAt: t0 + rows, rowGroups: [] };
    await store.put(indexKey(dt, name), JSON.stringify(index));
  }

  function publisher(graceMs: number): IcebergPublisher {
    return new IcebergPublisher({ store, trust: unsignedTrust(), graceMs, concurrency: 4, log: pino({ level: 'silent' }), say: (l) => lines.push(l) });
  }

  async function pass(graceMs: number, now: number) {
    const p = publisher(graceMs);
    const day: DayState = await readDay(store, dt, unsignedTrust());
    p.observe(day);
    return p.commit(() => true, now);
  }

  it('appends consumer files, replaces them by a compacted file, and expires the snapshot that named them', async () => {
    await dataFile('t-0-0-9.parquet', 10);
    await dataFile('t-0-10-14.parquet', 5);
    const first = await pass(60_000, 1_000_000);
    expect(first).toMatchObject({ version: 1, operation: 'append', filesAdded: 2, filesDeleted: 0 });

    const compacted = 't-0-0-14.c1-abcd.parquet';
    await dataFile(compacted, 15);
    await store.putIfAbsent(
      generationKey(dt, 1),
      encodeGeneration({
        format: LIVE_FORMAT, dt, generation: 1, committedAt: 2_000_000,
        files: [{ key: `dt=${dt}/${compacted}`, size: 115, rows: 15, topic: 't', partition: 0, first: '0', last: '14' }],
        replaced: { 't/0': [['0', '9', 2_000_000], ['10', '14', 2_000_000]] }, retired: [],
      }),
    );
    // Within the grace period: the replaced files stay, so the earlier snapshot stays for time travel.
    const second = await pass(60_000, 2_000_100);
    expect(second).toMatchObject({ version: 2, operation: 'replace', filesAdded: 1, filesDeleted: 2, snapshotsExpired: 0 });
    expect((await newestSnapshotFiles(store))?.files).toEqual([`dt=${dt}/${compacted}`]);

    // Past it, the maintainer deletes them: the snapshot naming them goes in the same pass.
    const third = await pass(60_000, 2_000_000 + 60_000);
    expect(third).toMatchObject({ version: 3, snapshotId: null, snapshotsExpired: 1 });
    const table = (await loadTable(store))!;
    expect(table.metadata.snapshots).toHaveLength(1);
    expect(lines.some((l) => l.startsWith('iceberg v3'))).toBe(true);
  });

  it('writes v2 metadata JSON with every required field, the name mapping and day partitioning', async () => {
    const m = (await loadTable(store))!.metadata as unknown as Record<string, unknown>;
    for (const f of V2_REQUIRED) expect(m).toHaveProperty([f]);
    expect(m['format-version']).toBe(2);
    const props = m.properties as Record<string, string>;
    const mapping = JSON.parse(props['schema.name-mapping.default']!) as { 'field-id': number; names: string[] }[];
    expect(mapping.find((e) => e.names[0] === 'event_id')?.['field-id']).toBe(1);
    expect(props['write.metadata.delete-after-commit.enabled']).toBe('true');
    expect(m['partition-specs']).toEqual([{ 'spec-id': 0, fields: [{ 'source-id': 2, 'field-id': 1000, name: 'occurred_at_day', transform: 'day' }] }]);
    const schema = (m.schemas as { fields: { name: string; type: string }[] }[])[0]!;
    expect(schema.fields.find((f) => f.name === 'event_id')?.type).toBe('uuid');
  });

  it('writes manifest lists and manifests that avsc decodes, with the spec field ids', async () => {
    const table = (await loadTable(store))!;
    const snap = table.metadata.snapshots[0]!;
    const list = await decodeFile(snap['manifest-list'].replace('file://', ''));
    expect(ids(list.schema.fields)).toEqual(SPEC_LIST_IDS);
    expect(list.meta['format-version']).toBe('2');
    expect(list.records).toHaveLength(1);
    const manifest = await decodeFile(String(list.records[0]!.manifest_path).replace('file://', ''));
    expect(ids(manifest.schema.fields)).toEqual(SPEC_ENTRY_IDS);
    const dataFileSchema = manifest.schema.fields.find((f) => f.name === 'data_file')!.type as { fields: { name: string; 'field-id': number }[] };
    expect(ids(dataFileSchema.fields)).toMatchObject(SPEC_DATA_FILE_IDS);
    expect(manifest.meta.content).toBe('data');
    const statuses = manifest.records.map((r) => r.status).sort();
    expect(statuses).toEqual([1, 2, 2]); // the compacted file added, its two inputs deleted
    const added = manifest.records.find((r) => r.status === 1)!.data_file as { record_count: number; partition: { occurred_at_day: number } };
    expect(added.record_count).toBe(15);
    expect(added.partition.occurred_at_day).toBe(Date.parse(`${dt}T00:00:00Z`) / 86_400_000);
  });

  it('names every table object inside the store layout (verify reports anything else)', async () => {
    const keys: string[] = [];
    for await (const o of store.list('_iceberg/')) keys.push(o.key);
    expect(keys.length).toBeGreaterThan(3);
    expect(keys.filter((k) => classifyKey(k) !== 'iceberg-metadata')).toEqual([]);
  });

  it('keeps field ids when a column is added', () => {
    const v0 = evolveSchema(null, [['a', 'string'], ['b', 'int']]);
    const v1 = evolveSchema(v0, [['b', 'int'], ['c', 'long'], ['a', 'string']]);
    expect(v1.fields.map((f) => [f.name, f.id])).toEqual([['a', 1], ['b', 2], ['c', 3]]);
    expect(v1['schema-id']).toBe(1);
    expect(evolveSchema(v1, [['a', 'string']])).toBe(v1);
    expect(() => evolveSchema(v1, [['a', 'int']])).toThrow(/string in the table and int/);
  });

  it('removes metadata nothing names', async () => {
    const keys: string[] = [];
    for await (const o of store.list(METADATA_PREFIX)) keys.push(o.key);
    // v1..v3 metadata, hint, 1 manifest list and 1 manifest of the current snapshot.
    expect(keys.filter((k) => k.endsWith('.avro'))).toHaveLength(2);
  });
  it('never deletes what planted metadata names for removal, except table metadata files', async () => {
    const table = (await loadTable(store))!;
    const victim = `dt=${dt}/t-0-0-14.c1-abcd.parquet`;
    const planted = { ...table.metadata, 'metadata-log': [...Array.from({ length: 11 }, () => ({ 'metadata-file': store.uri(victim), 'timestamp-ms': 1 })), ...table.metadata['metadata-log']] };
    await store.put(`${METADATA_PREFIX}v${table.version + 1}.metadata.json`, JSON.stringify(planted));
    await store.put(`${METADATA_PREFIX}version-hint.text`, String(table.version + 1));
    await dataFile('t-0-15-19.parquet', 5); // something to commit
    const r = await pass(60_000, 3_000_000);
    expect(r).toMatchObject({ version: table.version + 2, filesAdded: 1 });
    expect(await store.get(victim)).not.toBeNull();
  });
});
