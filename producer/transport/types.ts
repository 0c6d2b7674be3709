/**
 * What the audit client needs from a Kafka client, and nothing more: connect,
 * send one batch of already encoded records (acks=all, idempotent, keyed by the
 * object so one object's events share a partition), close. Keeping the client
 * behind this lets the next swap of Kafka library touch one file.
 */
import type { StagingRing } from './staging';

export type Compression = 'gzip' | 'none';

/** Which Kafka library sends: kafkajs 2.2.4 (unmaintained since 2023) or @platformatic/kafka (needs Node >= 22.22 / 24.6). */
export type KafkaClientKind = 'kafkajs' | 'platformatic';

/** Where it sends from: a worker thread of its own (default), or the app's event loop. */
export type SenderThread = 'worker' | 'inline';

export interface OutgoingMessage {
  /** `type:id` of the object; bytes when it comes out of the worker's transfer buffer (no decode, no re-encode). */
  key: string | Buffer;
  value: Buffer;
  /**
   * The partition, when the audit client computed it (Kafka's default partitioner);
   * absent or negative: the Kafka client partitions the message by its key.
   */
  partition?: number;
  /**
   * Where the transport's staging ring holds this message's key and then its value (the
   * audit client put them there when the event was accepted; `value` is then empty).
   * Absent or negative: `key` and `value` hold the bytes. Only a transport with a `staging`
   * ring is given staged messages.
   */
  at?: number;
  /** UTF-8 bytes of the staged key. */
  keyBytes?: number;
  /** Bytes of the staged value. */
  size?: number;
}

export interface OutgoingBatch {
  topic: string;
  compression: Compression;
  messages: readonly OutgoingMessage[];
}

/** Settings a transport is built from; plain data, so they can cross into a worker thread. */
export interface TransportSettings {
  kind: KafkaClientKind;
  brokers: string[];
  clientId: string;
  /** Bytes of the ring a worker thread's transport shares with the app thread (default: DEFAULT_STAGING_BYTES). */
  stagingBytes?: number;
}

export interface KafkaTransport {
  /** Connects (idempotent producer). Rejects when the broker cannot be reached; may be called again. */
  connect(): Promise<void>;
  /** Resolves once the broker acknowledged every message of the batch (acks=all); rejects otherwise. */
  send(batch: OutgoingBatch): Promise<void>;
  /**
   * The topic's partition count (creating the topic if the broker does so), or null when this
   * client cannot tell: the audit client then keeps one request in flight, its batches
   * spanning partitions. Rejects when the broker cannot be reached.
   */
  partitionCount(topic: string): Promise<number | null>;
  /**
   * A ring shared with the thread that sends, when there is one (the worker thread's
   * transport): the client copies each event into it as it is accepted, so a batch crosses
   * to that thread as positions, not bytes.
   */
  readonly staging?: StagingRing;
  /** Disconnects; never rejects. */
  close(): Promise<void>;
}

/** A send or connect that failed, with the client's message (errors do not cross threads with their class). */
export class KafkaTransportError extends Error {
  constructor(
    message: string,
    readonly kind: KafkaClientKind,
    /** The broker refused the request for its size: sent again as it is, it can never succeed. */
    readonly tooLarge = false,
  ) {
    super(message);
    this.name = 'KafkaTransportError';
  }
}

/** Kafka's error codes for a request refused for its size (the batch, or a record in it). */
const TOO_LARGE = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE']);

/**
 * Whether a Kafka client's error is, or wraps, a refusal for size. kafkajs names the code in
 * `type`, @platformatic/kafka in `apiId`; both wrap it (retries, causes, several errors).
 */
export function refusedForSize(err: unknown, depth = 0): boolean {
  if (depth > 6 || err === null || typeof err !== 'object') return false;
  const e = err as { type?: unknown; apiId?: unknown; cause?: unknown; originalError?: unknown; errors?: unknown };
  if ((typeof e.type === 'string' && TOO_LARGE.has(e.type)) || (typeof e.apiId === 'string' && TOO_LARGE.has(e.apiId))) return true;
  if (Array.isArray(e.errors) && e.errors.some((x) => refusedForSize(x, depth + 1))) return true;
  return refusedForSize(e.cause, depth + 1) || refusedForSize(e.originalError, depth + 1);
}
