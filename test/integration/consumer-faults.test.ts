/**
 * The consumer under faults, on a real broker and real S3 servers of its own (private
 * instances on free ports: this file stops and restarts them while other files use the
 * shared ones). Every
 * scenario ends with a clean `--drain` run and a full audit of the stored data
 * against what was produced: 0 lost, 0 duplicated. The exactly-once scenarios
 * that depend on the S3 server (SIGKILL, server down, rebalance: the cut claims'
 * create-if-absent) run on each S3 server (MinIO and versitygw).
 */
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { encodeRecord, RecordDecoder } from '../../schemas';
import { auditStore, compareWithProduced, eventId, produceEvents, readTopic } from '../helpers/audit-store';
import { isolatedEnv, runCli, S3_SERVERS, startCli, waitExit } from '../helpers/infra';
import { usePrivateServices } from '../helpers/private-infra';
import { sampleRecord } from '../helpers/records';
import { expectVerified, signingKeyFile } from '../helpers/trust';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const FAST = { AUDIT_FLUSH_MAX_RECORDS: '1500', AUDIT_FLUSH_MAX_AGE_MS: '1000' };

/** Resolves at the child's first output line containing `text` (its log level must print it). */
function lineFrom(child: ReturnType<typeof startCli>, text: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`no "${text}" within ${timeoutMs} ms; stderr:\n${seen.slice(-3000)}`)), timeoutMs);
    child.stderr!.on('data', (d: Buffer) => {
      seen += d.toString();
      if (seen.includes(text)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

async function drainAndAudit(vars: Record<string, string>, produced: string[]) {
  const drain = await runCli('consumer', ['--drain'], vars, 180_000);
  expect({ code: drain.code, stderr: drain.code === 0 ? '' : drain.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
  return compareWithProduced(await auditStore(vars), produced);
}

describe('consumer faults (real Kafka, real S3)', () => {
  const priv = usePrivateServices('consumer-faults', ['kafka', ...S3_SERVERS.map((s) => s.service)]);
  const onPrivate = (test: string, extra: Record<string, string> = {}) =>
    isolatedEnv(test, { ...FAST, AUDIT_KAFKA_BROKERS: priv.get().endpoints.kafkaBrokers, AUDIT_S3_ENDPOINT: priv.get().endpoints.s3Endpoint, ...extra });

  describe.each(S3_SERVERS)('on $name', ({ name, service }) => {
    const onServer = (test: string, extra: Record<string, string> = {}) => onPrivate(`${test}-${name}`, { AUDIT_S3_ENDPOINT: priv.get().s3EndpointOf(service), ...extra });

    it('survives repeated SIGKILL mid-batch: 0 lost, 0 duplicated', async () => {
      // Signed digests on: the kills, replays and adopted claims must leave a chain that verifies.
      const vars = onServer('sigkill', { AUDIT_SIGNING_KEY_FILE: (await signingKeyFile()).path });
      const produced = await produceEvents(vars, 0, 30_000);
      let killedAfterCut = 0;
      for (let round = 0; round < 5; round++) {
        // Kill at a varying moment shortly after the consumer stored a cut: mid-way through later ones.
        const child = startCli('consumer', [], { ...vars, AUDIT_LOG_LEVEL: 'info' });
        const exited = waitExit(child, 90_000);
        const stored = await new Promise<boolean>((resolve) => {
          const timer = setTimeout(() => resolve(false), 45_000);
          child.stderr!.on('data', (d: Buffer) => {
            if (d.toString().includes('cut stored and committed')) {
              clearTimeout(timer);
              resolve(true);
            }
          });
        });
        if (stored) killedAfterCut++;
        await sleep(50 + round * 120);
        child.kill('SIGKILL');
        const r = await exited;
        expect(r.signal).toBe('SIGKILL');
      }
      expect(killedAfterCut).toBeGreaterThanOrEqual(3);
      // The killed consumers did store cuts (so the drain really resumes mid-stream).
      const before = await auditStore(vars);
      expect(before.rows).toBeGreaterThan(0);
      const result = await drainAndAudit(vars, produced);
      expect(result).toEqual({ expected: 30_000, stored: 30_000, lost: 0, duplicated: 0, unexpected: 0 });
      await expectVerified(vars, 30_000);
    }, 240_000);

    it('rides out the S3 server stopped for 30 s, then shuts down cleanly on SIGTERM', async () => {
      const vars = onServer('s3down', { AUDIT_METRICS_PORT: '0', AUDIT_LOG_LEVEL: 'info' });
      const produced = await produceEvents(vars, 0, 10_000);
      const child = startCli('consumer', [], vars);
      const exited = waitExit(child, 180_000);
      // Stopped once the consumer is storing, not at a guessed moment: a server stopped before its
      // start-up check is a refusal to start, another test.
      await lineFrom(child, 'cut stored and committed', 60_000);
      await priv.get().down(service);
      try {
        produced.push(...(await produceEvents(vars, 10_000, 10_000)));
        await sleep(30_000);
      } finally {
        await priv.get().up(service);
      }
      await sleep(8000);
      child.kill('SIGTERM');
      const r = await exited;
      const ok = r.code === 0 && /failed; retrying/.test(r.stderr);
      expect({ ok, stderr: ok ? '' : r.stderr.slice(-3000) }).toEqual({ ok: true, stderr: '' });
      const result = await drainAndAudit(vars, produced);
      expect(result).toEqual({ expected: 20_000, stored: 20_000, lost: 0, duplicated: 0, unexpected: 0 });
    }, 300_000);

    it('rebalances when a second consumer joins mid-stream: 0 lost, 0 duplicated', async () => {
      // The first consumer starts before anything is produced: it creates the topic.
      const vars = onServer('rebalance', { AUDIT_SIGNING_KEY_FILE: (await signingKeyFile()).path, AUDIT_CREATE_TOPIC: 'true' });
      const first = startCli('consumer', [], vars);
      const firstExit = waitExit(first, 240_000);
      const producing = produceEvents(vars, 0, 15_000).then(async (ids) => ids.concat(await produceEvents(vars, 15_000, 15_000)));
      await sleep(4000);
      const second = startCli('consumer', [], vars);
      const secondExit = waitExit(second, 240_000);
      const produced = await producing;
      await sleep(8000);
      first.kill('SIGTERM');
      second.kill('SIGTERM');
      const [a, b] = await Promise.all([firstExit, secondExit]);
      expect([a.code, b.code]).toEqual([0, 0]);
      const result = await drainAndAudit(vars, produced);
      expect(result).toEqual({ expected: 30_000, stored: 30_000, lost: 0, duplicated: 0, unexpected: 0 });
      await expectVerified(vars, 30_000);
    }, 300_000);
  });

  it('survives a Kafka broker restart: 0 lost, 0 duplicated', async () => {
    const vars = onPrivate('kafkarestart', { AUDIT_LOG_LEVEL: 'info' });
    const produced = await produceEvents(vars, 0, 10_000);
    const child = startCli('consumer', [], vars);
    const exited = waitExit(child, 240_000);
    await lineFrom(child, 'cut stored and committed', 60_000);
    await priv.get().down('kafka');
    await sleep(5000);
    await priv.get().up('kafka');
    produced.push(...(await produceEvents(vars, 10_000, 10_000)));
    await sleep(10_000);
    child.kill('SIGTERM');
    const r = await exited;
    expect(r.code === 0 || r.code === 1).toBe(true); // 1 if it gave up on the broker; nothing committed wrongly either way
    const result = await drainAndAudit(vars, produced);
    expect(result).toEqual({ expected: 20_000, stored: 20_000, lost: 0, duplicated: 0, unexpected: 0 });
  }, 300_000);

  it('resolves a mix of schema v1 and v2 producers to the current schema, and dead-letters exactly the poison messages', async () => {
    const vars = onPrivate('schemas-poison');
    const kafka = new Kafka({ clientId: 'raw', brokers: [vars.AUDIT_KAFKA_BROKERS!], logLevel: logLevel.NOTHING });
    const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    const valid: string[] = [];
    const poison: string[] = [];
    const messages = [];
    for (let i = 0; i < 3000; i++) {
      const id = eventId(i);
      const rec = sampleRecord({ event_id: id, object_id: String(i % 21), occurred_at: Date.UTC(2026, 5, 1) * 1000 + i * 1000 });
      let value: Buffer;
      if (i % 500 === 7) {
        value = Buffer.from(`garbage ${i}`);
        poison.push(`i${i}`);
      } else if (i % 500 === 9) {
        value = encodeRecord({ ...rec, object_id: '' }); // valid Avro, invalid record
        poison.push(`i${i}`);
      } else if (i % 2 === 0) {
        const { duration_ms, error_type, error_message, error_stack, ...v1 } = rec;
        void duration_ms, error_type, error_message, error_stack;
        value = encodeRecord({ ...v1, schema_version: 1 } as typeof rec, 1);
        valid.push(id);
      } else {
        value = encodeRecord({ ...rec, duration_ms: 12.5 });
        valid.push(id);
      }
      messages.push({ key: `i${i}`, value });
    }
    await producer.send({ topic: vars.AUDIT_TOPIC!, messages });
    await producer.disconnect();

    const result = await drainAndAudit(vars, valid);
    expect(result).toEqual({ expected: valid.length, stored: valid.length, lost: 0, duplicated: 0, unexpected: 0 });

    const dlq = await readTopic(`${vars.AUDIT_TOPIC}.dlq`, poison.length, 30_000, vars.AUDIT_KAFKA_BROKERS);
    expect(dlq.map((m) => m.headers['audit-dlq-original-key']).sort()).toEqual([...poison].sort());
    expect(dlq.every((m) => m.headers['audit-dlq-error'] && m.key?.startsWith(`${vars.AUDIT_TOPIC}-`))).toBe(true);
    // The dead letter keeps the original bytes.
    const garbage = dlq.find((m) => m.value?.toString().startsWith('garbage'));
    expect(garbage?.headers['audit-dlq-error']).toMatch(/not an audit record/);

    // v1 and v2 rows are queryable together; v1 rows read the new fields as null.
    const q = await runCli('query', ['--object', 'invoice:3', '--format', 'ndjson'], vars);
    expect(q.code).toBe(0);
    const rows = q.stdout.trim().split('\n').map((l) => JSON.parse(l) as { schema_version: number; duration_ms: number | null });
    expect(new Set(rows.map((r) => r.schema_version))).toEqual(new Set([1, 2]));
    for (const r of rows) expect(r.duration_ms).toBe(r.schema_version === 1 ? null : 12.5);
    void RecordDecoder;
  }, 240_000);
});
