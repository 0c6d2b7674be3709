import type { Logger } from 'pino';
import { KafkajsSource } from './kafkajs-source';
import type { KafkaSource, KafkaSourceOptions } from './source';

export type { KafkaSource, KafkaSourceOptions, OutboundRecord, PartitionEnds, SourceBatch, SourceHandlers } from './source';

/** The consumer's Kafka client. */
export function openKafkaSource(opts: KafkaSourceOptions, log: Logger): KafkaSource {
  return new KafkajsSource(opts, log);
}
