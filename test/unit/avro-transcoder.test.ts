import * as avro from 'avsc';
import {
  type AuditRecord,
  CURRENT_SCHEMA_ID,
  RecordDecoder,
  type RegistryEntry,
  type RegistryLookup,
  assertValidRecord,
  confluentHeader,
  encodeRecord,
  schemaJson,
  schemaType,
  singleObjectHeader,
} from '../../schemas';
import { AvroStagingTranscoder } from '../../consumer/staging/avro-transcoder';
import { LineArena } from '../../consumer/staging/line-arena';
import { STAGING_KEYS, type StagedRow, compareCodePoints, stageRow, stagedLine } from '../../consumer/staging/staged-row';
import { sampleRecord } from '../helpers/records';

/** A small deterministic PRNG, so a failure names a reproducible case. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NASTY = ['', 'plain', '"quoted"', 'back\\slash', 'tab\there', 'new\nline', 'nul\u0000byte', '\u001f\u007f', 'é', '日本語', '😀 emoji', '\u2028\u2029', '\uffff', '</script>', "it's", '{"json":1}'];
const JSON_TEXTS = ['"draft"', '12', '-0.5e3', '007', 'true', 'false', 'null', '{"a":[1,2,{"b":"c"}]}', '[ 1, 2 ]', 'not json', '"unterminated', '"esc\\"aped"', '"tab\there"', '1e', '"😀"', ' 1', ''];

function pick<T>(rnd: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rnd() * xs.length)]!;
}

function randomText(rnd: () => number): string {
  let s = '';
  const n = Math.floor(rnd() * 3);
  for (let i = 0; i < n; i++) s += pick(rnd, NASTY);
  return s;
}

function randomRecord(rnd: () => number, i: number): AuditRecord {
  const opt = (): string | null => (rnd() < 0.3 ? null : randomText(rnd));
  const changes: AuditRecord['changes'] = {};
  const nChanges = Math.floor(rnd() * 4);
  for (let c = 0; c < nChanges; c++) {
    changes[`${pick(rnd, ['status', 'total', 'na"me', 'é', 'a\\b', 'x\ny'])}${c}`] = {
      old: rnd() < 0.2 ? null : pick(rnd, JSON_TEXTS),
      new: rnd() < 0.2 ? null : pick(rnd, JSON_TEXTS),
    };
  }
  const metadata: Record<string, string> = {};
  if (rnd() < 0.6) metadata[`k${randomText(rnd)}`] = randomText(rnd);
  return sampleRecord({
    occurred_at: Date.UTC(2026, 0, 1) * 1000 + Math.floor(rnd() * 1e12),
    object_type: pick(rnd, ['invoice', 'a"b', 'type\\x', 'ünï', '😀']),
    object_id: `${randomText(rnd)}${i}`,
    action: pick(rnd, ['update', 'create', 'a\tb']),
    actor_id: opt(),
    actor_type: opt(),
    tenant_id: opt(),
    request_id: opt(),
    trace_id: opt(),
    ip: opt(),
    user_agent: opt(),
    http_method: opt(),
    http_path: opt(),
    http_status: rnd() < 0.5 ? null : Math.floor(rnd() * 600) - 50,
    changes,
    before: opt(),
    after: opt(),
    metadata,
    source_service: opt(),
    duration_ms: rnd() < 0.5 ? null : pick(rnd, [0, -0, 12.5, 1e21, 1 / 3, 1e-7]),
    error_type: opt(),
    error_message: opt(),
    error_stack: opt(),
  });
}

function slowRow(value: Buffer, partition: number, offset: string, registry?: RegistryLookup): StagedRow {
  const record = new RecordDecoder(undefined, registry).decode(value);
  assertValidRecord(record);
  return stageRow({ record, partition, offset, size: value.length });
}

function expectSameRow(fast: StagedRow, slow: StagedRow): void {
  expect(stagedLine(fast)[stagedLine(fast).length - 1]).toBe(0x0a);
  expect(JSON.parse(stagedLine(fast).toString('utf8'))).toEqual(JSON.parse(stagedLine(slow).toString('utf8')));
  expect({ ...fast, chunk: null, start: 0, end: 0 }).toEqual({ ...slow, chunk: null, start: 0, end: 0 });
}

const v1Type = avro.Type.forSchema(schemaJson(1));

/** v1 bytes, by default in the legacy framing (byte 0 + version 1). */
function encodeV1(r: AuditRecord, header: Buffer = confluentHeader(1)): Buffer {
  const { duration_ms, error_type, error_message, error_stack, ...v1 } = r;
  void duration_ms, error_type, error_message, error_stack;
  return Buffer.concat([header, v1Type.toBuffer({ ...v1, schema_version: 1 })]);
}

/** A registry that gave id 1 to our v2 (as a fresh one does), id 77 to v1, and lacks id 2. */
const REGISTRY = new Map<number, RegistryEntry>([
  [1, { kind: 'found', version: 2, type: schemaType(2) }],
  [2, { kind: 'absent' }],
  [77, { kind: 'found', version: 1, type: schemaType(1) }],
]);
const registryLookup: RegistryLookup = (id) => REGISTRY.get(id);

describe('Avro staging transcoder (fast path)', () => {
  const transcoder = new AvroStagingTranscoder(CURRENT_SCHEMA_ID);
  const registryTranscoder = new AvroStagingTranscoder(CURRENT_SCHEMA_ID, registryLookup);

  it('gives the same row as decode + stageRow for 3,000 random hostile records (v2 and v1, every framing)', () => {
    const rnd = prng(7);
    const arena = new LineArena(4096);
    let fastCount = 0;
    for (let i = 0; i < 3000; i++) {
      const rec = randomRecord(rnd, i);
      const kind = i % 4;
      const value =
        kind === 0 ? encodeV1(rec) : kind === 1 ? encodeRecord(rec) : kind === 2 ? encodeV1(rec, singleObjectHeader(1)) : encodeRecord(rec, 2, confluentHeader(2));
      const offset = String(1_000_000_000_000 + i);
      const fast = transcoder.transcode(value, i % 4, offset, arena);
      const slow = slowRow(value, i % 4, offset);
      if (fast !== null) {
        fastCount++;
        expectSameRow(fast, slow);
      }
    }
    // Only records with keys JavaScript reorders (none here) or invalid data may decline.
    expect(fastCount).toBe(3000);
  });

  it('with a registry: ids it names take the fast path, a legacy record under an id it gave to another version declines to the general path', () => {
    const rnd = prng(11);
    const arena = new LineArena(4096);
    let fastCount = 0;
    let ambiguous = 0;
    for (let i = 0; i < 1500; i++) {
      const rec = randomRecord(rnd, i);
      const kind = i % 5;
      const value =
        kind === 0
          ? encodeRecord(rec, 2, confluentHeader(1)) // registry id 1 = v2
          : kind === 1
            ? encodeV1(rec, confluentHeader(77)) // registry id 77 = v1
            : kind === 2
              ? encodeRecord(rec, 2, confluentHeader(2)) // not in the registry: legacy v2
              : kind === 3
                ? encodeRecord(rec) // single-object
                : encodeV1(rec); // legacy v1 under id 1, which the registry gave to v2
      const offset = String(i);
      const fast = registryTranscoder.transcode(value, 0, offset, arena);
      const slow = slowRow(value, 0, offset, registryLookup);
      if (kind === 4) {
        expect(fast).toBeNull();
        expect(slow.objectId).toBe(rec.object_id);
        ambiguous++;
      } else if (fast !== null) {
        fastCount++;
        expectSameRow(fast, slow);
      }
    }
    expect(ambiguous).toBe(300);
    expect(fastCount).toBe(1200);
  });

  it('declines ids the registry has not resolved yet (the sink resolves them first)', () => {
    expect(registryTranscoder.transcode(encodeRecord(sampleRecord(), 2, confluentHeader(5)), 0, '1', new LineArena())).toBeNull();
  });

  it('declines what the general path must judge: bad framing, unknown schema, invalid fields, truncation', () => {
    const arena = new LineArena();
    const good = encodeRecord(sampleRecord());
    expect(transcoder.transcode(good, 0, '1', arena)).not.toBeNull();
    expect(transcoder.transcode(encodeRecord(sampleRecord({ event_id: 'ABCDEF01-2345-4789-8abc-DEF012345678' })), 0, '1', arena)).not.toBeNull();
    const declined = [
      null,
      Buffer.from('hello world'),
      Buffer.from([0, 0, 0, 0, 99, 1, 2]),
      Buffer.concat([Buffer.from([0xc3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8]), good.subarray(10)]), // unknown fingerprint
      Buffer.concat([Buffer.from([0xc3, 0x02]), good.subarray(2)]), // not the single-object marker
      good.subarray(0, 8),
      good.subarray(0, 20),
      Buffer.concat([good, Buffer.from([0])]),
      encodeRecord(sampleRecord({ event_id: 'not-a-uuid' })),
      encodeRecord(sampleRecord({ event_id: '00000000-0000-4000-8000-00000000000g' })),
      encodeRecord(sampleRecord({ event_id: '000000000-000-4000-8000-000000000000' })),
      encodeRecord(sampleRecord({ object_id: '' })),
      encodeRecord(sampleRecord({ object_type: '' })),
      encodeRecord(sampleRecord({ action: '' })),
      encodeRecord(sampleRecord({ occurred_at: -5 })),
      encodeRecord(sampleRecord({ occurred_at: Date.UTC(2200, 0, 1, 0, 0, 0, 1) * 1000 })),
      encodeRecord(sampleRecord({ changes: { '10': { old: '1', new: '2' }, b: { old: null, new: '3' } } })),
      encodeRecord(sampleRecord({ metadata: { '0': 'x' } })),
    ];
    for (const value of declined) expect(transcoder.transcode(value, 0, '1', arena)).toBeNull();
  });

  it('declines strings that are not valid UTF-8 (avsc replaces those bytes; the general path keeps that)', () => {
    const value = encodeRecord(sampleRecord({ object_id: 'abc' }));
    const at = value.indexOf(Buffer.from('abc'));
    value[at + 1] = 0xff;
    expect(transcoder.transcode(value, 0, '1', new LineArena())).toBeNull();
    expect(slowRow(value, 0, '1').objectId).toBe('a\ufffdc');
  });

  it('normalises change values like the general path: JSON kept, non-JSON quoted, leading zeros quoted', () => {
    const value = encodeRecord(
      sampleRecord({ changes: { a: { old: '007', new: '{ "x" : 1 }' }, b: { old: 'plain text', new: '"ok"' } } }),
    );
    const fast = transcoder.transcode(value, 0, '1', new LineArena())!;
    const line = JSON.parse(stagedLine(fast).toString('utf8')) as Record<string, string>;
    const changes = JSON.parse(line[STAGING_KEYS.get('changes')!]!) as unknown;
    expect(changes).toEqual({ a: { old: '007', new: { x: 1 } }, b: { old: 'plain text', new: 'ok' } });
  });
});

describe('Avro staging transcoder: keys and integers JavaScript objects cannot carry', () => {
  const transcoder = new AvroStagingTranscoder(CURRENT_SCHEMA_ID);

  it('keeps a "__proto__" map key as text (decoding into an object would turn it into a prototype)', () => {
    const changes = JSON.parse('{"__proto__":{"old":"1","new":"2"},"b":{"old":null,"new":"3"}}') as AuditRecord['changes'];
    const metadata = JSON.parse('{"__proto__":"x"}') as Record<string, string>;
    const value = encodeRecord(sampleRecord({ changes, metadata }));
    const fast = transcoder.transcode(value, 0, '1', new LineArena())!;
    expect(fast).not.toBeNull();
    const line = JSON.parse(stagedLine(fast).toString('utf8')) as Record<string, string>;
    expect(line[STAGING_KEYS.get('changes')!]).toBe('{"__proto__":{"old":1,"new":2},"b":{"old":null,"new":3}}');
    expect(line[STAGING_KEYS.get('metadata')!]).toBe('{"__proto__":"x"}');
    // The general path cannot represent it, and says so instead of storing something else.
    expect(() => slowRow(value, 0, '1')).toThrow(/__proto__/);
  });

  it('declines ints beyond 32 bits, which the general path rejects', () => {
    // avsc refuses to write such an int; the same schema with a long there writes the bytes a buggy producer would.
    const schema = schemaJson(2) as unknown as { fields: { name: string; type: unknown }[] };
    const wide = avro.Type.forSchema({ ...schema, fields: schema.fields.map((f) => (f.name === 'http_status' ? { ...f, type: ['null', 'long'] } : f)) } as avro.Schema);
    const value = Buffer.concat([Buffer.from([0, 0, 0, 0, 2]), wide.toBuffer(sampleRecord({ http_status: 2 ** 40 }))]);
    expect(transcoder.transcode(value, 0, '1', new LineArena())).toBeNull();
    expect(() => slowRow(value, 0, '1')).toThrow(/http_status is not a 32-bit integer/);
    expect(transcoder.transcode(encodeRecord(sampleRecord({ http_status: -2147483648 })), 0, '1', new LineArena())).not.toBeNull();
  });
});

describe('compareCodePoints', () => {
  it('orders like UTF-8 bytes, including astral characters against U+E000..U+FFFF', () => {
    const xs = ['b', 'a', '\uffff', '😀', '\ue000', 'ab', '', 'é', 'a\u0000'];
    const byBytes = [...xs].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    expect([...xs].sort(compareCodePoints)).toEqual(byBytes);
  });
});
