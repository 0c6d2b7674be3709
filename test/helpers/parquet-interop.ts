// parquetjs-lite as an independent Parquet reader. It has no ZSTD codec of its
// own, so a pure-JS decoder (fzstd) is plugged into its codec table.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const parquet = require('parquetjs-lite') as {
  ParquetReader: { openFile(path: string): Promise<ParquetReaderLike> };
};
// eslint-disable-next-line @typescript-eslint/no-require-imports
const codecs = require('parquetjs-lite/lib/compression') as {
  PARQUET_COMPRESSION_METHODS: Record<string, { deflate(b: Buffer): Buffer; inflate(b: Buffer): Buffer }>;
};
import { decompress } from 'fzstd';

interface ParquetReaderLike {
  getRowCount(): unknown;
  getCursor(): { next(): Promise<Record<string, unknown> | null> };
  close(): Promise<void>;
}

codecs.PARQUET_COMPRESSION_METHODS.ZSTD ??= {
  deflate: () => {
    throw new Error('ZSTD writing is not needed in tests');
  },
  inflate: (buf: Buffer) => Buffer.from(decompress(buf)),
};

/** Every row of a Parquet file, as parquetjs-lite reads it. */
export async function readParquetRows(path: string): Promise<Record<string, unknown>[]> {
  const reader = await parquet.ParquetReader.openFile(path);
  try {
    const cursor = reader.getCursor();
    const rows: Record<string, unknown>[] = [];
    for (let row = await cursor.next(); row; row = await cursor.next()) rows.push(row);
    return rows;
  } finally {
    await reader.close();
  }
}

const UUID_TEXT = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * A UUID column value as parquetjs-lite returns it, as text. It has no UUID
 * logical type: a UUID column (FIXED_LEN_BYTE_ARRAY(16)) comes back as its 16
 * raw bytes; files written before event_id became a UUID hold the text itself.
 * Throws on anything else, so a reader that misreads the column fails the test.
 */
export function uuidText(value: unknown): string {
  const text = Buffer.isBuffer(value) && value.length === 16 ? value.toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5') : value;
  if (typeof text !== 'string' || !UUID_TEXT.test(text)) throw new Error(`not a UUID: ${String(value)}`);
  return text;
}
