import { isUtf8 } from 'node:buffer';
import { MAX_OCCURRED_AT_MICROS, MIN_OCCURRED_AT_MICROS, schemaJson } from '../../schemas';
import { escapeTail, isUuid } from './json-bytes';
import { COLUMN_TYPES, stagingKeyPrefix } from './staged-row';

/**
 * The staging transcoder's kernels: a (writer, reader) schema pair compiled to
 * field steps, then to one generated JavaScript function per schema that reads
 * a record's Avro bytes and writes its staging line (consumer/staging/avro-transcoder.ts
 * detects the framing and runs them).
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
export function compile(writerId: number, readerId: number): Program | null {
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

/** What a kernel reports about the record besides its line. */
export interface Captured {
  occurredAt: number;
  typeStart: number;
  typeEnd: number;
  idStart: number;
  idEnd: number;
}


/** What the generated kernels hand the maps over to (the transcoder), with the cursor in `pos`/`o`. */
export interface KernelHost {
  pos: number;
  o: number;
  changes(emit: boolean): void;
  metadata(emit: boolean): void;
}

/**
 * A schema's transcoder, generated as straight-line JavaScript (one block per
 * field, positions in locals) the way avsc generates its decoders: an
 * interpreter loop over field steps cost about twice as much per record.
 * Returns the output position after the line's fields, or -1 to decline.
 */
export type Kernel = (self: KernelHost, src: Buffer, p: number, end: number, out: Buffer, o: number, r: Captured) => number;

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

export function generateKernel(program: Program): Kernel {
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
export function writeInt(out: Buffer, o: number, v: number): number {
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

