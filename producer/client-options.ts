import type { Producer } from 'kafkajs';
import { ConfigError } from '../config/config-error';
import { nodeRunsPlatformatic } from '../config/node-support';
import { schemaRegistryConfig, type SchemaRegistryConfig } from '../config/registry-env';
import { AuditConfigError } from './errors';
import type { KafkaClientKind, SenderThread } from './transport';
import { MAX_STAGING_BYTES, MIN_STAGING_BYTES } from './transport/staging';

/** What an app configures of its AuditClient, and what the client reports of itself (producer/client.ts). */

/** What happens to a new event when the buffer is full (Kafka down or slow). */
export type BufferFullPolicy = 'drop' | 'block' | 'fail';

export interface AuditLogger {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** A schema registry as an app passes it: the URL, and any of the settings that default like their environment variables. */
export type SchemaRegistryOption = Pick<SchemaRegistryConfig, 'url'> & Partial<Omit<SchemaRegistryConfig, 'url'>>;

export interface AuditClientOptions {
  /** Kafka brokers (default: AUDIT_KAFKA_BROKERS or localhost:9092). Ignored when `producer` is given. */
  brokers?: string[];
  topic?: string;
  clientId?: string;
  /** An existing kafkajs producer to publish with (the client then does not own its connection; sent from the app's thread). */
  producer?: Producer;
  /**
   * Which Kafka library sends and from where (default: @platformatic/kafka in a worker
   * thread of its own, so batching, compression and the broker's round trips stay off
   * the app's event loop). Figures of each: bench/README.md, producer section.
   */
  sender?: {
    client?: KafkaClientKind;
    thread?: SenderThread;
    /**
     * Bytes of the ring the app thread shares with the sender's worker thread (default 8 MiB,
     * from 2 MiB to 1 GiB): each event is copied into it as it is recorded. Events that find no
     * room travel with their own bytes, as they would without it. Unused with `thread: 'inline'`
     * or an app's own `producer` (there is no other thread).
     */
    stagingBytes?: number;
  };
  /** Name of the app, stored in every record. */
  sourceService?: string;
  /** Events held in memory while Kafka is slow or down (default 10,000). */
  bufferSize?: number;
  /** `drop` (default): count and log the event; `block`: `record()` waits for room; `fail`: `record()` rejects. */
  onBufferFull?: BufferFullPolicy;
  /**
   * Messages per Kafka request (default 2,000) and bytes per request (default 512 KiB): a
   * backlog goes out in few large requests, so a broker's round trip is paid per ~1,500
   * events of 330 bytes rather than per 500.
   */
  batchSize?: number;
  batchBytes?: number;
  /**
   * Kafka requests in flight at once (default 1: one request at a time, its batch spanning
   * partitions). Above 1, never more than one per partition: a request for a partition goes
   * out only once the previous one for it was acknowledged, so a retry can never put an
   * object's events after later ones. Opt-in: on the benchmark host it gave 1.0x to 1.6x
   * the events/s, and overlapping sends on @platformatic/kafka have open questions
   * (producer/docs/sending.md). Clients that cannot tell the topic's partition count (kafkajs)
   * keep one request in flight.
   */
  maxInFlight?: number;
  /** Waits this long for more events before sending a partial batch (default 10 ms). */
  lingerMs?: number;
  /** Text/JSON fields longer than this are truncated with a marker (default 16 KiB). */
  maxFieldBytes?: number;
  /** An encoded record must fit in this (default 900 KB, under Kafka's 1 MB default). */
  maxMessageBytes?: number;
  /** Field names whose values are masked in before/after/changes/metadata (default: passwords, tokens, cards...). */
  maskFields?: readonly (string | RegExp)[];
  compression?: 'gzip' | 'none';
  /**
   * Where the client's warnings go (default: stderr, each kind of message at most once a
   * minute, so a broker that is down says so without flooding the app's log); `false`: nowhere.
   */
  logger?: AuditLogger | false;
  /**
   * A Confluent-compatible schema registry: records are framed with its id for the
   * schema, found or registered under the topic's subject at `start()` (default:
   * AUDIT_SCHEMA_REGISTRY_URL and its companions; null = none, the Avro
   * single-object encoding). Only `url` is required: `auth` defaults to none,
   * `subjectStrategy` and `retryMs` to their variables' defaults.
   */
  schemaRegistry?: SchemaRegistryOption | null;
}

export interface AuditStats {
  /** Events accepted into the buffer. */
  accepted: number;
  /** Events acknowledged by Kafka. */
  delivered: number;
  /**
   * The first N events accepted are all acknowledged: what a caller that checkpoints by
   * acceptance order may confirm (audit-cdc does). With several requests in flight, a
   * partition's events can be acknowledged before older ones of another, so `delivered`
   * can run ahead of this; events abandoned at `close()` stop it for good.
   */
  deliveredPrefix: number;
  /** Events dropped (buffer full in `drop` mode, undeliverable at close, oversized beyond repair, refused by Kafka). */
  dropped: number;
  /** Of those, events the broker refused for their size even alone in a request (e.g. over the topic's max.message.bytes). */
  refused: number;
  /** Events rejected as invalid input. */
  invalid: number;
  /** Events whose fields were truncated. */
  truncated: number;
  /** Failed send attempts (each batch retried until delivered or closed). */
  sendFailures: number;
  /** Events waiting to be delivered. */
  queued: number;
}


/** The client's own settings, defaults filled in (the others are read where they are used). */
export type ResolvedOptions = Required<Omit<AuditClientOptions, 'producer' | 'sender' | 'brokers' | 'sourceService' | 'maskFields' | 'logger' | 'schemaRegistry'>>;

/** The options with their defaults, checked: a bad one is an AuditConfigError that names it. */
export function resolveOptions(options: AuditClientOptions, topic: string): ResolvedOptions {
  const opts: ResolvedOptions = {
    topic,
    clientId: options.clientId ?? 'audit-producer',
    bufferSize: options.bufferSize ?? 10_000,
    onBufferFull: options.onBufferFull ?? 'drop',
    batchSize: options.batchSize ?? 2_000,
    batchBytes: options.batchBytes ?? 512 * 1024,
    maxInFlight: options.maxInFlight ?? 1,
    lingerMs: options.lingerMs ?? 10,
    maxFieldBytes: options.maxFieldBytes ?? 16 * 1024,
    maxMessageBytes: options.maxMessageBytes ?? 900_000,
    compression: options.compression ?? 'gzip',
  };
  if (!Number.isInteger(opts.maxInFlight) || opts.maxInFlight < 1) {
    throw new AuditConfigError(`maxInFlight must be a whole number >= 1 (got ${String(options.maxInFlight)})`);
  }
  if (options.sender?.client === 'platformatic' && !nodeRunsPlatformatic()) {
    throw new AuditConfigError(`sender.client 'platformatic' needs Node >= 22.22 or >= 24.6 (this is ${process.version}); use 'kafkajs' or leave it unset`);
  }
  const stagingBytes = options.sender?.stagingBytes;
  if (stagingBytes !== undefined && (!Number.isInteger(stagingBytes) || stagingBytes < MIN_STAGING_BYTES || stagingBytes > MAX_STAGING_BYTES)) {
    throw new AuditConfigError(`sender.stagingBytes must be a whole number from ${MIN_STAGING_BYTES} to ${MAX_STAGING_BYTES} (got ${String(stagingBytes)})`);
  }
  return opts;
}

/**
 * The registry option with every field filled: the defaults are those of the environment
 * variables (config/registry-env.ts), so `{ url }` means what AUDIT_SCHEMA_REGISTRY_URL alone means.
 */
export function resolveSchemaRegistry(option: SchemaRegistryOption): SchemaRegistryConfig {
  let defaults: SchemaRegistryConfig | null;
  try {
    defaults = schemaRegistryConfig({ AUDIT_SCHEMA_REGISTRY_URL: option.url });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new AuditConfigError(`schemaRegistry.url must be a URL (got ${JSON.stringify(option.url)})`);
  }
  if (defaults === null) throw new AuditConfigError('schemaRegistry.url is required (or pass schemaRegistry: null for no registry)');
  return {
    url: defaults.url,
    auth: option.auth ?? defaults.auth,
    subjectStrategy: option.subjectStrategy ?? defaults.subjectStrategy,
    retryMs: option.retryMs ?? defaults.retryMs,
  };
}
