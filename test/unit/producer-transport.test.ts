/**
 * The cheaper record path gives the same bytes as the one it replaced, and a batch
 * crosses into the sender's worker thread intact.
 */
import { AuditClient as AuditClientForVersion, AuditConfigError, platformaticSupported } from '../../producer';
import { randomUUID } from 'node:crypto';
import { buildRecord, DEFAULT_MASKED_FIELDS, fieldMatcher, maskValue, toJson } from '../../producer';
import { encodeCurrent } from '../../producer/encode';
import { maskedJson } from '../../producer/mask';
import { murmur2, partitionOf } from '../../producer/transport/partition';
import { MAX_STAGING_BYTES, MIN_STAGING_BYTES, StagingRing } from '../../producer/transport/staging';
import { packBatch, unpackBatch } from '../../producer/transport/wire';
import { needsTruncation, truncateRecord } from '../../producer/truncate';
import { CURRENT_SCHEMA_ID, confluentHeader, encodeRecord, isUuid, singleObjectHeader } from '../../schemas';

const isSensitive = fieldMatcher(DEFAULT_MASKED_FIELDS);

describe('maskedJson', () => {
  it('is toJson(maskValue(value)) for every kind of value', () => {
    const shared = { a: 1 };
    const circular: Record<string, unknown> = { name: 'loop' };
    circular.self = circular;
    const values: unknown[] = [
      'plain',
      'card 4111 1111 1111 1111 and 4111 1111 1111 1112',
      12n,
      { big: 2n ** 70n, when: new Date(Date.UTC(2026, 0, 5)), nested: { password: 'x', list: [1, 'two', null, { token: 't' }] } },
      { shared, again: shared },
      circular,
      JSON.parse('{"__proto__":{"polluted":true},"ok":1}'),
      Object.assign(Object.create({ inherited: 1 }) as object, { own: 2 }),
      [undefined, () => 1, Symbol('s')],
      { toJSON: () => 'custom' },
      null,
      0,
      true,
    ];
    for (const v of values) expect(maskedJson(v, isSensitive)).toBe(toJson(maskValue(v, isSensitive)));
  });
});

describe('fieldMatcher', () => {
  it('answers the same from memory as the first time, with a bounded memory', () => {
    const m = fieldMatcher(['password', /^x-secret-/i]);
    const names = ['Password', 'user_password', 'X-Secret-Key', 'x-secret-', 'name', 'email'];
    const first = names.map(m);
    expect(first).toEqual([true, true, true, true, false, false]);
    for (let i = 0; i < 10_000; i++) m(`field${i}`); // past the memory's bound: it starts again
    expect(names.map(m)).toEqual(first);
  });
});

describe('needsTruncation', () => {
  const opts = { sourceService: 's', isSensitive };
  it('is true exactly when truncateRecord cuts something', () => {
    const cases = [
      {},
      { after: { a: 'x'.repeat(100) } },
      { after: { a: 'é'.repeat(60) } }, // 120 bytes, 60 units: over a 100-byte limit
      { after: { a: 'é'.repeat(40) } },
      { userAgent: 'u'.repeat(101) },
      { changes: { body: { old: 'o'.repeat(200), new: 1 } } },
      { metadata: { note: 'n'.repeat(150) } },
    ];
    for (const extra of cases) {
      const rec = buildRecord({ objectType: 'doc', objectId: 1, action: 'update', ...extra }, undefined, opts);
      expect(needsTruncation(rec, 100)).toBe(truncateRecord(rec, 100).length > 0);
    }
  });
});

describe('encodeCurrent', () => {
  it('gives encodeRecord\'s bytes, small and large, with either header', () => {
    for (const size of [10, 100_000]) {
      const rec = buildRecord({ objectType: 'doc', objectId: 1, action: 'create', eventId: randomUUID(), after: { body: 'b'.repeat(size) } }, undefined, { sourceService: null, isSensitive });
      for (const header of [singleObjectHeader(CURRENT_SCHEMA_ID), confluentHeader(42)]) {
        expect(encodeCurrent(rec, header).equals(encodeRecord(rec, CURRENT_SCHEMA_ID, header))).toBe(true);
      }
    }
  });
});

describe('packBatch / unpackBatch', () => {
  it('carries keys and values unchanged across the transfer', () => {
    const messages = [
      { key: 'invoice:42', value: Buffer.from([1, 2, 3]) },
      { key: 'dossier:é✓', value: Buffer.alloc(0) },
      { key: '', value: Buffer.from('x'.repeat(70_000)) },
      { key: '𝄞:\ud800', value: Buffer.from([9]) },
    ];
    const packed = packBatch({ topic: 't', compression: 'gzip', messages }, 7);
    expect(packed).toMatchObject({ type: 'send', id: 7, topic: 't', compression: 'gzip', count: 4 });
    const back = unpackBatch(packed, null);
    expect(back.topic).toBe('t');
    expect(back.compression).toBe('gzip');
    back.messages.forEach((m, i) => expect(Buffer.from(m.key).equals(Buffer.from(messages[i]!.key))).toBe(true));
    // A key that is already bytes crosses as they are.
    const asBytes = unpackBatch(packBatch({ topic: 't', compression: 'none', messages: [{ key: Buffer.from([0xff, 0, 1]), value: Buffer.from('v') }] }, 9), null);
    expect([...asBytes.messages[0]!.key]).toEqual([0xff, 0, 1]);
    expect(asBytes.messages[0]!.value.toString()).toBe('v');
    back.messages.forEach((m, i) => expect(m.value.equals(messages[i]!.value)).toBe(true));
    expect(back.messages.map((m) => m.partition)).toEqual([-1, -1, -1, -1]);
    const placed = messages.map((m, i) => ({ ...m, partition: i * 5 }));
    expect(unpackBatch(packBatch({ topic: 't', compression: 'none', messages: placed }, 8), null).messages.map((m) => m.partition)).toEqual([0, 5, 10, 15]);
  });
});

describe('packBatch / unpackBatch with a staging ring', () => {
  it('sends staged messages as places in the ring and the others with their bytes, in order', () => {
    const ring = new StagingRing(MIN_STAGING_BYTES);
    const view = Buffer.from(ring.shared);
    const staged = (key: string, value: Buffer) => {
      const e = { key, value: Buffer.alloc(0), at: -1, keyBytes: 0, size: 0, released: false, partition: 2 };
      expect(ring.put(e, key, value)).toBe(true);
      return e;
    };
    const messages = [
      staged('invoice:1', Buffer.from('one')),
      { key: 'invoice:2', value: Buffer.from('two, not staged'), partition: 1 },
      staged('dossier:é✓', Buffer.from([0, 1, 2, 255])),
    ];
    const packed = packBatch({ topic: 't', compression: 'gzip', messages }, 3);
    // Only the unstaged message's bytes cross; the staged ones are 4 integers each.
    expect(packed.extra?.byteLength).toBeLessThan(64);
    const back = unpackBatch(packed, view);
    expect(back.messages.map((m) => Buffer.from(m.key).toString())).toEqual(['invoice:1', 'invoice:2', 'dossier:é✓']);
    expect(back.messages.map((m) => Buffer.from(m.value).toString('hex'))).toEqual([Buffer.from('one').toString('hex'), Buffer.from('two, not staged').toString('hex'), '000102ff']);
    expect(back.messages.map((m) => m.partition)).toEqual([2, 1, 2]);
    // Views on the shared memory, not copies: what the worker reads is what the app thread staged.
    expect(back.messages[0]!.value.buffer).toBe(ring.shared);
    const allStaged = packBatch({ topic: 't', compression: 'none', messages: [messages[0]!, messages[2]!] }, 4);
    expect(allStaged.extra).toBeNull();
    expect(() => unpackBatch(allStaged, null)).toThrow(/staging ring this thread was not given/);
  });
});

describe('StagingRing', () => {
  const event = () => ({ at: -1, keyBytes: 0, size: 0, released: false });
  const bytesAt = (ring: StagingRing, e: ReturnType<typeof event>) => Buffer.from(ring.shared, e.at, e.keyBytes + e.size);

  it('refuses a ring smaller than its minimum or larger than Int32 offsets reach', () => {
    expect(() => new StagingRing(1024)).toThrow(RangeError);
    expect(() => new StagingRing(MAX_STAGING_BYTES + 1)).toThrow(RangeError);
  });

  it('gives an empty event a byte, so that the ring never reads as full with room left', () => {
    const ring = new StagingRing(MIN_STAGING_BYTES);
    const empty = event();
    expect(ring.put(empty, '', Buffer.alloc(0))).toBe(true);
    expect(ring.used).toBe(1);
    const next = event();
    expect(ring.put(next, 'k', Buffer.from('v'))).toBe(true);
    expect(next.at).toBe(1);
  });

  it('gives space back in the order it was taken, whatever order events are released in', () => {
    const ring = new StagingRing(MIN_STAGING_BYTES);
    const value = Buffer.alloc(100_000, 7);
    const events = Array.from({ length: 20 }, (_, i) => {
      const e = event();
      expect(ring.put(e, `k:${i}`, value)).toBe(true);
      return e;
    });
    // 20 x ~100 kB fills the 2 MiB ring: the next event finds no room and keeps its bytes.
    expect(ring.put(event(), 'k:x', value)).toBe(false);
    const usedBefore = ring.used;
    // Released out of order (another partition acknowledged first): no space comes back yet.
    ring.release(events[3]!);
    ring.release(events[1]!);
    expect(ring.used).toBe(usedBefore);
    expect(ring.put(event(), 'k:x', value)).toBe(false);
    // The oldest released: the tail moves past every released event in a row (0, 1), not past 2.
    ring.release(events[0]!);
    expect(ring.used).toBe(usedBefore - (events[2]!.at - events[0]!.at));
    // Two events' room at the beginning lets one in that the end has no room for: the head wraps.
    const wrapped = event();
    expect(ring.put(wrapped, 'k:w', Buffer.alloc(150_000, 9))).toBe(true);
    expect(wrapped.at).toBe(0);
    // Events still live were not overwritten.
    for (const e of events.slice(2)) expect(bytesAt(ring, e).subarray(e.keyBytes).equals(value)).toBe(true);
    expect(bytesAt(ring, wrapped).subarray(0, 3).toString()).toBe('k:w');
    for (const e of events) ring.release(e);
    ring.release(wrapped);
    expect(ring.used).toBe(0);
  });

  it('never hands out bytes a live event holds, over many wraps (a model of the ring)', () => {
    const ring = new StagingRing(MIN_STAGING_BYTES);
    let seed = 42;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    const live: { e: ReturnType<typeof event>; fill: number; len: number }[] = [];
    let staged = 0;
    let refused = 0;
    let wraps = 0;
    let lastAt = -1;
    for (let step = 0; step < 20_000; step++) {
      if (live.length > 0 && rand(3) === 0) {
        // Release a random live event (acknowledgements across partitions come in any order).
        const [gone] = live.splice(rand(live.length), 1);
        ring.release(gone!.e);
        continue;
      }
      const len = 1 + rand(rand(10) === 0 ? 200_000 : 2_000);
      const e = event();
      const fill = step & 0xff;
      if (ring.put(e, `o:${step}`, Buffer.alloc(len, fill))) {
        staged++;
        if (e.at < lastAt) wraps++;
        lastAt = e.at;
        live.push({ e, fill, len });
      } else refused++;
      if (step % 97 === 0) {
        for (const l of live) {
          const v = bytesAt(ring, l.e).subarray(l.e.keyBytes);
          expect(v.length === l.len && v.every((b) => b === l.fill)).toBe(true);
        }
      }
    }
    expect(staged).toBeGreaterThan(5_000);
    expect(wraps).toBeGreaterThan(10);
    expect(refused).toBeGreaterThan(0);
  });
});

describe('isUuid', () => {
  it('accepts exactly what the regular expression it replaced accepts', () => {
    const re = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
    const samples = ['', 'x', randomUUID().toUpperCase(), '00000000-0000-0000-0000-000000000000', `${randomUUID()} `, `{${randomUUID().slice(1)}`];
    const alphabet = '0123456789abcdefABCDEFgGzZ-_ é@`/:[{';
    for (let i = 0; i < 3000; i++) {
      const id = randomUUID().split('');
      // One or two characters replaced by anything: a dash moved, a non-hex letter, a neighbour of a hex range.
      for (let k = 0; k < 1 + (i % 2); k++) id[(i * 7 + k * 13) % 36] = alphabet[(i + k * 5) % alphabet.length]!;
      samples.push(id.join(''), randomUUID());
    }
    for (const s of samples) expect([s, isUuid(s)]).toEqual([s, re.test(s)]);
  });
});

describe('partitionOf', () => {
  // kafkajs ships the Java client's murmur2: the reference for where an object's events go.
  const reference = require('kafkajs/src/producer/partitioners/default/murmur2') as (key: string | Buffer) => number;

  it("is Kafka's default partitioner, for ASCII, non-ASCII, long and empty keys, from strings and bytes", () => {
    const keys = ['', 'a', 'ab', 'abc', 'abcd', 'invoice:42', 'http_request:req-1', 'dossier:é✓', '𝄞:日本', 'x'.repeat(1500) + 'é', 'y'.repeat(4001)];
    for (let i = 0; i < 2000; i++) keys.push(`${i % 3 ? 'invoice' : 'user'}:${i * 7919}${i % 5 === 0 ? 'ü' : ''}`);
    for (const k of keys) {
      expect(murmur2(k)).toBe(reference(k));
      expect(murmur2(Buffer.from(k))).toBe(reference(k));
      expect(partitionOf(k, 3)).toBe((reference(k) & 0x7fffffff) % 3);
    }
  });
});

describe('the default Kafka client by Node version', () => {
  it('is @platformatic/kafka only where its Node floor is met; asking for it elsewhere is a clear error at start', () => {
    expect(['22.21.0', '22.22.0', '23.11.0', '24.5.1', '24.6.0', '26.0.0'].map((v) => platformaticSupported(v))).toEqual([false, true, false, false, true, true]);
    if (!platformaticSupported()) {
      expect(() => new AuditClientForVersion({ brokers: ["127.0.0.1:1"], sender: { client: 'platformatic' } })).toThrow(AuditConfigError);
    }
  });
});
