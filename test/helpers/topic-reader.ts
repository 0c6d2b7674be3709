import { randomUUID } from 'node:crypto';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import type { AuditClient } from '../../producer';
import { RecordDecoder, type AuditRecord } from '../../schemas';
import { KAFKA_BROKERS } from './infra';

/**
 * Creates a topic with its own settings (e.g. a small max.message.bytes). A broker that has
 * just started (another test restarts it) can answer the admin's metadata request with
 * UNKNOWN_TOPIC_OR_PARTITION for a while: retried for up to 30 s.
 */
export async function createTopic(topic: string, configEntries: { name: string; value: string }[] = [], numPartitions = 3): Promise<void> {
  const admin = new Kafka({ clientId: 'test-topic-admin', brokers: [KAFKA_BROKERS], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await admin.createTopics({ topics: [{ topic, numPartitions, configEntries }], waitForLeaders: true });
        return;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  } finally {
    await admin.disconnect();
  }
}

/** Everything published on one topic, decoded, as it arrives. */
export class TopicReader {
  readonly records: AuditRecord[] = [];
  private consumer: Consumer | null = null;
  constructor(readonly topic: string) {}
  async start(): Promise<void> {
    const kafka = new Kafka({ clientId: 'producer-it-reader', brokers: [KAFKA_BROKERS], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: this.topic, numPartitions: 3 }], waitForLeaders: true });
    await admin.disconnect();
    const decoder = new RecordDecoder();
    this.consumer = kafka.consumer({ groupId: `reader-${randomUUID()}` });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await this.consumer.run({ eachMessage: async ({ message }) => void this.records.push(decoder.decode(message.value)) });
  }
  async waitFor(pred: (r: AuditRecord) => boolean, count = 1, timeoutMs = 20_000): Promise<AuditRecord[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hits = this.records.filter(pred);
      if (hits.length >= count || Date.now() > deadline) return hits;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  /** Everything matching once the client has delivered all it holds (to assert that something is absent). */
  async settled(client: AuditClient, pred: (r: AuditRecord) => boolean): Promise<AuditRecord[]> {
    await client.flush(10_000);
    await new Promise((r) => setTimeout(r, 700));
    return this.records.filter(pred);
  }
  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }
}
