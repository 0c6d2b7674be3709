import { ConfigError, nodeRunsPlatformatic, readEnv } from '../../config/env';
import { batchesOf, errorText } from '../../consumer/kafka/platformatic-source';

/** @platformatic/kafka's IS_CONTROL attribute bit (protocol/records.ts). */
const CONTROL = 1 << 5;
const TOPIC_ID = 'topic-id';

type Response = Parameters<typeof batchesOf>[0];
type Partition = Response['responses'][number]['partitions'][number];
type RecordsBatch = NonNullable<Partition['records']>[number];

function recordsBatch(firstOffset: bigint, count: number, attributes = 0): RecordsBatch {
  return {
    firstOffset,
    lastOffsetDelta: count - 1,
    attributes,
    records: Array.from({ length: count }, (_, i) => ({
      length: 0,
      attributes: 0,
      timestampDelta: 0n,
      offsetDelta: i,
      key: Buffer.from(`k${firstOffset + BigInt(i)}`),
      value: Buffer.from(`v${firstOffset + BigInt(i)}`),
      headers: [],
    })),
  } as unknown as RecordsBatch;
}

function partition(partitionIndex: number, highWatermark: bigint, records: RecordsBatch[] | null): Partition {
  return { partitionIndex, highWatermark, records } as unknown as Partition;
}

const response = (...partitions: Partition[]): Response => ({ responses: [{ topicId: TOPIC_ID, partitions }] }) as unknown as Response;

describe('platformatic source: fetch responses as batches', () => {
  it('hands over a partition from the offset asked for, with the position after the batch and the lag left', () => {
    const [b] = batchesOf(response(partition(0, 100n, [recordsBatch(10n, 5)])), TOPIC_ID, new Map([[0, 10n]]), CONTROL);
    expect(b).toEqual({ partition: 0, messages: expect.any(Array), lag: 85n, next: 15n });
    expect(b!.messages.map((m) => m.offset)).toEqual(['10', '11', '12', '13', '14']);
    expect(b!.messages[0]).toEqual({ offset: '10', key: Buffer.from('k10'), value: Buffer.from('v10') });
  });

  it('drops the head of a batch that starts before the offset asked for (a compressed batch read again)', () => {
    const [b] = batchesOf(response(partition(0, 20n, [recordsBatch(10n, 5)])), TOPIC_ID, new Map([[0, 13n]]), CONTROL);
    expect(b!.messages.map((m) => m.offset)).toEqual(['13', '14']);
    expect(b!.next).toBe(15n);
  });

  it('skips transaction markers but moves past them', () => {
    const batches = batchesOf(response(partition(0, 21n, [recordsBatch(10n, 5), recordsBatch(15n, 1, CONTROL)]), partition(1, 8n, [recordsBatch(7n, 1, CONTROL)])), TOPIC_ID, new Map([[0, 10n], [1, 7n]]), CONTROL);
    expect(batches.map((b) => [b.partition, b.messages.length, b.next, b.lag])).toEqual([
      [0, 5, 16n, 5n],
      [1, 0, 8n, 0n],
    ]);
  });

  it('ignores partitions and topics the fetch did not ask for, and partitions without records', () => {
    const r = response(partition(0, 9n, [recordsBatch(0n, 3)]), partition(2, 9n, [recordsBatch(0n, 3)]), partition(1, 9n, null));
    (r.responses as unknown[]).push({ topicId: 'another', partitions: [partition(0, 9n, [recordsBatch(0n, 3)])] });
    const batches = batchesOf(r, TOPIC_ID, new Map([[0, 0n], [1, 0n]]), CONTROL);
    expect(batches.map((b) => b.partition)).toEqual([0]);
  });

  it('keeps headers as a record of Buffers', () => {
    const rb = recordsBatch(0n, 1);
    (rb.records[0] as { headers: [Buffer, Buffer][] }).headers = [[Buffer.from('h'), Buffer.from('x')]];
    const [b] = batchesOf(response(partition(0, 1n, [rb])), TOPIC_ID, new Map([[0, 0n]]), CONTROL);
    expect(b!.messages[0]!.headers).toEqual({ h: Buffer.from('x') });
  });
});

describe('platformatic source: error text', () => {
  it('names the cause under the client wrappers (the last retry, then its cause)', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    const network = new Error('Connection to 127.0.0.1:1 failed.', { cause: refused });
    const retries = Object.assign(new AggregateError([new Error('first'), network], 'metadata failed 2 times.'), { code: 'PLT_KFK_MULTIPLE' });
    expect(errorText(retries)).toBe('metadata failed 2 times.: Connection to 127.0.0.1:1 failed.: connect ECONNREFUSED 127.0.0.1:1');
  });
});

describe('AUDIT_KAFKA_CLIENT', () => {
  it('defaults to platformatic where Node runs it (kafkajs elsewhere), takes either, and refuses anything else at start-up', () => {
    expect(readEnv({}).AUDIT_KAFKA_CLIENT).toBe(nodeRunsPlatformatic() ? 'platformatic' : 'kafkajs');
    expect(readEnv({ AUDIT_KAFKA_CLIENT: 'kafkajs' }).AUDIT_KAFKA_CLIENT).toBe('kafkajs');
    expect(readEnv({ AUDIT_KAFKA_CLIENT: 'platformatic' }).AUDIT_KAFKA_CLIENT).toBe('platformatic');
    expect(() => readEnv({ AUDIT_KAFKA_CLIENT: 'rdkafka' })).toThrow(ConfigError);
    expect(() => readEnv({ AUDIT_KAFKA_CLIENT: 'rdkafka' })).toThrow(/AUDIT_KAFKA_CLIENT/);
  });

  it("knows @platformatic/kafka's Node lines", () => {
    expect(['22.21.0', '22.22.0', '23.11.0', '24.5.0', '24.6.0', '25.0.0'].map((v) => nodeRunsPlatformatic(v))).toEqual([false, true, false, false, true, true]);
  });
});
