import type { Kafka, Producer } from 'kafkajs';
import { KafkaTransportError, refusedForSize, type KafkaTransport, type OutgoingBatch, type TransportSettings } from './types';

type Kafkajs = typeof import('kafkajs');
/**
 * Loaded when a kafkajs transport is made, not when the producer is imported:
 * the default client is @platformatic/kafka, and an app should not pay kafkajs's
 * load time for the fallback.
 */
const kafkajs = (): Kafkajs => require('kafkajs') as Kafkajs;

/** kafkajs 2.2.4: the client the producer was built on. Also wraps an app's own kafkajs producer. */
export class KafkajsTransport implements KafkaTransport {
  private producer: Producer;
  private readonly kafka: Kafka | null;
  private connected = false;

  constructor(settings: TransportSettings | { producer: Producer }) {
    if ('producer' in settings) {
      this.producer = settings.producer;
      this.kafka = null;
      return;
    }
    const { Kafka, logLevel } = kafkajs();
    this.kafka = new Kafka({
      clientId: settings.clientId,
      brokers: settings.brokers,
      logLevel: logLevel.NOTHING,
      retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2_000 },
      connectionTimeout: 3_000,
    });
    this.producer = this.newProducer(this.kafka);
  }

  private newProducer(kafka: Kafka): Producer {
    return kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: true,
      createPartitioner: kafkajs().Partitioners.DefaultPartitioner,
    });
  }

  /**
   * A new producer (a new producer id, sequences from 0). kafkajs's idempotent producer
   * advances a partition's sequence number for a batch the broker refused (for its size, in
   * a request whose other partitions were accepted), and every later send to that partition
   * is then refused as out of order, for ever.
   */
  private async renew(): Promise<void> {
    if (!this.kafka) return;
    const old = this.producer;
    this.producer = this.newProducer(this.kafka);
    this.connected = false;
    await old.disconnect().catch(() => undefined);
  }

  async connect(): Promise<void> {
    if (this.connected) return;
    await this.producer.connect();
    this.connected = true;
  }

  async send(batch: OutgoingBatch): Promise<void> {
    await this.connect();
    try {
      await this.producer.send({
        topic: batch.topic,
        acks: -1,
        compression: batch.compression === 'gzip' ? kafkajs().CompressionTypes.GZIP : kafkajs().CompressionTypes.None,
        messages: batch.messages.map((m) =>
          m.partition === undefined || m.partition < 0 ? { key: m.key, value: m.value } : { key: m.key, value: m.value, partition: m.partition },
        ),
      });
    } catch (err) {
      const tooLarge = refusedForSize(err);
      if (tooLarge || sequenceLost(err)) await this.renew();
      if (tooLarge) throw new KafkaTransportError(err instanceof Error ? err.message : String(err), 'kafkajs', true);
      throw err;
    }
  }

  /**
   * Unknown: kafkajs's producer does not expose its metadata, and its idempotent sends keep
   * no order between concurrent requests, so the audit client keeps one request in flight.
   */
  partitionCount(): Promise<number | null> {
    return Promise.resolve(null);
  }

  async close(): Promise<void> {
    if (this.kafka && this.connected) await this.producer.disconnect().catch(() => undefined);
    this.connected = false;
  }
}

/** The broker refused a send as out of sequence: the producer's sequence numbers no longer match the broker's. */
function sequenceLost(err: unknown): boolean {
  for (let e = err, depth = 0; e !== null && typeof e === 'object' && depth < 6; depth++) {
    if ((e as { type?: unknown }).type === 'OUT_OF_ORDER_SEQUENCE_NUMBER') return true;
    e = (e as { cause?: unknown; originalError?: unknown }).cause ?? (e as { originalError?: unknown }).originalError;
  }
  return false;
}
