/**
 * A topic whose max.message.bytes is far under what the client's requests make (20 kB
 * against 512 KiB requests of data that does not compress much): the broker refuses the
 * requests for their size. The client sends them again in smaller requests and delivers
 * every event (some twice: partitions the broker stored in a refused request), on either
 * Kafka client; the one event too large for the topic even alone is dropped and counted,
 * and does not hold up those after it.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { AuditClient } from '../../producer';
import { KAFKA_BROKERS } from '../helpers/infra';
import { createTopic, TopicReader } from '../helpers/topic-reader';

jest.setTimeout(120_000);

const N = 300;
const noise = (chars: number) => randomBytes(Math.ceil((chars * 3) / 4)).toString('base64').slice(0, chars);

describe.each([
  ['@platformatic/kafka in the worker thread (the default)', {}],
  ['kafkajs on the app thread', { sender: { client: 'kafkajs', thread: 'inline' } }],
] as const)('requests refused for their size, %s', (_name, senderOptions) => {
  const topic = `test.producer-refused-${randomUUID().slice(0, 8)}`;
  let reader: TopicReader;

  beforeAll(async () => {
    await createTopic(topic, [{ name: 'max.message.bytes', value: '20000' }]);
    reader = new TopicReader(topic);
    await reader.start();
  });

  afterAll(async () => {
    await reader.stop();
  });

  it('delivers every event in smaller requests and drops only the one too large alone', async () => {
    const warnings: string[] = [];
    const errors: Record<string, unknown>[] = [];
    const client = new AuditClient({
      brokers: [KAFKA_BROKERS],
      topic,
      schemaRegistry: null,
      onBufferFull: 'block',
      ...senderOptions,
      logger: { warn: (_o, m) => warnings.push(String(m)), error: (o) => errors.push(o as Record<string, unknown>) },
    });
    try {
      const sent: string[] = [];
      for (let i = 0; i < N; i++) {
        const eventId = randomUUID();
        sent.push(eventId);
        void client.record({ eventId, objectType: 'document', objectId: i, action: 'update', after: { body: noise(2_500) } });
      }
      // Two fields of ~15 kB of noise: over 20 kB compressed, refused even alone.
      const huge = randomUUID();
      void client.record({ eventId: huge, objectType: 'document', objectId: 'huge', action: 'update', before: { body: noise(15_000) }, after: { body: noise(15_000) } });
      const last = randomUUID();
      sent.push(last);
      void client.record({ eventId: last, objectType: 'document', objectId: 'after-huge', action: 'update', after: { body: 'small' } });
      expect(await client.flush(60_000)).toBe(true);
      // Partitions the broker stored in a refused request are sent again with the rest: copies are
      // allowed (readers keep the first copy of an event id), losses are not.
      const wanted = new Set(sent);
      const deadline = Date.now() + 30_000;
      while (new Set(reader.records.map((r) => r.event_id)).size < wanted.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect(new Set(reader.records.map((r) => r.event_id))).toEqual(wanted);
      expect(client.stats()).toMatchObject({ accepted: N + 2, delivered: N + 1, dropped: 1, refused: 1, queued: 0 });
      expect(client.stats().sendFailures).toBeGreaterThanOrEqual(2);
      expect(warnings).toContain('audit request refused for its size; sending smaller requests');
      expect(errors.filter((e) => e.object === 'document:huge')).toHaveLength(1);
    } finally {
      await client.close();
    }
  });
});
