/** Operations surface of the running service: metrics, liveness, readiness, structured logs, SIGTERM. */
import { createServer } from 'node:net';
import { produceEvents } from '../helpers/audit-store';
import { isolatedEnv, startCli, waitExit } from '../helpers/infra';

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

describe('consumer operations (real Kafka, real S3)', () => {
  it('serves metrics, health and readiness, logs JSON, and exits 0 on SIGTERM after storing what it read', async () => {
    const port = await freePort();
    const vars = isolatedEnv('ops', { AUDIT_METRICS_PORT: String(port), AUDIT_LOG_LEVEL: 'info', AUDIT_FLUSH_MAX_AGE_MS: '600000' });
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
