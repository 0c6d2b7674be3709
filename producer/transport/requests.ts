import type { Compression, OutgoingBatch, OutgoingMessage } from './types';

/**
 * Send requests from the app thread to the sender's worker thread through shared
 * memory, with no signal per request. Any signal to another thread (postMessage,
 * Atomics.notify) wakes it through the kernel, which on this kind of host costs the
 * sending thread 20-50 µs at the median and up to milliseconds at the tail (measured
 * in the producer's hand-off); the request that meets it pays it. So the app thread
 * only writes a request into a slot and publishes it with one atomic store, and the
 * worker looks for requests on its own timer while it is busy. A worker idle for a
 * while parks on the counter, and only then does the app thread wake it: the first
 * request after a quiet spell pays a wake, a steady stream pays none.
 *
 * Layout, in Int32s: a control block (requests posted, requests taken by the worker,
 * whether it is parked), a table of topic names, then SLOTS request slots, each a
 * header (id, message count, topic index, compression) and 4 integers per message
 * (where its key starts in the staging ring, key and value lengths, partition; see
 * wire.ts). Slots are reused once the worker took their request (it copies nothing
 * but the positions; the bytes stay in the ring until the answer).
 */

const POSTED = 0;
const TAKEN = 1;
const PARKED = 2;
const CONTROL_INTS = 4;
/** Topics a transport can name through shared memory, and the UTF-8 bytes each may have. */
const TOPICS = 8;
const TOPIC_BYTES = 252;
const TOPIC_INTS = (4 + TOPIC_BYTES) / 4;
/** Requests posted and not yet taken at most: more than requests are ever in flight by default. A power of two (slot = sequence & (SLOTS - 1)). */
export const SLOTS = 8;
/** Messages a request slot holds (the client's default batch is 2,000); a larger request goes by message. */
export const SLOT_MESSAGES = 2_048;
const HEADER_INTS = 4;
const PARK_MAX_MS = 1_000;
const SLOT_INTS = HEADER_INTS + 4 * SLOT_MESSAGES;
const TOPICS_AT = CONTROL_INTS;
const SLOTS_AT = TOPICS_AT + TOPICS * TOPIC_INTS;
const TOTAL_INTS = SLOTS_AT + SLOTS * SLOT_INTS;

/** The shared memory of a request channel: ~260 KiB. */
export function requestChannelMemory(): SharedArrayBuffer {
  return new SharedArrayBuffer(TOTAL_INTS * 4);
}

/** The app thread's side: the only writer of slots, topics and POSTED. */
export class RequestWriter {
  private readonly ints: Int32Array;
  private readonly bytes: Buffer;
  private readonly topics = new Map<string, number>();
  /**
   * Requests posted so far, as an Int32 that wraps (a long-running service passes 2^31): the
   * counters are compared by their difference in Int32 arithmetic, never by order.
   */
  private posted: number;

  constructor(memory: SharedArrayBuffer) {
    this.ints = new Int32Array(memory);
    this.bytes = Buffer.from(memory);
    this.posted = Atomics.load(this.ints, POSTED);
  }

  /**
   * Posts the request if it can go this way: every message staged, a slot free, the
   * topic nameable. False otherwise, and nothing was posted: the caller sends it by message.
   */
  tryPost(id: number, batch: OutgoingBatch): boolean {
    const messages = batch.messages;
    const n = messages.length;
    if (n > SLOT_MESSAGES || ((this.posted - Atomics.load(this.ints, TAKEN)) | 0) >= SLOTS) return false;
    const topic = this.topicIndex(batch.topic);
    if (topic < 0) return false;
    const ints = this.ints;
    const base = SLOTS_AT + (this.posted & (SLOTS - 1)) * SLOT_INTS;
    let at = base + HEADER_INTS;
    for (let i = 0; i < n; i++, at += 4) {
      const m: OutgoingMessage = messages[i]!;
      if (m.at === undefined || m.at < 0) return false;
      ints[at] = m.at;
      ints[at + 1] = m.keyBytes!;
      ints[at + 2] = m.size!;
      ints[at + 3] = m.partition ?? -1;
    }
    ints[base] = id;
    ints[base + 1] = n;
    ints[base + 2] = topic;
    ints[base + 3] = batch.compression === 'gzip' ? 1 : 0;
    // The store publishes the slot: the worker reads it only after loading this value (both sequentially consistent).
    this.posted = (this.posted + 1) | 0;
    Atomics.store(ints, POSTED, this.posted);
    if (Atomics.load(ints, PARKED) === 1) Atomics.notify(ints, POSTED);
    return true;
  }

  /** The topic's index in the shared table, written there on first use; -1 when the table is full or the name too long. */
  private topicIndex(topic: string): number {
    const known = this.topics.get(topic);
    if (known !== undefined) return known;
    const index = this.topics.size;
    if (index >= TOPICS || Buffer.byteLength(topic) > TOPIC_BYTES) return -1;
    const at = TOPICS_AT + index * TOPIC_INTS;
    this.ints[at] = this.bytes.write(topic, (at + 1) * 4, 'utf8');
    this.topics.set(topic, index);
    return index;
  }

  /**
   * A new worker takes over the channel: requests posted to the one before and not taken
   * by it were failed with it (and are resent by the client), so they are skipped.
   */
  restart(): void {
    Atomics.store(this.ints, TAKEN, this.posted);
    Atomics.store(this.ints, PARKED, 0);
  }
}

export interface PostedRequest {
  id: number;
  batch: OutgoingBatch;
}

/** The worker's side: takes posted requests, their keys and values as views on the staging ring. */
export class RequestReader {
  private readonly ints: Int32Array;
  private readonly bytes: Buffer;
  private readonly topicNames: string[] = [];
  private taken: number;

  constructor(
    memory: SharedArrayBuffer,
    private readonly ring: Buffer,
  ) {
    this.ints = new Int32Array(memory);
    this.bytes = Buffer.from(memory);
    this.taken = Atomics.load(this.ints, TAKEN);
  }

  /** The requests posted since the last call, oldest first. */
  take(): PostedRequest[] {
    const posted = Atomics.load(this.ints, POSTED);
    const out: PostedRequest[] = [];
    const ints = this.ints;
    const ring = this.ring;
    while (this.taken !== posted) {
      const base = SLOTS_AT + (this.taken & (SLOTS - 1)) * SLOT_INTS;
      const n = ints[base + 1]!;
      const compression: Compression = ints[base + 3] === 1 ? 'gzip' : 'none';
      const messages = new Array<{ key: Buffer; value: Buffer; partition: number }>(n);
      for (let i = 0, at = base + HEADER_INTS; i < n; i++, at += 4) {
        const from = ints[at]!;
        const k = ints[at + 1]!;
        messages[i] = { key: ring.subarray(from, from + k), value: ring.subarray(from + k, from + k + ints[at + 2]!), partition: ints[at + 3]! };
      }
      out.push({ id: ints[base]!, batch: { topic: this.topic(ints[base + 2]!), compression, messages } });
      this.taken = (this.taken + 1) | 0;
    }
    // The slots may be reused from here: what the requests need is in `out`.
    if (out.length > 0) Atomics.store(ints, TAKEN, this.taken);
    return out;
  }

  private topic(index: number): string {
    let name = this.topicNames[index];
    if (name === undefined) {
      const at = TOPICS_AT + index * TOPIC_INTS;
      name = this.bytes.toString('utf8', (at + 1) * 4, (at + 1) * 4 + this.ints[at]!);
      this.topicNames[index] = name;
    }
    return name;
  }

  /**
   * Parks until a request is posted: says so first, so that the app thread wakes it, then
   * looks once more (a request posted in between is not waited for).
   */
  async parked(): Promise<void> {
    const ints = this.ints;
    Atomics.store(ints, PARKED, 1);
    const seen = this.taken;
    if (Atomics.load(ints, POSTED) === seen) {
      // A second at most: should a wake ever be missed, a request waits that long, not for ever.
      const wait = Atomics.waitAsync(ints, POSTED, seen, PARK_MAX_MS);
      if (wait.async) await wait.value;
    }
    Atomics.store(ints, PARKED, 0);
  }

  /** Ends a park from this side (the thread is closing). */
  unpark(): void {
    Atomics.notify(this.ints, POSTED);
  }
}
