/**
 * A transcode worker thread: turns a batch's Avro values into staging lines with
 * the same AvroStagingTranscoder the sink uses in-thread, and hands back the lines
 * and, per message, what the sink needs to place the row (event time, where the
 * object type and id are in the value; strings are rebuilt on the sink's side,
 * which is cheaper than cloning them across threads).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { AvroStagingTranscoder, type SchemaVersionLookup } from './avro-transcoder';
import type { TranscodeRequest, TranscodeResponse } from './transcode-protocol';

interface WorkerData {
  readerSchemaId: number;
  /** Registry ids go through the registry (otherwise Confluent ids are legacy versions). */
  registry: boolean;
}

const { readerSchemaId, registry } = workerData as WorkerData;
const resolved = new Map<number, { kind: 'absent' } | { kind: 'found'; version: number | null }>();
const lookup: SchemaVersionLookup = (id) => resolved.get(id);
const transcoder = new AvroStagingTranscoder(readerSchemaId, registry ? lookup : undefined);
/** Reused between batches: lines are written here, then copied out at their exact size. */
let scratch = Buffer.allocUnsafeSlow(4 * 1024 * 1024);

function handle(req: TranscodeRequest): TranscodeResponse {
  for (const [id, version] of req.ids) resolved.set(id, version === 'absent' ? { kind: 'absent' } : { kind: 'found', version });
  const data = Buffer.from(req.data);
  const n = req.offsets.length;
  const starts = new Int32Array(n);
  const ends = new Int32Array(n);
  const occurredAt = new Float64Array(n);
  const keys = new Int32Array(4 * n);
  const captured = transcoder.lastCaptured;
  let o = 0;
  for (let i = 0; i < n; i++) {
    const vs = req.bounds[2 * i]!;
    starts[i] = -1;
    if (vs < 0) continue;
    const value = data.subarray(vs, req.bounds[2 * i + 1]!);
    const need = o + AvroStagingTranscoder.lineBound(value.length);
    if (need > scratch.length) {
      const bigger = Buffer.allocUnsafeSlow(Math.max(need, 2 * scratch.length));
      scratch.copy(bigger, 0, 0, o);
      scratch = bigger;
    }
    const end = transcoder.transcodeLine(value, req.partition, String(req.offsets[i]), scratch, o);
    if (end < 0) continue;
    starts[i] = o;
    ends[i] = end;
    occurredAt[i] = captured.occurredAt;
    keys[4 * i] = captured.typeStart;
    keys[4 * i + 1] = captured.typeEnd;
    keys[4 * i + 2] = captured.idStart;
    keys[4 * i + 3] = captured.idEnd;
    o = end;
  }
  const lines = new ArrayBuffer(o);
  new Uint8Array(lines).set(scratch.subarray(0, o));
  return { seq: req.seq, lines, starts, ends, occurredAt, keys };
}

parentPort!.on('message', (req: TranscodeRequest) => {
  let res: TranscodeResponse;
  try {
    res = handle(req);
  } catch (err) {
    res = { seq: req.seq, lines: new ArrayBuffer(0), starts: new Int32Array(0), ends: new Int32Array(0), occurredAt: new Float64Array(0), keys: new Int32Array(0), error: (err as Error).stack ?? String(err) };
  }
  parentPort!.postMessage(res, [res.lines, res.starts.buffer, res.ends.buffer, res.occurredAt.buffer, res.keys.buffer] as ArrayBuffer[]);
});
