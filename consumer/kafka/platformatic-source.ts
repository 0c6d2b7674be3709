import type { Admin as PlatformaticAdmin, Consumer as PlatformaticConsumer, Producer as PlatformaticProducer } from '@platformatic/kafka';
import type { Logger } from 'pino';
import type { InboundMessage } from '../sink';
import { PLATFORMATIC_FETCH_SETTINGS } from '../fetch-settings';
import type { KafkaSource, KafkaSourceOptions, OutboundRecord, PartitionEnds, SourceBatch, SourceHandlers } from './source';

type Module = typeof import('@platformatic/kafka');
type Consumer = PlatformaticConsumer<Buffer, Buffer, Buffer, Buffer>;
type Producer = PlatformaticProducer<Buffer, Buffer, Buffer, Buffer>;
type Admin = PlatformaticAdmin;
type FetchResponse = Awaited<ReturnType<Consumer['fetch']>>;
type FetchRequestPartition = Parameters<Consumer['fetch']>[0]['topics'][number]['partitions'][number];

/** A Kafka operation of the @platformatic/kafka client failed; the message carries the whole cause chain. */
export class KafkaClientError extends Error {
  constructor(
    readonly operation: string,
    override readonly cause: unknown,
  ) {
    super(`${operation}: ${errorText(cause)}`);
    this.name = 'KafkaClientError';
  }
}

/**
 * The library nests its errors (MultipleErrors of retries, causes of network errors):
 * the top message alone says "fetch failed 4 times", the reason is underneath.
 */
export function errorText(err: unknown): string {
  const seen = new Set<string>();
  const walk = (e: unknown, depth: number): void => {
    if (depth > 6 || e === null || e === undefined) return;
    if (e instanceof Error) {
      const code = (e as { code?: unknown }).code;
      const text = typeof code === 'string' && !e.message.includes(code) && !code.startsWith('PLT_KFK') ? `${e.message} (${code})` : e.message;
      if (text) seen.add(text);
      const nested = (e as { errors?: unknown }).errors;
      // Retries repeat one cause: the last attempt's says it.
      if (Array.isArray(nested) && nested.length > 0) walk(nested.at(-1), depth + 1);
      walk(e.cause, depth + 1);
    } else {
      seen.add(String(e));
    }
  };
  walk(err, 0);
  return [...seen].join(': ') || 'unknown error';
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** How long stop() waits for the fetch loop before closing the consumer under it. */
const STOP_WAIT_MS = 10_000;

/** Attempts at connecting in connect(), and the backoff between them (each logged). */
const CONNECT_ATTEMPTS = 8;
/** Rejoins tried after the client lost its membership, before the source gives up for good. */
const REJOIN_ATTEMPTS = 10;
const backoff = (attempt: number) => Math.min(10_000, 300 * 2 ** Math.min(attempt, 6));

/** One partition's part of a fetch, with the position after it (control records included). */
export interface FetchedBatch extends SourceBatch {
  next: bigint;
}

/**
 * The consumer's Kafka client on @platformatic/kafka: group membership through the
 * client (its heartbeats run on their own timer), fetching through `consumer.fetch`
 * in this class's loop rather than the library's message stream, because the service
 * needs what the stream does not give: per-partition batches handed over one at a time
 * (a partition's next batch only after the previous one was appended), positions that
 * move only when a batch is consumed, and after every rebalance a re-read from the
 * group's committed offsets (the earliest offset without one), never from where this
 * member had read to, with nothing fetched under the previous generation handed over
 * after the service heard of the new one.
 *
 * The handlers are called from the fetch loop alone, one at a time, in kafkajs's order:
 * the library reports a (re)join from its own heartbeat timer, possibly while a batch of
 * the previous generation is being appended; the join is recorded there and handed to
 * onAssigned by the loop at its next turn, once every batch in progress has returned.
 *
 * The library is an ES module: loaded on connect() (tsc turns the import() into require(esm),
 * Node >= 22.12), so the kafkajs path never loads it.
 */
export class PlatformaticSource implements KafkaSource {
  private lib: Module | null = null;
  private consumer: Consumer | null = null;
  private producer: Producer | null = null;
  private admin: Admin | null = null;
  private topic: string | null = null;
  private handlers: SourceHandlers | null = null;
  /** Bumped on every (re)join and loss of membership: batches fetched under an older value are dropped. */
  private epoch = 0;
  private assignment: number[] = [];
  /** A join the library reported that the loop has not applied yet (only the latest counts). */
  private pendingJoin: { partitions: number[]; generation: string } | null = null;
  /** Next offset to fetch per assigned partition; empty until read from the group's commits after a join. */
  private readonly positions = new Map<number, bigint>();
  private paused = false;
  private stopped = false;
  private membershipLost = false;
  private loop: Promise<void> | null = null;
  private wakeUp: (() => void) | null = null;
  private readonly log: Logger;

  constructor(
    private readonly opts: KafkaSourceOptions,
    log: Logger,
  ) {
    this.log = log.child({ component: 'platformatic-kafka' });
  }

  private async load(): Promise<Module> {
    this.lib ??= await import('@platformatic/kafka');
    return this.lib;
  }

  async connect(): Promise<void> {
    const kafka = await this.load();
    const base = {
      clientId: this.opts.clientId,
      bootstrapBrokers: this.opts.brokers,
      connectTimeout: 3_000,
      // A JoinGroup is answered only once every member rejoined, within the rebalance timeout.
      timeout: Math.max(30_000, this.opts.rebalanceTimeoutMs + 5_000),
      retries: 5,
      retryDelay: 500,
    };
    this.admin ??= new kafka.Admin({ ...base });
    this.consumer ??= new kafka.Consumer<Buffer, Buffer, Buffer, Buffer>({
      ...base,
      groupId: this.opts.groupId,
      sessionTimeout: this.opts.sessionTimeoutMs,
      rebalanceTimeout: this.opts.rebalanceTimeoutMs,
      heartbeatInterval: Math.min(3_000, Math.floor(this.opts.sessionTimeoutMs / 3)),
      autocommit: false,
      ...PLATFORMATIC_FETCH_SETTINGS,
    });
    // Dead letters must not be lost or reordered: idempotent, every replica acknowledges;
    // send() retries until the broker answers.
    this.producer ??= new kafka.Producer<Buffer, Buffer, Buffer, Buffer>({
      ...base,
      idempotent: true,
      acks: -1,
      // Java's and kafkajs's partitioner (murmur2 & 0x7fffffff), as the producer side uses.
      partitioner: kafka.compatibilityPartitioner,
    });
    // A client emits 'error' when a background operation fails (the consumer: a rejoin); unheard, that would throw.
    this.consumer.on('error', (err: Error) => this.onMembershipLost(err));
    for (const client of [this.admin, this.producer]) {
      client.on('error', (err: Error) => this.log.warn({ err: errorText(err) }, 'Kafka client error'));
    }
    for (let attempt = 1; ; attempt++) {
      try {
        await this.admin.metadata({ topics: [] });
        await this.producer.initIdempotentProducer({});
        return;
      } catch (err) {
        if (attempt >= CONNECT_ATTEMPTS || this.stopped) throw new KafkaClientError('connect', err);
        const waitMs = backoff(attempt);
        this.log.warn({ err: errorText(err), attempt, waitMs, brokers: this.opts.brokers }, 'connecting to Kafka failed; retrying');
        await sleep(waitMs);
      }
    }
  }

  missingTopics(topics: string[]): Promise<string[]> {
    return this.operation('list topics', async () => {
      const existing = new Set(await this.requireAdmin().listTopics());
      return topics.filter((t) => !existing.has(t));
    });
  }

  ensureTopics(topics: string[]): Promise<void> {
    return this.operation(`ensure topics ${topics.join(', ')}`, () => this.ensureTopicsNow(topics));
  }

  private async ensureTopicsNow(topics: string[]): Promise<void> {
    const admin = this.requireAdmin();
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t));
    if (missing.length === 0) return;
    try {
      await admin.createTopics({ topics: missing });
    } catch (err) {
      // Another member (or the producer) created it meanwhile.
      if (!/TOPIC_ALREADY_EXISTS|already exists/i.test(errorText(err))) throw new KafkaClientError(`create topics ${missing.join(', ')}`, err);
    }
    // The group's assignment needs the partitions' leaders (kafkajs: waitForLeaders).
    for (let i = 0; i < 50; i++) {
      const metadata = await admin.metadata({ topics: missing, forceUpdate: true });
      const ready = missing.every((t) => {
        const partitions = metadata.topics.get(t)?.partitions ?? [];
        return partitions.length > 0 && partitions.every((p) => p.leader >= 0);
      });
      if (ready) return;
      await sleep(200);
    }
  }

  async start(topic: string, handlers: SourceHandlers): Promise<void> {
    const consumer = this.requireConsumer();
    this.topic = topic;
    this.handlers = handlers;
    consumer.on('consumer:group:join', (payload) => {
      if (this.stopped) return; // a join that completes while stopping: nothing more is read
      const partitions = [...(payload.assignments?.find((a) => a.topic === topic)?.partitions ?? [])].sort((a, b) => a - b);
      // The epoch moves now, so that nothing more of the old generation is handed over or
      // moves a position; the assignment itself is applied by the loop (applyJoin), after
      // any batch being appended returned: the sink expects no join in the middle of one.
      this.epoch++;
      this.pendingJoin = { partitions, generation: String(payload.generationId ?? consumer.generationId) };
      this.membershipLost = false;
      this.wake();
    });
    consumer.topics.track(topic);
    try {
      await consumer.joinGroup(this.groupOptions());
    } catch (err) {
      // As kafkajs's run(): a group that cannot be joined yet is a crash the loop recovers from (it rejoins).
      this.onMembershipLost(err as Error);
    }
    this.loop = this.run().catch((err: unknown) => {
      // The loop handles its own failures; this is a bug, reported as a crash for good.
      this.stopped = true;
      handlers.onCrash(new KafkaClientError('consume loop', err), false);
    });
  }

  /**
   * A commit the coordinator refuses for a rebalance (ILLEGAL_GENERATION, ...) is retried
   * by the client once it rejoined, under the new generation, even if the partition moved
   * to another member. That is safe here: the offset is the end of a stored cut, so at
   * worst it moves the new owner's commit back and a range is re-read, never skipped
   * (the claims give the re-read the same keys).
   */
  async commit(partition: number, nextOffset: string): Promise<void> {
    const consumer = this.requireConsumer();
    try {
      await consumer.commit({ offsets: [{ topic: this.topic!, partition, offset: BigInt(nextOffset), leaderEpoch: -1 }] });
    } catch (err) {
      throw new KafkaClientError(`commit ${this.topic}[${partition}] at ${nextOffset}`, err);
    }
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.wake();
  }

  endOffsets(topic: string): Promise<PartitionEnds[]> {
    return this.operation(`watermarks of ${topic}`, () => this.endOffsetsNow(topic));
  }

  private async endOffsetsNow(topic: string): Promise<PartitionEnds[]> {
    const kafka = await this.load();
    const consumer = this.requireConsumer();
    const [low, high] = await Promise.all([
      consumer.listOffsets({ topics: [topic], timestamp: kafka.ListOffsetTimestamps.EARLIEST }),
      consumer.listOffsets({ topics: [topic], timestamp: kafka.ListOffsetTimestamps.LATEST }),
    ]);
    const highs = high.get(topic) ?? [];
    const lows = low.get(topic) ?? [];
    return highs.map((h, partition) => ({ partition, low: lows[partition] ?? 0n, high: h }));
  }

  committedOffsets(topic: string): Promise<Map<number, bigint>> {
    return this.operation(`committed offsets of ${topic} for ${this.opts.groupId}`, () => this.committedOffsetsNow(topic));
  }

  private async committedOffsetsNow(topic: string): Promise<Map<number, bigint>> {
    const consumer = this.requireConsumer();
    const metadata = await consumer.metadata({ topics: [topic] });
    const count = metadata.topics.get(topic)?.partitionsCount ?? 0;
    const committed = await consumer.listCommittedOffsets({ topics: [{ topic, partitions: [...Array(count).keys()] }] });
    const done = new Map<number, bigint>();
    // -1 marks a partition without a commit.
    (committed.get(topic) ?? []).forEach((offset, partition) => {
      if (offset !== undefined && offset >= 0n) done.set(partition, offset);
    });
    return done;
  }

  /** Dead letters in flight, one after the other (see send). */
  private sending: Promise<void> = Promise.resolve();

  /**
   * One at a time: the producer is idempotent, and @platformatic/kafka resets its sequence
   * numbers when a send fails, so a second send overlapping a failing one could take numbers
   * the reset has just made stale. Dead letters are rare; waiting costs nothing.
   */
  send(topic: string, record: OutboundRecord): Promise<void> {
    const run = this.sending.then(() => this.sendNow(topic, record));
    this.sending = run.catch(() => undefined);
    return run;
  }

  private async sendNow(topic: string, record: OutboundRecord): Promise<void> {
    const producer = this.requireProducer();
    // Without serializers the client writes header keys and values as they are: Buffers.
    const headers = new Map<Buffer, Buffer>();
    for (const [k, v] of Object.entries(record.headers)) headers.set(Buffer.from(k), typeof v === 'string' ? Buffer.from(v) : v);
    const message = { topic, key: Buffer.from(record.key), headers, ...(record.value !== null ? { value: record.value } : {}) };
    for (let attempt = 1; ; attempt++) {
      try {
        await producer.send({ acks: -1, compression: 'none', messages: [message] });
        return;
      } catch (err) {
        // Until the broker answers, as kafkajs's producer did; stopping ends the wait, and a
        // record the client refuses (a bug) would be refused for ever.
        if (this.stopped || refusedByClient(err)) throw new KafkaClientError(`send to ${topic}`, err);
        const waitMs = backoff(attempt);
        this.log.warn({ err: errorText(err), topic, attempt, waitMs }, 'sending a dead letter failed; retrying');
        await sleep(waitMs);
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.epoch++;
    this.wake();
    // The loop ends at its next step; a step inside the client (a rejoin, a fetch, retried by the
    // library) can take minutes with the broker away: after a bound, the consumer is closed anyway,
    // which fails that step.
    const loop = this.loop?.catch(() => undefined);
    let bound: NodeJS.Timeout | undefined;
    const ended = await Promise.race([loop?.then(() => true), new Promise<boolean>((resolve) => (bound = setTimeout(() => resolve(false), STOP_WAIT_MS)))]);
    clearTimeout(bound);
    if (ended === false) this.log.warn({ waitedMs: STOP_WAIT_MS }, 'the fetch loop did not end in time; closing the consumer under it');
    // Leaving the group lets the others take the partitions over now, not after the session timeout.
    await this.consumer?.close(true).catch((err: unknown) => this.log.warn({ err: errorText(err) }, 'closing the consumer failed'));
    await this.producer?.close(true).catch((err: unknown) => this.log.warn({ err: errorText(err) }, 'closing the dead-letter producer failed'));
    await this.admin?.close().catch((err: unknown) => this.log.warn({ err: errorText(err) }, 'closing the admin client failed'));
  }

  // --- the fetch loop ---

  private groupOptions() {
    return {
      sessionTimeout: this.opts.sessionTimeoutMs,
      rebalanceTimeout: this.opts.rebalanceTimeoutMs,
      heartbeatInterval: Math.min(3_000, Math.floor(this.opts.sessionTimeoutMs / 3)),
    };
  }

  /** Joining failed (the broker is away): no membership until the loop rejoins. */
  private onMembershipLost(err: Error): void {
    if (this.stopped) return;
    this.log.warn({ err: errorText(err) }, 'the consumer group could not be (re)joined; rejoining');
    if (!this.handlers) return;
    this.membershipLost = true;
    this.epoch++;
    // A join reported before the loss is void: the rejoin brings its own.
    this.pendingJoin = null;
    this.assignment = [];
    this.positions.clear();
    this.wake();
  }

  private wake(): void {
    const wake = this.wakeUp;
    this.wakeUp = null;
    wake?.();
  }

  /** Waits for a join, resume or stop, or `ms` (a backoff; by default a second, in case a wake-up was missed). */
  private idle(ms = 1_000): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wakeUp = null;
        resolve();
      }, ms);
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private async run(): Promise<void> {
    const handlers = this.handlers!;
    let failures = 0;
    let rejoins = 0;
    while (!this.stopped) {
      // First, and paused or not (kafkajs reports a rebalance of a paused consumer too).
      if (this.pendingJoin) {
        this.applyJoin(this.pendingJoin, handlers);
        continue;
      }
      if (this.membershipLost && !this.paused) {
        try {
          await this.requireConsumer().joinGroup(this.groupOptions());
          rejoins = 0;
        } catch (err) {
          if (this.stopped) return;
          rejoins++;
          const error = new KafkaClientError('rejoin the consumer group', err);
          if (rejoins >= REJOIN_ATTEMPTS) {
            handlers.onCrash(error, false);
            return;
          }
          handlers.onCrash(error, true);
          await this.idle(backoff(rejoins));
        }
        continue;
      }
      if (this.paused || this.assignment.length === 0) {
        await this.idle();
        continue;
      }
      const epoch = this.epoch;
      const ahead = this.ahead;
      this.ahead = null;
      try {
        if (this.positions.size === 0) await this.readPositions(epoch);
        if (epoch !== this.epoch) continue;
        const batches = await (ahead?.epoch === epoch && samePositions(ahead.from, this.positions) ? ahead.batches : this.fetchOnce(epoch, this.positions));
        failures = 0;
        if (epoch !== this.epoch || this.paused || this.stopped) continue;
        // The next fetch goes out while these batches are appended, from where they lead;
        // it is used only if every one of them is consumed (else the positions differ).
        const next = new Map(this.positions);
        for (const b of batches) next.set(b.partition, b.next);
        const prefetch = this.fetchOnce(epoch, next);
        prefetch.catch(() => undefined); // awaited (and its failure handled) on the next turn, or dropped
        this.ahead = { epoch, from: next, batches: prefetch };
        await this.deliver(batches, epoch, handlers);
      } catch (err) {
        if (this.stopped) return;
        if (/OFFSET_OUT_OF_RANGE/.test(errorText(err))) {
          // Retention deleted records under a committed offset, or the log was truncated below it.
          // Positions are read again, each partition from its committed offset where that is still
          // in the log and from the earliest where not (kafkajs: fromBeginning, per partition): the
          // other partitions do not start over.
          this.positions.clear();
          this.checkLatest = true;
          continue;
        }
        failures++;
        handlers.onCrash(new KafkaClientError('fetch', err), true);
        await this.idle(backoff(failures));
      }
    }
  }

  /**
   * A join, applied between batches: from here on the loop fetches for the new assignment,
   * each partition from its committed offset (positions are read again).
   */
  private applyJoin(join: { partitions: number[]; generation: string }, handlers: SourceHandlers): void {
    this.pendingJoin = null;
    this.assignment = join.partitions;
    this.positions.clear();
    this.ahead = null;
    handlers.onAssigned(join.partitions, join.generation);
  }

  /** After an out-of-range fetch: a committed offset past the log's end counts as out of range too. */
  private checkLatest = false;
  /** The fetch sent ahead while the previous batches were appended. */
  private ahead: { epoch: number; from: ReadonlyMap<number, bigint>; batches: Promise<FetchedBatch[]> } | null = null;

  /** Where each assigned partition is read from after a join: its committed offset, else the earliest. */
  private async readPositions(epoch: number): Promise<void> {
    const kafka = await this.load();
    const consumer = this.requireConsumer();
    const topic = this.topic!;
    const partitions = this.assignment;
    const committed = (await consumer.listCommittedOffsets({ topics: [{ topic, partitions }] })).get(topic) ?? [];
    const ends = (timestamp: bigint) => consumer.listOffsets({ topics: [topic], partitions: { [topic]: partitions }, timestamp });
    const earliest = (await ends(kafka.ListOffsetTimestamps.EARLIEST)).get(topic) ?? [];
    const latest = this.checkLatest ? ((await ends(kafka.ListOffsetTimestamps.LATEST)).get(topic) ?? []) : [];
    if (epoch !== this.epoch) return;
    this.checkLatest = false;
    for (const p of partitions) {
      const c = committed[p];
      const low = earliest[p] ?? 0n;
      const high = latest[p];
      this.positions.set(p, c !== undefined && c >= low && (high === undefined || c <= high) ? c : low);
    }
  }

  /** One fetch of every assigned partition from its leader (one request per broker). */
  private async fetchOnce(epoch: number, positions: ReadonlyMap<number, bigint>): Promise<FetchedBatch[]> {
    const consumer = this.requireConsumer();
    const topic = this.topic!;
    const metadata = await consumer.metadata({ topics: [topic] });
    const described = metadata.topics.get(topic);
    if (!described) throw new Error(`topic ${topic} is not in the cluster metadata`);
    const byNode = new Map<number, FetchRequestPartition[]>();
    const requested = new Map<number, bigint>();
    for (const partition of this.assignment) {
      const fetchOffset = positions.get(partition);
      const leader = described.partitions[partition]?.leader;
      if (fetchOffset === undefined || leader === undefined || leader < 0) continue;
      requested.set(partition, fetchOffset);
      let list = byNode.get(leader);
      if (!list) byNode.set(leader, (list = []));
      list.push({ partition, fetchOffset, partitionMaxBytes: PLATFORMATIC_FETCH_SETTINGS.maxBytesPerPartition, currentLeaderEpoch: -1, lastFetchedEpoch: -1 });
    }
    const { maxWaitTime, minBytes, maxBytes } = PLATFORMATIC_FETCH_SETTINGS;
    const responses = await Promise.all(
      [...byNode].map(([node, partitions]) => consumer.fetch({ node, topics: [{ topicId: described.id, partitions }], maxWaitTime, minBytes, maxBytes })),
    );
    if (epoch !== this.epoch) return [];
    return responses.flatMap((r) => batchesOf(r, described.id, requested, this.lib!.IS_CONTROL));
  }

  /** Hands the batches over, up to `partitionsConcurrently` partitions at once; a position moves only when its batch is consumed. */
  private async deliver(batches: FetchedBatch[], epoch: number, handlers: SourceHandlers): Promise<void> {
    const heartbeat = noHeartbeat;
    let i = 0;
    const worker = async () => {
      while (i < batches.length) {
        const b = batches[i++]!;
        if (epoch !== this.epoch || this.paused || this.stopped) return;
        if (b.messages.length === 0) {
          // Only control records (transaction markers): nothing to append, the position moves on.
          this.positions.set(b.partition, b.next);
          continue;
        }
        const consumed = await handlers.onBatch({ partition: b.partition, messages: b.messages, lag: b.lag }, heartbeat);
        if (consumed && epoch === this.epoch) this.positions.set(b.partition, b.next);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.partitionsConcurrently, batches.length) }, worker));
  }

  /** Runs a client operation; a failure becomes a KafkaClientError naming it (a KafkaClientError already names its own). */
  private async operation<T>(name: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw err instanceof KafkaClientError ? err : new KafkaClientError(name, err);
    }
  }

  private requireConsumer(): Consumer {
    if (!this.consumer) throw new Error('PlatformaticSource: connect() first');
    return this.consumer;
  }

  private requireProducer(): Producer {
    if (!this.producer) throw new Error('PlatformaticSource: connect() first');
    return this.producer;
  }

  private requireAdmin(): Admin {
    if (!this.admin) throw new Error('PlatformaticSource: connect() first');
    return this.admin;
  }
}

/**
 * One fetch response as batches per partition: only partitions this fetch asked for, only
 * records at or after the offset asked for, transaction markers skipped; `next` is the
 * position after everything returned (markers included), `lag` what is left after it.
 */
export function batchesOf(response: Pick<FetchResponse, 'responses'>, topicId: string, requested: ReadonlyMap<number, bigint>, controlBit: number): FetchedBatch[] {
  const batches: FetchedBatch[] = [];
  for (const t of response.responses) {
    if (t.topicId !== topicId) continue;
    for (const p of t.partitions) {
      const from = requested.get(p.partitionIndex);
      // A fetch session may return partitions this fetch did not ask for: their data is stale.
      if (from === undefined || !p.records) continue;
      const messages: InboundMessage[] = [];
      let next = from;
      for (const batch of p.records) {
        const end = batch.firstOffset + BigInt(batch.lastOffsetDelta) + 1n;
        if (end > next) next = end;
        if (batch.attributes & controlBit) continue;
        // Offsets as numbers while they are exact (always, in practice): a BigInt per record costs.
        const exact = end <= BigInt(Number.MAX_SAFE_INTEGER);
        const first = Number(batch.firstOffset);
        for (const r of batch.records) {
          const offset = exact ? first + r.offsetDelta : batch.firstOffset + BigInt(r.offsetDelta);
          // A compressed batch starts before the offset asked for: its head was read already.
          if (offset < from) continue;
          const m: InboundMessage = { offset: String(offset), key: r.key, value: r.value };
          if (r.headers.length > 0) m.headers = headersOf(r.headers);
          messages.push(m);
        }
      }
      if (next === from) continue;
      const lag = p.highWatermark - next;
      batches.push({ partition: p.partitionIndex, messages, lag: lag > 0n ? lag : 0n, next });
    }
  }
  return batches;
}

function samePositions(a: ReadonlyMap<number, bigint>, b: ReadonlyMap<number, bigint>): boolean {
  if (a.size !== b.size) return false;
  for (const [p, offset] of a) if (b.get(p) !== offset) return false;
  return true;
}

/** A programming error under the client's wrappers (a TypeError, a UserError): retrying cannot help. */
function refusedByClient(err: unknown, depth = 0): boolean {
  if (depth > 6 || !(err instanceof Error)) return false;
  if (err instanceof TypeError || err instanceof RangeError || (err as { code?: unknown }).code === 'PLT_KFK_USER') return true;
  const nested = (err as { errors?: unknown }).errors;
  if (Array.isArray(nested) && nested.some((e) => refusedByClient(e, depth + 1))) return true;
  return refusedByClient(err.cause, depth + 1);
}

/** The client heartbeats on its own timer, whatever the batch handler does: nothing to do here. */
const noHeartbeat = (): Promise<void> => Promise.resolve();

function headersOf(entries: [Buffer | null, Buffer | null][]): Record<string, Buffer | null> {
  const headers: Record<string, Buffer | null> = {};
  for (const [k, v] of entries) if (k) headers[k.toString()] = v;
  return headers;
}
