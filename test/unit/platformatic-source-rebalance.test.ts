import { EventEmitter } from 'node:events';
import pino from 'pino';
import { PlatformaticSource } from '../../consumer/kafka/platformatic-source';
import type { SourceBatch, SourceHandlers } from '../../consumer/kafka/source';

/**
 * The source's ordering of its handlers, against a scripted stand-in for the library's
 * consumer: the library rejoins on its own heartbeat timer, so a join can be reported
 * while a batch of the previous generation is still being appended. The service must
 * hear of it only after that append returned, as with kafkajs.
 */

const TOPIC = 'audit.rebalance';
const TOPIC_ID = 'topic-id';
const RECORDS_PER_FETCH = 3;

interface FetchCall {
  partitions: { partition: number; fetchOffset: bigint }[];
}

class MockConsumer extends EventEmitter {
  generationId = 0;
  readonly topics = { track: (): void => undefined };
  readonly fetches: FetchCall[] = [];
  readonly committedReads: number[][] = [];
  /** The assignment the next join gives this member. */
  nextAssignment: number[] = [0, 1];
  readonly committed = new Map<number, bigint>([
    [0, 5n],
    [1, 7n],
  ]);

  async joinGroup(): Promise<string> {
    await Promise.resolve();
    this.rejoin(this.nextAssignment);
    return 'member-1';
  }

  /** What the library does from its heartbeat timer after REBALANCE_IN_PROGRESS: a new generation, reported as a join. */
  rejoin(partitions: number[]): void {
    this.generationId++;
    this.emit('consumer:group:join', { groupId: 'g', memberId: 'member-1', generationId: this.generationId, isLeader: true, assignments: [{ topic: TOPIC, partitions }] });
  }

  async metadata() {
    return { topics: new Map([[TOPIC, { id: TOPIC_ID, partitionsCount: 2, partitions: [{ leader: 1 }, { leader: 1 }] }]]) };
  }

  async listCommittedOffsets({ topics }: { topics: { topic: string; partitions: number[] }[] }) {
    const partitions = topics[0]!.partitions;
    this.committedReads.push([...partitions]);
    const offsets: bigint[] = [];
    for (const p of partitions) offsets[p] = this.committed.get(p) ?? -1n;
    return new Map([[TOPIC, offsets]]);
  }

  async listOffsets() {
    return new Map([[TOPIC, [0n, 0n]]]);
  }

  /** Every partition asked for has RECORDS_PER_FETCH records from the offset asked for; answered on a later turn, as the network would. */
  async fetch({ topics }: { topics: { topicId: string; partitions: { partition: number; fetchOffset: bigint }[] }[] }) {
    const asked = topics[0]!.partitions;
    this.fetches.push({ partitions: asked.map(({ partition, fetchOffset }) => ({ partition, fetchOffset })) });
    await new Promise((resolve) => setTimeout(resolve, 2));
    const partitions = asked.map(({ partition, fetchOffset }) => ({
      partitionIndex: partition,
      highWatermark: 1_000n,
      records: [
        {
          firstOffset: fetchOffset,
          lastOffsetDelta: RECORDS_PER_FETCH - 1,
          attributes: 0,
          records: Array.from({ length: RECORDS_PER_FETCH }, (_, i) => ({ offsetDelta: i, key: null, value: Buffer.from('v'), headers: [] })),
        },
      ],
    }));
    return { responses: [{ topicId: TOPIC_ID, partitions }] };
  }

  async commit(): Promise<void> {}
  async close(): Promise<void> {}
}

class MockClient extends EventEmitter {
  async metadata() {
    return { topics: new Map() };
  }
  async initIdempotentProducer(): Promise<void> {}
  async close(): Promise<void> {}
}

let consumer: MockConsumer;

/** What the dead-letter producer was asked to send: sends at once, and how many fail before one goes through. */
const mockProduced = { calls: 0, active: 0, maxActive: 0, failures: 0 };

jest.mock('@platformatic/kafka', () => ({
  Admin: class extends MockClient {},
  Producer: class extends MockClient {
    async send(): Promise<void> {
      mockProduced.calls++;
      mockProduced.active++;
      mockProduced.maxActive = Math.max(mockProduced.maxActive, mockProduced.active);
      await new Promise((resolve) => setTimeout(resolve, 5));
      mockProduced.active--;
      if (mockProduced.failures > 0) {
        mockProduced.failures--;
        throw new Error('NOT_LEADER_OR_FOLLOWER');
      }
    }
  },
  Consumer: class {
    constructor() {
      return consumer;
    }
  },
  compatibilityPartitioner: () => 0,
  ListOffsetTimestamps: { EARLIEST: -2n, LATEST: -1n },
  IS_CONTROL: 1 << 5,
}));

function source(): PlatformaticSource {
  return new PlatformaticSource(
    { clientId: 'test', brokers: ['127.0.0.1:1'], groupId: 'g', sessionTimeoutMs: 10_000, rebalanceTimeoutMs: 10_000, partitionsConcurrently: 1 },
    pino({ level: 'silent' }),
  );
}

const tick = (ms = 20) => new Promise((resolve) => setTimeout(resolve, ms));

describe('platformatic source: a rejoin reported during a batch', () => {
  beforeEach(() => {
    consumer = new MockConsumer();
  });

  it('tells the service of the new generation only after the batch returned, then re-reads from the committed offsets', async () => {
    const s = source();
    await s.connect();
    const events: string[] = [];
    let appending = 0;
    let assignedWhileAppending = false;
    let firstBatch = true;
    let fetchesBeforeNewGeneration = -1;
    let onNewGeneration!: () => void;
    const newGenerationBatch = new Promise<void>((resolve) => (onNewGeneration = resolve));
    const handlers: SourceHandlers = {
      onAssigned: (partitions, generation) => {
        if (appending > 0) assignedWhileAppending = true;
        if (generation === '2') fetchesBeforeNewGeneration = consumer.fetches.length;
        events.push(`assigned ${generation} [${partitions.join(',')}]`);
      },
      onCrash: (err) => events.push(`crash ${err.message}`),
      onBatch: async (batch: SourceBatch) => {
        appending++;
        const name = `${batch.partition}@${batch.messages[0]!.offset}`;
        events.push(`batch ${name}`);
        try {
          if (firstBatch) {
            firstBatch = false;
            // The heartbeat timer finds the group rebalancing and the client rejoins, mid-append.
            consumer.rejoin([0]);
            await tick();
          } else if (consumer.generationId === 2) {
            onNewGeneration();
          }
          return true;
        } finally {
          events.push(`appended ${name}`);
          appending--;
        }
      },
    };
    await s.start(TOPIC, handlers);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no batch under the new generation: ${events.join('; ')}`)), 5_000)));
    try {
      await Promise.race([newGenerationBatch, timedOut]);
    } finally {
      clearTimeout(timer);
      await s.stop();
    }

    expect(assignedWhileAppending).toBe(false);
    // Partition 1's batch, fetched under generation 1 with partition 0's, is not handed
    // over once the join is known; partition 0 is read again from its committed offset
    // (5), not from where the first batch led (8).
    expect(events.slice(0, 6)).toEqual(['assigned 1 [0,1]', 'batch 0@5', 'appended 0@5', 'assigned 2 [0]', 'batch 0@5', 'appended 0@5']);
    expect(events.filter((e) => e.startsWith('crash'))).toEqual([]);
    expect(consumer.committedReads).toEqual([[0, 1], [0]]);
    expect(consumer.fetches[fetchesBeforeNewGeneration]).toEqual({ partitions: [{ partition: 0, fetchOffset: 5n }] });
  });

  it('applies a join reported while paused, without fetching', async () => {
    const s = source();
    await s.connect();
    const assigned: string[] = [];
    const handlers: SourceHandlers = {
      onAssigned: (partitions, generation) => assigned.push(`${generation} [${partitions.join(',')}]`),
      onCrash: () => undefined,
      onBatch: async () => true,
    };
    s.pause();
    await s.start(TOPIC, handlers);
    await tick();
    consumer.rejoin([1]);
    await tick();
    await s.stop();
    expect(assigned).toEqual(['1 [0,1]', '2 [1]']);
    expect(consumer.fetches).toEqual([]);
  });
});

describe('platformatic source: dead letters', () => {
  it('sends them one at a time, a failing one retried before the next goes out (the producer is idempotent)', async () => {
    consumer = new MockConsumer();
    Object.assign(mockProduced, { calls: 0, active: 0, maxActive: 0, failures: 1 });
    const s = source();
    await s.connect();
    const record = (n: number) => ({ key: `k${n}`, value: Buffer.from(`v${n}`), headers: { 'audit.error': `e${n}` } });
    await Promise.all([s.send('audit.dlq', record(1)), s.send('audit.dlq', record(2)), s.send('audit.dlq', record(3))]);
    expect(mockProduced).toMatchObject({ calls: 4, maxActive: 1, active: 0 });
    await s.stop();
  });
});
