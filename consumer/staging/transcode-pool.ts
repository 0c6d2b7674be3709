import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { SchemaVersionLookup } from './avro-transcoder';
import { StringCache, utf8 } from './json-bytes';
import type { StagedRow } from './staged-row';
import type { ResolvedId, TranscodeRequest, TranscodeResponse } from './transcode-protocol';

const WORKER_YOUNG_GENERATION_MB = 4;

/** A transcode worker failed or exited: the batch was not staged (the consumer stops; a restart re-reads it). */
export class TranscodeWorkerError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TranscodeWorkerError';
  }
}

/** What the pool needs of a Kafka message. */
export interface TranscodeInput {
  offset: string;
  value: Buffer | null;
}

/** A batch's staging lines, as the worker wrote them. */
export class TranscodedBatch {
  constructor(
    private readonly partition: number,
    private readonly res: TranscodeResponse,
    private readonly chunk: Buffer,
    private readonly types: StringCache,
  ) {}

  /** Message i's staged row, or null when the general path must take it (as AvroStagingTranscoder.transcode). */
  row(i: number, m: TranscodeInput): StagedRow | null {
    const { starts, ends, occurredAt, keys } = this.res;
    const start = starts[i]!;
    if (start < 0 || m.value === null) return null;
    return {
      partition: this.partition,
      offset: m.offset,
      size: m.value.length,
      occurredAt: occurredAt[i]!,
      objectType: this.types.get(m.value, keys[4 * i]!, keys[4 * i + 1]!),
      objectId: utf8(m.value, keys[4 * i + 2]!, keys[4 * i + 3]!),
      chunk: this.chunk,
      start,
      end: ends[i]!,
    };
  }
}

interface Slot {
  worker: Worker;
  pending: Map<number, { resolve: (r: TranscodeResponse) => void; reject: (e: Error) => void }>;
  /** Registry ids this worker was told about. */
  sent: Set<number>;
}

/**
 * Worker threads that transcode Kafka batches into staging lines, so that the
 * sink's thread keeps the Kafka client, commits and the store loop while the
 * Avro work runs on another core. A batch's lines share one buffer; its rows hold
 * it until they are stored, and count against the memory bound like arena lines.
 */
export class TranscodePool {
  private readonly slots: Slot[] = [];
  private readonly types = new StringCache();
  private seq = 0;
  private failure: Error | null = null;
  private closing = false;

  constructor(
    size: number,
    readerSchemaId: number,
    private readonly registry?: SchemaVersionLookup,
  ) {
    for (let i = 0; i < size; i++) {
      const worker = new Worker(workerScript(), {
        workerData: { readerSchemaId, registry: registry !== undefined },
        // Its garbage is a few typed arrays and offset strings per batch: a small young generation is plenty.
        resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_GENERATION_MB },
      });
      const slot: Slot = { worker, pending: new Map(), sent: new Set() };
      worker.on('message', (res: TranscodeResponse) => {
        const p = slot.pending.get(res.seq);
        slot.pending.delete(res.seq);
        if (!p) return;
        if (res.error) p.reject(new TranscodeWorkerError(`transcode worker failed: ${res.error}`));
        else p.resolve(res);
      });
      worker.on('error', (err: Error) => this.fail(slot, new TranscodeWorkerError(`transcode worker failed: ${err.message}`)));
      worker.on('exit', (code) => {
        if (!this.closing) this.fail(slot, new TranscodeWorkerError(`transcode worker exited with code ${code}`));
      });
      this.slots.push(slot);
    }
  }

  private fail(slot: Slot, err: Error): void {
    this.failure ??= err;
    for (const p of slot.pending.values()) p.reject(err);
    slot.pending.clear();
  }

  /** Transcodes one partition's batch on the least busy worker. */
  transcode(partition: number, messages: readonly TranscodeInput[]): Promise<TranscodedBatch> {
    if (this.failure) return Promise.reject(this.failure);
    const slot = this.slots.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const n = messages.length;
    let total = 0;
    for (const m of messages) total += m.value?.length ?? 0;
    // Its own ArrayBuffer (not the shared pool's), so it can be transferred.
    const data = Buffer.allocUnsafeSlow(total);
    const bounds = new Int32Array(2 * n);
    const offsets = new Float64Array(n);
    const ids: ResolvedId[] = [];
    let pos = 0;
    for (let i = 0; i < n; i++) {
      const m = messages[i]!;
      offsets[i] = Number(m.offset);
      const v = m.value;
      if (v === null) {
        bounds[2 * i] = bounds[2 * i + 1] = -1;
        continue;
      }
      v.copy(data, pos);
      bounds[2 * i] = pos;
      pos += v.length;
      bounds[2 * i + 1] = pos;
      if (this.registry && v.length >= 5 && v[0] === 0) {
        const id = v.readInt32BE(1);
        if (!slot.sent.has(id)) {
          const entry = this.registry(id);
          // Unresolved ids stay unsent: the worker declines them and the general path reports them.
          if (entry !== undefined) {
            ids.push([id, entry.kind === 'absent' ? 'absent' : entry.version]);
            slot.sent.add(id);
          }
        }
      }
    }
    const seq = this.seq++;
    const req: TranscodeRequest = { seq, partition, data: data.buffer as ArrayBuffer, bounds, offsets, ids };
    return new Promise<TranscodeResponse>((resolve, reject) => {
      slot.pending.set(seq, { resolve, reject });
      slot.worker.postMessage(req, [req.data, bounds.buffer as ArrayBuffer, offsets.buffer as ArrayBuffer]);
    }).then((res) => new TranscodedBatch(partition, res, Buffer.from(res.lines), this.types));
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}

/**
 * The compiled worker script. Next to this module in dist/; under ts-jest this
 * module runs from its .ts source, so the build's copy is used (test/run.sh builds first).
 */
function workerScript(): string {
  const here = join(__dirname, 'transcode-worker.js');
  if (existsSync(here)) return here;
  return join(__dirname, '..', '..', 'dist', 'consumer', 'staging', 'transcode-worker.js');
}
