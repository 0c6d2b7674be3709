/**
 * Where the app thread leaves each event for the sender's worker thread: one
 * SharedArrayBuffer, used as a ring. An event's key (UTF-8) and value are copied in
 * once, when the event is accepted, a fraction of a microsecond spread over the
 * requests that record them; a batch then crosses to the worker as a few integers
 * per event (where its bytes are), with no per-batch packing of the bytes on the app
 * thread, which is what used to put a batch's hand-off into the audited requests' p99.
 *
 * Only the app thread writes to the ring, and only over bytes no request in flight
 * refers to: space is given back in the order it was taken, once the event that
 * took it is released (acknowledged by Kafka, or abandoned and out of any request).
 * The worker only reads, between a request's arrival and its answer.
 */

/** What the ring knows of a staged event; the producer's pending event carries these fields itself, so staging allocates nothing. */
export interface StagedEvent {
  /** Offset of the event's key in the ring (its value follows it); -1 while not staged. */
  at: number;
  /** UTF-8 bytes of the key. */
  keyBytes: number;
  /** Bytes of the value. */
  size: number;
  /** Set once the event's space may be reused. */
  released: boolean;
}

/** The smallest ring: one event of the largest size Kafka's default accepts, twice. */
export const MIN_STAGING_BYTES = 2 * 1024 * 1024;
/** Enough for the default buffer (10,000 events) of events of ~800 bytes. */
export const DEFAULT_STAGING_BYTES = 8 * 1024 * 1024;
/** Offsets in the ring cross to the worker as Int32s. */
export const MAX_STAGING_BYTES = 1024 * 1024 * 1024;

export class StagingRing {
  readonly shared: SharedArrayBuffer;
  private readonly bytes: Buffer;
  private readonly capacity: number;
  /** Where the next event is written. */
  private head = 0;
  /** Staged events in the order their space was taken, from `first` on; the oldest holds the ring's tail. */
  private live: StagedEvent[] = [];
  private first = 0;

  constructor(capacity: number = DEFAULT_STAGING_BYTES) {
    if (!Number.isInteger(capacity) || capacity < MIN_STAGING_BYTES || capacity > MAX_STAGING_BYTES) {
      throw new RangeError(`staging ring of ${capacity} bytes: between ${MIN_STAGING_BYTES} and ${MAX_STAGING_BYTES} are allowed`);
    }
    this.capacity = capacity;
    this.shared = new SharedArrayBuffer(capacity);
    this.bytes = Buffer.from(this.shared);
  }

  /**
   * Copies the key and value in and records where on `event`. False when the ring has no
   * contiguous room for them (requests slow, or events far larger than usual): the event
   * then travels with its own bytes, as it would without a ring; nothing is lost.
   */
  put(event: StagedEvent, key: string, value: Buffer): boolean {
    // A UTF-16 unit is at most 3 UTF-8 bytes: room for that is asked, the exact count kept.
    // At least a byte, so that a live event never leaves the head on the tail (which reads as full).
    const need = Math.max(1, 3 * key.length + value.length);
    const at = this.place(need);
    if (at < 0) return false;
    const k = this.bytes.write(key, at, 'utf8');
    this.bytes.set(value, at + k);
    this.head = at + Math.max(1, k + value.length);
    event.at = at;
    event.keyBytes = k;
    event.size = value.length;
    event.released = false;
    this.live.push(event);
    return true;
  }

  /** Where `need` contiguous bytes start, or -1. The space between the head and the end is skipped when the event does not fit there. */
  private place(need: number): number {
    if (this.first === this.live.length) {
      // Nothing live: the whole ring is free, start again at its beginning.
      this.reset();
      return need <= this.capacity ? 0 : -1;
    }
    const tail = this.live[this.first]!.at;
    if (this.head > tail) {
      // Live bytes run from the tail to the head: free at the end, then at the beginning.
      if (this.head + need <= this.capacity) return this.head;
      return need < tail ? 0 : -1;
    }
    // Wrapped: free from the head to the tail (the head equal to the tail means full).
    return this.head + need < tail ? this.head : -1;
  }

  /** The event's space may be reused once every event staged before it is released too. */
  release(event: StagedEvent): void {
    if (event.at < 0 || event.released) return;
    event.released = true;
    const live = this.live;
    while (this.first < live.length && live[this.first]!.released) live[this.first++] = DONE;
    if (this.first === live.length) this.reset();
    else if (this.first > 4096 && this.first * 2 > live.length) {
      this.live = live.slice(this.first);
      this.first = 0;
    }
  }

  private reset(): void {
    this.live = [];
    this.first = 0;
    this.head = 0;
  }

  /** Bytes between the tail and the head (the skipped end included): for tests and stats. */
  get used(): number {
    if (this.first === this.live.length) return 0;
    const tail = this.live[this.first]!.at;
    return this.head > tail ? this.head - tail : this.capacity - tail + this.head;
  }
}

/** A placeholder for released entries, so the array keeps no reference to events already sent. */
const DONE: StagedEvent = { at: -1, keyBytes: 0, size: 0, released: true };
