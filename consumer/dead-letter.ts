import { CompressionTypes, type Producer } from 'kafkajs';
import type { DeadLetter } from './sink';

/**
 * Publishes undecodable or invalid records to the dead-letter topic, unchanged,
 * with the reason and origin in headers. The key names the origin, so a replay
 * that sends a letter twice is recognisable (and compacted away if the topic is compacted).
 */
export function deadLetterPublisher(producer: Producer, sourceTopic: string, dlqTopic: string) {
  return async (letter: DeadLetter): Promise<void> => {
    await producer.send({
      topic: dlqTopic,
      acks: -1,
      compression: CompressionTypes.None,
      messages: [
        {
          key: `${sourceTopic}-${letter.partition}-${letter.offset}`,
          value: letter.value,
          headers: {
            'audit-dlq-error': letter.error.message.slice(0, 4096),
            'audit-dlq-error-type': letter.error.name,
            'audit-dlq-topic': sourceTopic,
            'audit-dlq-partition': String(letter.partition),
            'audit-dlq-offset': letter.offset,
            'audit-dlq-original-key': letter.key ?? '',
          },
        },
      ],
    });
  };
}
