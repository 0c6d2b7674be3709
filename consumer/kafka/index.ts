import type { Logger } from 'pino';
import type { KafkaClientKind } from '../../config/env';
import { KafkajsSource } from './kafkajs-source';
import { PlatformaticSource } from './platformatic-source';
import type { KafkaSource, KafkaSourceOptions } from './source';

export type { KafkaSource, KafkaSourceOptions, OutboundRecord, PartitionEnds, SourceBatch, SourceHandlers } from './source';

/** The consumer's Kafka client (AUDIT_KAFKA_CLIENT). */
export function openKafkaSource(client: KafkaClientKind, opts: KafkaSourceOptions, log: Logger): KafkaSource {
  return client === 'kafkajs' ? new KafkajsSource(opts, log) : new PlatformaticSource(opts, log);
}
