import { nodeRunsPlatformatic } from '../config/node-support';
import { schemaRegistryConfig } from '../config/registry-env';
import { CURRENT_SCHEMA_ID, confluentHeader, objectKey, singleObjectHeader, type AuditRecord } from '../schemas';
import { RegistryClient, SchemaRegistryRefusedError, registerWriterSchema } from '../schema-registry';
import { type AuditEventInput, buildRecord } from './build-record';
import { currentAuditContext } from './context';
import { AuditInputError, AuditUnavailableError } from './errors';
import { DEFAULT_MASKED_FIELDS, type FieldMatcher, fieldMatcher } from './mask';
import { truncatedValue } from './truncate';
import { consoleLogger } from './console-logger';
import { resolveOptions, resolveSchemaRegistry, type AuditClientOptions, type AuditLogger, type AuditStats, type BufferFullPolicy, type ResolvedOptions } from './client-options';
import { KafkaTransportError, KafkajsTransport, createTransport, partitionOf, type KafkaClientKind, type KafkaTransport } from './transport';
import type { StagedEvent } from './transport/staging';

export type { AuditClientOptions, AuditLogger, AuditStats, BufferFullPolicy, SchemaRegistryOption } from './client-options';
export { consoleLogger, type ConsoleLoggerOptions } from './console-logger';

/** An accepted event; when the transport has a staging ring, its bytes are there (`at` >= 0) and `value` is empty. */
interface Pending extends StagedEvent {
  key: string;
  value: Buffer;
  /** False while the registry id is not known yet: its header bytes are written before sending. */
  framed: boolean;
  /** Set when events are routed to one lane per partition; -1: the Kafka client partitions by key. */
  partition: number;
  /** Its rank among accepted events (1 = the first). */
  seq: number;
}

/**
 * The events bound for one partition (or, when requests are not split by partition, for
 * all of them), oldest first. At most one request per lane is in flight: it carries the
 * lane's first `sending` events, which stay in the lane until acknowledged, so a failed
 * request is resent before anything that came after it.
 */
interface Lane {
  items: Pending[];
  /** Events at the head of `items` in the request in flight (0: none). */
  sending: number;
}

const EMPTY = Buffer.alloc(0);

/** A Confluent header whose id is filled in once the registry answered. */
const UNFRAMED_HEADER = confluentHeader(0);

/**
 * @platformatic/kafka where this Node runs it (>= 22.22 on the 22 line, >= 24.6 on 24, any
 * later major); kafkajs elsewhere, so an app on an older Node still records (and a started
 * worker never crash-loops on an import it cannot load). The consumer decides the same way.
 */
export const platformaticSupported: (version?: string) => boolean = nodeRunsPlatformatic;

const DEFAULT_CLIENT: KafkaClientKind = platformaticSupported() ? 'platformatic' : 'kafkajs';

const RESOLVED: Promise<void> = Promise.resolve();

/** How long close() waits, past its timeout, for requests still in flight before closing the transport under them. */
const CLOSE_GRACE_MS = 1_000;

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
  private readonly opts: ResolvedOptions;
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
  /** For the warning when Kafka cannot be reached (unknown with an app's own producer). */
  private brokers: string | null = null;
  /** Accepted events not yet given to a lane (the pump does that, off the `record()` path). */
  private incoming: Pending[] = [];
  /** When the oldest event of `incoming` arrived. */
  private incomingSince = 0;
  /** One lane per partition once the partition count is known and requests may overlap; otherwise one. */
  private lanes: Lane[] = [newLane()];
  /** Accepted events not yet acknowledged nor dropped: what `bufferSize` bounds. */
  private held = 0;
  /** Requests in flight. */
  private inFlight = 0;
  /** Bumped when the buffer is abandoned: answers to requests sent before are then ignored. */
  private generation = 0;
  /** No request is sent before this time (backoff after a failure). */
  private pausedUntil = 0;
  private backoff = 100;
  /** The topic's partition count; undefined until asked (only when requests may overlap), null if unknown. */
  private partitions: number | null | undefined;
  private readonly roomWaiters: (() => void)[] = [];
  private readonly idleWaiters: (() => void)[] = [];
  private wake: (() => void) | null = null;
  private connected = false;
  private closed = false;
  private pump: Promise<void>;
  private readonly counters = { accepted: 0, delivered: 0, dropped: 0, refused: 0, invalid: 0, truncated: 0, sendFailures: 0 };
  /**
   * Bytes per request, lowered each time the broker refuses a request for its size (a topic
   * whose max.message.bytes is under what batchBytes makes, or data that does not compress).
   */
  private requestBytes: number;
  /** The smallest request of several events refused for its size: requests grow back after successes, to half of it at most. */
  private refusedBytes = Infinity;

  constructor(options: AuditClientOptions = {}) {
    this.topic = options.topic ?? process.env.AUDIT_TOPIC ?? 'audit.events';
    this.sourceService = options.sourceService ?? null;
    this.isSensitive = fieldMatcher(options.maskFields ?? DEFAULT_MASKED_FIELDS);
    this.log = options.logger === false ? silentLogger : (options.logger ?? consoleLogger());
    this.opts = resolveOptions(options, this.topic);
    this.requestBytes = this.opts.batchBytes;
    const stagingBytes = options.sender?.stagingBytes;
    if (options.producer) {
      this.transport = new KafkajsTransport({ producer: options.producer });
    } else {
      const brokers = options.brokers ?? (process.env.AUDIT_KAFKA_BROKERS ?? 'localhost:9092').split(',');
      this.brokers = brokers.join(',');
      this.transport = createTransport(
        { kind: options.sender?.client ?? DEFAULT_CLIENT, brokers, clientId: this.opts.clientId, ...(stagingBytes === undefined ? {} : { stagingBytes }) },
        options.sender?.thread ?? 'worker',
      );
    }
    const registryConfig = options.schemaRegistry === undefined ? schemaRegistryConfig(process.env) : options.schemaRegistry && resolveSchemaRegistry(options.schemaRegistry);
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
    if (this.partitions === undefined) {
      // Asked once: a partition count that changed under a running client would move objects
      // between partitions while earlier requests of theirs may still be retried.
      this.partitions = this.opts.maxInFlight > 1 ? await this.transport.partitionCount(this.topic) : null;
      if (this.partitions !== null && this.partitions > 1) this.splitLanes(this.partitions);
    }
  }

  /** From one lane to one per partition; only ever before the first request (the one lane is then empty or unsent). */
  private splitLanes(partitions: number): void {
    const first = this.lanes[0]!;
    if (this.lanes.length !== 1 || first.sending > 0) return;
    this.lanes = Array.from({ length: partitions }, newLane);
    this.incoming = first.items.concat(this.incoming);
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
    return { key: objectKey(record), value, framed: this.header !== null, partition: -1, seq: 0, at: -1, keyBytes: 0, size: value.length, released: false };
  }

  private enqueue(p: Pending): Promise<void> {
    if (this.closed) return this.refuse('audit client is closed');
    if (this.fatal) return this.refuse(`audit client not started: ${this.fatal.message}`);
    // Not ahead of callers already blocked for room: they recorded earlier (block keeps the order).
    if (this.held < this.opts.bufferSize && this.roomWaiters.length === 0) {
      this.accept(p);
      // One settled promise for every event that found room: no allocation on the common path.
      return RESOLVED;
    }
    return this.enqueueWhenFull(p);
  }

  private async enqueueWhenFull(p: Pending): Promise<void> {
    while (this.held >= this.opts.bufferSize) {
      if (this.opts.onBufferFull === 'drop') {
        this.counters.dropped++;
        if (this.counters.dropped === 1 || this.counters.dropped % 1000 === 0) {
          this.log.warn({ dropped: this.counters.dropped, buffered: this.held }, 'audit buffer full: event dropped');
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
    p.seq = ++this.counters.accepted;
    // Copied to the sender thread's ring now, in the caller's turn (a fraction of a µs), rather
    // than with its batch: a batch's hand-off then costs the app thread a few integers per event.
    // An event whose registry id is not known yet keeps its bytes, framed when sent.
    const staging = this.transport.staging;
    if (staging !== undefined && p.framed && staging.put(p, p.key, p.value)) p.value = EMPTY;
    const n = this.incoming.push(p);
    this.held++;
    // The pump is woken only when it has something new to decide (a first event to linger on,
    // or a full batch), not once per event.
    if (n === 1) {
      this.incomingSince = Date.now();
      this.wake?.();
    } else if (n === this.opts.batchSize) this.wake?.();
  }

  private refuse(message: string): Promise<void> {
    this.counters.dropped++;
    if (this.opts.onBufferFull === 'fail') return Promise.reject(new AuditUnavailableError(message));
    this.log.warn({}, `${message}: event dropped`);
    return Promise.resolve();
  }

  /**
   * Sends what is buffered: events wait in `incoming` until a full batch is there or the
   * oldest has waited `lingerMs`, then go to their partition's lane; every lane whose
   * previous request was acknowledged sends its oldest events, up to `maxInFlight`
   * requests at once. A failed request stays at the head of its lane and is resent after a
   * backoff, before anything later of that partition.
   */
  private async runPump(): Promise<void> {
    while (true) {
      if (this.held === 0 && this.inFlight === 0) {
        this.notifyIdle();
        if (this.closed) return;
        await this.idle(null);
        continue;
      }
      if (this.held === 0) {
        // Abandoned while requests were in flight: wait for their answers before closing the transport.
        await this.idle(null);
        continue;
      }
      const now = Date.now();
      if (now < this.pausedUntil) {
        if (this.closed && this.closeDeadline !== null && now >= this.closeDeadline) {
          this.abandonQueue();
          continue;
        }
        await this.idle(this.pausedUntil - now);
        continue;
      }
      try {
        await this.start();
      } catch (err) {
        if (this.fatal) {
          // The registry refused the schema: nothing of this client is ever sent.
          this.log.error({ err: this.fatal.message }, 'audit client cannot send: schema refused by the registry');
          this.abandonQueue();
          return;
        }
        this.sendFailed(err);
        continue;
      }
      let lingering: number | null = null;
      if (this.incoming.length > 0) {
        const readyAt = this.incomingSince + this.opts.lingerMs;
        if (this.closed || this.incoming.length >= this.opts.batchSize || Date.now() >= readyAt) this.route();
        else lingering = readyAt - Date.now();
      }
      this.launch();
      await this.idle(lingering);
    }
  }

  /** Waits until woken (an event when none was waiting, a full batch, an answer, flush, close) or `ms` passed. */
  private idle(ms: number | null): Promise<void> {
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const wake = () => {
        clearTimeout(timer);
        if (this.wake === wake) this.wake = null;
        resolve();
      };
      this.wake = wake;
      if (ms !== null) timer = setTimeout(wake, Math.max(0, ms));
    });
  }

  /** Moves `incoming` to the lanes, each event to its partition's. */
  private route(): void {
    const incoming = this.incoming;
    this.incoming = [];
    const lanes = this.lanes;
    if (lanes.length === 1) {
      const items = lanes[0]!.items;
      for (let i = 0; i < incoming.length; i++) items.push(incoming[i]!);
      return;
    }
    for (let i = 0; i < incoming.length; i++) {
      const p = incoming[i]!;
      p.partition = partitionOf(p.key, lanes.length);
      lanes[p.partition]!.items.push(p);
    }
  }

  /**
   * Sends what the lanes hold: every lane with events and nothing in flight goes out, the
   * free lanes spread over the free slots of the window (a topic with more partitions than
   * `maxInFlight` gets requests of several partitions, as Kafka clients make them).
   */
  private launch(): void {
    const n = this.lanes.length;
    const ready: Lane[] = [];
    // Lanes are visited from a rotating start, so no partition waits behind the others for a slot.
    const from = this.nextLane;
    this.nextLane = (from + 1) % n;
    for (let j = 0; j < n; j++) {
      const lane = this.lanes[(from + j) % n]!;
      if (lane.sending === 0 && lane.items.length > 0) ready.push(lane);
    }
    let at = 0;
    for (let slots = this.opts.maxInFlight - this.inFlight; at < ready.length && slots > 0; slots--) {
      const take = Math.ceil((ready.length - at) / slots);
      this.sendLanes(ready.slice(at, at + take));
      at += take;
    }
  }

  private nextLane = 0;

  /** One request with the oldest events of each of `lanes`, up to a batch; lanes the batch had no room for stay free. */
  private sendLanes(lanes: readonly Lane[]): void {
    const messages: Pending[] = [];
    const taken: Lane[] = [];
    let bytes = 0;
    for (const lane of lanes) {
      const items = lane.items;
      const max = Math.min(items.length, this.opts.batchSize - messages.length);
      let count = 0;
      while (count < max) {
        const len = items[count]!.size;
        if (messages.length + count > 0 && bytes + len > this.requestBytes) break;
        bytes += len;
        count++;
      }
      if (count === 0) break;
      for (let i = 0; i < count; i++) messages.push(items[i]!);
      lane.sending = count;
      taken.push(lane);
    }
    for (const p of messages) {
      if (!p.framed) {
        p.value.writeInt32BE(this.registryId, 1);
        p.framed = true;
      }
    }
    this.inFlight++;
    const generation = this.generation;
    this.transport.send({ topic: this.topic, compression: this.opts.compression, messages }).then(
      () => {
        this.release(messages);
        this.acknowledged(taken, messages.length, generation);
      },
      (err: unknown) => {
        this.inFlight--;
        if (generation === this.generation) {
          for (const lane of taken) lane.sending = 0;
          if (err instanceof KafkaTransportError && err.tooLarge) this.refusedForSize(messages, bytes, err);
          else this.sendFailed(err);
        } else {
          // Abandoned while this request was out: its ring space was kept until now, as the sender read it.
          this.release(messages);
        }
        this.wake?.();
      },
    );
  }

  /** Their ring space may be reused (no request refers to it any more). */
  private release(events: readonly Pending[]): void {
    const staging = this.transport.staging;
    if (staging === undefined) return;
    for (let i = 0; i < events.length; i++) staging.release(events[i]!);
  }

  private acknowledged(lanes: readonly Lane[], count: number, generation: number): void {
    this.inFlight--;
    if (generation === this.generation) {
      for (const lane of lanes) {
        lane.items.splice(0, lane.sending);
        lane.sending = 0;
      }
      this.held -= count;
      this.counters.delivered += count;
      this.backoff = 100;
      // After a refusal for size: back up towards batchBytes, to half the smallest size refused at most
      // (growing to just under it would probe the limit again, one refused request per step).
      if (this.requestBytes < this.opts.batchBytes) this.requestBytes = Math.max(this.requestBytes, Math.min(this.opts.batchBytes, Math.floor(this.refusedBytes / 2), this.requestBytes * 2));
      for (const w of this.roomWaiters.splice(0, count)) w();
    }
    this.wake?.();
  }

  /**
   * The broker refused a request for its size: resent as it is, it would be refused for
   * ever and hold up everything after it. A request of several events is made smaller
   * (requests from now on carry half its bytes) and goes again at once; a single event
   * the broker refuses on its own can never be delivered: it is dropped, counted in
   * `refused` and `dropped`, and logged with its object, and what follows goes on.
   */
  private refusedForSize(messages: readonly Pending[], bytes: number, err: KafkaTransportError): void {
    this.counters.sendFailures++;
    if (messages.length > 1) {
      this.refusedBytes = Math.min(this.refusedBytes, bytes);
      this.requestBytes = Math.max(1, Math.min(this.requestBytes, Math.floor(bytes / 2)));
      this.log.warn({ err: err.message, events: messages.length, bytes, requestBytes: this.requestBytes }, 'audit request refused for its size; sending smaller requests');
      return;
    }
    const p = messages[0]!;
    const lane = this.lanes.find((l) => l.items[0] === p);
    if (!lane) return;
    lane.items.shift();
    this.release([p]);
    this.held--;
    this.counters.dropped++;
    this.counters.refused++;
    this.log.error({ err: err.message, object: p.key, bytes: p.size }, 'audit event refused by Kafka for its size: dropped');
    for (const w of this.roomWaiters.splice(0, 1)) w();
  }

  /** Counts and logs a failed request (or connect); no request goes out before the backoff passed. */
  private sendFailed(err: unknown): void {
    this.counters.sendFailures++;
    this.log.error(
      { err: err instanceof Error ? err.message : String(err), queued: this.held, ...(this.brokers === null ? {} : { brokers: this.brokers }) },
      'audit events not delivered: Kafka unreachable or refusing; kept in the buffer and retried',
    );
    const now = Date.now();
    // Requests failing together (every lane when the broker is down) lengthen the backoff once.
    if (now >= this.pausedUntil) {
      this.pausedUntil = now + this.backoff;
      this.backoff = Math.min(this.backoff * 2, 5_000);
    }
  }

  private closeDeadline: number | null = null;

  private abandonQueue(): void {
    const lost = this.held;
    if (lost > 0) this.prefixFrozenAt ??= this.oldestHeld() - 1;
    this.release(this.incoming);
    this.incoming = [];
    for (const lane of this.lanes) {
      // Events of a request still out keep their ring space until it is answered.
      this.release(lane.items.slice(lane.sending));
      lane.items = [];
      lane.sending = 0;
    }
    this.held = 0;
    this.generation++;
    this.counters.dropped += lost;
    if (lost > 0) this.log.error({ lost }, 'audit client closed with undelivered events');
    for (const w of this.roomWaiters.splice(0)) w();
    this.notifyIdle();
  }

  private notifyIdle(): void {
    if (this.held === 0 && this.inFlight === 0) for (const w of this.idleWaiters.splice(0)) w();
  }

  /** Resolves when every event recorded so far is acknowledged by Kafka (or `timeoutMs` passed: false). */
  async flush(timeoutMs = 30_000): Promise<boolean> {
    if (this.held === 0 && this.inFlight === 0) return true;
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
    // Requests in flight past the deadline (the client retrying inside a send can take far
    // longer than `timeoutMs`) get a moment to be answered, then the transport is closed under
    // them, which fails them, so close() keeps to its timeout. Their events were counted as
    // dropped; an answer that still came is not counted as delivered (the safe side).
    let grace: NodeJS.Timeout | undefined;
    const settled = await Promise.race([this.pump.then(() => true), new Promise<boolean>((resolve) => (grace = setTimeout(() => resolve(false), CLOSE_GRACE_MS)))]);
    clearTimeout(grace);
    if (!settled) await this.transport.close();
    await this.pump;
    if (settled) await this.transport.close();
  }

  stats(): AuditStats {
    const deliveredPrefix = this.prefixFrozenAt ?? (this.held === 0 ? this.counters.accepted : this.oldestHeld() - 1);
    return { ...this.counters, deliveredPrefix, queued: this.held };
  }

  /** Set when accepted events were abandoned: the delivered prefix ends before the first of them. */
  private prefixFrozenAt: number | null = null;

  /** The rank of the oldest event not yet acknowledged (each lane and `incoming` hold theirs oldest first). */
  private oldestHeld(): number {
    let oldest = this.incoming.length > 0 ? this.incoming[0]!.seq : Infinity;
    for (const lane of this.lanes) if (lane.items.length > 0 && lane.items[0]!.seq < oldest) oldest = lane.items[0]!.seq;
    return oldest === Infinity ? this.counters.accepted + 1 : oldest;
  }
}

function newLane(): Lane {
  return { items: [], sending: 0 };
}

/**
 * @deprecated Use `new AuditClient(options)`, which this only calls. Kept so
 * existing imports from `audit-pipeline/producer` keep compiling.
 */
export function createAuditClient(options?: AuditClientOptions): AuditClient {
  return new AuditClient(options);
}
