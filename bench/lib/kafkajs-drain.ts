/**
 * The client library's own ceiling: a kafkajs consumer that reads a topic to its
 * end and does nothing with the messages, with the consumer's fetch settings.
 * The consumer benchmark runs it beside kcat and audit-consumer.
 *
 *   node dist/bench/lib/kafkajs-drain.js <topic>   (AUDIT_KAFKA_BROKERS, default localhost:9092)
 */
import { Kafka, logLevel } from 'kafkajs';
import { FETCH_SETTINGS } from '../../consumer/fetch-settings';

async function main(): Promise<void> {
  const topic = process.argv[2];
  if (!topic) throw new Error('usage: kafkajs-drain <topic>');
  const kafka = new Kafka({ clientId: 'bench-kafkajs-drain', brokers: (process.env.AUDIT_KAFKA_BROKERS ?? 'localhost:9092').split(','), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, BigInt(p.high)]));
  await admin.disconnect();
  const consumer = kafka.consumer({ groupId: `bench-kafkajs-${process.pid}-${Date.now()}`, ...FETCH_SETTINGS });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const pending = new Set([...ends].filter(([, high]) => high > 0n).map(([p]) => p));
  let count = 0;
  await new Promise<void>((resolve, reject) => {
    if (pending.size === 0) resolve();
    consumer
      .run({
        autoCommit: false,
        partitionsConsumedConcurrently: 4,
        eachBatch: async ({ batch }) => {
          count += batch.messages.length;
          const last = batch.messages.at(-1);
          if (last && BigInt(last.offset) + 1n >= ends.get(batch.partition)!) pending.delete(batch.partition);
          if (pending.size === 0) resolve();
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  process.stderr.write(`kafkajs-drain: ${count} messages\n`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
