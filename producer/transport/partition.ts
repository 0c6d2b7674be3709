/**
 * Kafka's default partitioning of a keyed message, as the Java client and kafkajs's
 * DefaultPartitioner do it: `(murmur2(utf8(key)) & 0x7fffffff) % partitions`. The audit
 * client computes it itself to keep at most one request per partition in flight (so a
 * retried request can never land after a later one of the same partition), and hands the
 * partition to the Kafka client, which then skips its own hashing (@platformatic/kafka's
 * murmur2 works on BigInts: ~2 µs a key in its thread).
 */

const SEED = 0x9747b28c;
const M = 0x5bd1e995;

/** Where a key's UTF-8 bytes are written to be hashed (keys are short: `type:id`). */
const scratch = Buffer.alloc(1024);

/** The Java client's murmur2 of `key`'s UTF-8 bytes, as a signed 32-bit integer. */
export function murmur2(key: string | Uint8Array): number {
  if (typeof key !== 'string') return murmur2Bytes(key, key.length);
  // At most 3 UTF-8 bytes per UTF-16 unit: a key that might not fit gets a buffer of its own.
  if (key.length * 3 > scratch.length) {
    const bytes = Buffer.from(key, 'utf8');
    return murmur2Bytes(bytes, bytes.length);
  }
  return murmur2Bytes(scratch, scratch.write(key, 0, 'utf8'));
}

function murmur2Bytes(data: Uint8Array, n: number): number {
  let h = SEED ^ n;
  const n4 = n & ~3;
  for (let i = 0; i < n4; i += 4) {
    let k = data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24);
    k = Math.imul(k, M);
    k ^= k >>> 24;
    k = Math.imul(k, M);
    h = Math.imul(h, M) ^ k;
  }
  const rest = n & 3;
  if (rest > 0) {
    if (rest === 3) h ^= data[n4 + 2]! << 16;
    if (rest >= 2) h ^= data[n4 + 1]! << 8;
    h ^= data[n4]!;
    h = Math.imul(h, M);
  }
  h ^= h >>> 13;
  h = Math.imul(h, M);
  h ^= h >>> 15;
  return h | 0;
}

/** The partition Kafka's default partitioner gives `key` among `partitions`. */
export function partitionOf(key: string | Uint8Array, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}
