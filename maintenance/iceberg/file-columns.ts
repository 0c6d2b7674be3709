import { writeFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ObjectStore } from '../../storage';

const MAGIC = Buffer.from('PAR1');

/**
 * A local file holding only a stored Parquet file's footer, framed as a
 * Parquet file (magic, footer, length, magic): enough for a reader to tell
 * its schema, for two range reads instead of the whole file.
 */
export async function footerOnlyFile(store: Pick<ObjectStore, 'getRange'>, key: string, size: number, path: string): Promise<void> {
  const tail = await store.getRange(key, size - 8, size);
  if (tail.length !== 8 || !tail.subarray(4).equals(MAGIC)) throw new Error(`${key}: not a Parquet file (no trailing magic)`);
  const length = tail.readUInt32LE(0);
  if (length + 12 > size) throw new Error(`${key}: footer length ${length} exceeds the file's ${size} bytes`);
  const footer = await store.getRange(key, size - 8 - length, size - 8);
  await writeFile(path, Buffer.concat([MAGIC, footer, tail]));
}

/** How `event_id` is stored in a data file of the store, read from its footer alone. */
export async function eventIdStorage(
  store: Pick<ObjectStore, 'getRange'>,
  read: (footerFile: string) => Promise<'uuid' | 'text' | null>,
  file: { key: string; size: number },
  workDir: string,
): Promise<'uuid' | 'text' | null> {
  const path = join(workDir, `footer-${process.pid}-${file.key.replace(/[^A-Za-z0-9.=-]/g, '_')}`);
  try {
    await footerOnlyFile(store, file.key, file.size, path);
    return await read(path);
  } finally {
    await rm(path, { force: true });
  }
}
