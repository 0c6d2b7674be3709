import { Kafka, logLevel } from 'kafkajs';
import type { Logger } from 'pino';
import { type Env, brokers } from '../config/env';
import { kafkaLogCreator } from '../config/logger';
import { partitionKey } from '../catalog';

/**
 * Where the consumer group has committed, per `<topic>/<partition>`: for the
 * maintainer, the only proof that no replay can need a cut claim, or write a
 * hidden file again; for `audit-query verify --kafka`, how far the digest chain
 * must reach. Read with the Kafka admin API (describe-group rights only;
 * nothing is written), by the consumer group's readers outside the consumer.
 */
export interface CommittedOffsets {
  read(topics: readonly string[]): Promise<Map<string, bigint>>;
  /** The earliest offset each partition still holds (its low watermark), per `<topic>/<partition>`. */
  earliest(topics: readonly string[]): Promise<Map<string, bigint>>;
  close(): Promise<void>;
}

/** `reader` names who reads them in the client id (`<AUDIT_CLIENT_ID>-<reader>`), for the broker's logs. */
export function kafkaCommittedOffsets(env: Env, log: Logger, reader: string): CommittedOffsets {
  const kafka = new Kafka({
    clientId: `${env.AUDIT_CLIENT_ID}-${reader}`,
    brokers: brokers(env),
    logLevel: logLevel.ERROR,
    logCreator: kafkaLogCreator(log.child({ component: 'kafkajs' })),
    retry: { retries: 3, initialRetryTime: 300, maxRetryTime: 3_000 },
  });
  const admin = kafka.admin();
  let connected: Promise<void> | null = null;
  const connect = () =>
    (connected ??= admin.connect().catch((err: Error) => {
      connected = null;
      throw err;
    }));
  return {
    async read(topics) {
      const out = new Map<string, bigint>();
      if (topics.length === 0) return out;
      await connect();
      for (const t of await admin.fetchOffsets({ groupId: env.AUDIT_CONSUMER_GROUP, topics: [...topics] })) {
        for (const p of t.partitions) {
          // -1: nothing committed yet on that partition.
          if (Number(p.offset) >= 0) out.set(partitionKey(t.topic, p.partition), BigInt(p.offset));
        }
      }
      return out;
    },
    async earliest(topics) {
      const out = new Map<string, bigint>();
      if (topics.length === 0) return out;
      await connect();
      for (const t of topics) {
        for (const p of await admin.fetchTopicOffsets(t)) out.set(partitionKey(t, p.partition), BigInt(p.low));
      }
      return out;
    },
    async close() {
      if (connected) await admin.disconnect();
    },
  };
}
