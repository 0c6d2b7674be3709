import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import { KafkaTransportError, type KafkaTransport, type OutgoingBatch, type TransportSettings } from './types';
import { RequestWriter, requestChannelMemory } from './requests';
import { DEFAULT_STAGING_BYTES, StagingRing } from './staging';
import { packBatch, type FromWorker, type ToWorker, type WorkerData } from './wire';

/** How long close() waits for the worker to disconnect before stopping it. */
const CLOSE_TIMEOUT_MS = 5_000;

/**
 * The compiled worker entry. From the built package it sits next to this file; when
 * this file runs as TypeScript source (ts-jest, the bench's register hook) the
 * worker, which is a plain Node thread, runs the build of it in dist/.
 */
function workerEntry(): string {
  if (__filename.endsWith('.js')) return join(__dirname, 'worker-main.js');
  const built = resolve(__dirname, '..', '..', 'dist', 'producer', 'transport', 'worker-main.js');
  if (!existsSync(built)) throw new Error(`the producer's worker thread needs a build: ${built} is missing (npm run build)`);
  return built;
}

/**
 * A transport whose Kafka client lives in a worker thread. The audit client stages each
 * event's bytes in the ring this transport shares with the worker; a batch then crosses
 * as the positions of its events (and the bytes of any not staged), and the app thread
 * waits for the answer. A worker that dies fails what was in flight (the client
 * retries it) and is started again, on the same ring, on the next call. The worker
 * does not keep the process alive while nothing is in flight, as a pending send does.
 */
export class WorkerTransport implements KafkaTransport {
  private worker: Worker | null = null;
  private nextId = 1;
  /** Calls awaiting an answer, with the worker each went to: a worker that dies fails its own calls only. */
  private readonly inFlight = new Map<number, { worker: Worker; resolve: (value: number | null) => void; reject: (err: Error) => void }>();

  readonly staging: StagingRing;
  private readonly requestMemory = requestChannelMemory();
  private readonly requests = new RequestWriter(this.requestMemory);

  constructor(private readonly settings: TransportSettings) {
    this.staging = new StagingRing(settings.stagingBytes ?? DEFAULT_STAGING_BYTES);
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    this.requests.restart();
    const worker = new Worker(workerEntry(), { workerData: { settings: this.settings, staging: this.staging.shared, requests: this.requestMemory } satisfies WorkerData });
    worker.unref();
    worker.on('message', (msg: FromWorker) => {
      const call = this.inFlight.get(msg.id);
      if (!call) return;
      this.settle(msg.id);
      if (msg.error === null) call.resolve(msg.value);
      else call.reject(new KafkaTransportError(msg.error, this.settings.kind, msg.tooLarge));
    });
    // 'error' then 'exit': the second finds nothing left of this worker's (a new one may be running by then).
    const fail = (why: string) => {
      if (this.worker === worker) this.worker = null;
      for (const [id, call] of [...this.inFlight]) {
        if (call.worker !== worker) continue;
        this.settle(id);
        call.reject(new KafkaTransportError(why, this.settings.kind));
      }
    };
    worker.on('error', (err: unknown) => fail(`audit sender thread failed: ${err instanceof Error ? err.message : String(err)}`));
    worker.on('exit', (code) => fail(`audit sender thread exited (code ${code})`));
    this.worker = worker;
    return worker;
  }

  private settle(id: number): void {
    this.inFlight.delete(id);
    if (this.inFlight.size === 0) this.worker?.unref();
  }

  /** `make` returns null when it posted the request itself (in shared memory): only the answer is then awaited. */
  private call(make: (id: number) => ToWorker | null): Promise<number | null> {
    const worker = this.start();
    const id = this.nextId;
    // Ids cross as Int32s (in shared memory): they wrap before 2^31, long after any id still in flight.
    this.nextId = this.nextId >= 0x7fffffff ? 1 : this.nextId + 1;
    return new Promise<number | null>((resolve, reject) => {
      if (this.inFlight.size === 0) worker.ref();
      this.inFlight.set(id, { worker, resolve, reject });
      try {
        const msg = make(id);
        // Bytes of unstaged messages are moved, not copied, into the worker; the places are a few integers per message.
        if (msg) worker.postMessage(msg, msg.type === 'send' && msg.extra ? [msg.extra] : []);
      } catch (err) {
        this.settle(id);
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  async connect(): Promise<void> {
    await this.call((id) => ({ type: 'connect', id }));
  }

  /**
   * Posted in shared memory when every message is staged and a slot is free (no signal to
   * the worker, which looks for requests on its own), else by message. Several may be in
   * flight at once: the worker answers each by its id, in whatever order they complete.
   */
  async send(batch: OutgoingBatch): Promise<void> {
    await this.call((id) => (this.requests.tryPost(id, batch) ? null : packBatch(batch, id)));
  }

  partitionCount(topic: string): Promise<number | null> {
    return this.call((id) => ({ type: 'partitions', id, topic }));
  }

  async close(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    const exited = new Promise<void>((r) => worker.once('exit', () => r()));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((r) => (timer = setTimeout(r, CLOSE_TIMEOUT_MS)));
    await Promise.race([this.call((id) => ({ type: 'close', id })).catch(() => undefined).then(() => exited), timeout]);
    clearTimeout(timer);
    if (this.worker === worker) this.worker = null;
    await worker.terminate().catch(() => undefined);
  }
}
