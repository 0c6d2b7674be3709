import type { Compression, OutgoingBatch, TransportSettings } from './types';

/**
 * The messages between the app thread and the sender's worker thread. A batch
 * crosses as one ArrayBuffer (keys and values back to back, their lengths and
 * partitions in a second one), moved with a transfer list: no per-message cloning, and the app
 * thread's only work per batch is one copy of the encoded bytes.
 */
export type ToWorker =
  | { type: 'connect'; id: number }
  | { type: 'send'; id: number; topic: string; compression: Compression; count: number; lengths: ArrayBuffer; bytes: ArrayBuffer }
  | { type: 'partitions'; id: number; topic: string }
  | { type: 'close'; id: number };

/** A request's outcome; `value` is the answer to `partitions` (null otherwise or unknown). */
export type FromWorker = { type: 'done'; id: number; error: string | null; value: number | null };

export interface WorkerData {
  settings: TransportSettings;
}

/**
 * Packs a batch: for message i, its key then its value; key length, value length and
 * partition (-1: none) at [3i], [3i+1], [3i+2]. One pass: the buffer is sized for the
 * longest UTF-8 a key can have (3 bytes per UTF-16 unit) and not zero-filled, so keys are
 * not measured before they are written; the worker reads only the bytes the lengths cover.
 */
export function packBatch(batch: OutgoingBatch, id: number): Extract<ToWorker, { type: 'send' }> {
  const messages = batch.messages;
  const n = messages.length;
  const lengths = new Int32Array(3 * n);
  let bound = 0;
  for (let i = 0; i < n; i++) {
    const m = messages[i]!;
    bound += (typeof m.key === 'string' ? 3 * m.key.length : m.key.length) + m.value.length;
  }
  // Its own ArrayBuffer (not a slice of the pool), so it can be moved to the worker.
  const out = Buffer.allocUnsafeSlow(bound);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const m = messages[i]!;
    let k: number;
    if (typeof m.key === 'string') {
      k = out.write(m.key, at, 'utf8');
    } else {
      out.set(m.key, at);
      k = m.key.length;
    }
    at += k;
    out.set(m.value, at);
    at += m.value.length;
    lengths[3 * i] = k;
    lengths[3 * i + 1] = m.value.length;
    lengths[3 * i + 2] = m.partition ?? -1;
  }
  return { type: 'send', id, topic: batch.topic, compression: batch.compression, count: n, lengths: lengths.buffer, bytes: out.buffer as ArrayBuffer };
}

/** The worker's side of packBatch: keys and values as views on the one buffer (no copy). */
export function unpackBatch(msg: Extract<ToWorker, { type: 'send' }>): OutgoingBatch {
  const lengths = new Int32Array(msg.lengths);
  const buf = Buffer.from(msg.bytes);
  const messages = new Array<{ key: Buffer; value: Buffer; partition: number }>(msg.count);
  let at = 0;
  for (let i = 0; i < msg.count; i++) {
    const k = lengths[3 * i]!;
    const v = lengths[3 * i + 1]!;
    messages[i] = { key: buf.subarray(at, at + k), value: buf.subarray(at + k, at + k + v), partition: lengths[3 * i + 2]! };
    at += k + v;
  }
  return { topic: msg.topic, compression: msg.compression, messages };
}
