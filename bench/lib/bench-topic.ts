/**
 * The consumer benchmarks' topic: N realistic records (an ORM update with a couple
 * of changed fields, request context and metadata; ~318 bytes of Avro), produced
 * once with the project's own encoder, 3 partitions, no compression. The same
 * records as bench/consumer-throughput.ts, so figures of both compare.
 */
import { randomUUID } from 'node:crypto';
import { CompressionTypes, Kafka, logLevel, Partitioners } from 'kafkajs';
import { encodeRecord, CURRENT_SCHEMA_ID, singleObjectHeader, type AuditRecord } from '../../schemas';

export function benchRecord(i: number): AuditRecord {
  const day0 = Date.UTC(2026, 6, 1);
  return {
    event_id: randomUUID(),
    occurred_at: (day0 + ((i * 7919) % (3 * 86_400_000))) * 1000,
    object_type: i % 5 === 0 ? 'customer' : 'invoice',
    object_id: String(i % 100_000),
    action: i % 10 === 0 ? 'create' : 'update',
    actor_id: `user-${i % 5000}`,
    actor_type: 'user',
    tenant_id: `tenant-${i % 50}`,
    request_id: randomUUID(),
    trace_id: null,
    ip: `10.0.${(i >> 8) & 255}.${i & 255}`,
    user_agent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36',
    http_method: 'PATCH',
    http_path: `/api/invoices/${i % 100_000}`,
    http_status: 200,
    changes: { status: { old: '"draft"', new: '"sent"' }, total: { old: String(i), new: String(i + 10) } },
    before: null,
    after: null,
    metadata: { source: 'api' },
    source_service: 'billing',
    schema_version: CURRENT_SCHEMA_ID,
    duration_ms: 12.5,
    error_type: null,
    error_message: null,
    error_stack: null,
  };
}

export interface ProducedTopic {
  topic: string;
  events: number;
  partitions: number;
  wireBytes: number;
}

/** Produces `events` records to a new topic; `header` is the framing (single-object by default, or a registry id). */
export async function produceBenchTopic(
  brokers: readonly string[],
  topic: string,
  events: number,
  header: Buffer = singleObjectHeader(CURRENT_SCHEMA_ID),
  partitions = 3,
): Promise<ProducedTopic> {
  const kafka = new Kafka({ clientId: 'bench-producer', brokers: [...brokers], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true });
  await admin.disconnect();
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  let wireBytes = 0;
  const batch = 5000;
  try {
    for (let i = 0; i < events; i += batch) {
      const messages = [];
      for (let j = i; j < Math.min(events, i + batch); j++) {
        const r = benchRecord(j);
        const value = encodeRecord(r, CURRENT_SCHEMA_ID, header);
        wireBytes += value.length;
        messages.push({ key: `${r.object_type}:${r.object_id}`, value });
      }
      await producer.send({ topic, acks: 1, compression: CompressionTypes.None, messages });
    }
  } finally {
    await producer.disconnect();
  }
  return { topic, events, partitions, wireBytes };
}
