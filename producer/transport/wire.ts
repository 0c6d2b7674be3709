import type { Compression, OutgoingBatch, TransportSettings } from './types';

/**
 * The messages between the app thread and the sender's worker thread. A batch crosses
 * as four integers per message (where its key and value are, and its partition): the
 * bytes of messages the audit client staged are already in the ring both threads share
 * (staging.ts); the few that were not (the ring full, the registry's id not known when
 * they were accepted) travel in one extra buffer, moved with a transfer list.
 */
export type ToWorker =
  | { type: 'connect'; id: number }
  | { type: 'send'; id: number; topic: string; compression: Compression; count: number; places: Int32Array; extra: ArrayBuffer | null }
  | { type: 'partitions'; id: number; topic: string }
  | { type: 'close'; id: number };

/** A request's outcome; `value` is the answer to `partitions` (null otherwise or unknown); `tooLarge`: refused for its size. */
export type FromWorker = { type: 'done'; id: number; error: string | null; value: number | null; tooLarge: boolean };

export interface WorkerData {
  settings: TransportSettings;
  /** The staging ring's memory, shared with the app thread. */
  staging: SharedArrayBuffer | null;
  /** Where the app thread posts send requests (requests.ts). */
  requests: SharedArrayBuffer | null;
}

/**
 * Places a batch: for message i, at [4i] where its key starts (its value follows it) — in
 * the ring when >= 0, else at -1 - [4i] in `extra` — then its key's and value's lengths and
 * its partition (-1: none). Only unstaged messages are copied, into a buffer sized for the
 * longest UTF-8 their keys can have (3 bytes per UTF-16 unit), not zero-filled: the worker
 * reads only the bytes the lengths cover.
 */
export function packBatch(batch: OutgoingBatch, id: number): Extract<ToWorker, { type: 'send' }> {
  const messages = batch.messages;
  const n = messages.length;
  const places = new Int32Array(4 * n);
  let bound = 0;
  for (let i = 0; i < n; i++) {
    const m = messages[i]!;
    if (m.at === undefined || m.at < 0) bound += (typeof m.key === 'string' ? 3 * m.key.length : m.key.length) + m.value.length;
  }
  // Its own ArrayBuffer (not a slice of the pool), so it can be moved to the worker.
  const out = bound > 0 ? Buffer.allocUnsafeSlow(bound) : null;
  let at = 0;
  for (let i = 0; i < n; i++) {
    const m = messages[i]!;
    places[4 * i + 3] = m.partition ?? -1;
    if (m.at !== undefined && m.at >= 0) {
      places[4 * i] = m.at;
      places[4 * i + 1] = m.keyBytes!;
      places[4 * i + 2] = m.size!;
      continue;
    }
    let k: number;
    if (typeof m.key === 'string') {
      k = out!.write(m.key, at, 'utf8');
    } else {
      out!.set(m.key, at);
      k = m.key.length;
    }
    out!.set(m.value, at + k);
    places[4 * i] = -1 - at;
    places[4 * i + 1] = k;
    places[4 * i + 2] = m.value.length;
    at += k + m.value.length;
  }
  return { type: 'send', id, topic: batch.topic, compression: batch.compression, count: n, places, extra: out ? (out.buffer as ArrayBuffer) : null };
}

/** The worker's side of packBatch: keys and values as views on the ring or the extra buffer (no copy). */
export function unpackBatch(msg: Extract<ToWorker, { type: 'send' }>, ring: Buffer | null): OutgoingBatch {
  const places = msg.places;
  const extra = msg.extra ? Buffer.from(msg.extra) : null;
  const messages = new Array<{ key: Buffer; value: Buffer; partition: number }>(msg.count);
  for (let i = 0; i < msg.count; i++) {
    const place = places[4 * i]!;
    const k = places[4 * i + 1]!;
    const v = places[4 * i + 2]!;
    const source = place >= 0 ? ring : extra;
    if (!source) throw new Error(`audit sender: message ${i} of a batch refers to a ${place >= 0 ? 'staging ring' : 'buffer'} this thread was not given`);
    const at = place >= 0 ? place : -1 - place;
    messages[i] = { key: source.subarray(at, at + k), value: source.subarray(at + k, at + k + v), partition: places[4 * i + 3]! };
  }
  return { topic: msg.topic, compression: msg.compression, messages };
}
