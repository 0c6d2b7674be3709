import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { Pool } from 'pg';
import { RecordDecoder, type AuditRecord } from '../../schemas';
import { isolatedEnv, KAFKA_BROKERS, ROOT } from './infra';

export const PG_URL = process.env.AUDIT_TEST_PG_URL ?? 'postgresql://postgres@127.0.0.1:54329/audit_test';

/** An isolated capture: its own table name, slot, publication, topic and store prefix. */
export function cdcEnv(name: string, overrides: Record<string, string> = {}) {
  const id = randomUUID().replace(/-/g, '').slice(0, 10);
  const table = `cdc_${name.replace(/[^a-z0-9]/g, '_')}_${id}`;
  const vars = isolatedEnv(`cdc-${name}`, {
    AUDIT_CDC_DATABASE_URL: PG_URL,
    AUDIT_CDC_SLOT: `slot_${table}`,
    AUDIT_CDC_PUBLICATION: `pub_${table}`,
    AUDIT_CDC_PUBLICATION_TABLES: table,
    AUDIT_LOG_LEVEL: 'info',
    ...overrides,
  });
  return { table, vars };
}

/** `audit-cdc` (compiled) as a child process. */
export class CdcProcess {
  readonly child: ChildProcess;
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly started: Promise<void>;

  constructor(vars: Record<string, string>) {
    this.child = spawn(process.execPath, [join(ROOT, 'dist', 'cdc', 'cli.js')], { env: { ...process.env, ...vars }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.resume();
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
    this.started = new Promise<void>((resolve, reject) => {
      this.child.stderr?.on('data', (d: Buffer) => {
        this.stderr += d.toString();
        if (this.stderr.includes('"replication started"')) resolve();
      });
      void this.exited.then(({ code }) => reject(new Error(`audit-cdc exited ${code} before starting: ${this.stderr.slice(-3000)}`)));
    });
    this.started.catch(() => undefined);
  }

  /** Resolves once the replication stream is open (after setup: the slot exists from then on). */
  ready(timeoutMs = 30_000): Promise<void> {
    return withTimeout(this.started, timeoutMs, () => `audit-cdc not started: ${this.stderr.slice(-3000)}`);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 60_000) {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return withTimeout(this.exited, timeoutMs, () => `audit-cdc did not exit on ${signal}`);
  }
}

export interface ReadRecord extends AuditRecord {
  partition: number;
  offset: string;
}

/** Every record on a topic, decoded, with its Kafka position; knows when it has read up to the end. */
export class RecordReader {
  readonly records: ReadRecord[] = [];
  private consumer: Consumer | null = null;
  private readonly next = new Map<number, bigint>();
  private readonly kafka = new Kafka({ clientId: 'cdc-it-reader', brokers: [KAFKA_BROKERS], logLevel: logLevel.NOTHING });
  constructor(readonly topic: string) {}

  async start(): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: this.topic, numPartitions: 3 }], waitForLeaders: true });
    await admin.disconnect();
    const decoder = new RecordDecoder();
    this.consumer = this.kafka.consumer({ groupId: `reader-${randomUUID()}` });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.topic, fromBeginning: true });
    // Reading starts only once the group is joined (seconds): a test that waits for records while
    // changes stream must not find the stream already over when the first records arrive.
    const consumer = this.consumer;
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
    await this.consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) this.records.push({ ...decoder.decode(m.value), partition: batch.partition, offset: m.offset });
        const last = batch.messages[batch.messages.length - 1];
        if (last) this.next.set(batch.partition, BigInt(last.offset) + 1n);
      },
    });
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`reader of ${this.topic} did not join its group in 60 s`)), 60_000)));
    try {
      await Promise.race([joined, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async waitFor(pred: (r: ReadRecord) => boolean, count = 1, timeoutMs = 60_000): Promise<ReadRecord[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hits = this.records.filter(pred);
      if (hits.length >= count) return hits;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${count} records (have ${hits.length}, ${this.records.length} in all)`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Waits until everything on the topic now (high watermarks) has been read. */
  async caughtUp(timeoutMs = 30_000): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(this.topic);
    await admin.disconnect();
    const deadline = Date.now() + timeoutMs;
    while (!ends.every((e) => BigInt(e.high) <= (this.next.get(e.partition) ?? 0n))) {
      if (Date.now() > deadline) throw new Error('reader did not catch up with the topic');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
  }
}

/** Drops the slot (once no reader holds it: a leftover slot makes PostgreSQL keep WAL), the publication and the table. */
export async function dropCapture(pool: Pool, vars: Record<string, string>, table: string): Promise<void> {
  const slot = vars.AUDIT_CDC_SLOT!;
  for (let i = 0; i < 100; i++) {
    const r = await pool.query<{ active: boolean }>('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    if (r.rowCount === 0) break;
    if (!r.rows[0]!.active) {
      await pool.query('SELECT pg_drop_replication_slot($1)', [slot]);
      break;
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  await pool.query(`DROP PUBLICATION IF EXISTS "${vars.AUDIT_CDC_PUBLICATION}"`);
  await pool.query(`DROP TABLE IF EXISTS "${table}" CASCADE`);
}

export function parseJson<T = Record<string, unknown>>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

function withTimeout<T>(p: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(message())), ms))),
  ]);
}
