/** Messages between the sink's thread and the transcode workers (transcode-pool.ts, transcode-worker.ts). */

/** A registry id as the main thread resolved it: absent, or one of our versions (null: a schema this build does not know). */
export type ResolvedId = [id: number, version: number | null | 'absent'];

export interface TranscodeRequest {
  seq: number;
  partition: number;
  /** The batch's values end to end (transferred). */
  data: ArrayBuffer;
  /** Start and end of each value in `data`; -1, -1 for a null value. */
  bounds: Int32Array;
  /** Each message's offset (safe integers: Kafka offsets stay far below 2^53). */
  offsets: Float64Array;
  /** Registry ids resolved since the last request to this worker. */
  ids: ResolvedId[];
}

export interface TranscodeResponse {
  seq: number;
  /** The staging lines end to end (transferred). */
  lines: ArrayBuffer;
  /** Each message's line is lines[start, end); start -1: the general path must take it. */
  starts: Int32Array;
  ends: Int32Array;
  occurredAt: Float64Array;
  /** Per message, in its value: object type start, end, object id start, end. */
  keys: Int32Array;
  /** Set when the worker failed (a bug: the fast path declines what it does not take). */
  error?: string;
}
