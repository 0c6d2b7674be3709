/**
 * Several Kafka requests in flight (the default sender, small batches so that there are
 * many) must never put an object's events out of order, whatever fails: many events for
 * a few objects are recorded while (1) sends fail on purpose, before reaching the broker
 * or after it stored the batch (a lost acknowledgement: the retry duplicates it), and
 * (2) the broker is stopped and started again in the middle (infra/down.sh kafka, then
 * up.sh, on a private broker: other files keep the shared one; it is always restarted,
 * even on failure). Read back from Kafka, each
 * object's events, first copies in log order, are exactly the recorded ones in the
 * recorded order (duplicates of a retried request may follow; readers keep the first copy
 * of an event id, as audit-query does).
 */
import { randomUUID } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { AuditClient } from '../../producer';
import type { KafkaTransport, OutgoingBatch } from '../../producer/transport';
import { RecordDecoder } from '../../schemas';
import { usePrivateServices } from '../helpers/private-infra';

jest.setTimeout(240_000);

const run = randomUUID().slice(0, 8);
const OBJECTS = 12;
const priv = usePrivateServices('producer-ordering', ['kafka']);
const brokers = () => priv.get().endpoints.kafkaBrokers;
let kafkaClient: Kafka | null = null;
const kafka = () => (kafkaClient ??= new Kafka({ clientId: 'ordering-it', brokers: [brokers()], logLevel: logLevel.NOTHING }));

async function createTopic(topic: string): Promise<void> {
  const admin = kafka().admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
  } finally {
    await admin.disconnect();
  }
}

/** The client's transport, wrapped: counts sends in flight and fails the ones `fault` picks. */
function instrument(client: AuditClient, fault: (n: number) => 'before' | 'after' | null): { maxInFlight: () => number; faults: () => number } {
  const holder = client as unknown as { transport: KafkaTransport };
  const inner = holder.transport;
  let inFlight = 0;
  let max = 0;
  let sends = 0;
  let faults = 0;
  holder.transport = {
    connect: () => inner.connect(),
    close: () => inner.close(),
    partitionCount: (topic) => inner.partitionCount(topic),
    async send(batch: OutgoingBatch) {
      const kind = fault(++sends);
      inFlight++;
      max = Math.max(max, inFlight);
      try {
        if (kind === 'before') {
          await new Promise((r) => setTimeout(r, 5));
          faults++;
          throw new Error('injected: request lost before the broker');
        }
        await inner.send(batch);
        if (kind === 'after') {
          faults++;
          throw new Error('injected: acknowledgement lost');
        }
      } finally {
        inFlight--;
      }
    },
  };
  return { maxInFlight: () => max, faults: () => faults };
}

/** Every record of `topic` with its position, once every id of `expected` was seen (and a little more, for duplicates). */
async function readBack(topic: string, expected: ReadonlySet<string>): Promise<{ id: string; object: string; partition: number; offset: bigint }[]> {
  const consumer = kafka().consumer({ groupId: `ordering-it-${randomUUID()}` });
  const decoder = new RecordDecoder();
  const out: { id: string; object: string; partition: number; offset: bigint }[] = [];
  const seen = new Set<string>();
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        const r = decoder.decode(message.value);
        out.push({ id: r.event_id, object: r.object_id, partition, offset: BigInt(message.offset) });
        seen.add(r.event_id);
      },
    });
    const deadline = Date.now() + 90_000;
    while ([...expected].some((id) => !seen.has(id)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    await new Promise((r) => setTimeout(r, 1500));
  } finally {
    await consumer.disconnect();
  }
  return out;
}

/** Per object, the event ids in the order their first copies are in the log. */
function firstCopiesByObject(rows: { id: string; object: string; partition: number; offset: bigint }[]): Map<string, string[]> {
  const sorted = [...rows].sort((a, b) => a.partition - b.partition || (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0));
  const partitionOf = new Map<string, number>();
  const seen = new Set<string>();
  const byObject = new Map<string, string[]>();
  for (const r of sorted) {
    const p = partitionOf.get(r.object);
    if (p !== undefined && p !== r.partition) throw new Error(`object ${r.object} in partitions ${p} and ${r.partition}`);
    partitionOf.set(r.object, r.partition);
    if (seen.has(r.id)) continue;
    seen.add(r.id);
    const list = byObject.get(r.object) ?? [];
    list.push(r.id);
    byObject.set(r.object, list);
  }
  return byObject;
}

/** Records `count` events round-robin over the objects, `perTick` at a time, `gapMs` apart; the ids per object in recording order. */
async function recordMany(client: AuditClient, count: number, perTick: number, gapMs: number): Promise<Map<string, string[]>> {
  const byObject = new Map<string, string[]>();
  for (let i = 0; i < count; i += perTick) {
    const pending: Promise<void>[] = [];
    for (let j = i; j < Math.min(count, i + perTick); j++) {
      const object = `order-${j % OBJECTS}`;
      const eventId = randomUUID();
      const list = byObject.get(object) ?? [];
      list.push(eventId);
      byObject.set(object, list);
      pending.push(client.record({ eventId, objectType: 'invoice', objectId: object, action: 'update', metadata: { seq: j } }));
    }
    await Promise.all(pending);
    if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
  }
  return byObject;
}

function expectSameOrder(got: Map<string, string[]>, recorded: Map<string, string[]>): void {
  expect([...got.keys()].sort()).toEqual([...recorded.keys()].sort());
  for (const [object, ids] of recorded) expect(got.get(object)).toEqual(ids);
}

it('keeps each object in order with several requests in flight while sends fail before and after the broker stored them', async () => {
  const topic = `test.producer-ordering-faults-${run}`;
  await createTopic(topic);
  const client = new AuditClient({ brokers: [brokers()], topic, sourceService: 'ordering-it', schemaRegistry: null, onBufferFull: 'block', batchSize: 40, lingerMs: 2, maxInFlight: 5 });
  // Every 5th send fails before the broker, every 7th after it stored the batch.
  const probe = instrument(client, (n) => (n % 5 === 0 ? 'before' : n % 7 === 0 ? 'after' : null));
  await client.start();
  const recorded = await recordMany(client, 6_000, 200, 2);
  expect(await client.flush(60_000)).toBe(true);
  await client.close();
  const stats = client.stats();
  expect(stats).toMatchObject({ accepted: 6_000, delivered: 6_000, dropped: 0, queued: 0 });
  expect(probe.faults()).toBeGreaterThan(10);
  expect(stats.sendFailures).toBe(probe.faults());
  expect(probe.maxInFlight()).toBeGreaterThan(1);
  const rows = await readBack(topic, new Set([...recorded.values()].flat()));
  expectSameOrder(firstCopiesByObject(rows), recorded);
});

it('keeps each object in order with several requests in flight across a broker restart', async () => {
  const topic = `test.producer-ordering-restart-${run}`;
  await createTopic(topic);
  const client = new AuditClient({ brokers: [brokers()], topic, sourceService: 'ordering-it', schemaRegistry: null, onBufferFull: 'block', batchSize: 40, lingerMs: 2, maxInFlight: 5 });
  const probe = instrument(client, () => null);
  await client.start();
  // About 12 s of recording; the broker goes down after ~2 s and is back ~5 s later.
  const recording = recordMany(client, 12_000, 100, 100);
  let recorded: Map<string, string[]>;
  try {
    await new Promise((r) => setTimeout(r, 2_000));
    await priv.get().down('kafka');
    await new Promise((r) => setTimeout(r, 3_000));
  } finally {
    await priv.get().up('kafka');
  }
  recorded = await recording;
  expect(await client.flush(120_000)).toBe(true);
  await client.close();
  const stats = client.stats();
  expect(stats).toMatchObject({ accepted: 12_000, delivered: 12_000, dropped: 0, queued: 0 });
  expect(stats.sendFailures).toBeGreaterThan(0);
  expect(probe.maxInFlight()).toBeGreaterThan(1);
  const rows = await readBack(topic, new Set([...recorded.values()].flat()));
  expectSameOrder(firstCopiesByObject(rows), recorded);
});
