import type { MessageToProduce, Producer as PlatformaticProducer } from '@platformatic/kafka';
import { KafkaTransportError, refusedForSize, type KafkaTransport, type OutgoingBatch, type TransportSettings } from './types';

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
    const n = batch.messages.length;
    // One object per message, built in a counted loop: the library copies each into its own record anyway.
    const messages = new Array<MessageToProduce<Buffer, Buffer, Buffer, Buffer>>(n);
    for (let i = 0; i < n; i++) {
      const m = batch.messages[i]!;
      const key = typeof m.key === 'string' ? Buffer.from(m.key) : m.key;
      const partition = m.partition;
      messages[i] = partition === undefined || partition < 0 ? { topic, key, value: m.value } : { topic, key, value: m.value, partition };
    }
    try {
      await producer.send({ acks: -1, compression: batch.compression === 'gzip' ? 'gzip' : 'none', messages });
    } catch (err) {
      if (refusedForSize(err)) throw new KafkaTransportError(err instanceof Error ? err.message : String(err), 'platformatic', true);
      throw err;
    }
  }

  async partitionCount(topic: string): Promise<number | null> {
    const producer = await this.client();
    const metadata = await producer.metadata({ topics: [topic], autocreateTopics: true });
    const count = metadata.topics.get(topic)?.partitionsCount;
    if (!count) throw new KafkaTransportError(`no partitions known for topic ${topic}`, 'platformatic');
    return count;
  }

  async close(): Promise<void> {
    const producer = this.producer;
    this.producer = null;
    this.connected = false;
    if (producer) await producer.close(true).catch(() => undefined);
  }
}
