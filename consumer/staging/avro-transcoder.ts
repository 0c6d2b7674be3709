import { isUtf8 } from 'node:buffer';
import { MAX_OCCURRED_AT_MICROS, MIN_OCCURRED_AT_MICROS, isKnownVersion, knownSchemaIds, schemaJson, singleObjectHeader } from '../../schemas';
import type { LineArena } from './line-arena';
import { COLUMN_TYPES, type StagedRow, jsonValueText, stagingKeyPrefix } from './staged-row';

/**
 * Transcodes audit records from Avro bytes straight into staging lines, without
 * building the record as JavaScript objects (decoding with avsc and then
 * serialising with JSON.stringify cost ~15 µs per record; this costs ~1 µs).
 *
 * It reads the three framings (schemas/framing.ts): single-object headers by
 * fingerprint, Confluent ids as legacy versions or, with a registry, through
 * `registry` (which the caller resolves before transcoding).
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
const CONFLUENT_HEADER_BYTES = 5;
const SINGLE_OBJECT_HEADER_BYTES = 10;

const EMPTY = Buffer.alloc(0);

/** Signals a record the fast path does not take (never escapes `transcode`). */
class Decline {}
const DECLINE = new Decline();

/** What a kernel reports about the record besides its line. */
export interface Captured {
  occurredAt: number;
  typeStart: number;
  typeEnd: number;
  idStart: number;
  idEnd: number;
}

/**
 * A schema's transcoder, generated as straight-line JavaScript (one block per
 * field, positions in locals) the way avsc generates its decoders: an
 * interpreter loop over field steps cost about twice as much per record.
 * Returns the output position after the line's fields, or -1 to decline.
 */
type Kernel = (self: AvroStagingTranscoder, src: Buffer, p: number, end: number, out: Buffer, o: number, r: Captured) => number;

function bytesCode(bytes: Buffer): string {
  let code = '';
  for (const b of bytes) code += `out[o++]=${b};`;
  return code;
}

/** Reads a zigzag varint into `v` (safe integers only). */
const READ_LONG = `v=0;m=1;do{if(p>=end||m>562949953421312)return -1;b=src[p++];v+=(b&127)*m;m*=128;}while(b&128);if(v>9007199254740991)return -1;v=v%2===0?v/2:-(v+1)/2;`;
const READ_LEN = `${READ_LONG}if(v<0||p+v>end)return -1;`;
/** Copies `v` source bytes from `p` as JSON string content, escaping; -1 on invalid UTF-8. */
const COPY_STRING = `s=p;e=p+v;na=0;for(;p<e;p++){b=src[p];if(b>=32&&b!==34&&b!==92){na|=b;out[o++]=b;}else{out[o++]=92;o=esc(out,o,b);}}if(na>=128&&!isUtf8(src.subarray(s,e)))return -1;`;
const CHECK_UTF8 = `s=p;e=p+v;na=0;for(;p<e;p++)na|=src[p];if(na>=128&&!isUtf8(src.subarray(s,e)))return -1;`;
const NULL_CODE = bytesCode(Buffer.from('null', 'latin1'));

function generateKernel(program: Program): Kernel {
  let body = 'let v=0,m=1,b=0,s=0,e=0,na=0;';
  for (const step of program.steps) {
    const emit = step.prefix !== null;
    if (emit) body += bytesCode(step.prefix!);
    switch (step.op) {
      case OP_STRING: {
        body += READ_LEN;
        if (step.role === ROLE_EVENT_ID) body += 'if(v!==36||!isUuid(src,p))return -1;';
        else if (step.role === ROLE_OBJECT_TYPE) body += 'if(v===0)return -1;r.typeStart=p;r.typeEnd=p+v;';
        else if (step.role === ROLE_OBJECT_ID) body += 'if(v===0)return -1;r.idStart=p;r.idEnd=p+v;';
        else if (step.role === ROLE_ACTION) body += 'if(v===0)return -1;';
        body += emit ? `out[o++]=34;${COPY_STRING}out[o++]=34;` : CHECK_UTF8;
        break;
      }
      case OP_OPT_STRING:
        body += `${READ_LONG}if(v===1){${READ_LEN}${emit ? `out[o++]=34;${COPY_STRING}out[o++]=34;` : CHECK_UTF8}}else if(v===0){${emit ? NULL_CODE : ''}}else return -1;`;
        break;
      case OP_LONG:
      case OP_INT:
        body += READ_LONG;
        // Avro ints are 32-bit; a larger varint would fail the INTEGER column (the general path dead-letters it).
        if (step.op === OP_INT) body += 'if(v<-2147483648||v>2147483647)return -1;';
        if (step.role === ROLE_OCCURRED_AT) body += `if(v<${MIN_OCCURRED_AT_MICROS}||v>${MAX_OCCURRED_AT_MICROS})return -1;r.occurredAt=v;`;
        if (emit) body += 'o=writeInt(out,o,v);';
        break;
      case OP_OPT_INT:
        body += `${READ_LONG}if(v===1){${READ_LONG}if(v<-2147483648||v>2147483647)return -1;${emit ? 'o=writeInt(out,o,v);' : ''}}else if(v===0){${emit ? NULL_CODE : ''}}else return -1;`;
        break;
      case OP_OPT_DOUBLE:
        body += `${READ_LONG}if(v===1){if(p+8>end)return -1;${emit ? 'o=writeDouble(out,o,src.readDoubleLE(p));' : ''}p+=8;}else if(v===0){${emit ? NULL_CODE : ''}}else return -1;`;
        break;
      case OP_CHANGES:
      case OP_METADATA:
        // Maps are rarer and more involved: the transcoder's methods handle them.
        body += `self.pos=p;self.o=o;self.${step.op === OP_CHANGES ? 'changes' : 'metadata'}(${emit});p=self.pos;o=self.o;`;
        break;
    }
  }
  body += `if(p!==end)return -1;${bytesCode(program.missing)}return o;`;
  const factory = new Function('isUtf8', 'isUuid', 'esc', 'writeInt', 'writeDouble', `return function kernel(self,src,p,end,out,o,r){${body}};`) as (
    ...helpers: unknown[]
  ) => Kernel;
  return factory(isUtf8, isUuidAt, escapeTail, writeInt, writeDouble);
}

/** Writes a safe integer in decimal. */
function writeInt(out: Buffer, o: number, v: number): number {
  if (v < 0) {
    out[o++] = 0x2d;
    v = -v;
  }
  let digits = 1;
  for (let n = v; n >= 10; n = Math.floor(n / 10)) digits++;
  let i = o + digits;
  const next = i;
  do {
    const q = Math.floor(v / 10);
    out[--i] = 0x30 + (v - q * 10);
    v = q;
  } while (v > 0);
  return next;
}

/** Writes a double as JSON.stringify would (null for NaN and infinities). */
function writeDouble(out: Buffer, o: number, v: number): number {
  const s = Number.isFinite(v) ? String(v) : 'null';
  for (let i = 0; i < s.length; i++) out[o++] = s.charCodeAt(i);
  return o;
}

function isUuidAt(src: Buffer, start: number): boolean {
  return isUuid(src, start, 36);
}

/**
 * What the transcoder needs of a resolved registry id: whether it exists and which
 * of our versions it is (a schemas RegistryLookup is one; the transcode worker
 * builds one from what the main thread resolved).
 */
export type SchemaVersionLookup = (id: number) => { kind: 'absent' } | { kind: 'found'; version: number | null } | undefined;

export class AvroStagingTranscoder {
  /** By schema version. */
  private readonly kernels = new Map<number, Kernel | null>();
  /** By Confluent id, filled as ids are met (legacy versions, or what the registry said). */
  private readonly kernelsById = new Map<number, Kernel | null>();
  /** Single-object fingerprints as two little-endian words, and their kernels: a linear scan of a few entries. */
  private readonly fpLow: number[] = [];
  private readonly fpHigh: number[] = [];
  private readonly fpKernels: (Kernel | null)[] = [];
  private readonly types = new StringCache();
  private readonly captured: Captured = { occurredAt: 0, typeStart: 0, typeEnd: 0, idStart: 0, idEnd: 0 };
  // Cursor for the map fields, which the generated kernels hand over to methods.
  private src: Buffer = EMPTY;
  /** @internal Input position; the generated kernels set it before calling `changes`/`metadata` and read it back. */
  pos = 0;
  private end = 0;
  private out: Buffer = EMPTY;
  /** @internal Output position, handed over like `pos`. */
  o = 0;
  /**
   * Keys of the map being read, as (start, length) pairs in `src`, and how many
   * numbers are used: one array for every map (maps do not nest in the schema);
   * a fresh one per map was about half of what the consumer allocated per event.
   */
  private readonly seen: number[] = [];
  private seenUsed = 0;

  private readonly partitionPrefix = Buffer.from(`,${stagingKeyPrefix('kafka_partition')}`, 'latin1');
  private readonly offsetPrefix = Buffer.from(`,${stagingKeyPrefix('kafka_offset')}`, 'latin1');

  constructor(
    readerSchemaId: number,
    private readonly registry?: SchemaVersionLookup,
  ) {
    for (const id of knownSchemaIds()) {
      const program = compile(id, readerSchemaId);
      const kernel = program && generateKernel(program);
      this.kernels.set(id, kernel);
      const header = singleObjectHeader(id);
      this.fpLow.push(header.readUInt32LE(2));
      this.fpHigh.push(header.readUInt32LE(6));
      this.fpKernels.push(kernel);
    }
  }

  /** The staged row for a message, or null when it must take the general path. */
  transcode(value: Buffer | null, partition: number, offset: string, arena: LineArena): StagedRow | null {
    if (value === null) return null;
    arena.reserve(AvroStagingTranscoder.lineBound(value.length));
    const out = arena.buffer;
    const o = this.transcodeLine(value, partition, offset, out, arena.start);
    if (o < 0) return null;
    const start = arena.commit(o);
    const r = this.captured;
    return {
      partition,
      offset,
      size: value.length,
      occurredAt: r.occurredAt,
      objectType: this.types.get(value, r.typeStart, r.typeEnd),
      objectId: utf8(value, r.idStart, r.idEnd),
      chunk: out,
      start,
      end: o,
    };
  }

  /** Room `transcodeLine` may need in `out` for a value of `length` bytes. */
  static lineBound(length: number): number {
    // Worst case: every byte escaped twice (\\u00xx), plus names and framing.
    return length * 12 + 1024;
  }

  /**
   * Writes a message's staging line into `out` from `o` (room: `lineBound`), and
   * returns where the line ends, or -1 when the message must take the general path.
   * Event time and where the object type and id are in `value` are then in `captured`
   * (the transcode worker hands those over instead of strings).
   */
  transcodeLine(value: Buffer, partition: number, offset: string, out: Buffer, o: number): number {
    if (value.length < CONFLUENT_HEADER_BYTES) return -1;
    let kernel: Kernel | null | undefined = null;
    let p: number;
    if (value[0] === 0xc3) {
      if (value[1] !== 0x01 || value.length < SINGLE_OBJECT_HEADER_BYTES) return -1;
      const low = value.readUInt32LE(2);
      const high = value.readUInt32LE(6);
      for (let i = 0; i < this.fpLow.length; i++) {
        if (this.fpLow[i] === low && this.fpHigh[i] === high) {
          kernel = this.fpKernels[i];
          break;
        }
      }
      p = SINGLE_OBJECT_HEADER_BYTES;
    } else if (value[0] === 0) {
      const id = value.readInt32BE(1);
      kernel = this.kernelsById.get(id);
      if (kernel === undefined) kernel = this.kernelOfId(id);
      p = CONFLUENT_HEADER_BYTES;
    } else {
      return -1;
    }
    if (!kernel) return -1;
    const r = this.captured;
    this.src = value;
    this.end = value.length;
    this.out = out;
    try {
      o = kernel(this, value, p, value.length, out, o, r);
    } catch (err) {
      if (err === DECLINE) return -1;
      throw err;
    } finally {
      this.src = this.out = EMPTY;
    }
    if (o < 0) return -1;
    for (let i = 0; i < this.partitionPrefix.length; i++) out[o++] = this.partitionPrefix[i]!;
    o = writeInt(out, o, partition);
    for (let i = 0; i < this.offsetPrefix.length; i++) out[o++] = this.offsetPrefix[i]!;
    for (let i = 0; i < offset.length; i++) out[o++] = offset.charCodeAt(i);
    out[o++] = 0x7d;
    out[o++] = 0x0a;
    return o;
  }

  /** What the last successful `transcodeLine` captured. */
  get lastCaptured(): Readonly<Captured> {
    return this.captured;
  }

  /**
   * The kernel for a Confluent id: the legacy version without a registry; with
   * one, the version the registry's schema is (a legacy reading for ids it does
   * not have). Unresolved ids are not cached: the general path reports them.
   */
  private kernelOfId(id: number): Kernel | null {
    let kernel: Kernel | null;
    if (!this.registry) {
      kernel = this.kernels.get(id) ?? null;
    } else {
      const entry = this.registry(id);
      if (entry === undefined) return null;
      if (entry.kind === 'absent') kernel = isKnownVersion(id) ? (this.kernels.get(id) ?? null) : null;
      else kernel = entry.version === null ? null : (this.kernels.get(entry.version) ?? null);
    }
    this.kernelsById.set(id, kernel);
    return kernel;
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

  private checkUtf8(start: number, end: number): void {
    const src = this.src;
    for (let i = start; i < end; i++) {
      if (src[i]! >= 0x80) {
        if (!isUtf8(src.subarray(start, end))) throw DECLINE;
        return;
      }
    }
  }

  /**
   * Source bytes as JSON string content: escaped once for a string value of the
   * line, or twice for string content of a JSON text (changes, metadata) that is
   * itself a string value of the line.
   */
  private content(start: number, end: number, twice: boolean): void {
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
        if (twice) {
          // Inner escape `\x` becomes `\\` + outer-escaped `x`; a quote becomes \\\".
          out[o++] = 0x5c;
          if (b === 0x22 || b === 0x5c) out[o++] = 0x5c;
        }
        o = escapeTail(out, o, b);
      }
    }
    this.o = o;
    if (nonAscii && !isUtf8(src.subarray(start, end))) throw DECLINE;
  }

  /** A map key, as a quoted inner string; declines keys JavaScript objects would reorder or drop. */
  private mapKey(emit: boolean): void {
    const len = this.length();
    const start = this.pos;
    this.pos += len;
    // `__proto__` is kept here (it is text in the stored JSON); the general path cannot decode it.
    if (isArrayIndex(this.src, start, len)) throw DECLINE;
    // Map keys are few: compare each with those before it, byte by byte.
    const seen = this.seen;
    for (let i = 0; i < this.seenUsed; i += 2) {
      if (seen[i + 1] === len && this.src.compare(this.src, start, start + len, seen[i]!, seen[i]! + len) === 0) throw DECLINE;
    }
    seen[this.seenUsed++] = start;
    seen[this.seenUsed++] = len;
    if (!emit) {
      this.checkUtf8(start, start + len);
      return;
    }
    this.ascii('\\"');
    this.content(start, start + len, true);
    this.ascii('\\"');
  }

  /**
   * `changes`: {"field":{"old":<json>,"new":<json>}} as JSON text in a string value, or null when empty.
   * @internal Called by the generated kernels (hence not private), with the cursor in `pos`/`o`.
   */
  changes(emit: boolean): void {
    this.map(emit, this.changeEntry);
  }

  private changeEntry(emit: boolean): void {
    if (emit) this.raw(CHANGE_OLD);
    this.changeValue(emit);
    if (emit) this.raw(CHANGE_NEW);
    this.changeValue(emit);
    if (emit) this.out[this.o++] = 0x7d;
  }

  /**
   * `metadata`: {"key":"value"} as JSON text in a string value, or null when empty.
   * @internal Called by the generated kernels (hence not private), with the cursor in `pos`/`o`.
   */
  metadata(emit: boolean): void {
    this.map(emit, this.metadataEntry);
  }

  private metadataEntry(emit: boolean): void {
    const len = this.length();
    const start = this.pos;
    this.pos += len;
    if (emit) {
      this.ascii('\\"');
      this.content(start, start + len, true);
      this.ascii('\\"');
    } else this.checkUtf8(start, start + len);
  }

  /** An Avro map written as a JSON object inside a string value; `value` reads (and writes) one entry's value. */
  private map(emit: boolean, value: (this: AvroStagingTranscoder, emit: boolean) => void): void {
    this.seenUsed = 0;
    const at = this.o;
    if (emit) this.out[this.o++] = 0x22;
    for (let n = this.blockCount(); n !== 0; n = this.blockCount()) {
      for (let i = 0; i < n; i++) {
        if (emit) this.out[this.o++] = this.seenUsed === 0 ? 0x7b : 0x2c;
        this.mapKey(emit);
        if (emit) this.out[this.o++] = 0x3a;
        value.call(this, emit);
      }
    }
    if (!emit) return;
    if (this.seenUsed === 0) {
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
      this.content(start, start + len, false);
      return;
    }
    const text = this.src.toString('utf8', start, start + len);
    if (!isUtf8(this.src.subarray(start, start + len))) throw DECLINE;
    const escaped = JSON.stringify(jsonValueText(text));
    this.o += this.out.write(escaped.slice(1, -1), this.o, 'utf8');
  }
}


/** The one-letter escapes JSON.stringify uses (", \, \b, \t, \n, \f, \r); 0 means \u00xx. */
const SHORT_ESCAPE = new Uint8Array(256);
for (const [byte, letter] of [[0x22, '"'], [0x5c, '\\'], [0x08, 'b'], [0x09, 't'], [0x0a, 'n'], [0x0c, 'f'], [0x0d, 'r']] as const) {
  SHORT_ESCAPE[byte] = letter.charCodeAt(0);
}

/** Writes what follows the backslash of a JSON escape for byte `b` (a quote, backslash or control). */
function escapeTail(out: Buffer, o: number, b: number): number {
  const letter = SHORT_ESCAPE[b]!;
  if (letter !== 0) {
    out[o++] = letter;
    return o;
  }
  out[o++] = 0x75;
  out[o++] = 0x30;
  out[o++] = 0x30;
  out[o++] = HEX[b >> 4]!;
  out[o++] = HEX[b & 15]!;
  return o;
}

/** 1 for the bytes of hex digits (either case). */
const HEX_DIGIT = new Uint8Array(256);
for (const c of '0123456789abcdefABCDEF') HEX_DIGIT[c.charCodeAt(0)] = 1;

function isUuid(src: Buffer, start: number, len: number): boolean {
  if (len !== 36) return false;
  if (src[start + 8] !== 0x2d || src[start + 13] !== 0x2d || src[start + 18] !== 0x2d || src[start + 23] !== 0x2d) return false;
  let hex = 0;
  for (let i = 0; i < 36; i++) hex += HEX_DIGIT[src[start + i]!]!;
  return hex === 32;
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

function matches(src: Buffer, start: number, bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) if (src[start + i] !== bytes[i]) return false;
  return true;
}

/**
 * Strings for a low-cardinality column (object_type), reused instead of decoded
 * for every record: a few recent values are compared byte by byte.
 */
export class StringCache {
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
export function utf8(src: Buffer, start: number, end: number): string {
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
