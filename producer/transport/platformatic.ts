import type { Producer as PlatformaticProducer } from '@platformatic/kafka';
import type { KafkaTransport, OutgoingBatch, TransportSettings } from './types';

type Module = typeof import('@platformatic/kafka');
type Producer = PlatformaticProducer<Buffer, Buffer, Buffer, Buffer>;

/**
 * @platformatic/kafka: maintained, pure TypeScript, about half kafkajs's CPU per
 * message. It is an ES module: loaded on first use (require(esm), Node >= 22.12),
 * so importing the producer never loads it unless it is the chosen client.
 */
export class PlatformaticTransport implements KafkaTransport {
  private producer: Producer | null = null;
  private connected = false;

  constructor(private readonly settings: TransportSettings) {}

  private async client(): Promise<Producer> {
    if (this.producer) return this.producer;
    const kafka: Module = await import('@platformatic/kafka');
    this.producer = new kafka.Producer<Buffer, Buffer, Buffer, Buffer>({
      clientId: this.settings.clientId,
      bootstrapBrokers: this.settings.brokers,
      idempotent: true,
      acks: -1,
      autocreateTopics: true,
      // kafkajs's DefaultPartitioner and Java's: murmur2 & 0x7fffffff. The library's default (>>> 0)
      // would move some objects to another partition than the one their earlier events are in.
      partitioner: kafka.compatibilityPartitioner,
      retries: 3,
      retryDelay: 200,
      connectTimeout: 3_000,
      timeout: 10_000,
    });
    return this.producer;
  }

  async connect(): Promise<void> {
    if (this.connected) return;
    const producer = await this.client();
    await producer.initIdempotentProducer({});
    this.connected = true;
  }

  async send(batch: OutgoingBatch): Promise<void> {
    await this.connect();
    const producer = await this.client();
    const topic = batch.topic;
    await producer.send({
      acks: -1,
      compression: batch.compression === 'gzip' ? 'gzip' : 'none',
      messages: batch.messages.map((m) => ({ topic, key: typeof m.key === 'string' ? Buffer.from(m.key) : m.key, value: m.value })),
    });
  }

  async close(): Promise<void> {
    const producer = this.producer;
    this.producer = null;
    this.connected = false;
    if (producer) await producer.close(true).catch(() => undefined);
  }
}
