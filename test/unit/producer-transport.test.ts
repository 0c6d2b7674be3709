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
    const back = unpackBatch(packed);
    expect(back.topic).toBe('t');
    expect(back.compression).toBe('gzip');
    back.messages.forEach((m, i) => expect(Buffer.from(m.key).equals(Buffer.from(messages[i]!.key))).toBe(true));
    // A key that is already bytes crosses as they are.
    const asBytes = unpackBatch(packBatch({ topic: 't', compression: 'none', messages: [{ key: Buffer.from([0xff, 0, 1]), value: Buffer.from('v') }] }, 9));
    expect([...asBytes.messages[0]!.key]).toEqual([0xff, 0, 1]);
    expect(asBytes.messages[0]!.value.toString()).toBe('v');
    back.messages.forEach((m, i) => expect(m.value.equals(messages[i]!.value)).toBe(true));
    expect(back.messages.map((m) => m.partition)).toEqual([-1, -1, -1, -1]);
    const placed = messages.map((m, i) => ({ ...m, partition: i * 5 }));
    expect(unpackBatch(packBatch({ topic: 't', compression: 'none', messages: placed }, 8)).messages.map((m) => m.partition)).toEqual([0, 5, 10, 15]);
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
