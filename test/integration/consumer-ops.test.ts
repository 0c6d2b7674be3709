/** Operations surface of the running service: metrics, liveness, readiness, structured logs, SIGTERM. */
import { createServer } from 'node:net';
import { produceEvents } from '../helpers/audit-store';
import { isolatedEnv, runCli, startCli, waitExit } from '../helpers/infra';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

async function get(url: string): Promise<{ status: number; body: string }> {
  try {
    const res = await fetch(url);
    return { status: res.status, body: await res.text() };
  } catch {
    return { status: 0, body: '' };
  }
}

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 300));
  }
}

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : NaN;
}

/** The consumer's Kafka clients (AUDIT_KAFKA_CLIENT), and the log component of each one's own messages. */
const CLIENTS = [
  { client: 'kafkajs', component: 'kafkajs' },
  { client: 'platformatic', component: 'platformatic-kafka' },
] as const;

describe.each(CLIENTS)('consumer operations (real Kafka, real S3, client $client)', ({ client }) => {
  it('serves metrics, health and readiness, logs JSON, and exits 0 on SIGTERM after storing what it read', async () => {
    const port = await freePort();
    const vars = isolatedEnv('ops', { AUDIT_KAFKA_CLIENT: client, AUDIT_METRICS_PORT: String(port), AUDIT_LOG_LEVEL: 'info', AUDIT_FLUSH_MAX_AGE_MS: '600000' });
    await produceEvents(vars, 0, 2000);
    const child = startCli('consumer', [], vars);
    const exited = waitExit(child, 120_000);
    const base = `http://127.0.0.1:${port}`;

    expect((await until(() => get(`${base}/readyz`), (r) => r.status === 200)).status).toBe(200);
    expect((await get(`${base}/healthz`)).status).toBe(200);
    const metrics = await until(() => get(`${base}/metrics`), (r) => metric(r.body, 'audit_consumer_records_consumed_total') >= 2000);
    expect(metric(metrics.body, 'audit_consumer_records_consumed_total')).toBe(2000);
    // The age limit is long: nothing is stored yet, everything is buffered.
    expect(metric(metrics.body, 'audit_consumer_rows_written_total')).toBe(0);
    expect(metrics.body).toMatch(/# TYPE audit_consumer_flush_seconds histogram/);
    expect(metrics.body).toMatch(/audit_consumer_lag\{partition="\d"\}/);
    expect((await get(`${base}/nope`)).status).toBe(404);

    child.kill('SIGTERM');
    const r = await exited;
    expect(r.code).toBe(0);
    const logs = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string; rows?: number; reason?: string });
    const stored = logs.filter((l) => l.msg === 'cut stored and committed');
    expect(stored.every((l) => l.reason === 'shutdown')).toBe(true);
    expect(stored.reduce((n, l) => n + (l.rows ?? 0), 0)).toBe(2000);
    expect(logs.at(-1)?.msg).toBe('stopped');
  }, 120_000);
});

/** Lines of stderr, the last (possibly unterminated) one included. */
const linesOf = (stderr: string) => stderr.split('\n').filter((l) => l !== '');

describe('consumer start-up errors: configuration exit 2, an unreachable dependency exit 1, one line naming it', () => {
  let closedPort = 0;
  beforeAll(async () => {
    closedPort = await freePort(); // nothing listens there once freePort has closed it
  });

  it.each([
    [{ AUDIT_STORE_URL: 'ftp://x' }, /^audit-consumer: invalid configuration: AUDIT_STORE_URL: invalid store URL "ftp:\/\/x": unsupported scheme/],
    [{ AUDIT_STORE_URL: 's3://Bad_Bucket/x' }, /^audit-consumer: invalid configuration: AUDIT_STORE_URL: invalid store URL .*bad bucket name/],
    [{ AUDIT_FLUSH_MAX_RECORDS: 'many' }, /^audit-consumer: invalid configuration: AUDIT_FLUSH_MAX_RECORDS: /],
    [{ AUDIT_S3_ENDPOINT: 'not a url' }, /^audit-consumer: invalid configuration: AUDIT_S3_ENDPOINT: /],
  ])('configuration %j: one line naming the variable, exit 2', async (overrides, pattern) => {
    const r = await runCli('consumer', ['--drain'], isolatedEnv('startup-config', overrides), 30_000);
    expect({ code: r.code, lines: linesOf(r.stderr), stdout: r.stdout }).toEqual({ code: 2, lines: [expect.stringMatching(pattern)], stdout: '' });
  });

  it('a missing bucket on the real S3 server: one line naming it, exit 1, within seconds', async () => {
    const vars = isolatedEnv('startup-bucket', { AUDIT_STORE_URL: 's3://no-such-bucket-for-audit-tests/x' });
    const t0 = Date.now();
    const r = await runCli('consumer', ['--drain'], vars, 60_000);
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect({ code: r.code, lines: linesOf(r.stderr) }).toEqual({
      code: 1,
      lines: [`audit-consumer: storage unavailable: open s3://no-such-bucket-for-audit-tests failed: bucket no-such-bucket-for-audit-tests does not exist (endpoint ${vars.AUDIT_S3_ENDPOINT})`],
    });
  });

  it('an unreachable S3 endpoint: one line naming it, exit 1', async () => {
    const r = await runCli('consumer', ['--drain'], isolatedEnv('startup-s3', { AUDIT_S3_ENDPOINT: `http://127.0.0.1:${closedPort}` }), 60_000);
    expect({ code: r.code, lines: linesOf(r.stderr) }).toEqual({
      code: 1,
      lines: [expect.stringMatching(new RegExp(`^audit-consumer: storage unavailable: open s3://audit failed: .*ECONNREFUSED.*\\(endpoint http://127\\.0\\.0\\.1:${closedPort}\\)$`))],
    });
  });

  it.each(CLIENTS)('an unreachable broker port ($client): its retries logged, then one line naming Kafka, exit 1, nothing misleading after', async ({ client, component }) => {
    const r = await runCli('consumer', ['--drain'], isolatedEnv('startup-kafka', { AUDIT_KAFKA_CLIENT: client, AUDIT_KAFKA_BROKERS: `127.0.0.1:${closedPort}` }), 110_000);
    const lines = linesOf(r.stderr);
    expect(r.code).toBe(1);
    expect(lines.at(-1)).toMatch(new RegExp(`^audit-consumer: Kafka unavailable at 127\\.0\\.0\\.1:${closedPort} \\(AUDIT_KAFKA_BROKERS\\): .*ECONNREFUSED`));
    // Everything before it is the client's structured retry log: no stack trace, no second error.
    const logs = lines.slice(0, -1).map((l) => JSON.parse(l) as { msg: string; component?: string });
    expect(logs.length).toBeGreaterThan(0);
    expect(logs.filter((l) => l.component !== component)).toEqual([]);
    expect(r.stderr).not.toMatch(/not initialized|final flush|\n\s+at /);
  }, 120_000);
});
