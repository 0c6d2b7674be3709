/**
 * The shared-memory channel of send requests between the app thread and the sender's
 * worker thread (producer/transport/requests.ts): both sides in one thread, on one memory.
 */
import { RequestReader, RequestWriter, SLOTS, SLOT_MESSAGES, requestChannelMemory } from '../../producer/transport/requests';
import { MIN_STAGING_BYTES, StagingRing } from '../../producer/transport/staging';
import type { OutgoingMessage } from '../../producer/transport';

function channel() {
  const ring = new StagingRing(MIN_STAGING_BYTES);
  const memory = requestChannelMemory();
  return { ring, memory, writer: new RequestWriter(memory), reader: new RequestReader(memory, Buffer.from(ring.shared)) };
}

function staged(ring: StagingRing, key: string, value: string, partition = -1): OutgoingMessage {
  const m = { key, value: Buffer.alloc(0), partition, at: -1, keyBytes: 0, size: 0, released: false };
  expect(ring.put(m, key, Buffer.from(value))).toBe(true);
  return m;
}

const text = (b: Buffer | string) => Buffer.from(b).toString();

describe('send requests in shared memory', () => {
  it('carries a request to the reader: id, topic, compression, and each message as views on the ring', () => {
    const { ring, writer, reader } = channel();
    const messages = [staged(ring, 'invoice:42', 'v1', 2), staged(ring, 'dossier:é✓', 'v2'), staged(ring, 'user:7', '')];
    expect(writer.tryPost(11, { topic: 'audit.events', compression: 'gzip', messages })).toBe(true);
    expect(writer.tryPost(12, { topic: 'audit.other', compression: 'none', messages: messages.slice(0, 1) })).toBe(true);
    const taken = reader.take();
    expect(taken.map((r) => [r.id, r.batch.topic, r.batch.compression, r.batch.messages.length])).toEqual([
      [11, 'audit.events', 'gzip', 3],
      [12, 'audit.other', 'none', 1],
    ]);
    const first = taken[0]!.batch.messages;
    expect(first.map((m) => [text(m.key), text(m.value), m.partition])).toEqual([
      ['invoice:42', 'v1', 2],
      ['dossier:é✓', 'v2', -1],
      ['user:7', '', -1],
    ]);
    expect((first[0]!.value as Buffer).buffer).toBe(ring.shared);
    // Taken once only.
    expect(reader.take()).toEqual([]);
  });

  it('refuses, and posts nothing, what it cannot carry: unstaged messages, too many messages, no free slot, too many topics', () => {
    const { ring, writer, reader } = channel();
    const one = staged(ring, 'k:1', 'v');
    // A message travelling with its own bytes (not staged) goes by message instead.
    expect(writer.tryPost(1, { topic: 't', compression: 'none', messages: [one, { key: 'k:2', value: Buffer.from('v') }] })).toBe(false);
    expect(writer.tryPost(2, { topic: 't', compression: 'none', messages: new Array<OutgoingMessage>(SLOT_MESSAGES + 1).fill(one) })).toBe(false);
    expect(reader.take()).toEqual([]);
    // Every slot taken by requests the worker has not read yet: the next one waits for none of them.
    for (let i = 0; i < SLOTS; i++) expect(writer.tryPost(100 + i, { topic: 't', compression: 'none', messages: [one] })).toBe(true);
    expect(writer.tryPost(200, { topic: 't', compression: 'none', messages: [one] })).toBe(false);
    expect(reader.take().map((r) => r.id)).toEqual(Array.from({ length: SLOTS }, (_, i) => 100 + i));
    expect(writer.tryPost(201, { topic: 't', compression: 'none', messages: [one] })).toBe(true);
    // Topics: 8 named through memory (t is the first); a name too long for the table goes by message.
    for (let i = 1; i < 8; i++) expect(writer.tryPost(300 + i, { topic: `t${i}`, compression: 'none', messages: [one] })).toBe(true);
    reader.take();
    expect(writer.tryPost(400, { topic: 'a-ninth-topic', compression: 'none', messages: [one] })).toBe(false);
    expect(writer.tryPost(401, { topic: 'x'.repeat(300), compression: 'none', messages: [one] })).toBe(false);
    expect(writer.tryPost(402, { topic: 't7', compression: 'none', messages: [one] })).toBe(true);
    expect(reader.take().map((r) => [r.id, r.batch.topic])).toEqual([[402, 't7']]);
  });

  it('skips, in a new worker, the requests the previous one never took (their sends were failed and are resent)', () => {
    const { ring, memory, writer, reader } = channel();
    const one = staged(ring, 'k:1', 'v');
    expect(writer.tryPost(1, { topic: 't', compression: 'none', messages: [one] })).toBe(true);
    expect(reader.take().map((r) => r.id)).toEqual([1]);
    expect(writer.tryPost(2, { topic: 't', compression: 'none', messages: [one] })).toBe(true);
    // The worker died before taking request 2: the host restarts the channel for the next one.
    writer.restart();
    const next = new RequestReader(memory, Buffer.from(ring.shared));
    expect(next.take()).toEqual([]);
    expect(writer.tryPost(3, { topic: 't', compression: 'none', messages: [one] })).toBe(true);
    expect(next.take().map((r) => r.id)).toEqual([3]);
  });

  it('keeps working when its counters pass 2^31 (a long-running service) and wraps ids in Int32 range', () => {
    const ring = new StagingRing(MIN_STAGING_BYTES);
    const memory = requestChannelMemory();
    // POSTED and TAKEN (the first two Int32s) just under 2^31, as after ~2 billion requests.
    new Int32Array(memory).set([0x7ffffffe, 0x7ffffffe]);
    const writer = new RequestWriter(memory);
    const reader = new RequestReader(memory, Buffer.from(ring.shared));
    const one = staged(ring, 'k:1', 'v');
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < SLOTS; i++) expect(writer.tryPost(0x7ffffff0 + i, { topic: 't', compression: 'none', messages: [one] })).toBe(true);
      expect(writer.tryPost(1, { topic: 't', compression: 'none', messages: [one] })).toBe(false);
      expect(reader.take().map((r) => r.id)).toEqual(Array.from({ length: SLOTS }, (_, i) => 0x7ffffff0 + i));
    }
    // After a restart past the wrap, the channel still has all its slots.
    writer.restart();
    const next = new RequestReader(memory, Buffer.from(ring.shared));
    for (let i = 0; i < SLOTS; i++) expect(writer.tryPost(10 + i, { topic: 't', compression: 'none', messages: [one] })).toBe(true);
    expect(next.take()).toHaveLength(SLOTS);
  });

  it('wakes a parked reader when a request is posted, and does not park past one posted before', async () => {
    const { ring, writer, reader } = channel();
    const one = staged(ring, 'k:1', 'v');
    let woke = false;
    const parked = reader.parked().then(() => (woke = true));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(woke).toBe(false);
    expect(writer.tryPost(1, { topic: 't', compression: 'none', messages: [one] })).toBe(true);
    await parked;
    expect(reader.take().map((r) => r.id)).toEqual([1]);
    // Posted before the reader parks: it does not wait for a notification.
    expect(writer.tryPost(2, { topic: 't', compression: 'none', messages: [one] })).toBe(true);
    await reader.parked();
    expect(reader.take().map((r) => r.id)).toEqual([2]);
  });
});
