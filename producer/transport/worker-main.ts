/**
 * The sender's worker thread: owns the Kafka client, so encoding Kafka batches,
 * compressing them and talking to the broker never run on the app's event loop.
 * It only does what the app thread asks (connect, send a batch, tell the topic's
 * partition count, close) and answers each request with its outcome, several sends
 * being in flight at once; retries and the buffer stay with the
 * app thread's AuditClient.
 *
 * Sends come two ways: posted in shared memory (requests.ts), which this thread looks
 * for every POLL_MS while requests keep coming and parks on after PARK_AFTER_MS
 * without any; or, for the few the shared slots cannot carry, by message.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { inlineTransport } from './index';
import { KafkaTransportError } from './types';
import { RequestReader } from './requests';
import { unpackBatch, type FromWorker, type ToWorker, type WorkerData } from './wire';

/** How often posted requests are looked for while busy: at most this is added to a batch's linger. */
const POLL_MS = 1;
/** Without a request for this long, the thread parks and the app thread wakes it on the next one. */
const PARK_AFTER_MS = 250;

const port = parentPort;
if (!port) throw new Error('producer/transport/worker-main runs only as a worker thread');
const { settings, staging, requests } = workerData as WorkerData;
const ring = staging ? Buffer.from(staging) : null;
const transport = inlineTransport(settings);
const reader = requests && ring ? new RequestReader(requests, ring) : null;
let closing = false;

function answer(id: number, run: () => Promise<number | null | void>): void {
  run().then(
    (value) => port!.postMessage({ type: 'done', id, error: null, value: value ?? null, tooLarge: false } satisfies FromWorker),
    (err: unknown) =>
      port!.postMessage({
        type: 'done',
        id,
        error: err instanceof Error ? err.message : String(err),
        value: null,
        tooLarge: err instanceof KafkaTransportError && err.tooLarge,
      } satisfies FromWorker),
  );
}

port.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'connect':
      return answer(msg.id, () => transport.connect());
    case 'send':
      return answer(msg.id, () => transport.send(unpackBatch(msg, ring)));
    case 'partitions':
      return answer(msg.id, () => transport.partitionCount(msg.topic));
    case 'close':
      closing = true;
      reader?.unpark();
      return answer(msg.id, async () => {
        await transport.close();
        port.close();
      });
  }
});

/** Takes posted requests until closing; each is answered by message like the others. */
async function pollRequests(reader: RequestReader): Promise<void> {
  let lastRequest = Date.now();
  while (!closing) {
    const taken = reader.take();
    for (const { id, batch } of taken) answer(id, () => transport.send(batch));
    const now = Date.now();
    if (taken.length > 0) lastRequest = now;
    if (now - lastRequest < PARK_AFTER_MS) {
      await new Promise<void>((resolve) => setTimeout(resolve, POLL_MS));
    } else {
      await reader.parked();
      lastRequest = Date.now();
    }
  }
}

if (reader) {
  pollRequests(reader).catch((err: unknown) => {
    // Nothing in the loop is expected to throw; if it does, the thread fails and the app thread's
    // transport fails what was in flight and starts another (the client resends it).
    setImmediate(() => {
      throw err;
    });
  });
}
