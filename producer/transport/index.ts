import { KafkajsTransport } from './kafkajs';
import { PlatformaticTransport } from './platformatic';
import type { KafkaTransport, TransportSettings } from './types';
import { WorkerTransport } from './worker-host';

export * from './types';
export { KafkajsTransport } from './kafkajs';
export { PlatformaticTransport } from './platformatic';
export { WorkerTransport } from './worker-host';

/** The transport in this thread, for the worker thread itself or for `sender: { thread: 'inline' }`. */
export function inlineTransport(settings: TransportSettings): KafkaTransport {
  return settings.kind === 'platformatic' ? new PlatformaticTransport(settings) : new KafkajsTransport(settings);
}

export function createTransport(settings: TransportSettings, thread: 'worker' | 'inline'): KafkaTransport {
  return thread === 'worker' ? new WorkerTransport(settings) : inlineTransport(settings);
}
export { murmur2, partitionOf } from './partition';
