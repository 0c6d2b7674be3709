/**
 * The per-file index the consumer writes beside each data file
 * (`_index/dt=.../<name>.json`). It is immutable like the data file and lets
 * the query side decide which files, and which byte ranges of them, can hold an
 * object without opening them.
 */
export interface RowGroupIndex {
  offset: number;
  length: number;
  rows: number;
  typeMin: string | null;
  typeMax: string | null;
  idMin: string | null;
  idMax: string | null;
}

export interface FileIndex {
  version: 1;
  /** Data key, relative to the store prefix. */
  key: string;
  rows: number;
  bytes: number;
  /** Event time bounds, microseconds UTC. */
  minOccurredAt: number;
  maxOccurredAt: number;
  rowGroups: RowGroupIndex[];
  /** Bloom filter of `object_type:object_id` keys (see bloom.ts), base64; absent = no filter. */
  bloom?: string;
  bloomHashes?: number;
}

/** Can this row group hold rows of (type, id)? Conservative: unknown statistics mean yes. */
export function rowGroupMayContain(rg: RowGroupIndex, type: string, id: string): boolean {
  if (rg.typeMin !== null && type < rg.typeMin) return false;
  if (rg.typeMax !== null && type > rg.typeMax) return false;
  // object_id bounds only apply when the whole row group has this one type.
  if (rg.typeMin === type && rg.typeMax === type) {
    if (rg.idMin !== null && id < rg.idMin) return false;
    if (rg.idMax !== null && id > rg.idMax) return false;
  }
  return true;
}

export function parseFileIndex(text: string, key: string): FileIndex {
  const parsed = JSON.parse(text) as Partial<FileIndex>;
  if (parsed.version !== 1 || typeof parsed.key !== 'string' || !Array.isArray(parsed.rowGroups)) {
    throw new Error(`unsupported index file ${key}`);
  }
  return parsed as FileIndex;
}
