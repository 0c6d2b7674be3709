import { isUtf8 } from 'node:buffer';
import { knownSchemaIds, schemaJson } from '../../schemas';
import type { LineArena } from './line-arena';
import { COLUMN_TYPES, type StagedRow, jsonValueText, stagingKeyPrefix } from './staged-row';

/**
 * Transcodes audit records from Avro bytes straight into staging lines, without
 * building the record as JavaScript objects (decoding with avsc and then
 * serialising with JSON.stringify cost ~15 µs per record; this costs ~1 µs).
 *
 * It is the fast path only: whenever a record is anything but plainly valid
 * (unknown schema, bad framing, invalid UTF-8, a failed semantic check, a map key
 * JavaScript would reorder), `transcode` returns null and the caller takes the
 * general path (avsc decode, validation, dead-letter on error), so behaviour is
 * defined in one place. A property test checks both paths give the same rows.
 */

// Plain numbers rather than an enum: `case` labels must be constants for a jump table.
const OP_STRING = 0;
const OP_OPT_STRING = 1;
const OP_LONG = 2;
const OP_INT = 3;
const OP_OPT_INT = 4;
const OP_OPT_DOUBLE = 5;
const OP_CHANGES = 6;
const OP_METADATA = 7;
type Op = number;

interface FieldStep {
  op: Op;
  /** `"name":` as bytes (with a leading comma except for the first column), or null to skip the value. */
  prefix: Buffer | null;
  role: Role;
}

const ROLE_NONE = 0;
const ROLE_EVENT_ID = 1;
const ROLE_OCCURRED_AT = 2;
const ROLE_OBJECT_TYPE = 3;
const ROLE_OBJECT_ID = 4;
const ROLE_ACTION = 5;
type Role = number;

interface Program {
  steps: FieldStep[];
  /** Columns the writer schema lacks, emitted as null (their reader default). */
  missing: Buffer;
}

const ROLE_BY_NAME: Record<string, Role> = {
  event_id: ROLE_EVENT_ID,
  occurred_at: ROLE_OCCURRED_AT,
  object_type: ROLE_OBJECT_TYPE,
  object_id: ROLE_OBJECT_ID,
  action: ROLE_ACTION,
};

type SchemaType = unknown;

function opOf(t: SchemaType): Op | null {
  const name = typeof t === 'string' ? t : (t as { type?: unknown } | null)?.type;
  if (name === 'string') return OP_STRING;
  if (name === 'long') return OP_LONG;
  if (name === 'int') return OP_INT;
  if (Array.isArray(t) && t.length === 2 && t[0] === 'null') {
    const inner = opOf(t[1]);
    if (inner === OP_STRING) return OP_OPT_STRING;
    if (inner === OP_INT) return OP_OPT_INT;
    if (t[1] === 'double') return OP_OPT_DOUBLE;
    return null;
  }
  if (name === 'map') {
    const values = (t as { values: SchemaType }).values;
    if (values === 'string') return OP_METADATA;
    const rec = values as { type?: string; fields?: { name: string; type: SchemaType }[] };
    if (
      rec.type === 'record' &&
      rec.fields?.length === 2 &&
      rec.fields[0]!.name === 'old' &&
      rec.fields[1]!.name === 'new' &&
      rec.fields.every((f) => opOf(f.type) === OP_OPT_STRING)
    ) {
      return OP_CHANGES;
    }
  }
  return null;
}

interface SchemaField {
  name: string;
  type: SchemaType;
  default?: unknown;
}

function fieldsOf(id: number): SchemaField[] {
  return (schemaJson(id) as unknown as { fields: SchemaField[] }).fields;
}

/** The staging columns each field feeds; null when this schema pair needs the general path. */
function compile(writerId: number, readerId: number): Program | null {
  const reader = new Map(fieldsOf(readerId).map((f) => [f.name, f]));
  const columns = new Map(COLUMN_TYPES.map(([n]) => [n, true]));
  const steps: FieldStep[] = [];
  const written = new Set<string>();
  let first = true;
  for (const f of fieldsOf(writerId)) {
    const op = opOf(f.type);
    if (op === null) return null;
    const r = reader.get(f.name);
    if (r && opOf(r.type) !== op) return null; // a promotion or a type change: let avsc resolve it
    const emit = r !== undefined && columns.has(f.name);
    steps.push({
      op,
      prefix: emit ? Buffer.from(`${first ? '{' : ','}${stagingKeyPrefix(f.name)}`, 'latin1') : null,
      role: ROLE_BY_NAME[f.name] ?? ROLE_NONE,
    });
    if (emit) {
      written.add(f.name);
      first = false;
    }
  }
  if (first) return null;
  for (const role of Object.keys(ROLE_BY_NAME)) if (!written.has(role)) return null;
  let missing = '';
  for (const [name] of COLUMN_TYPES) {
    if (written.has(name) || name === 'kafka_partition' || name === 'kafka_offset') continue;
    const r = reader.get(name);
    // Only null defaults can be filled in without decoding; anything else goes through avsc.
    if (r && r.default !== null) return null;
    missing += `,${stagingKeyPrefix(name)}null`;
  }
  return { steps, missing: Buffer.from(missing, 'latin1') };
}

const HEX = Buffer.from('0123456789abcdef', 'latin1');
const CHANGE_OLD = Buffer.from('{\\"old\\":', 'latin1');
const CHANGE_NEW = Buffer.from(',\\"new\\":', 'latin1');
const NULL = Buffer.from('null', 'latin1');
const TRUE_BYTES = Buffer.from('true', 'latin1');
const FALSE_BYTES = Buffer.from('false', 'latin1');
const PROTO = Buffer.from('__proto__', 'latin1');
const HEADER_BYTES = 5;
const MIN_MICROS = Date.UTC(2000, 0, 1) * 1000;
const MAX_MICROS = Date.UTC(2200, 0, 1) * 1000;

/** Signals a record the fast path does not take (never escapes `transcode`). */
class Decline {}
const DECLINE = new Decline();

export class AvroStagingTranscoder {
  private readonly programs = new Map<number, Program | null>();
  private readonly types = new StringCache();
  // Decoder state for the record being transcoded.
  private src: Buffer = Buffer.alloc(0);
  private pos = 0;
  private end = 0;
  private out: Buffer = Buffer.alloc(0);
  private o = 0;

  private readonly partitionPrefix = Buffer.from(`,${stagingKeyPrefix('kafka_partition')}`, 'latin1');
  private readonly offsetPrefix = Buffer.from(`,${stagingKeyPrefix('kafka_offset')}`, 'latin1');

  constructor(private readonly readerSchemaId: number) {
    for (const id of knownSchemaIds()) this.programs.set(id, compile(id, readerSchemaId));
  }

  /** The staged row for a message, or null when it must take the general path. */
  transcode(value: Buffer | null, partition: number, offset: string, arena: LineArena): StagedRow | null {
    if (value === null || value.length < HEADER_BYTES || value[0] !== 0) return null;
    const program = this.programs.get(value.readInt32BE(1));
    if (!program) return null;
    // Worst case: every byte escaped twice (\\u00xx), plus names and framing.
    arena.reserve(value.length * 12 + 1024);
    this.src = value;
    this.pos = HEADER_BYTES;
    this.end = value.length;
    this.out = arena.buffer;
    this.o = arena.start;
    try {
      return this.run(program, partition, offset, arena, value.length);
    } catch (err) {
      if (err === DECLINE) return null;
      throw err;
    } finally {
      this.src = this.out = EMPTY;
    }
  }

  private run(program: Program, partition: number, offset: string, arena: LineArena, size: number): StagedRow {
    let occurredAt = 0;
    let objectType = '';
    let objectId = '';
    const steps = program.steps;
    for (let k = 0; k < steps.length; k++) {
      const step = steps[k]!;
      if (step.prefix) this.raw(step.prefix);
      const emit = step.prefix !== null;
      switch (step.op) {
        case OP_STRING: {
          const len = this.length();
          const start = this.pos;
          this.pos += len;
          switch (step.role) {
            case ROLE_EVENT_ID:
              if (!isUuid(this.src, start, len)) throw DECLINE;
              break;
            case ROLE_OBJECT_TYPE:
              if (len === 0) throw DECLINE;
              objectType = this.types.get(this.src, start, start + len);
              break;
            case ROLE_OBJECT_ID:
              if (len === 0) throw DECLINE;
              objectId = utf8(this.src, start, start + len);
              break;
            case ROLE_ACTION:
              if (len === 0) throw DECLINE;
              break;
          }
          if (emit) this.string1(start, start + len);
          else this.checkUtf8(start, start + len);
          break;
        }
        case OP_OPT_STRING: {
          if (this.union()) {
            const len = this.length();
            const start = this.pos;
            this.pos += len;
            if (emit) this.string1(start, start + len);
            else this.checkUtf8(start, start + len);
          } else if (emit) this.raw(NULL);
          break;
        }
        case OP_LONG: {
          const v = this.long();
          if (step.role === ROLE_OCCURRED_AT) {
            if (v < MIN_MICROS || v > MAX_MICROS) throw DECLINE;
            occurredAt = v;
          }
          if (emit) this.integer(v);
          break;
        }
        case OP_INT: {
          const v = this.long();
          if (emit) this.integer(v);
          break;
        }
        case OP_OPT_INT: {
          if (this.union()) {
            const v = this.long();
            if (emit) this.integer(v);
          } else if (emit) this.raw(NULL);
          break;
        }
        case OP_OPT_DOUBLE: {
          if (this.union()) {
            if (this.pos + 8 > this.end) throw DECLINE;
            const v = this.src.readDoubleLE(this.pos);
            this.pos += 8;
            if (emit) this.ascii(Number.isFinite(v) ? String(v) : 'null');
          } else if (emit) this.raw(NULL);
          break;
        }
        case OP_CHANGES:
          this.changes(emit);
          break;
        case OP_METADATA:
          this.metadata(emit);
          break;
      }
    }
    if (this.pos !== this.end) throw DECLINE; // trailing bytes: avsc rejects them
    this.raw(program.missing);
    this.raw(this.partitionPrefix);
    this.integer(partition);
    this.raw(this.offsetPrefix);
    this.ascii(offset);
    this.out[this.o++] = 0x7d;
    this.out[this.o++] = 0x0a;
    return { partition, offset, size, occurredAt, objectType, objectId, line: arena.commit(this.o) };
  }

  // ---- Avro primitives ----

  /** A zigzag varint as a safe integer (larger values take the general path). */
  private long(): number {
    const src = this.src;
    let n = 0;
    let m = 1;
    let b: number;
    do {
      if (this.pos >= this.end || m > 2 ** 49) throw DECLINE;
      b = src[this.pos++]!;
      n += (b & 0x7f) * m;
      m *= 128;
    } while (b & 0x80);
    if (n > Number.MAX_SAFE_INTEGER) throw DECLINE;
    return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
  }

  /** A string/bytes length, checked against what is left. */
  private length(): number {
    const len = this.long();
    if (len < 0 || this.pos + len > this.end) throw DECLINE;
    return len;
  }

  /** The branch of a ["null", T] union: false for null. */
  private union(): boolean {
    const b = this.long();
    if (b === 0) return false;
    if (b === 1) return true;
    throw DECLINE;
  }

  /** Map block counts; a negative count is followed by the block's byte size. */
  private blockCount(): number {
    let n = this.long();
    if (n < 0) {
      this.long();
      n = -n;
    }
    return n;
  }

  // ---- Output ----

  private raw(bytes: Buffer): void {
    const out = this.out;
    let o = this.o;
    for (let i = 0; i < bytes.length; i++) out[o++] = bytes[i]!;
    this.o = o;
  }

  private ascii(s: string): void {
    const out = this.out;
    let o = this.o;
    for (let i = 0; i < s.length; i++) out[o++] = s.charCodeAt(i);
    this.o = o;
  }

  private integer(v: number): void {
    this.ascii(String(v));
  }

  private checkUtf8(start: number, end: number): void {
    const src = this.src;
    for (let i = start; i < end; i++) {
      if (src[i]! >= 0x80) {
        if (!isUtf8(src.subarray(start, end))) throw DECLINE;
        return;
      }
    }
  }

  /** Source bytes as a JSON string (quotes included). */
  private string1(start: number, end: number): void {
    const out = this.out;
    out[this.o++] = 0x22;
    this.content1(start, end);
    out[this.o++] = 0x22;
  }

  /** Source bytes escaped once: string content inside the line. */
  private content1(start: number, end: number): void {
    const src = this.src;
    const out = this.out;
    let o = this.o;
    let nonAscii = false;
    for (let i = start; i < end; i++) {
      const b = src[i]!;
      if (b >= 0x20 && b !== 0x22 && b !== 0x5c) {
        if (b >= 0x80) nonAscii = true;
        out[o++] = b;
      } else {
        out[o++] = 0x5c;
        o = escapeTail(out, o, b);
      }
    }
    this.o = o;
    if (nonAscii && !isUtf8(src.subarray(start, end))) throw DECLINE;
  }

  /**
   * Source bytes escaped twice: string content of a JSON text (changes,
   * metadata) that is itself a string value of the line.
   */
  private content2(start: number, end: number): void {
    const src = this.src;
    const out = this.out;
    let o = this.o;
    let nonAscii = false;
    for (let i = start; i < end; i++) {
      const b = src[i]!;
      if (b >= 0x20 && b !== 0x22 && b !== 0x5c) {
        if (b >= 0x80) nonAscii = true;
        out[o++] = b;
      } else {
        // Inner escape `\x` becomes `\\` + outer-escaped `x`; a quote becomes \\\".
        out[o++] = 0x5c;
        out[o++] = 0x5c;
        if (b === 0x22 || b === 0x5c) out[o++] = 0x5c;
        o = escapeTail(out, o, b);
      }
    }
    this.o = o;
    if (nonAscii && !isUtf8(src.subarray(start, end))) throw DECLINE;
  }

  /** A map key, as a quoted inner string; declines keys JavaScript objects would reorder or drop. */
  private mapKey(seen: number[], emit: boolean): void {
    const len = this.length();
    const start = this.pos;
    this.pos += len;
    if (isProto(this.src, start, len) || isArrayIndex(this.src, start, len)) throw DECLINE;
    // Map keys are few: compare each with those before it, byte by byte.
    for (let i = 0; i < seen.length; i += 2) {
      if (seen[i + 1] === len && this.src.compare(this.src, start, start + len, seen[i]!, seen[i]! + len) === 0) throw DECLINE;
    }
    seen.push(start, len);
    if (!emit) {
      this.checkUtf8(start, start + len);
      return;
    }
    this.ascii('\\"');
    this.content2(start, start + len);
    this.ascii('\\"');
  }

  private changes(emit: boolean): void {
    const seen: number[] = [];
    const at = this.o;
    if (emit) this.out[this.o++] = 0x22;
    for (let n = this.blockCount(); n !== 0; n = this.blockCount()) {
      for (let i = 0; i < n; i++) {
        if (emit) this.out[this.o++] = seen.length === 0 ? 0x7b : 0x2c;
        this.mapKey(seen, emit);
        if (emit) {
          this.out[this.o++] = 0x3a;
          this.raw(CHANGE_OLD);
        }
        this.changeValue(emit);
        if (emit) this.raw(CHANGE_NEW);
        this.changeValue(emit);
        if (emit) this.out[this.o++] = 0x7d;
      }
    }
    if (!emit) return;
    if (seen.length === 0) {
      this.o = at;
      this.raw(NULL);
    } else {
      this.out[this.o++] = 0x7d;
      this.out[this.o++] = 0x22;
    }
  }

  private metadata(emit: boolean): void {
    const seen: number[] = [];
    const at = this.o;
    if (emit) this.out[this.o++] = 0x22;
    for (let n = this.blockCount(); n !== 0; n = this.blockCount()) {
      for (let i = 0; i < n; i++) {
        if (emit) this.out[this.o++] = seen.length === 0 ? 0x7b : 0x2c;
        this.mapKey(seen, emit);
        const len = this.length();
        const start = this.pos;
        this.pos += len;
        if (emit) {
          this.ascii(':\\"');
          this.content2(start, start + len);
          this.ascii('\\"');
        } else this.checkUtf8(start, start + len);
      }
    }
    if (!emit) return;
    if (seen.length === 0) {
      this.o = at;
      this.raw(NULL);
    } else {
      this.out[this.o++] = 0x7d;
      this.out[this.o++] = 0x22;
    }
  }

  /** An old/new JSON text: kept when plainly valid JSON, normalised like `jsonValueText` otherwise. */
  private changeValue(emit: boolean): void {
    if (!this.union()) {
      if (emit) this.raw(NULL);
      return;
    }
    const len = this.length();
    const start = this.pos;
    this.pos += len;
    if (!emit) {
      this.checkUtf8(start, start + len);
      return;
    }
    if (isSimpleJson(this.src, start, start + len)) {
      this.content1(start, start + len);
      return;
    }
    const text = this.src.toString('utf8', start, start + len);
    if (!isUtf8(this.src.subarray(start, start + len))) throw DECLINE;
    const escaped = JSON.stringify(jsonValueText(text));
    this.o += this.out.write(escaped.slice(1, -1), this.o, 'utf8');
  }
}

const EMPTY = Buffer.alloc(0);

/** Writes what follows the backslash of a JSON escape for byte `b` (a quote, backslash or control). */
function escapeTail(out: Buffer, o: number, b: number): number {
  switch (b) {
    case 0x22:
      out[o++] = 0x22;
      break;
    case 0x5c:
      out[o++] = 0x5c;
      break;
    case 0x08:
      out[o++] = 0x62;
      break;
    case 0x09:
      out[o++] = 0x74;
      break;
    case 0x0a:
      out[o++] = 0x6e;
      break;
    case 0x0c:
      out[o++] = 0x66;
      break;
    case 0x0d:
      out[o++] = 0x72;
      break;
    default:
      out[o++] = 0x75;
      out[o++] = 0x30;
      out[o++] = 0x30;
      out[o++] = HEX[b >> 4]!;
      out[o++] = HEX[b & 15]!;
  }
  return o;
}

function isHex(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66) || (b >= 0x41 && b <= 0x46);
}

function isUuid(src: Buffer, start: number, len: number): boolean {
  if (len !== 36) return false;
  for (let i = 0; i < 36; i++) {
    const b = src[start + i]!;
    if (i === 8 || i === 13 || i === 18 || i === 23) {
      if (b !== 0x2d) return false;
    } else if (!isHex(b)) return false;
  }
  return true;
}

/** Keys JavaScript orders numerically in an object (array indices: 0 .. 2^32 - 2). */
function isArrayIndex(src: Buffer, start: number, len: number): boolean {
  if (len === 0 || len > 10) return false;
  let n = 0;
  for (let i = start; i < start + len; i++) {
    const c = src[i]!;
    if (c < 0x30 || c > 0x39) return false;
    n = n * 10 + (c - 0x30);
  }
  if (len > 1 && src[start] === 0x30) return false;
  return n < 4294967295;
}

/** `__proto__` would set an object's prototype instead of adding a key. */
function isProto(src: Buffer, start: number, len: number): boolean {
  return len === PROTO.length && matches(src, start, PROTO);
}

function matches(src: Buffer, start: number, bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) if (src[start + i] !== bytes[i]) return false;
  return true;
}

/**
 * Strings for a low-cardinality column (object_type), reused instead of decoded
 * for every record: a few recent values are compared byte by byte.
 */
class StringCache {
  private readonly bytes: Buffer[] = [];
  private readonly strings: string[] = [];

  get(src: Buffer, start: number, end: number): string {
    const len = end - start;
    for (let i = 0; i < this.bytes.length; i++) {
      const b = this.bytes[i]!;
      if (b.length === len && matches(src, start, b)) return this.strings[i]!;
    }
    const s = utf8(src, start, end);
    if (this.bytes.length >= 16) {
      this.bytes.pop();
      this.strings.pop();
    }
    this.bytes.unshift(Buffer.from(src.subarray(start, end)));
    this.strings.unshift(s);
    return s;
  }
}

/**
 * Decodes UTF-8 without Buffer#toString's argument handling (a measurable share
 * per record); utf8Slice is the binding toString itself ends in, also used by avsc.
 */
function utf8(src: Buffer, start: number, end: number): string {
  return (src as Buffer & { utf8Slice(start: number, end: number): string }).utf8Slice(start, end);
}

function isDigit(b: number | undefined): boolean {
  return b !== undefined && b >= 0x30 && b <= 0x39;
}

/** The byte form of `SIMPLE_JSON`: a JSON number, literal, or string without escapes. */
function isSimpleJson(s: Buffer, start: number, end: number): boolean {
  const len = end - start;
  if (len === 0) return false;
  const first = s[start]!;
  if (first === 0x22) {
    if (len < 2 || s[end - 1] !== 0x22) return false;
    for (let i = start + 1; i < end - 1; i++) {
      const b = s[i]!;
      if (b < 0x20 || b === 0x22 || b === 0x5c) return false;
    }
    return true;
  }
  if (len === 4 && matches(s, start, TRUE_BYTES)) return true;
  if (len === 4 && matches(s, start, NULL)) return true;
  if (len === 5 && matches(s, start, FALSE_BYTES)) return true;
  let i = start;
  if (s[i] === 0x2d) i++;
  if (!isDigit(s[i])) return false;
  if (s[i] === 0x30) i++;
  else while (i < end && isDigit(s[i])) i++;
  if (i < end && s[i] === 0x2e) {
    i++;
    if (i >= end || !isDigit(s[i])) return false;
    while (i < end && isDigit(s[i])) i++;
  }
  if (i < end && (s[i] === 0x65 || s[i] === 0x45)) {
    i++;
    if (i < end && (s[i] === 0x2b || s[i] === 0x2d)) i++;
    if (i >= end || !isDigit(s[i])) return false;
    while (i < end && isDigit(s[i])) i++;
  }
  return i === end;
}
