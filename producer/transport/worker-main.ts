/**
 * The sender's worker thread: owns the Kafka client, so encoding Kafka batches,
 * compressing them and talking to the broker never run on the app's event loop.
 * It only does what the app thread asks (connect, send a batch, tell the topic's
 * partition count, close) and answers each request with its outcome, several sends
 * being in flight at once; retries and the buffer stay with the
 * app thread's AuditClient.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { inlineTransport } from './index';
import { unpackBatch, type FromWorker, type ToWorker, type WorkerData } from './wire';

const port = parentPort;
if (!port) throw new Error('producer/transport/worker-main runs only as a worker thread');
const { settings } = workerData as WorkerData;
const transport = inlineTransport(settings);

function answer(id: number, run: () => Promise<number | null | void>): void {
  run().then(
    (value) => port!.postMessage({ type: 'done', id, error: null, value: value ?? null } satisfies FromWorker),
    (err: unknown) => port!.postMessage({ type: 'done', id, error: err instanceof Error ? err.message : String(err), value: null } satisfies FromWorker),
  );
}

port.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'connect':
      return answer(msg.id, () => transport.connect());
    case 'send':
      return answer(msg.id, () => transport.send(unpackBatch(msg)));
    case 'partitions':
      return answer(msg.id, () => transport.partitionCount(msg.topic));
    case 'close':
      return answer(msg.id, async () => {
        await transport.close();
        port.close();
      });
  }
});
