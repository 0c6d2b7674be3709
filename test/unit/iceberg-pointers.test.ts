/**
 * A catalog registered with a fixed metadata file (Glue, JDBC, REST, Trino's
 * register_table) keeps that pointer until someone re-registers. The
 * maintainer deletes old metadata files (only `iceberg-metadata` keys), so a
 * pointer must stay loadable, and read the snapshot it named, for one grace
 * period after the pass that superseded it, however many passes ran since.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { FileObjectStore, type FileIndex, indexKey, readDay } from '../../storage';
import { PREVIOUS_VERSIONS_MAX, type TableMetadata, currentSnapshot, nextVersion } from '../../maintenance/iceberg/metadata';
import { IcebergPublisher } from '../../maintenance/iceberg/publisher';
import { METADATA_PREFIX, TableReader, keyOfUri, metadataKey } from '../../maintenance/iceberg/table-io';
import { unsignedTrust } from '../helpers/trust';

const MIN = 60_000;
const GRACE = 60 * MIN;

describe('fixed metadata pointers and metadata expiry', () => {
  let root: string;
  let store: FileObjectStore;
  const dt = '2026-03-04';
  const t0 = Date.parse(`${dt}T10:00:00Z`);

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'iceberg-pointers-'));
    store = new FileObjectStore(root);
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  /** One pass with one new consumer file, at `now`. */
  async function pass(i: number, now: number): Promise<number> {
    const name = `t-0-${i * 10}-${i * 10 + 9}.parquet`;
    await store.put(`dt=${dt}/${name}`, Buffer.alloc(110));
    const index: FileIndex = { version: 1, key: `dt=${dt}/${name}`, rows: 10, bytes: 110, minOccurredAt: t0 * 1000, maxOccurredAt: t0 * 1000 + 9, rowGroups: [] };
    await store.put(indexKey(dt, name), JSON.stringify(index));
    const p = new IcebergPublisher({ store, trust: unsignedTrust(), graceMs: GRACE, concurrency: 4, log: pino({ level: 'silent' }), say: () => undefined });
    p.observe(await readDay(store, dt, unsignedTrust()));
    const r = await p.commit(() => true, now);
    return r!.version;
  }

  /** Loads vN as a catalog holding that pointer would, and reads its current snapshot's files; null when the file is gone. */
  async function readPointer(version: number): Promise<number | null> {
    const bytes = await store.get(metadataKey(version));
    if (bytes === null) return null;
    const m = JSON.parse(bytes.toString('utf8')) as TableMetadata;
    const reader = new TableReader(store);
    let files = 0;
    for (const mf of await reader.manifestList(currentSnapshot(m)!['manifest-list'])) {
      for (const e of await reader.entries(mf)) {
        if (e.status === 2) continue;
        expect(await store.get(keyOfUri(store, e.dataFile.file_path))).not.toBeNull();
        files++;
      }
    }
    return files;
  }

  it('a pointer to any version superseded within the grace period loads and reads its snapshot, past the 10 kept by count', async () => {
    // 25 passes a minute apart: more than PREVIOUS_VERSIONS_MAX within one grace period.
    const versions: number[] = [];
    for (let i = 0; i < 25; i++) versions.push(await pass(i, t0 + i * MIN));
    expect(versions.length).toBeGreaterThan(PREVIOUS_VERSIONS_MAX + 1);
    for (const [i, v] of versions.entries()) expect(await readPointer(v)).toBe(i + 1);
  });

  it('a grace period after it was superseded, an old pointer is gone (a loud not-found, never another snapshot), and the log is back to its bound', async () => {
    const v = await pass(25, t0 + 24 * MIN + GRACE + MIN);
    expect(await readPointer(1)).toBeNull();
    const kept: number[] = [];
    for await (const o of store.list(METADATA_PREFIX)) {
      const m = /v(\d+)\.metadata\.json$/.exec(o.key);
      if (m) kept.push(Number(m[1]));
    }
    // The newest, plus the log's last PREVIOUS_VERSIONS_MAX.
    expect(kept.sort((a, b) => a - b)).toEqual(Array.from({ length: PREVIOUS_VERSIONS_MAX + 1 }, (_, i) => v - PREVIOUS_VERSIONS_MAX + i));
  });

  it('nextVersion drops a log entry only when it is beyond the count and superseded a grace period ago', () => {
    const entry = (n: number, at: number) => ({ 'metadata-file': `v${n}`, 'timestamp-ms': at });
    const log = Array.from({ length: 14 }, (_, i) => entry(i + 1, i * MIN));
    const m = { 'metadata-log': log, 'last-updated-ms': 14 * MIN } as unknown as TableMetadata;
    expect(nextVersion(m, 'v15', 15 * MIN, GRACE).dropped).toEqual([]);
    // v1 was superseded (by v2) at 1 min, v2 at 2 min, ...: at 62.5 min v1 and v2 are past the grace period.
    expect(nextVersion(m, 'v15', 62.5 * MIN, GRACE).dropped).toEqual(['v1', 'v2']);
    expect(nextVersion(m, 'v15', 1000 * MIN, GRACE).metadata['metadata-log']).toHaveLength(PREVIOUS_VERSIONS_MAX);
  });
});
