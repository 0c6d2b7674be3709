/**
 * One simulated app of the soak (bench/soak.ts), a child process of its own: records
 * `SOAK_APP_EVENTS` events through the real producer client (AUDIT_* from the
 * environment: brokers, topic, schema registry), each with an id the audit can
 * recompute (soakEventId), and reports its client's counters to the parent over IPC
 * every second and once at the end. The client blocks when its buffer is full, so a
 * broker or registry outage slows the app instead of dropping events.
 */
import { AuditClient, runWithAuditContext, type AuditEventInput } from '../../producer';

/** The event id of the app's `seq`th event: the app in the fourth group, the sequence in the last, hex. */
export function soakEventId(app: number, seq: number): string {
  return `00000000-0000-4000-8${app.toString(16).padStart(3, '0')}-${seq.toString(16).padStart(12, '0')}`;
}

export interface AppProgress {
  type: 'progress' | 'done';
  app: number;
  accepted: number;
  delivered: number;
  dropped: number;
  sendFailures: number;
  /** On `done`: told to stop (SIGTERM) before its count; it recorded ids 0..accepted-1. */
  stopped?: boolean;
  /** Set on `done` when flushing failed or events were dropped. */
  error?: string;
}

function event(app: number, seq: number): AuditEventInput {
  const id = soakEventId(app, seq);
  if (seq % 3 === 0) {
    return {
      eventId: id,
      objectType: 'http_request',
      objectId: `req-${app}-${seq}`,
      action: 'request',
      httpMethod: 'GET',
      httpPath: `/orders/${seq % 5000}`,
      httpStatus: 200,
      durationMs: 0.42,
      metadata: { 'http.route': '/orders/:id' },
    };
  }
  return {
    eventId: id,
    objectType: 'invoice',
    objectId: `${app}-${seq % 20_000}`,
    action: 'update',
    changes: { status: { old: 'draft', new: 'sent' }, total: { old: seq, new: seq + 1 } },
    after: { number: `INV-${seq}`, status: 'sent', total: seq + 1 },
    metadata: { 'orm.entity': 'Invoice' },
  };
}

async function main(): Promise<void> {
  const app = Number(process.env.SOAK_APP);
  const total = Number(process.env.SOAK_APP_EVENTS);
  if (!Number.isInteger(app) || !Number.isInteger(total)) throw new Error('SOAK_APP and SOAK_APP_EVENTS must be integers');
  const client = new AuditClient({ sourceService: `soak-app-${app}`, onBufferFull: 'block', bufferSize: 50_000 });
  let stopping = false;
  const report = (type: AppProgress['type'], error?: string) => {
    const s = client.stats();
    const msg: AppProgress = { type, app, accepted: s.accepted, delivered: s.delivered, dropped: s.dropped, sendFailures: s.sendFailures, stopped: stopping, ...(error ? { error } : {}) };
    process.send?.(msg);
  };
  const timer = setInterval(() => report('progress'), 1000);
  process.once('SIGTERM', () => (stopping = true));
  try {
    await client.start();
    const context = { actorId: `user-${app}`, actorType: 'user', tenantId: `tenant-${app % 2}`, ip: '203.0.113.7' };
    const chunk = 1000;
    for (let i = 0; i < total && !stopping; i += chunk) {
      await runWithAuditContext(context, async () => {
        const pending: Promise<void>[] = [];
        for (let j = i; j < Math.min(total, i + chunk); j++) pending.push(client.record(event(app, j)));
        await Promise.all(pending);
      });
    }
    // Generous: a broker restart or a stopped registry may hold the last requests back.
    const flushed = await client.flush(600_000);
    await client.close();
    clearInterval(timer);
    const s = client.stats();
    report('done', !flushed ? 'flush timed out' : s.dropped > 0 ? `${s.dropped} events dropped` : s.invalid > 0 ? `${s.invalid} events invalid` : undefined);
  } catch (err) {
    clearInterval(timer);
    report('done', (err as Error).message);
    throw err;
  }
}

if (require.main === module) {
  main().then(
    () => process.disconnect?.(),
    (err: unknown) => {
      process.stderr.write(`soak app: ${(err as Error).stack ?? String(err)}\n`);
      process.exitCode = 1;
      process.disconnect?.();
    },
  );
}
