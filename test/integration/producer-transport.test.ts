/**
 * Every sender (kafkajs or @platformatic/kafka, inline or in a worker thread) on the
 * real broker: all events delivered once, and each object in the same partition
 * whichever sender published it (the same murmur2 partitioning as kafkajs and Java),
 * so switching clients never splits an object's history over two partitions.
 */
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { AuditClient, type KafkaClientKind, type SenderThread } from '../../producer';
import { RecordDecoder } from '../../schemas';
import { KAFKA_BROKERS } from '../helpers/infra';

const run = randomUUID().slice(0, 8);
const N = 300;
const senders: { client: KafkaClientKind; thread: SenderThread }[] = [
  { client: 'kafkajs', thread: 'inline' },
  { client: 'kafkajs', thread: 'worker' },
  { client: 'platformatic', thread: 'worker' },
];
const kafka = new Kafka({ clientId: 'transport-it', brokers: [KAFKA_BROKERS], logLevel: logLevel.NOTHING });

/** object id -> partition, and the event ids seen, once N events are in. */
async function partitions(topic: string): Promise<{ byObject: Map<string, number>; eventIds: string[] }> {
  const consumer = kafka.consumer({ groupId: `transport-it-${randomUUID()}` });
  const decoder = new RecordDecoder();
  const byObject = new Map<string, number>();
  const eventIds: string[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      consumer
        .run({
          eachMessage: async ({ partition, message }) => {
            const r = decoder.decode(message.value);
            const seen = byObject.get(r.object_id);
            if (seen !== undefined && seen !== partition) reject(new Error(`${r.object_id} in partitions ${seen} and ${partition}`));
            byObject.set(r.object_id, partition);
            eventIds.push(r.event_id);
            if (eventIds.length === N) resolve();
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect();
  }
  return { byObject, eventIds };
}

it('delivers through every sender, each object to the same partition', async () => {
  const admin = kafka.admin();
  await admin.connect();
  const topics = senders.map((s) => `test.transport-${s.client}-${s.thread}-${run}`);
  await admin.createTopics({ topics: topics.map((topic) => ({ topic, numPartitions: 3 })), waitForLeaders: true });
  await admin.disconnect();

  const results = [];
  for (const [i, sender] of senders.entries()) {
    const client = new AuditClient({ brokers: [KAFKA_BROKERS], topic: topics[i]!, sourceService: 'transport-it', schemaRegistry: null, sender, lingerMs: 5 });
    const ids: string[] = [];
    for (let n = 0; n < N; n++) {
      const eventId = randomUUID();
      ids.push(eventId);
      void client.record({ eventId, objectType: 'invoice', objectId: `${n % 100}-é`, action: 'update' });
    }
    expect(await client.flush(30_000)).toBe(true);
    await client.close();
    expect(client.stats()).toMatchObject({ accepted: N, delivered: N, dropped: 0, queued: 0 });
    const got = await partitions(topics[i]!);
    expect(got.eventIds.sort()).toEqual(ids.sort());
    results.push(got.byObject);
  }
  expect(results[0]!.size).toBe(100);
  expect(new Set(results[0]!.values()).size).toBe(3);
  for (const r of results.slice(1)) expect([...r.entries()].sort()).toEqual([...results[0]!.entries()].sort());
});

it('starts the sender thread again when it dies, and delivers what it held', async () => {
  const topic = `test.transport-restart-${run}`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  await admin.disconnect();
  const client = new AuditClient({ brokers: [KAFKA_BROKERS], topic, sourceService: 'transport-it', schemaRegistry: null, lingerMs: 5 });
  const send = (from: number, count: number) => {
    for (let n = from; n < from + count; n++) void client.record({ objectType: 'invoice', objectId: `${n % 100}-é`, action: 'update' });
  };
  send(0, 100);
  expect(await client.flush(30_000)).toBe(true);
  // The thread goes away (a crash, an OOM kill of the thread): the next batch fails, is retried, and goes out.
  const worker = (client as unknown as { transport: { worker: { terminate(): Promise<number> } | null } }).transport.worker;
  expect(worker).not.toBeNull();
  await worker!.terminate();
  send(100, N - 100);
  expect(await client.flush(30_000)).toBe(true);
  await client.close();
  expect(client.stats()).toMatchObject({ accepted: N, delivered: N, dropped: 0, queued: 0 });
  const got = await partitions(topic);
  expect(new Set(got.eventIds).size).toBe(N);
});
