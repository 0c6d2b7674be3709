import type { Producer } from 'kafkajs';
import { type SchemaRegistryConfig, schemaRegistryConfig } from '../config/env';
import { CURRENT_SCHEMA_ID, confluentHeader, objectKey, singleObjectHeader, type AuditRecord } from '../schemas';
import { RegistryClient, SchemaRegistryRefusedError, registerWriterSchema } from '../schema-registry';
import { type AuditEventInput, buildRecord } from './build-record';
import { currentAuditContext } from './context';
import { AuditConfigError, AuditInputError, AuditUnavailableError } from './errors';
import { DEFAULT_MASKED_FIELDS, type FieldMatcher, fieldMatcher } from './mask';
import { encodeCurrent } from './encode';
import { needsTruncation, truncateRecord } from './truncate';
import { KafkajsTransport, createTransport, type KafkaClientKind, type KafkaTransport, type SenderThread } from './transport';

/** What happens to a new event when the buffer is full (Kafka down or slow). */
export type BufferFullPolicy = 'drop' | 'block' | 'fail';

export interface AuditLogger {
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

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
  sender?: { client?: KafkaClientKind; thread?: SenderThread };
  /** Name of the app, stored in every record. */
  sourceService?: string;
  /** Events held in memory while Kafka is slow or down (default 10,000). */
  bufferSize?: number;
  /** `drop` (default): count and log the event; `block`: `record()` waits for room; `fail`: `record()` rejects. */
  onBufferFull?: BufferFullPolicy;
  /**
   * Messages per Kafka request (default 2,000) and bytes per request (default 512 KiB): a
   * backlog goes out in few large requests, one at a time (ordering), so a broker's round
   * trip is paid per ~1,500 events of 330 bytes rather than per 500.
   */
  batchSize?: number;
  batchBytes?: number;
  /** Waits this long for more events before sending a partial batch (default 10 ms). */
  lingerMs?: number;
  /** Text/JSON fields longer than this are truncated with a marker (default 16 KiB). */
  maxFieldBytes?: number;
  /** An encoded record must fit in this (default 900 KB, under Kafka's 1 MB default). */
  maxMessageBytes?: number;
  /** Field names whose values are masked in before/after/changes/metadata (default: passwords, tokens, cards...). */
  maskFields?: readonly (string | RegExp)[];
  compression?: 'gzip' | 'none';
  logger?: AuditLogger;
  /**
   * A Confluent-compatible schema registry: records are framed with its id for the
   * schema, found or registered under the topic's subject at `start()` (default:
   * AUDIT_SCHEMA_REGISTRY_URL and its companions; null = none, the Avro
   * single-object encoding).
   */
  schemaRegistry?: SchemaRegistryConfig | null;
}

export interface AuditStats {
  /** Events accepted into the buffer. */
  accepted: number;
  /** Events acknowledged by Kafka. */
  delivered: number;
  /** Events dropped (buffer full in `drop` mode, undeliverable at close, oversized beyond repair). */
  dropped: number;
  /** Events rejected as invalid input. */
  invalid: number;
  /** Events whose fields were truncated. */
  truncated: number;
  /** Failed send attempts (each batch retried until delivered or closed). */
  sendFailures: number;
  /** Events waiting to be delivered. */
  queued: number;
}

interface Pending {
  key: string;
  value: Buffer;
  /** False while the registry id is not known yet: its header bytes are written before sending. */
  framed: boolean;
}

/** A Confluent header whose id is filled in once the registry answered. */
const UNFRAMED_HEADER = confluentHeader(0);

/**
 * @platformatic/kafka where this Node runs it (>= 22.22 on the 22 line, >= 24.6 on 24, any
 * later major); kafkajs elsewhere, so an app on an older Node still records (and a started
 * worker never crash-loops on an import it cannot load).
 */
export function platformaticSupported(version = process.versions.node): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > 24 || (major === 24 && minor >= 6) || (major === 22 && minor >= 22);
}

const DEFAULT_CLIENT: KafkaClientKind = platformaticSupported() ? 'platformatic' : 'kafkajs';

const RESOLVED: Promise<void> = Promise.resolve();

const silentLogger: AuditLogger = { warn: () => undefined, error: () => undefined };

/**
 * The in-app audit client. `record()` builds, masks, truncates and encodes the
 * event in the caller's turn (so the caller's context is captured), then hands
 * it to a background sender: the app never waits for Kafka unless it asked to
 * (`block`/`fail` policies, `flush()`).
 */
export class AuditClient {
  readonly topic: string;
  private readonly transport: KafkaTransport;
  private readonly opts: Required<Omit<AuditClientOptions, 'producer' | 'sender' | 'brokers' | 'sourceService' | 'maskFields' | 'logger' | 'schemaRegistry'>>;
  private readonly registry: RegistryClient | null;
  /** The header every record gets; null until the registry's id is known. */
  private header: Buffer | null;
  private registryId = 0;
  private starting: Promise<void> | null = null;
  /** The registry refused our schema: nothing is ever sent. */
  private fatal: Error | null = null;
  private readonly sourceService: string | null;
  private readonly isSensitive: FieldMatcher;
  private readonly log: AuditLogger;
  private readonly queue: Pending[] = [];
  private readonly roomWaiters: (() => void)[] = [];
  private readonly idleWaiters: (() => void)[] = [];
  private wake: (() => void) | null = null;
  private connected = false;
  private closed = false;
  private sending = false;
  private pump: Promise<void>;
  private readonly counters = { accepted: 0, delivered: 0, dropped: 0, invalid: 0, truncated: 0, sendFailures: 0 };

  constructor(options: AuditClientOptions = {}) {
    this.topic = options.topic ?? process.env.AUDIT_TOPIC ?? 'audit.events';
    this.sourceService = options.sourceService ?? null;
    this.isSensitive = fieldMatcher(options.maskFields ?? DEFAULT_MASKED_FIELDS);
    this.log = options.logger ?? silentLogger;
    this.opts = {
      topic: this.topic,
      clientId: options.clientId ?? 'audit-producer',
      bufferSize: options.bufferSize ?? 10_000,
      onBufferFull: options.onBufferFull ?? 'drop',
      batchSize: options.batchSize ?? 2_000,
      batchBytes: options.batchBytes ?? 512 * 1024,
      lingerMs: options.lingerMs ?? 10,
      maxFieldBytes: options.maxFieldBytes ?? 16 * 1024,
      maxMessageBytes: options.maxMessageBytes ?? 900_000,
      compression: options.compression ?? 'gzip',
    };
    if (options.sender?.client === 'platformatic' && !platformaticSupported()) {
      throw new AuditConfigError(`sender.client 'platformatic' needs Node >= 22.22 or >= 24.6 (this is ${process.version}); use 'kafkajs' or leave it unset`);
    }
    if (options.producer) {
      this.transport = new KafkajsTransport({ producer: options.producer });
    } else {
      const brokers = options.brokers ?? (process.env.AUDIT_KAFKA_BROKERS ?? 'localhost:9092').split(',');
      this.transport = createTransport(
        { kind: options.sender?.client ?? DEFAULT_CLIENT, brokers, clientId: this.opts.clientId },
        options.sender?.thread ?? 'worker',
      );
    }
    const registryConfig = options.schemaRegistry === undefined ? schemaRegistryConfig(process.env) : options.schemaRegistry;
    this.registry = registryConfig ? new RegistryClient(registryConfig) : null;
    this.header = this.registry ? null : singleObjectHeader(CURRENT_SCHEMA_ID);
    this.pump = this.runPump();
  }

  /**
   * Connects to Kafka and, with a schema registry, finds or registers the schema
   * (the registry's compatibility check): an incompatible change rejects here
   * with a one-line SchemaIncompatibleError, and nothing is ever sent. Optional:
   * the sender starts itself on the first event, but calling it at application
   * start-up surfaces such an error at once. A registry or broker that is down
   * rejects too; `start()` may then be called again.
   */
  start(): Promise<void> {
    if (this.fatal) return Promise.reject(this.fatal);
    this.starting ??= this.startNow().catch((err: unknown) => {
      this.starting = null;
      if (err instanceof SchemaRegistryRefusedError) this.fatal = err;
      throw err;
    });
    return this.starting;
  }

  private async startNow(): Promise<void> {
    if (this.registry && !this.header) {
      const writer = await registerWriterSchema(this.registry, this.topic, this.registry.config.subjectStrategy, CURRENT_SCHEMA_ID);
      this.registryId = writer.id;
      this.header = writer.header;
    }
    if (!this.connected) {
      await this.transport.connect();
      this.connected = true;
    }
  }

  /**
   * Records an event. Never throws; the promise never rejects in `drop` and
   * `block` mode (invalid input is counted and logged). It resolves once the
   * event is buffered, not delivered: use `flush()` to wait for delivery.
   */
  record(input: AuditEventInput): Promise<void> {
    let pending: Pending;
    try {
      pending = this.encode(input);
    } catch (err) {
      this.counters.invalid++;
      this.log.warn({ err: (err as Error).message }, 'audit event rejected');
      return this.opts.onBufferFull === 'fail' ? Promise.reject(err) : Promise.resolve();
    }
    return this.enqueue(pending);
  }

  /** A custom event about any object: `audit.event({type: 'report', id: 7}, {exported: true})`. */
  event(
    object: { type: string; id: string | number },
    content: Record<string, unknown> = {},
    extra: Partial<AuditEventInput> = {},
  ): Promise<void> {
    return this.record({ objectType: object.type, objectId: object.id, action: 'custom', after: content, ...extra });
  }

  private encode(input: AuditEventInput): Pending {
    const record = buildRecord(input, currentAuditContext(), { sourceService: this.sourceService, isSensitive: this.isSensitive });
    let limit = this.opts.maxFieldBytes;
    const header = this.header ?? UNFRAMED_HEADER;
    let { value, cut } = truncatedValue(record, limit, header);
    // Still too large for the broker: shorten the fields harder until it fits, each time from the
    // built record (cutting a cut value again would stack markers and miscount the bytes removed).
    while (value.length > this.opts.maxMessageBytes && limit >> 1 >= 64) {
      limit >>= 1;
      ({ value, cut } = truncatedValue(record, limit, header));
    }
    if (cut.length > 0) {
      this.counters.truncated++;
      this.log.warn({ fields: cut, limit, object: objectKey(record) }, 'audit event fields truncated');
    }
    if (value.length > this.opts.maxMessageBytes) {
      throw new AuditInputError(`event is ${value.length} bytes even after truncation (limit ${this.opts.maxMessageBytes})`);
    }
    return { key: objectKey(record), value, framed: this.header !== null };
  }

  private enqueue(p: Pending): Promise<void> {
    if (this.closed) return this.refuse('audit client is closed');
    if (this.fatal) return this.refuse(`audit client not started: ${this.fatal.message}`);
    if (this.queue.length < this.opts.bufferSize) {
      this.accept(p);
      // One settled promise for every event that found room: no allocation on the common path.
      return RESOLVED;
    }
    return this.enqueueWhenFull(p);
  }

  private async enqueueWhenFull(p: Pending): Promise<void> {
    while (this.queue.length >= this.opts.bufferSize) {
      if (this.opts.onBufferFull === 'drop') {
        this.counters.dropped++;
        if (this.counters.dropped === 1 || this.counters.dropped % 1000 === 0) {
          this.log.warn({ dropped: this.counters.dropped, buffered: this.queue.length }, 'audit buffer full: event dropped');
        }
        return;
      }
      if (this.opts.onBufferFull === 'fail') return this.refuse('audit buffer full (Kafka unavailable or slow)');
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
      if (this.closed) return this.refuse('audit client is closed');
    }
    this.accept(p);
  }

  private accept(p: Pending): void {
    this.queue.push(p);
    this.counters.accepted++;
    this.wake?.();
  }

  private refuse(message: string): Promise<void> {
    this.counters.dropped++;
    if (this.opts.onBufferFull === 'fail') return Promise.reject(new AuditUnavailableError(message));
    this.log.warn({}, `${message}: event dropped`);
    return Promise.resolve();
  }

  private async runPump(): Promise<void> {
    let backoff = 100;
    while (true) {
      if (this.queue.length === 0) {
        this.notifyIdle();
        if (this.closed) return;
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = null;
        continue;
      }
      if (this.queue.length < this.opts.batchSize && this.opts.lingerMs > 0 && !this.closed) {
        await sleep(this.opts.lingerMs);
      }
      const batch: Pending[] = [];
      let bytes = 0;
      for (const p of this.queue) {
        if (batch.length >= this.opts.batchSize || (batch.length > 0 && bytes + p.value.length > this.opts.batchBytes)) break;
        batch.push(p);
        bytes += p.value.length;
      }
      try {
        this.sending = true;
        await this.start();
        for (const p of batch) {
          if (!p.framed) {
            p.value.writeInt32BE(this.registryId, 1);
            p.framed = true;
          }
        }
        await this.transport.send({ topic: this.topic, compression: this.opts.compression, messages: batch });
        this.queue.splice(0, batch.length);
        this.counters.delivered += batch.length;
        backoff = 100;
        for (const w of this.roomWaiters.splice(0, batch.length)) w();
      } catch (err) {
        if (this.fatal) {
          // The registry refused the schema: nothing of this client is ever sent.
          this.log.error({ err: this.fatal.message }, 'audit client cannot send: schema refused by the registry');
          this.sending = false;
          this.abandonQueue();
          return;
        }
        this.counters.sendFailures++;
        this.log.error({ err: (err as Error).message, queued: this.queue.length }, 'audit send failed; will retry');
        if (this.closed && this.closeDeadline !== null && Date.now() >= this.closeDeadline) {
          this.abandonQueue();
          return;
        }
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 5_000);
      } finally {
        this.sending = false;
      }
    }
  }

  private closeDeadline: number | null = null;

  private abandonQueue(): void {
    const lost = this.queue.length;
    this.queue.length = 0;
    this.counters.dropped += lost;
    if (lost > 0) this.log.error({ lost }, 'audit client closed with undelivered events');
    for (const w of this.roomWaiters.splice(0)) w();
    this.notifyIdle();
  }

  private notifyIdle(): void {
    if (this.queue.length === 0 && !this.sending) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Resolves when every event recorded so far is acknowledged by Kafka (or `timeoutMs` passed: false). */
  async flush(timeoutMs = 30_000): Promise<boolean> {
    if (this.queue.length === 0 && !this.sending) return true;
    let timer: NodeJS.Timeout | undefined;
    const idle = new Promise<boolean>((resolve) => this.idleWaiters.push(() => resolve(true)));
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    this.wake?.();
    try {
      return await Promise.race([idle, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Delivers what is buffered (waiting up to `timeoutMs`), then disconnects. Undelivered events are counted as dropped. */
  async close(timeoutMs = 10_000): Promise<void> {
    if (this.closed) return this.pump;
    this.closed = true;
    this.closeDeadline = Date.now() + timeoutMs;
    this.wake?.();
    for (const w of this.roomWaiters.splice(0)) w();
    const delivered = await this.flush(timeoutMs);
    if (!delivered) this.abandonQueue();
    this.wake?.();
    await this.pump;
    await this.transport.close();
  }

  stats(): AuditStats {
    return { ...this.counters, queued: this.queue.length };
  }
}

/** The encoded record with its fields cut to `limit` bytes (on a copy), and the names of what was cut. */
function truncatedValue(built: AuditRecord, limit: number, header: Buffer): { value: Buffer; cut: string[] } {
  // The common case, nothing over the limit: encoded as built, no copy.
  if (!needsTruncation(built, limit)) return { value: encodeCurrent(built, header), cut: [] };
  const record = copyForTruncation(built);
  const cut = truncateRecord(record, limit);
  return { value: encodeCurrent(record, header), cut };
}

/** What truncateRecord changes (top-level fields, the maps, each change), copied; prototype-less maps stay so. */
function copyForTruncation(r: AuditRecord): AuditRecord {
  const changes = Object.create(null) as AuditRecord['changes'];
  for (const k of Object.keys(r.changes)) changes[k] = { ...r.changes[k]! };
  return { ...r, changes, metadata: Object.assign(Object.create(null) as AuditRecord['metadata'], r.metadata) };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function createAuditClient(options?: AuditClientOptions): AuditClient {
  return new AuditClient(options);
}
