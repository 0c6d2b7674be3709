import { CompressionTypes, Kafka, Partitioners, logLevel, type Producer } from 'kafkajs';
import type { KafkaTransport, OutgoingBatch, TransportSettings } from './types';

/** kafkajs 2.2.4: the client the producer was built on. Also wraps an app's own kafkajs producer. */
export class KafkajsTransport implements KafkaTransport {
  private readonly producer: Producer;
  private readonly owns: boolean;
  private connected = false;

  constructor(settings: TransportSettings | { producer: Producer }) {
    if ('producer' in settings) {
      this.producer = settings.producer;
      this.owns = false;
      return;
    }
    const kafka = new Kafka({
      clientId: settings.clientId,
      brokers: settings.brokers,
      logLevel: logLevel.NOTHING,
      retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2_000 },
      connectionTimeout: 3_000,
    });
    this.producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: true,
      createPartitioner: Partitioners.DefaultPartitioner,
    });
    this.owns = true;
  }

  async connect(): Promise<void> {
    if (this.connected) return;
    await this.producer.connect();
    this.connected = true;
  }

  async send(batch: OutgoingBatch): Promise<void> {
    await this.connect();
    await this.producer.send({
      topic: batch.topic,
      acks: -1,
      compression: batch.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None,
      messages: batch.messages.map((m) =>
        m.partition === undefined || m.partition < 0 ? { key: m.key, value: m.value } : { key: m.key, value: m.value, partition: m.partition },
      ),
    });
  }

  /**
   * Unknown: kafkajs's producer does not expose its metadata, and its idempotent sends keep
   * no order between concurrent requests, so the audit client keeps one request in flight.
   */
  partitionCount(): Promise<number | null> {
    return Promise.resolve(null);
  }

  async close(): Promise<void> {
    if (this.owns && this.connected) await this.producer.disconnect().catch(() => undefined);
    this.connected = false;
  }
}
