/**
 * The client's sending loop against a scripted transport (no broker): several requests
 * in flight but never two for one partition, a failed request resent before anything
 * later of its partition, the buffer bound counting what is in flight, close() giving up
 * at its deadline without counting late answers, and the one-request-at-a-time paths
 * (maxInFlight 1, a client that cannot tell the partition count).
 */
import { AuditClient, AuditConfigError } from '../../producer';
import { KafkaTransportError, refusedForSize } from '../../producer/transport';
import { partitionOf } from '../../producer/transport/partition';
import type { KafkaTransport, OutgoingBatch } from '../../producer/transport';
import { RecordDecoder } from '../../schemas';

interface Call {
  batch: OutgoingBatch;
  /** Event ids carried, in order. */
  ids: string[];
  resolve: () => void;
  reject: (err: Error) => void;
}

/** A transport whose sends wait for the test to answer them. */
class ScriptedTransport implements KafkaTransport {
  readonly calls: Call[] = [];
  readonly pending = new Set<Call>();
  maxInFlight = 0;
  debug: (() => unknown) | null = null;
  private readonly decoder = new RecordDecoder();
  private waiters: (() => void)[] = [];

  constructor(private readonly partitions: number | null) {}

  connect(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  partitionCount(): Promise<number | null> {
    return Promise.resolve(this.partitions);
  }

  send(batch: OutgoingBatch): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const call: Call = {
        batch,
        ids: batch.messages.map((m) => this.decoder.decode(m.value).event_id),
        resolve: () => {
          this.pending.delete(call);
          resolve();
        },
        reject: (err) => {
          this.pending.delete(call);
          reject(err);
        },
      };
      this.calls.push(call);
      this.pending.add(call);
      this.maxInFlight = Math.max(this.maxInFlight, this.pending.size);
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Resolves once `n` requests are pending, or `done()` says there will be none (rejects after 5 s). */
  async waitPending(n: number, done: () => boolean = () => false): Promise<Call[]> {
    const deadline = Date.now() + 5_000;
    while (this.pending.size < n && !done()) {
      if (Date.now() > deadline) throw new Error(`${this.pending.size} requests pending, expected ${n}; ${JSON.stringify(this.debug?.())}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 20);
      });
    }
    return [...this.pending];
  }
}

function clientWith(transport: ScriptedTransport, options: ConstructorParameters<typeof AuditClient>[0] = {}): AuditClient {
  // Pipelining is opt-in: these tests turn it on unless they say otherwise (`maxInFlight: undefined` = the default).
  const client = new AuditClient({ brokers: ['127.0.0.1:1'], topic: 't', schemaRegistry: null, lingerMs: 1, maxInFlight: 5, ...options });
  (client as unknown as { transport: KafkaTransport }).transport = transport;
  const c = client as unknown as Record<string, unknown>;
  transport.debug = () => ({ stats: client.stats(), inFlight: c.inFlight, held: c.held, incoming: (c.incoming as unknown[]).length, lanes: (c.lanes as { items: unknown[]; sending: number }[]).map((l) => [l.items.length, l.sending]), paused: (c.pausedUntil as number) - Date.now(), wake: c.wake !== null });
  return client;
}

/** The partitions a request's messages carry (-1: left to the Kafka client). */
const partitionsOf = (c: Call) => [...new Set(c.batch.messages.map((m) => m.partition ?? -1))];

const uuid = (n: number) => `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;

/** Records `count` events over `objects` objects; event n has id uuid(n). */
function recordEvents(client: AuditClient, from: number, count: number, objects: number): void {
  for (let n = from; n < from + count; n++) void client.record({ eventId: uuid(n), objectType: 'invoice', objectId: n % objects, action: 'update' });
}

it('keeps one request per partition in flight, several partitions at once, and resends a failed one first', async () => {
  const transport = new ScriptedTransport(3);
  const client = clientWith(transport, { batchSize: 10 });
  const drained = () => client.stats().queued === 0;
  recordEvents(client, 0, 60, 9);
  // The first request of each partition goes out; nothing more until one is answered.
  const first = await transport.waitPending(3);
  await new Promise((r) => setTimeout(r, 30));
  expect(transport.pending.size).toBe(3);
  // Three partitions, five slots: a request per partition.
  expect(first.map((c) => partitionsOf(c).length)).toEqual([1, 1, 1]);
  expect(new Set(first.map((c) => partitionsOf(c)[0]))).toEqual(new Set([0, 1, 2]));
  for (const c of first) {
    for (const m of c.batch.messages) expect(partitionOf(m.key, 3)).toBe(m.partition);
  }
  // One fails: its partition sends the same events again (after the backoff), not the next ones.
  const failed = first[0]!;
  failed.reject(new Error('broker said no'));
  for (const c of first.slice(1)) c.resolve();
  const delivered: string[] = [];
  for (const c of first.slice(1)) delivered.push(...c.ids);
  let resent: Call | undefined;
  for (;;) {
    const [next] = await transport.waitPending(1, drained);
    if (!next) break;
    if (partitionsOf(next)[0] === partitionsOf(failed)[0] && !resent) {
      resent = next;
      expect(next.ids).toEqual(failed.ids);
    }
    delivered.push(...next.ids);
    next.resolve();
  }
  expect(resent).toBeDefined();
  expect(await client.flush(1_000)).toBe(true);
  expect(client.stats()).toMatchObject({ accepted: 60, delivered: 60, sendFailures: 1, queued: 0, dropped: 0 });
  expect(transport.maxInFlight).toBe(3);
  // Per object, the events went out in the order they were recorded.
  const byObject = new Map<number, number[]>();
  for (const id of delivered) {
    const n = parseInt(id.slice(-12), 16);
    byObject.set(n % 9, [...(byObject.get(n % 9) ?? []), n]);
  }
  for (const ns of byObject.values()) expect(ns).toEqual([...ns].sort((a, b) => a - b));
  await client.close();
});

it('never has more requests in flight than maxInFlight', async () => {
  const transport = new ScriptedTransport(6);
  const client = clientWith(transport, { batchSize: 5, maxInFlight: 2 });
  recordEvents(client, 0, 120, 30);
  const drained = () => client.stats().queued === 0;
  while (!drained()) {
    await transport.waitPending(1, drained);
    await new Promise((r) => setTimeout(r, 5));
    for (const c of [...transport.pending]) c.resolve();
  }
  expect(transport.maxInFlight).toBe(2);
  expect(client.stats()).toMatchObject({ delivered: 120, queued: 0 });
  await client.close();
});

it('bounds the buffer by what is not yet acknowledged, requests in flight included', async () => {
  const transport = new ScriptedTransport(3);
  const client = clientWith(transport, { batchSize: 4, bufferSize: 20, onBufferFull: 'drop' });
  recordEvents(client, 0, 20, 6);
  await transport.waitPending(3);
  recordEvents(client, 20, 5, 6);
  expect(client.stats()).toMatchObject({ accepted: 20, dropped: 5, queued: 20 });
  for (const c of [...transport.pending]) c.resolve();
  await new Promise((r) => setTimeout(r, 20));
  expect(client.stats().queued).toBeLessThan(20);
  recordEvents(client, 25, 1, 6);
  expect(client.stats().accepted).toBe(21);
  const drained = () => client.stats().queued === 0;
  while (!drained()) for (const c of await transport.waitPending(1, drained)) c.resolve();
  await client.close();
});

it('gives up at the close deadline and does not count answers that come after', async () => {
  const transport = new ScriptedTransport(3);
  const client = clientWith(transport, { batchSize: 10 });
  recordEvents(client, 0, 30, 9);
  const held = await transport.waitPending(3);
  // One partition keeps failing, one answers only after close gave up, one is delivered.
  held[0]!.reject(new Error('down'));
  held[1]!.resolve();
  const failing = setInterval(() => {
    for (const c of [...transport.pending]) if (c !== held[2]) c.reject(new Error('still down'));
  }, 10);
  const closing = client.close(300);
  await new Promise((r) => setTimeout(r, 600));
  held[2]!.resolve();
  await closing;
  clearInterval(failing);
  const stats = client.stats();
  expect(stats.delivered).toBe(held[1]!.ids.length);
  expect(stats.dropped).toBe(30 - held[1]!.ids.length);
  expect(stats.queued).toBe(0);
  // The delivered prefix stops before the first abandoned event, for good.
  const delivered = new Set(held[1]!.ids);
  const firstLost = Array.from({ length: 30 }, (_, n) => n).find((n) => !delivered.has(uuid(n)))!;
  expect(stats.deliveredPrefix).toBe(firstLost);
});

it('counts the delivered prefix in acceptance order when a later partition is acknowledged first', async () => {
  const transport = new ScriptedTransport(3);
  const client = clientWith(transport, { batchSize: 100 });
  recordEvents(client, 0, 30, 9);
  const calls = await transport.waitPending(3);
  const oldest = calls.find((c) => c.ids.includes(uuid(0)))!;
  const others = calls.filter((c) => c !== oldest);
  for (const c of others) c.resolve();
  await new Promise((r) => setTimeout(r, 20));
  const later = others.reduce((n, c) => n + c.ids.length, 0);
  expect(client.stats()).toMatchObject({ delivered: later, deliveredPrefix: 0 });
  oldest.resolve();
  expect(await client.flush(1_000)).toBe(true);
  expect(client.stats()).toMatchObject({ delivered: 30, deliveredPrefix: 30 });
  await client.close();
});

it('sends one request at a time, spanning partitions, by default, with maxInFlight 1, or when the partition count is unknown', async () => {
  for (const [partitions, maxInFlight] of [
    [3, undefined],
    [3, 1],
    [null, 5],
  ] as const) {
    const transport = new ScriptedTransport(partitions);
    const client = clientWith(transport, { batchSize: 10, maxInFlight });
    recordEvents(client, 0, 40, 9);
    const order: string[] = [];
    const drained = () => client.stats().queued === 0;
    while (!drained()) {
      await transport.waitPending(1, drained);
      await new Promise((r) => setTimeout(r, 5));
      const pending = [...transport.pending];
      if (pending.length === 0) continue;
      expect(pending.length).toBe(1);
      expect(partitionsOf(pending[0]!)).toEqual([-1]);
      order.push(...pending[0]!.ids);
      pending[0]!.resolve();
    }
    expect(order).toEqual(Array.from({ length: 40 }, (_, n) => uuid(n)));
    expect(new Set(transport.calls.map((c) => new Set(c.batch.messages.map((m) => partitionOf(m.key, 3))).size)).has(3)).toBe(true);
    await client.close();
  }
});

it('refuses a maxInFlight that is not a whole number of at least 1', () => {
  for (const bad of [0, -1, 1.5, Number.NaN]) expect(() => new AuditClient({ brokers: ['127.0.0.1:1'], maxInFlight: bad })).toThrow(AuditConfigError);
});

it('puts several partitions in one request when the topic has more partitions than free slots', async () => {
  const transport = new ScriptedTransport(12);
  const client = clientWith(transport, { batchSize: 1000, maxInFlight: 3 });
  recordEvents(client, 0, 240, 48);
  const first = await transport.waitPending(3);
  await new Promise((r) => setTimeout(r, 30));
  expect(transport.pending.size).toBe(3);
  // 12 partitions over 3 slots: 4 each, no partition in two requests.
  expect(first.map((c) => partitionsOf(c).length)).toEqual([4, 4, 4]);
  expect(new Set(first.flatMap((c) => partitionsOf(c))).size).toBe(12);
  for (const c of first) c.resolve();
  expect(await client.flush(1_000)).toBe(true);
  expect(client.stats()).toMatchObject({ delivered: 240, queued: 0 });
  await client.close();
});

it('close() keeps to its timeout when a request never comes back: the transport is closed under it and its events count as dropped', async () => {
  const transport = new ScriptedTransport(3);
  let closedUnder = false;
  transport.close = () => {
    // What closing a real transport does to what it still has in flight.
    closedUnder = true;
    for (const call of [...transport.pending]) call.reject(new Error('transport closed'));
    return Promise.resolve();
  };
  const client = clientWith(transport, { batchSize: 10, maxInFlight: undefined });
  recordEvents(client, 0, 10, 1);
  await transport.waitPending(1);
  const started = Date.now();
  await client.close(200);
  expect(Date.now() - started).toBeLessThan(3_000);
  expect(closedUnder).toBe(true);
  expect(client.stats()).toMatchObject({ accepted: 10, delivered: 0, dropped: 10, queued: 0 });
});

it('sends a request refused for its size again in smaller ones, at once, and keeps later ones at half the size refused', async () => {
  const transport = new ScriptedTransport(1);
  const logged: string[] = [];
  const client = clientWith(transport, { maxInFlight: undefined, batchSize: 100, logger: { warn: (_o, m) => logged.push(String(m)), error: (_o, m) => logged.push(String(m)) } });
  const drained = () => client.stats().queued === 0;
  recordEvents(client, 0, 40, 5);
  const [first] = await transport.waitPending(1);
  const refusedBytes = first!.batch.messages.reduce((n, m) => n + m.value.length, 0);
  expect(first!.ids.length).toBe(40);
  first!.reject(new KafkaTransportError('MESSAGE_TOO_LARGE', 'platformatic', true));
  const sizes: number[] = [];
  const delivered: string[] = [];
  for (;;) {
    const [next] = await transport.waitPending(1, drained);
    if (!next) break;
    sizes.push(next.ids.length);
    delivered.push(...next.ids);
    next.resolve();
  }
  // No backoff for a refusal for size: the smaller requests go out at once.
  expect((client as unknown as { pausedUntil: number }).pausedUntil).toBe(0);
  expect(sizes[0]).toBe(20);
  expect(delivered).toEqual(first!.ids);
  // Later requests stay at half the size that was refused (growing to just under it would probe the limit again).
  recordEvents(client, 40, 80, 5);
  const later: Call[] = [];
  for (;;) {
    const [next] = await transport.waitPending(1, drained);
    if (!next) break;
    later.push(next);
    next.resolve();
  }
  for (const c of later) expect(c.batch.messages.reduce((n, m) => n + m.value.length, 0)).toBeLessThan(refusedBytes);
  expect(Math.max(...later.map((c) => c.ids.length))).toBe(20);
  expect(client.stats()).toMatchObject({ accepted: 120, delivered: 120, dropped: 0, refused: 0, sendFailures: 1 });
  expect(logged).toContain('audit request refused for its size; sending smaller requests');
  await client.close();
});

it('drops, counts and logs an event the broker refuses for its size on its own, and delivers what follows', async () => {
  const transport = new ScriptedTransport(1);
  const errors: unknown[] = [];
  const client = clientWith(transport, { maxInFlight: undefined, logger: { warn: () => undefined, error: (o) => errors.push(o) } });
  const drained = () => client.stats().queued === 0;
  recordEvents(client, 0, 1, 1);
  const [alone] = await transport.waitPending(1);
  expect(alone!.ids).toEqual([uuid(0)]);
  recordEvents(client, 1, 5, 1);
  alone!.reject(new KafkaTransportError('MESSAGE_TOO_LARGE', 'kafkajs', true));
  const delivered: string[] = [];
  for (;;) {
    const [next] = await transport.waitPending(1, drained);
    if (!next) break;
    delivered.push(...next.ids);
    next.resolve();
  }
  expect(delivered).toEqual([1, 2, 3, 4, 5].map(uuid));
  expect(client.stats()).toMatchObject({ accepted: 6, delivered: 5, dropped: 1, refused: 1, queued: 0, deliveredPrefix: 6 });
  expect(errors).toEqual([expect.objectContaining({ object: 'invoice:0', err: 'MESSAGE_TOO_LARGE' })]);
  await client.close();
});

it('tells a refusal for size in what either Kafka client throws, however wrapped', () => {
  // kafkajs: KafkaJSProtocolError { type }, wrapped by its retrier in `cause` / `originalError`.
  expect(refusedForSize({ name: 'KafkaJSNonRetriableError', cause: { type: 'MESSAGE_TOO_LARGE' } })).toBe(true);
  expect(refusedForSize({ originalError: { type: 'RECORD_LIST_TOO_LARGE' } })).toBe(true);
  // @platformatic/kafka: ResponseError (MultipleErrors) of ProtocolErrors { apiId }.
  expect(refusedForSize({ errors: [{ apiId: 'NOT_LEADER_OR_FOLLOWER' }, { apiId: 'MESSAGE_TOO_LARGE' }] })).toBe(true);
  expect(refusedForSize({ errors: [{ apiId: 'NOT_LEADER_OR_FOLLOWER' }], cause: new Error('socket closed') })).toBe(false);
  expect(refusedForSize(new Error('MESSAGE_TOO_LARGE'))).toBe(false);
  expect(refusedForSize(null)).toBe(false);
});
