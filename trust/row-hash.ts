import type { DuckDBConnection } from '@duckdb/node-api';
import { COLUMN_TYPES } from '../storage/columns';
import { sqlString } from '../storage/sql';

/**
 * An order-independent hash of a Parquet file's rows: the XOR of one MD5 per
 * row, over a canonical text of the row (every column cast to its stored type,
 * then to text; event time as epoch microseconds; NULL as \0). Rows are unique
 * within a partition (they carry their Kafka partition and offset), so the XOR
 * of a compacted file's rows equals the XOR of its inputs' rows, minus the
 * dropped copies: a compacted file is proven to hold exactly the rows of the
 * files it replaced without keeping them. MD5 is enough here: the hash
 * guards against a wrong merge, not an adversary (the file bytes are covered by
 * SHA-256 and the digests by signatures). The text form is versioned with the
 * digest format: changing it needs a new format.
 */

/** The SQL expression of one row's hash (a UHUGEINT), over columns of the stored types. */
export const ROW_HASH_EXPR = `md5_number(concat_ws(chr(31), ${COLUMN_TYPES.map(([name, type]) =>
  type === 'TIMESTAMPTZ' ? `coalesce(CAST(epoch_us(CAST("${name}" AS TIMESTAMPTZ)) AS VARCHAR), chr(0))` : `coalesce(CAST(CAST("${name}" AS ${type}) AS VARCHAR), chr(0))`,
).join(', ')}))`;

/** `lpad(to_hex(…))` of an XOR aggregate: 32 lower-case hex digits; zero for no rows. */
export function rowHashAggregate(expr = ROW_HASH_EXPR): string {
  return `lower(lpad(to_hex(coalesce(bit_xor(${expr}), 0::UHUGEINT)), 32, '0'))`;
}

/** Rows and row hash of a local Parquet file. */
export async function rowHashOfFile(conn: DuckDBConnection, path: string): Promise<{ rows: number; rowHash: string }> {
  const r = (await conn.runAndReadAll(`SELECT count(*) AS n, ${rowHashAggregate()} AS h FROM read_parquet(${sqlString(path)})`)).getRowObjects()[0]!;
  return { rows: Number(r.n as bigint), rowHash: String(r.h) };
}

export function xorRowHashes(hashes: Iterable<string>): string {
  let acc = 0n;
  for (const h of hashes) acc ^= BigInt(`0x${h}`);
  return acc.toString(16).padStart(32, '0');
}
