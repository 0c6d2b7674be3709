/**
 * audit-cdc connects its Kafka sender before it reads a change or says it is ready: with the
 * broker's port closed it says it is retrying and /readyz answers 503, with nothing read from
 * the slot; once the port leads to Kafka (a TCP relay opened on it), it connects, starts
 * replication, turns ready, and the first change after that is on the topic. Before, the
 * sender connected on the first event, 1.4-2 s after its COMMIT, while /readyz said ready.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { Pool } from 'pg';
import { CdcProcess, cdcEnv, dropCapture, PG_URL, RecordReader } from '../helpers/cdc';
import { freePorts, KAFKA_BROKERS } from '../helpers/infra';

jest.setTimeout(120_000);

const pool = new Pool({ connectionString: PG_URL, max: 2 });
let relay: Server | null = null;
const sockets = new Set<Socket>();

/** Resolves when the process's stderr has a line containing `text` (an event, not a delay). */
function logged(cdc: CdcProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (cdc.stderr.includes(text)) {
        cdc.child.stderr?.off('data', check);
        resolve();
      }
    };
    cdc.child.stderr?.on('data', check);
    void cdc.exited.then(({ code }) => reject(new Error(`audit-cdc exited ${code} before logging ${text}: ${cdc.stderr.slice(-2000)}`)));
    check();
  });
}

/** Forwards connections on `port` to the broker's bootstrap address (the broker then advertises its own). */
function openRelay(port: number): Promise<Server> {
  const [host, target] = KAFKA_BROKERS.split(',')[0]!.split(':');
  const server = createServer((inbound) => {
    const outbound = connect(Number(target), host === 'localhost' ? '127.0.0.1' : host);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', () => resolve(server)));
}

afterAll(async () => {
  for (const s of sockets) s.destroy();
  if (relay) await new Promise((r) => relay!.close(r));
  await pool.end();
});

it('is not ready, and reads nothing, until its Kafka sender is connected; then the first change is on the topic', async () => {
  const [kafkaPort, metricsPort] = await freePorts(2);
  const { table, vars } = cdcEnv('ready', { AUDIT_KAFKA_BROKERS: `127.0.0.1:${kafkaPort}`, AUDIT_METRICS_PORT: String(metricsPort) });
  const reader = new RecordReader(vars.AUDIT_TOPIC!);
  await reader.start();
  await pool.query(`CREATE TABLE "${table}" (id int PRIMARY KEY, status text)`);
  const cdc = new CdcProcess(vars);
  try {
    await logged(cdc, '"audit-cdc starting"');
    const first = JSON.parse(cdc.stderr.split('\n')[0]!) as Record<string, unknown>;
    expect(first).toMatchObject({ msg: 'audit-cdc starting', slot: vars.AUDIT_CDC_SLOT, topic: vars.AUDIT_TOPIC, kafka: expect.stringMatching(new RegExp(` 127\\.0\\.0\\.1:${kafkaPort}$`)) });
    await logged(cdc, 'connecting the Kafka sender failed; retrying before reading changes');
    expect((await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status).toBe(503);
    expect(cdc.stderr).not.toContain('"replication started"');

    relay = await openRelay(kafkaPort!);
    await logged(cdc, '"Kafka sender connected"');
    await cdc.ready();
    expect(cdc.stderr.indexOf('"Kafka sender connected"')).toBeLessThan(cdc.stderr.indexOf('"replication started"'));
    expect((await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status).toBe(200);

    await pool.query(`INSERT INTO "${table}" VALUES (1, 'first')`);
    const [record] = await reader.waitFor((r) => r.object_type === table, 1, 30_000);
    expect(record).toMatchObject({ object_id: '1', action: 'create' });
  } finally {
    const stopped = await cdc.stop();
    await reader.stop();
    await dropCapture(pool, vars, table);
    expect(stopped).toMatchObject({ code: 0 });
  }
});
