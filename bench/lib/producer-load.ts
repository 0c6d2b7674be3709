/**
 * One producer throughput measurement, run in a child process of its own so its
 * CPU counters are its own: records `n` events as fast as one app thread can
 * (`block` mode: when the buffer is full the loop waits for room), then waits
 * until Kafka acknowledged all of them. Reports events/s (first record to last
 * acknowledgement), CPU µs per event of the whole process (every thread) and of
 * the app's thread alone (process.threadCpuUsage, Node >= 23.9).
 */
import { randomUUID } from 'node:crypto';
import * as thisBuild from '../../producer';
import type { AuditEventInput, KafkaClientKind, SenderThread } from '../../producer';
import { encodeRecord } from '../../schemas';

export interface LoadSpec {
  /** `build-only`: build, mask and encode each record, send nothing (the app thread's floor). */
  client: KafkaClientKind | 'build-only';
  thread: SenderThread;
  compression: 'gzip' | 'none';
  /**
   * A build of another release (its dist/producer directory): its AuditClient with its
   * defaults, for a baseline of the same events in the same run (`client` is then a label).
   */
  producerDir?: string;
  /** Messages per Kafka request; default: the client's. */
  batchSize?: number;
  /** Kafka requests in flight at once; default: the client's (1: one at a time, the previous default). */
  maxInFlight?: number;
  n: number;
  warmup: number;
  brokers: string[];
  topic: string;
}

export interface LoadResult {
  spec: LoadSpec;
  eventsPerSec: number;
  seconds: number;
  cpuUsPerEvent: number;
  appThreadCpuUsPerEvent: number | null;
  delivered: number;
  dropped: number;
  peakRssMb: number;
}

/** The events an app records most: an HTTP request event and an ORM update (with a card number to mask). */
function events(i: number): AuditEventInput {
  if (i % 2 === 0) {
    return {
      objectType: 'http_request',
      objectId: `req-${i}`,
      action: 'request',
      httpMethod: 'GET',
      httpPath: `/orders/${i % 5000}`,
      httpStatus: 200,
      durationMs: 0.42,
      metadata: { 'http.route': '/orders/:id' },
    };
  }
  return {
    objectType: 'invoice',
    objectId: i % 20_000,
    action: 'update',
    changes: { status: { old: 'draft', new: 'sent' }, total: { old: 1200, new: 1350 } },
    after: { number: `INV-${i}`, status: 'sent', total: 1350, card_number: '4111 1111 1111 1111', note: 'paid by card 4111 1111 1111 1111' },
    metadata: { 'orm.entity': 'Invoice', 'orm.source': 'typeorm' },
  };
}

const context = {
  actorId: 'alice',
  actorType: 'user',
  tenantId: 'acme',
  requestId: randomUUID(),
  ip: '203.0.113.7',
  userAgent: 'Mozilla/5.0 (X11; Linux x86_64) bench/1.0',
  httpMethod: 'GET',
  httpPath: '/orders/1',
};

function threadCpuMicros(): number | null {
  const f = (process as unknown as { threadCpuUsage?: () => NodeJS.CpuUsage }).threadCpuUsage;
  if (!f) return null;
  const u = f.call(process);
  return u.user + u.system;
}

const cpuMicros = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  // The context must come from the same module instance as the client that reads it.
  const { AuditClient, buildRecord, currentAuditContext, DEFAULT_MASKED_FIELDS, fieldMatcher, runWithAuditContext } = (
    spec.producerDir ? require(spec.producerDir) : thisBuild
  ) as typeof thisBuild;
  let peakRss = 0;
  const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 50);
  const isSensitive = fieldMatcher(DEFAULT_MASKED_FIELDS);
  const client =
    spec.client === 'build-only'
      ? null
      : new AuditClient({
          brokers: spec.brokers,
          topic: spec.topic,
          sourceService: 'bench',
          schemaRegistry: null,
          onBufferFull: 'block',
          compression: spec.compression,
          ...(spec.batchSize ? { batchSize: spec.batchSize } : {}),
          ...(spec.maxInFlight ? { maxInFlight: spec.maxInFlight } : {}),
          // A release from before the `sender` option ignores it: kafkajs on the app's thread was its only sender.
          sender: { client: spec.client, thread: spec.thread },
        });
  const record = client
    ? (e: AuditEventInput) => client.record(e)
    : (e: AuditEventInput) => {
        encodeRecord(buildRecord(e, currentAuditContext(), { sourceService: 'bench', isSensitive }));
        return Promise.resolve();
      };
  const drive = async (count: number, offset: number) => {
    await runWithAuditContext(context, async () => {
      const chunk = 1000;
      for (let i = 0; i < count; i += chunk) {
        const pending: Promise<void>[] = [];
        for (let j = i; j < Math.min(count, i + chunk); j++) pending.push(record(events(offset + j)));
        await Promise.all(pending);
      }
    });
    if (client && !(await client.flush(120_000))) throw new Error('flush timed out');
  };
  await client?.start();
  await drive(spec.warmup, 0);
  const cpu0 = cpuMicros();
  const th0 = threadCpuMicros();
  const t0 = performance.now();
  await drive(spec.n, spec.warmup);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuMicros() - cpu0;
  const th1 = threadCpuMicros();
  await client?.close();
  clearInterval(rssTimer);
  const stats = client?.stats();
  return {
    spec,
    eventsPerSec: Math.round(spec.n / seconds),
    seconds: Math.round(seconds * 1000) / 1000,
    cpuUsPerEvent: Math.round((cpu / spec.n) * 100) / 100,
    appThreadCpuUsPerEvent: th0 === null || th1 === null ? null : Math.round(((th1 - th0) / spec.n) * 100) / 100,
    delivered: stats ? stats.delivered - spec.warmup : 0,
    dropped: stats?.dropped ?? 0,
    peakRssMb: Math.round(peakRss / 1048576),
  };
}
