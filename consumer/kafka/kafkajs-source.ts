import { CompressionTypes, Kafka, Partitioners, logLevel, type Admin, type Consumer, type Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { kafkaLogCreator } from '../../config/logger';
import { FETCH_SETTINGS } from '../fetch-settings';
import type { KafkaSource, KafkaSourceOptions, OutboundRecord, PartitionEnds, SourceHandlers } from './source';

/** The consumer's Kafka client on kafkajs 2.2 (eachBatch, manual commits). */
export class KafkajsSource implements KafkaSource {
  private readonly kafka: Kafka;
  private readonly consumer: Consumer;
  private readonly producer: Producer;
  private readonly admin: Admin;
  private topic: string | null = null;
  private running = false;

  constructor(
    private readonly opts: KafkaSourceOptions,
    log: Logger,
  ) {
    this.kafka = new Kafka({
      clientId: opts.clientId,
      brokers: opts.brokers,
      logLevel: logLevel.WARN,
      logCreator: kafkaLogCreator(log.child({ component: 'kafkajs' })),
      retry: { retries: 10, initialRetryTime: 300, maxRetryTime: 10_000 },
    });
    this.consumer = this.kafka.consumer({
      groupId: opts.groupId,
      sessionTimeout: opts.sessionTimeoutMs,
      rebalanceTimeout: opts.rebalanceTimeoutMs,
      heartbeatInterval: 3_000,
      ...FETCH_SETTINGS,
    });
    // Dead letters must not be lost or reordered: idempotent, retried until the broker answers.
    this.producer = this.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 300, maxRetryTime: 10_000 },
    });
    this.admin = this.kafka.admin();
  }

  async connect(): Promise<void> {
    await this.admin.connect();
    await this.producer.connect();
    await this.consumer.connect();
  }

  async missingTopics(topics: string[]): Promise<string[]> {
    const existing = new Set(await this.admin.listTopics());
    return topics.filter((t) => !existing.has(t));
  }

  async ensureTopics(topics: string[]): Promise<void> {
    const existing = new Set(await this.admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t));
    if (missing.length > 0) {
      await this.admin.createTopics({ topics: missing.map((topic) => ({ topic })), waitForLeaders: true });
    }
  }

  async start(topic: string, handlers: SourceHandlers): Promise<void> {
    this.topic = topic;
    this.consumer.on(this.consumer.events.GROUP_JOIN, (e) => {
      handlers.onAssigned(e.payload.memberAssignment[topic] ?? [], String(e.payload.groupId));
    });
    this.consumer.on(this.consumer.events.CRASH, (e) => handlers.onCrash(e.payload.error, e.payload.restart));
    await this.consumer.subscribe({ topic, fromBeginning: true });
    this.running = true;
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      // Partitions are independent in the sink: one partition's upload need not stall the rest.
      partitionsConsumedConcurrently: this.opts.partitionsConcurrently,
      eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
        const consumed = await handlers.onBatch(
          { partition: batch.partition, messages: batch.messages, lag: BigInt(batch.offsetLag()) },
          heartbeat,
        );
        // Resolving only moves the fetch position; offsets are committed by the sink after upload.
        // The last offset covers the batch (resolving each message cost kafkajs a Long parse apiece).
        const last = batch.messages.at(-1);
        if (consumed && last) resolveOffset(last.offset);
        if (consumed) await heartbeat();
      },
    });
  }

  async commit(partition: number, nextOffset: string): Promise<void> {
    await this.consumer.commitOffsets([{ topic: this.topic!, partition, offset: nextOffset }]);
  }

  pause(): void {
    // kafkajs refuses to pause a consumer that never ran.
    if (this.running && this.topic) this.consumer.pause([{ topic: this.topic }]);
  }

  resume(): void {
    if (this.running && this.topic) this.consumer.resume([{ topic: this.topic }]);
  }

  async endOffsets(topic: string): Promise<PartitionEnds[]> {
    return (await this.admin.fetchTopicOffsets(topic)).map((p) => ({ partition: p.partition, low: BigInt(p.low), high: BigInt(p.high) }));
  }

  async committedOffsets(topic: string): Promise<Map<number, bigint>> {
    const committed = await this.admin.fetchOffsets({ groupId: this.opts.groupId, topics: [topic] });
    const done = new Map<number, bigint>();
    // kafkajs reports "-1" for a partition without a commit.
    for (const p of committed[0]?.partitions ?? []) if (BigInt(p.offset) >= 0n) done.set(p.partition, BigInt(p.offset));
    return done;
  }

  async send(topic: string, record: OutboundRecord): Promise<void> {
    await this.producer.send({ topic, acks: -1, compression: CompressionTypes.None, messages: [record] });
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect().catch(() => undefined);
    await this.producer.disconnect().catch(() => undefined);
    await this.admin.disconnect().catch(() => undefined);
  }
}
