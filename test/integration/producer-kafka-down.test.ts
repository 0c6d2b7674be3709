/**
 * The broker (a private one: other files keep the shared broker) goes away in the middle
 * of the test (infra/down.sh kafka): the
 * audited Express app keeps answering fast; `drop` mode with a small buffer
 * counts what it drops; `block` mode with a larger buffer delivers, once the
 * broker is back (infra/up.sh kafka), every event recorded while it was down,
 * none lost or duplicated. The broker is always restarted, even on failure.
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express from 'express';
import { Kafka, logLevel } from 'kafkajs';
import { AuditClient, auditExpress, type AuditExpressMiddleware } from '../../producer';
import { RecordDecoder, type AuditRecord } from '../../schemas';
import { usePrivateServices } from '../helpers/private-infra';

jest.setTimeout(180_000);

const N = 100;
const run = randomUUID().slice(0, 8);
const topics = { drop: `test.producer-down-drop-${run}`, block: `test.producer-down-block-${run}` };
const servers: Server[] = [];
const priv = usePrivateServices('producer-kafka-down', ['kafka']);
const brokers = () => priv.get().endpoints.kafkaBrokers;

async function readAll(topic: string, expectAtLeast: number, timeoutMs = 60_000): Promise<AuditRecord[]> {
  const kafka = new Kafka({ clientId: 'down-reader', brokers: [brokers()], logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `reader-${randomUUID()}` });
  const decoder = new RecordDecoder();
  const out: AuditRecord[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void out.push(decoder.decode(message.value)) });
    const deadline = Date.now() + timeoutMs;
    while (out.length < expectAtLeast && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    await new Promise((r) => setTimeout(r, 1500)); // anything beyond the expected count (duplicates) shows up too
  } finally {
    await consumer.disconnect();
  }
  return out;
}

async function app(client: AuditClient): Promise<{ url: string; mw: AuditExpressMiddleware }> {
  const a = express();
  const mw = auditExpress(client);
  a.use(mw);
  a.get('/work/:n', (req, res) => {
    // An explicit event with a known id, recorded by the handler itself.
    void client.record({ eventId: String(req.headers['x-event-id']), objectType: 'job', objectId: req.params.n, action: 'update' });
    res.json({ ok: true });
  });
  const server = a.listen(0, '127.0.0.1');
  servers.push(server);
  await new Promise((r) => server.once('listening', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, mw };
}

async function hit(url: string, n: number, tag: string): Promise<{ ms: number; requestId: string; eventId: string }> {
  const requestId = `${tag}-${run}-${n}`;
  const eventId = randomUUID();
  const t0 = performance.now();
  const res = await fetch(`${url}/work/${n}`, { headers: { 'x-request-id': requestId, 'x-event-id': eventId } });
  await res.arrayBuffer();
  const ms = performance.now() - t0;
  expect(res.status).toBe(200);
  return { ms, requestId, eventId };
}

let drop: AuditClient;
let block: AuditClient;

beforeAll(async () => {
  const admin = new Kafka({ clientId: 'down-admin', brokers: [brokers()], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  await admin.createTopics({ topics: Object.values(topics).map((topic) => ({ topic, numPartitions: 3 })), waitForLeaders: true });
  await admin.disconnect();
  drop = new AuditClient({ brokers: [brokers()], topic: topics.drop, onBufferFull: 'drop', bufferSize: 20, lingerMs: 5 });
  block = new AuditClient({ brokers: [brokers()], topic: topics.block, onBufferFull: 'block', bufferSize: 5_000, lingerMs: 5 });
});

afterAll(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
  await Promise.all([drop?.close(2_000), block?.close(2_000)]);
});

it('keeps the app fast while Kafka is down; drop mode counts drops; block mode delivers everything after recovery', async () => {
  const dropApp = await app(drop);
  const blockApp = await app(block);
  // Warm up: producers connected, topic metadata known.
  const warm = [await hit(dropApp.url, -1, 'warm'), await hit(blockApp.url, -1, 'warm')];
  expect(await drop.flush(30_000)).toBe(true);
  expect(await block.flush(30_000)).toBe(true);

  const during: { drop: Awaited<ReturnType<typeof hit>>[]; block: Awaited<ReturnType<typeof hit>>[] } = { drop: [], block: [] };
  try {
    await priv.get().down('kafka');
    for (let i = 0; i < N; i++) {
      during.drop.push(await hit(dropApp.url, i, 'drop'));
      during.block.push(await hit(blockApp.url, i, 'block'));
    }
    const slowest = Math.max(...during.drop.map((h) => h.ms), ...during.block.map((h) => h.ms));
    expect(slowest).toBeLessThan(200);
    const sorted = [...during.drop, ...during.block].map((h) => h.ms).sort((a, b) => a - b);
    console.log(
      `Kafka down: ${sorted.length} requests, median ${sorted[sorted.length >> 1]!.toFixed(1)} ms, slowest ${slowest.toFixed(1)} ms; ` +
        `drop mode dropped ${drop.stats().dropped}, block mode holds ${block.stats().queued}`,
    );

    // drop: the 20-event buffer filled up, everything after it was counted as dropped.
    const d = drop.stats();
    expect(d.dropped).toBeGreaterThanOrEqual(2 * N - 20);
    expect(d.queued).toBeLessThanOrEqual(20);
    expect(dropApp.mw.stats.failed).toBe(0); // drops are the client's business, not failures of the middleware
    // block: everything is held (request event + job event per request).
    const b = block.stats();
    expect(b.dropped).toBe(0);
    expect(b.queued).toBe(2 * N);
  } finally {
    await priv.get().up('kafka');
  }

  expect(await block.flush(90_000)).toBe(true);
  expect(block.stats()).toMatchObject({ dropped: 0, queued: 0 });
  const got = await readAll(topics.block, 2 * N + 2);
  const jobs = got.filter((r) => r.object_type === 'job');
  const requests = got.filter((r) => r.action === 'request');
  // Exactly the events recorded, by event id: none lost, none duplicated.
  expect(jobs.map((r) => r.event_id).sort()).toEqual([warm[1]!, ...during.block].map((h) => h.eventId).sort());
  expect(requests.map((r) => r.request_id).sort()).toEqual([warm[1]!, ...during.block].map((h) => h.requestId).sort());
  expect(new Set(got.map((r) => r.event_id)).size).toBe(got.length);

  // drop mode: what was buffered before the buffer filled is delivered too, nothing more.
  await drop.flush(30_000);
  const dropped = await readAll(topics.drop, 2);
  expect(dropped.length).toBe(drop.stats().delivered);
  expect(dropped.length + drop.stats().dropped).toBe(2 * N + 2);
});
