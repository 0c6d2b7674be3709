import { readFraming } from '../schemas';
import type { KafkaSource } from './kafka';
import type { DeadLetter } from './sink';

/**
 * How the value was framed, for whoever replays letters: `audit-dlq-framing` is
 * `single-object`, `confluent` (a registry id, or a legacy version id) or `none`,
 * with `audit-dlq-schema-fingerprint` (hex, as on the wire) or `audit-dlq-schema-id`.
 */
export function framingHeaders(value: Buffer | null): Record<string, string> {
  const framing = value ? readFraming(value) : null;
  if (!framing) return { 'audit-dlq-framing': 'none' };
  if (framing.kind === 'single-object') return { 'audit-dlq-framing': 'single-object', 'audit-dlq-schema-fingerprint': framing.fingerprint };
  return { 'audit-dlq-framing': 'confluent', 'audit-dlq-schema-id': String(framing.schemaId) };
}

/**
 * Publishes undecodable or invalid records to the dead-letter topic, unchanged,
 * with the reason and origin in headers. Delivery is at least once: a replay, or a
 * send retried after a failure (@platformatic/kafka takes a new producer id then, so
 * the broker cannot drop the repeat), can send a letter twice. The key names the
 * origin, so a repeat is recognisable (and compacted away if the topic is compacted).
 */
export function deadLetterPublisher(kafka: Pick<KafkaSource, 'send'>, sourceTopic: string, dlqTopic: string) {
  return async (letter: DeadLetter): Promise<void> => {
    await kafka.send(dlqTopic, {
      key: `${sourceTopic}-${letter.partition}-${letter.offset}`,
      value: letter.value,
      headers: {
        'audit-dlq-error': letter.error.message.slice(0, 4096),
        'audit-dlq-error-type': letter.error.name,
        'audit-dlq-topic': sourceTopic,
        'audit-dlq-partition': String(letter.partition),
        'audit-dlq-offset': letter.offset,
        'audit-dlq-original-key': letter.key ?? '',
        ...framingHeaders(letter.value),
      },
    });
  };
}
