import { isUtf8 } from 'node:buffer';
import { isKnownVersion, knownSchemaIds, singleObjectHeader } from '../../schemas';
import { type Captured, type Kernel, compile, generateKernel, writeInt } from './avro-kernel';
import { NULL, StringCache, escapeTail, isArrayIndex, isSimpleJson, utf8 } from './json-bytes';
import type { LineArena } from './line-arena';
import { type StagedRow, jsonValueText, stagingKeyPrefix } from './staged-row';

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

const CHANGE_OLD = Buffer.from('{\\"old\\":', 'latin1');
const CHANGE_NEW = Buffer.from(',\\"new\\":', 'latin1');
const CONFLUENT_HEADER_BYTES = 5;
const SINGLE_OBJECT_HEADER_BYTES = 10;

const EMPTY = Buffer.alloc(0);

/** Signals a record the fast path does not take (never escapes `transcode`). */
class Decline {}
const DECLINE = new Decline();

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


