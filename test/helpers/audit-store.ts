import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { type ObjectInfo, liveDataFiles, openStore } from '../../storage';
import { openDuckDb } from '../../query/history';
import { sqlString } from '../../storage/sql';
import { AuditClient, type AuditClientOptions, type AuditEventInput } from '../../producer';
import { envOf, KAFKA_BROKERS } from './infra';
import { resolveTrust } from '../../trust/trust-policy';

export interface StoreAudit {
  /** event_id -> how many times it is stored. */
  counts: Map<string, number>;
  files: number;
  rows: number;
}

/** Reads every live data file under the store prefix (storage/live-set.ts) and counts each event id. */
export async function auditStore(vars: Record<string, string>): Promise<StoreAudit> {
  const store = openStore(envOf(vars));
  const dir = await mkdtemp(join(tmpdir(), 'audit-store-'));
  const { instance, conn } = await openDuckDb();
  try {
    const paths: string[] = [];
    const listed: ObjectInfo[] = [];
    for await (const obj of store.list('dt=')) listed.push(obj);
    // As a reader would: the store's generations under the keys it trusts.
    const policy = await resolveTrust({ trustedKeysFile: vars.AUDIT_TRUSTED_KEYS_FILE, store, role: 'test' });
    for (const obj of (await liveDataFiles(listed, { policy, store, get: (key) => store.get(key) })).files) {
      const local = join(dir, `${paths.length}.parquet`);
      await store.download(obj.key, local);
      paths.push(local);
    }
    const counts = new Map<string, number>();
    let rows = 0;
    if (paths.length > 0) {
      const r = await conn.runAndReadAll(
        `SELECT event_id, count(*)::INTEGER AS n FROM read_parquet([${paths.map(sqlString).join(',')}]) GROUP BY event_id`,
      );
      for (const row of r.getRowObjects()) {
        counts.set(String(row.event_id), Number(row.n));
        rows += Number(row.n);
      }
    }
    return { counts, files: paths.length, rows };
  } finally {
    conn.closeSync();
    instance.closeSync();
    store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Lost, duplicated and unexpected event ids of a store compared with what was produced. */
export function compareWithProduced(audit: StoreAudit, produced: Iterable<string>) {
  const expected = new Set(produced);
  const lost = [...expected].filter((id) => !audit.counts.has(id));
  const duplicated = [...audit.counts].filter(([, n]) => n > 1).map(([id]) => id);
  const unexpected = [...audit.counts.keys()].filter((id) => !expected.has(id));
  return { expected: expected.size, stored: audit.rows, lost: lost.length, duplicated: duplicated.length, unexpected: unexpected.length };
}

export function eventId(n: number): string {
  return `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
}

/** Publishes `count` events (ids from `start`) for `objects` objects through the real client; returns their ids. */
export async function produceEvents(
  vars: Record<string, string>,
  start: number,
  count: number,
  opts: { objects?: number; day0?: number; days?: number; stepMs?: number; extra?: Partial<AuditEventInput>; client?: AuditClientOptions } = {},
): Promise<string[]> {
  const objects = opts.objects ?? 50;
  const day0 = opts.day0 ?? Date.UTC(2026, 4, 1);
  const days = opts.days ?? 3;
  const client = new AuditClient({
    brokers: [vars.AUDIT_KAFKA_BROKERS ?? KAFKA_BROKERS],
    topic: vars.AUDIT_TOPIC,
    onBufferFull: 'block',
    bufferSize: 50_000,
    ...opts.client,
  });
  const ids: string[] = [];
  for (let i = start; i < start + count; i++) {
    const id = eventId(i);
    ids.push(id);
    await client.record({
      eventId: id,
      objectType: 'order',
      objectId: i % objects,
      action: 'update',
      occurredAt: day0 + ((i * (opts.stepMs ?? 7919)) % (days * 86_400_000)),
      actorId: `actor-${i % 13}`,
      changes: { n: { old: i - 1, new: i } },
      ...opts.extra,
    });
  }
  const ok = await client.flush(120_000);
  await client.close();
  if (!ok || client.stats().dropped > 0) throw new Error(`producing failed: ${JSON.stringify(client.stats())}`);
  return ids;
}

/** Every message on a topic (from the beginning), read by a throwaway consumer group. */
export async function readTopic(topic: string, expectAtLeast: number, timeoutMs = 30_000, brokers = KAFKA_BROKERS) {
  const kafka = new Kafka({ clientId: 'test-reader', brokers: [brokers], logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `reader-${Date.now()}-${Math.random()}` });
  const out: { key: string | null; value: Buffer | null; headers: Record<string, string> }[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const deadline = Date.now() + timeoutMs;
  await consumer.run({
    eachMessage: async ({ message }) => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(v);
      out.push({ key: message.key?.toString() ?? null, value: message.value, headers });
    },
  });
  while (out.length < expectAtLeast && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  // A little longer, to see any message beyond the expected count.
  await new Promise((r) => setTimeout(r, 1500));
  await consumer.disconnect();
  return out;
}
