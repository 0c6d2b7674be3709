import type { ObjectStore } from '..';
import type { ManifestEntryRecord, ManifestFileRecord } from './avro';
import { readContainer } from './avro';
import { type TableMetadata, currentSnapshot, decodeMetadata } from './metadata';
import { resolveEntries, type ResolvedEntry } from './manifest';

/**
 * Where the table lives in the store and how its files are found, by the
 * Hadoop-catalog convention (what Spark's `HadoopCatalog`, pyiceberg's
 * `StaticTable` and `register_table` calls expect): `metadata/vN.metadata.json`
 * plus `metadata/version-hint.text` naming N.
 */
export const ICEBERG_PREFIX = '_iceberg/';
export const METADATA_PREFIX = `${ICEBERG_PREFIX}metadata/`;
export const VERSION_HINT_KEY = `${METADATA_PREFIX}version-hint.text`;

export function metadataKey(version: number): string {
  return `${METADATA_PREFIX}v${version}.metadata.json`;
}

export type TableStore = Pick<ObjectStore, 'get' | 'put' | 'putIfAbsent' | 'list' | 'delete'> & { uri(key: string): string };
/** What reading the table needs (verify reads it with read-only rights). */
export type TableSource = Pick<TableStore, 'get' | 'uri'>;

/** The store as the table needs it; null for a store that cannot name its objects for engines. */
export function asTableStore(store: ObjectStore): TableStore | null {
  const uri = store.uri?.bind(store);
  if (!uri) return null;
  return {
    get: (k) => store.get(k),
    put: (k, b) => store.put(k, b),
    putIfAbsent: (k, b) => store.putIfAbsent(k, b),
    list: (p) => store.list(p),
    delete: (k) => store.delete(k),
    uri,
  };
}

export class IcebergReadError extends Error {
  constructor(
    readonly key: string,
    why: string,
  ) {
    super(`Iceberg table file ${key}: ${why}`);
    this.name = 'IcebergReadError';
  }
}

/** Store key of one of the table's URIs (they are absolute, as the spec wants). */
export function keyOfUri(store: TableSource, uri: string): string {
  // uri('') is no help: a file store resolves away the trailing slash.
  const base = store.uri('x').slice(0, -1);
  if (!uri.startsWith(base)) throw new IcebergReadError(uri, `not under the store (${base})`);
  return uri.slice(base.length);
}

export interface LoadedTable {
  version: number;
  key: string;
  metadata: TableMetadata;
}

/**
 * The newest metadata version. The hint is written after the commit (a plain
 * PUT), so it may lag: versions after it are probed until one is missing,
 * which is what Hadoop-catalog readers do too.
 */
export async function loadTable(store: Pick<TableStore, 'get'>): Promise<LoadedTable | null> {
  const hint = await store.get(VERSION_HINT_KEY);
  const parsed = hint === null ? 1 : Number.parseInt(hint.toString('utf8').trim(), 10);
  const from = Number.isSafeInteger(parsed) && parsed > 0 ? parsed : 1;
  const probe = async (first: number): Promise<LoadedTable | null> => {
    let found: LoadedTable | null = null;
    for (let v = first; ; v++) {
      const body = await store.get(metadataKey(v));
      if (body === null) return found;
      found = { version: v, key: metadataKey(v), metadata: decodeMetadata(body, metadataKey(v)) };
    }
  };
  // A hint naming a removed version (old metadata is deleted after commits) cannot happen for the newest; probing from 1 covers a hand-edited hint.
  return (await probe(from)) ?? (from > 1 ? probe(1) : null);
}

/** Reads table files (manifest lists, manifests), once each per instance: they are immutable. */
export class TableReader {
  private readonly lists = new Map<string, Promise<ManifestFileRecord[]>>();
  private readonly manifests = new Map<string, Promise<ResolvedEntry[]>>();

  constructor(private readonly store: TableSource) {}

  private async read(uri: string): Promise<Buffer> {
    const key = keyOfUri(this.store, uri);
    const body = await this.store.get(key);
    if (body === null) throw new IcebergReadError(key, 'named by the table but missing');
    return body;
  }

  manifestList(uri: string): Promise<ManifestFileRecord[]> {
    let p = this.lists.get(uri);
    if (!p) this.lists.set(uri, (p = this.read(uri).then((b) => readContainer<ManifestFileRecord>(b, uri).records)));
    return p;
  }

  entries(manifest: ManifestFileRecord): Promise<ResolvedEntry[]> {
    const uri = manifest.manifest_path;
    let p = this.manifests.get(uri);
    if (!p) this.manifests.set(uri, (p = this.read(uri).then((b) => resolveEntries(readContainer<ManifestEntryRecord>(b, uri).records, manifest))));
    return p;
  }

  /** Data files (URIs) a snapshot's scan reads. */
  async snapshotFiles(manifestList: string): Promise<string[]> {
    const out: string[] = [];
    for (const m of await this.manifestList(manifestList)) {
      for (const e of await this.entries(m)) if (e.status !== 2) out.push(e.dataFile.file_path);
    }
    return out;
  }
}

/**
 * The table's newest snapshot and the store keys of the data files it reads:
 * what verify compares with the live set, so an engine reading the table sees
 * what `audit-query` sees. Null when the store has no table yet.
 */
export async function newestSnapshotFiles(store: TableSource): Promise<{ snapshotId: number; committedAt: number; files: string[] } | null> {
  const table = await loadTable(store);
  const snap = table && currentSnapshot(table.metadata);
  if (!snap) return null;
  const files = await new TableReader(store).snapshotFiles(snap['manifest-list']);
  return { snapshotId: snap['snapshot-id'], committedAt: snap['timestamp-ms'], files: files.map((u) => keyOfUri(store, u)).sort() };
}
