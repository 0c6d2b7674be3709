/**
 * The wire format against the Kafka ecosystem, on the real broker, the real S3
 * server and a real schema registry (Apicurio Registry, Confluent-compatible API):
 * records framed with registry ids are read by Confluent's own client
 * (confluent-kafka's AvroDeserializer, Python), the consumer stores all three
 * framings, rides out a registry outage, and an incompatible schema is refused
 * before anything is sent. Every storing scenario ends with a full audit of the
 * stored event ids: 0 lost, 0 duplicated.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Kafka, logLevel, Partitioners, type Producer } from 'kafkajs';
import type { SchemaRegistryConfig } from '../../config/env';
import { AuditClient, SchemaIncompatibleError } from '../../producer';
import { RegistryClient, registerWriterSchema } from '../../schema-registry';
import { type AuditRecord, confluentHeader, encodeRecord, readFraming, singleObjectHeader } from '../../schemas';
import { auditStore, compareWithProduced, eventId, produceEvents, readTopic } from '../helpers/audit-store';
import { freePorts, isolatedEnv, KAFKA_BROKERS, ROOT, runCli, runInfra, SCHEMA_REGISTRY_URL, startCli, waitExit, type RunResult } from '../helpers/infra';
import { sampleRecord } from '../helpers/records';

const FAST = { AUDIT_FLUSH_MAX_RECORDS: '1500', AUDIT_FLUSH_MAX_AGE_MS: '1000' };

function registryConfig(url: string): SchemaRegistryConfig {
  return { url, auth: { kind: 'none' }, subjectStrategy: 'topic', retryMs: 300_000 };
}

/** confluent-kafka in the venv infra/pytools.sh keeps (test/run.sh exports its path). */
function python(): string {
  return process.env.AUDIT_TEST_PYTHON ?? execFileSync('bash', [join(ROOT, 'infra', 'pytools.sh')], { encoding: 'utf8' }).trim();
}

interface ConfluentRead {
  partition: number;
  offset: number;
  schema_id: number;
  value: Record<string, unknown>;
}

async function readWithConfluent(topic: string, registryUrl: string, count: number): Promise<ConfluentRead[]> {
  const { stdout } = await promisify(execFile)(
    python(),
    [join(ROOT, 'test', 'interop', 'confluent_avro_read.py'), KAFKA_BROKERS, topic, registryUrl, String(count), '90'],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  return stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as ConfluentRead);
}

/** A record with every field set, so a reader that drops or alters one is caught. */
function richRecord(i: number): AuditRecord {
  return sampleRecord({
    event_id: eventId(i),
    occurred_at: Date.UTC(2026, 6, 1) * 1000 + i * 1_000_003,
    object_type: 'invoice',
    object_id: `inv-${i % 17}`,
    action: i % 3 === 0 ? 'create' : 'update',
    actor_id: `actor-${i % 5}`,
    actor_type: 'user',
    tenant_id: 'acme',
    request_id: `req-${i}`,
    trace_id: `trace-${i}`,
    ip: '203.0.113.7',
    user_agent: 'test/1.0 "quoted" é',
    http_method: 'POST',
    http_path: `/invoices/${i}`,
    http_status: 201,
    changes: { status: { old: '"draft"', new: '"sent"' }, total: { old: null, new: String(i) } },
    before: '{"status":"draft"}',
    after: `{"status":"sent","n":${i}}`,
    metadata: { source: 'registry-test', n: String(i) },
    source_service: 'billing',
    duration_ms: i + 0.5,
    error_type: null,
    error_message: i % 2 === 0 ? null : 'boom',
    error_stack: null,
  });
}

function asV1(rec: AuditRecord): AuditRecord {
  const { duration_ms, error_type, error_message, error_stack, ...v1 } = rec;
  void duration_ms, error_type, error_message, error_stack;
  return { ...v1, schema_version: 1 } as AuditRecord;
}

async function rawProducer(): Promise<Producer> {
  const kafka = new Kafka({ clientId: 'registry-test', brokers: [KAFKA_BROKERS], logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  return producer;
}

async function drainAndAudit(vars: Record<string, string>, produced: string[]) {
  const drain = await runCli('consumer', ['--drain'], vars, 180_000);
  expect({ code: drain.code, stderr: drain.code === 0 ? '' : drain.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
  return compareWithProduced(await auditStore(vars), produced);
}

/** Polls the store until it holds `rows` rows (the consumer stores on its own schedule). */
async function waitForStored(vars: Record<string, string>, rows: number, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let stored = 0;
  while (Date.now() < deadline) {
    stored = (await auditStore(vars)).rows;
    if (stored >= rows) return stored;
    await new Promise((r) => setTimeout(r, 1000));
  }
  return stored;
}

describe('schema registry interop (real Kafka, real S3, Apicurio Registry, confluent-kafka)', () => {
  // The outage test's private registry (own ports, storage on the broker so ids survive its restart),
  // stopped and started by that test. Its JVM takes most of a minute to start, so it starts with the
  // file and comes up while the tests before that one run. Ports picked free, not fixed: two runs on
  // one machine would start their registries on the same ones.
  let registryVars: Record<string, string> = {};
  let registryStarting: Promise<RunResult> | null = null;
  beforeAll(async () => {
    const [port, mgmtPort] = (await freePorts(2)).map(String) as [string, string];
    registryVars = { AUDIT_REGISTRY_PORT: port, AUDIT_REGISTRY_MGMT_PORT: mgmtPort, AUDIT_REGISTRY_STORAGE: 'kafkasql', AUDIT_REGISTRY_KAFKASQL_TOPIC: `registry-journal-${randomUUID().slice(0, 8)}` };
    registryStarting = runInfra('up', 'registry', registryVars);
  });
  afterAll(async () => {
    // Also when the outage test did not run (a -t filter) or failed before its own cleanup.
    await registryStarting;
    await runInfra('down', 'registry', registryVars);
  }, 120_000);

  it('without a registry, nothing on the wire starts with byte 0 and a small id: the single-object encoding', async () => {
    const vars = isolatedEnv('noregistry');
    const produced = await produceEvents(vars, 0, 200, { client: { schemaRegistry: null } });
    const messages = await readTopic(vars.AUDIT_TOPIC!, 200);
    expect(messages).toHaveLength(200);
    const header = singleObjectHeader(2);
    expect(messages.filter((m) => m.value?.[0] === 0)).toEqual([]);
    expect(messages.every((m) => m.value!.subarray(0, 10).equals(header))).toBe(true);
    expect(await drainAndAudit(vars, produced)).toEqual({ expected: 200, stored: 200, lost: 0, duplicated: 0, unexpected: 0 });
  }, 120_000);

  it('old framing and single-object encoding on one topic are all stored, with and without a registry; unplaceable records are dead-lettered with their framing', async () => {
    for (const registry of [false, true]) {
      const vars = isolatedEnv(`framings-${registry ? 'reg' : 'noreg'}`, registry ? { ...FAST, AUDIT_SCHEMA_REGISTRY_URL: SCHEMA_REGISTRY_URL } : FAST);
      const producer = await rawProducer();
      const produced: string[] = [];
      const messages = [];
      for (let i = 0; i < 2000; i++) {
        const rec = richRecord(i);
        produced.push(rec.event_id);
        // Legacy v1 (0 + id 1), legacy v2 (0 + id 2), single-object v1 and v2.
        const value = [
          encodeRecord(asV1(rec), 1, confluentHeader(1)),
          encodeRecord(rec, 2, confluentHeader(2)),
          encodeRecord(asV1(rec), 1),
          encodeRecord(rec),
        ][i % 4]!;
        messages.push({ key: `invoice:${rec.object_id}`, value });
      }
      // And two that no reader can place: dead-lettered, with their framing in the headers.
      const unknownFingerprint = Buffer.concat([Buffer.from([0xc3, 0x01, 1, 2, 3, 4, 5, 6, 7, 8]), encodeRecord(richRecord(9001)).subarray(10)]);
      const unknownId = encodeRecord(richRecord(9002), 2, confluentHeader(987654));
      messages.push({ key: 'poison-fingerprint', value: unknownFingerprint }, { key: 'poison-id', value: unknownId });
      await producer.send({ topic: vars.AUDIT_TOPIC!, messages });
      await producer.disconnect();
      expect(await drainAndAudit(vars, produced)).toEqual({ expected: 2000, stored: 2000, lost: 0, duplicated: 0, unexpected: 0 });
      const dlq = await readTopic(`${vars.AUDIT_TOPIC}.dlq`, 2, 30_000);
      const byKey = new Map(dlq.map((m) => [m.headers['audit-dlq-original-key'], m.headers]));
      expect(dlq).toHaveLength(2);
      expect(byKey.get('poison-fingerprint')).toMatchObject({
        'audit-dlq-framing': 'single-object',
        'audit-dlq-schema-fingerprint': '0102030405060708',
        'audit-dlq-error': expect.stringMatching(/unknown audit schema fingerprint 0102030405060708/),
      });
      expect(byKey.get('poison-id')).toMatchObject({
        'audit-dlq-framing': 'confluent',
        'audit-dlq-schema-id': '987654',
        'audit-dlq-error': expect.stringMatching(registry ? /schema id 987654 is not in the schema registry/ : /unknown audit schema id 987654/),
      });
    }
  }, 240_000);

  it('registry-framed v1 and v2 records read by confluent-kafka\'s AvroDeserializer are exactly what was sent, and the consumer stores them', async () => {
    const vars = isolatedEnv('registry', { ...FAST, AUDIT_SCHEMA_REGISTRY_URL: SCHEMA_REGISTRY_URL });
    const topic = vars.AUDIT_TOPIC!;
    const client = new RegistryClient(registryConfig(SCHEMA_REGISTRY_URL));
    // v1 first, then v2: each registration passes the registry's BACKWARD check.
    const v1 = await registerWriterSchema(client, topic, 'topic', 1);
    const v2 = await registerWriterSchema(client, topic, 'topic', 2);
    expect(v1.subject).toBe(`${topic}-value`);
    expect(v1.id).not.toBe(v2.id);

    const sent = new Map<string, Record<string, unknown>>();
    const producer = await rawProducer();
    const messages = [];
    for (let i = 0; i < 400; i++) {
      const rec = richRecord(i);
      const version = i % 2 === 0 ? 1 : 2;
      const value = version === 1 ? encodeRecord(asV1(rec), 1, v1.header) : encodeRecord(rec, 2, v2.header);
      sent.set(rec.event_id, { ...(version === 1 ? asV1(rec) : rec) });
      messages.push({ key: `invoice:${rec.object_id}`, value });
    }
    await producer.send({ topic, messages });
    await producer.disconnect();

    // The producer's own path: the AuditClient registers (finds) v2 at start() and frames with its id.
    const app = new AuditClient({ brokers: [KAFKA_BROKERS], topic, schemaRegistry: registryConfig(SCHEMA_REGISTRY_URL), onBufferFull: 'block' });
    await app.start();
    for (let i = 400; i < 500; i++) {
      await app.record({ eventId: eventId(i), objectType: 'invoice', objectId: i, action: 'update', changes: { n: { old: i - 1, new: i } }, metadata: { k: 'v' } });
    }
    expect(await app.flush(60_000)).toBe(true);
    await app.close();

    const read = await readWithConfluent(topic, SCHEMA_REGISTRY_URL, 500);
    expect(read).toHaveLength(500);
    for (const r of read) {
      const id = r.value.event_id as string;
      const expected = sent.get(id);
      if (expected) {
        expect(r.value).toEqual(expected);
        expect(r.schema_id).toBe(expected.schema_version === 1 ? v1.id : v2.id);
      } else {
        // From the AuditClient: the fields it was given, under the v2 id.
        expect(r.schema_id).toBe(v2.id);
        const n = Number(r.value.object_id);
        expect(r.value).toMatchObject({ event_id: eventId(n), object_type: 'invoice', action: 'update', metadata: { k: 'v' }, schema_version: 2 });
        expect(r.value.changes).toEqual({ n: { old: String(n - 1), new: String(n) } });
      }
    }
    expect(new Set(read.map((r) => r.value.event_id)).size).toBe(500);

    const produced = [...sent.keys(), ...Array.from({ length: 100 }, (_, k) => eventId(400 + k))];
    expect(await drainAndAudit(vars, produced)).toEqual({ expected: 500, stored: 500, lost: 0, duplicated: 0, unexpected: 0 });
    expect(await readTopic(`${topic}.dlq`, 0, 3000)).toEqual([]);
  }, 240_000);

  it('the consumer refuses at start-up, in one line, a registry URL that is not a registry', async () => {
    const vars = isolatedEnv('registry-badurl', { AUDIT_SCHEMA_REGISTRY_URL: SCHEMA_REGISTRY_URL.replace('/apis/ccompat/v7', '') });
    const r = await runCli('consumer', ['--drain'], vars, 60_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^audit-consumer: http:\/\/\S+ does not answer as a Confluent-compatible schema registry \(GET \/subjects: HTTP 404[^\n]*$/m);
  }, 90_000);

  it('an incompatible schema change is refused at producer start-up with a one-line error, before anything is sent', async () => {
    const topic = `test.incompatible-${randomUUID().slice(0, 8)}`;
    const client = new RegistryClient(registryConfig(SCHEMA_REGISTRY_URL));
    // An earlier AuditEvent whose event_id was a long: ours reads it as a string, which BACKWARD refuses.
    const earlier = { type: 'record', name: 'AuditEvent', namespace: 'io.auditpipeline', fields: [{ name: 'event_id', type: 'long' }] };
    await client.idFor(`${topic}-value`, earlier as never);

    const app = new AuditClient({ brokers: [KAFKA_BROKERS], topic, schemaRegistry: registryConfig(SCHEMA_REGISTRY_URL) });
    const err = await app.start().then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(SchemaIncompatibleError);
    expect(err!.message).not.toContain('\n');
    expect(err!.message).toMatch(new RegExp(`refused the audit schema for subject "${topic.replace(/\./g, '\\.')}-value" as incompatible`));
    // Recording afterwards sends nothing either.
    await app.record({ objectType: 'invoice', objectId: 1, action: 'update' });
    await app.close(2_000);
    expect(app.stats()).toMatchObject({ delivered: 0 });
    // Not even the topic was created: the producer never reached the broker.
    const admin = new Kafka({ clientId: 'registry-test', brokers: [KAFKA_BROKERS], logLevel: logLevel.NOTHING }).admin();
    await admin.connect();
    try {
      expect((await admin.listTopics()).includes(topic)).toBe(false);
    } finally {
      await admin.disconnect();
    }
  }, 60_000);

  it('keeps consuming known ids through a registry outage and resumes new ones after its restart: 0 lost, 0 duplicated', async () => {
    const url = `http://127.0.0.1:${registryVars.AUDIT_REGISTRY_PORT}/apis/ccompat/v7`;
    const up = await registryStarting!;
    expect({ code: up.code, stderr: up.code === 0 ? '' : up.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
    let consumer: ReturnType<typeof startCli> | null = null;
    try {
      const vars = isolatedEnv('registry-outage', { ...FAST, AUDIT_SCHEMA_REGISTRY_URL: url, AUDIT_LOG_LEVEL: 'info' });
      const topic = vars.AUDIT_TOPIC!;
      const app = new AuditClient({ brokers: [KAFKA_BROKERS], topic, schemaRegistry: registryConfig(url), onBufferFull: 'block', bufferSize: 50_000 });
      await app.start();
      // v1's id exists before the outage, but the consumer meets it only during it.
      const v1 = await registerWriterSchema(new RegistryClient(registryConfig(url)), topic, 'topic', 1);
      const produced: string[] = [];
      const record = async (from: number, count: number) => {
        for (let i = from; i < from + count; i++) {
          produced.push(eventId(i));
          await app.record({ eventId: eventId(i), objectType: 'order', objectId: i % 40, action: 'update', occurredAt: Date.UTC(2026, 7, 1) + i * 1000 });
        }
        expect(await app.flush(60_000)).toBe(true);
      };

      await record(0, 3000);
      consumer = startCli('consumer', [], vars);
      const exited = waitExit(consumer, 280_000);
      let stderr = '';
      consumer.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      expect(await waitForStored(vars, 3000, 60_000)).toBe(3000);

      const down = await runInfra('down', 'registry', registryVars);
      expect(down.code).toBe(0);
      // Known id while the registry is down: stored.
      await record(3000, 3000);
      expect(await waitForStored(vars, 6000, 60_000)).toBe(6000);

      // A new id while it is down: waited for, not dead-lettered.
      const producer = await rawProducer();
      const messages = [];
      for (let i = 6000; i < 7000; i++) {
        const rec = richRecord(i);
        produced.push(rec.event_id);
        messages.push({ key: `invoice:${rec.object_id}`, value: encodeRecord(asV1(rec), 1, v1.header) });
      }
      await producer.send({ topic, messages });
      await producer.disconnect();
      const deadline = Date.now() + 60_000;
      while (!stderr.includes('schema registry unavailable for a new schema id') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      expect(stderr).toContain('schema registry unavailable for a new schema id');

      const restarted = await runInfra('up', 'registry', registryVars);
      expect(restarted.code).toBe(0);
      const stored = await waitForStored(vars, 7000, 150_000);
      expect({ stored, stderr: stored === 7000 ? '' : stderr.slice(-3000) }).toEqual({ stored: 7000, stderr: '' });
      await app.close();

      consumer.kill('SIGTERM');
      const r = await exited;
      consumer = null;
      expect({ code: r.code, stderr: r.code === 0 ? '' : r.stderr.slice(-2000) }).toEqual({ code: 0, stderr: '' });
      expect(compareWithProduced(await auditStore(vars), produced)).toEqual({ expected: 7000, stored: 7000, lost: 0, duplicated: 0, unexpected: 0 });
      expect(await readTopic(`${topic}.dlq`, 0, 3000)).toEqual([]);
      // Every record on the topic carried a registry id.
      const onWire = await readTopic(topic, 7000);
      expect(onWire.every((m) => readFraming(m.value!)?.kind === 'confluent')).toBe(true);
    } finally {
      consumer?.kill('SIGKILL');
      await runInfra('down', 'registry', registryVars);
    }
  }, 300_000);
});
