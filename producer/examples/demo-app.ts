/**
 * The demo's "app": a few users working on invoices over three days, recorded
 * with the audit client exactly as an app would (context per request, explicit
 * events, login). Run by `npm run demo`.
 */
// In an app: import { AuditClient, runWithAuditContext } from 'audit-pipeline/producer';
import { AuditClient, runWithAuditContext } from '../entries/producer';

const run = process.env.AUDIT_DEMO_RUN ?? 'demo';
const day = (d: number, h: number) => Date.UTC(2026, 0, 4 + d, h);

async function main(): Promise<void> {
  const audit = new AuditClient({ sourceService: 'billing-app' });
  const invoice = `${run}-42`;
  const request = (actorId: string, requestId: string, fn: () => void) =>
    runWithAuditContext({ actorId, actorType: 'user', tenantId: 'acme', requestId, ip: '203.0.113.7' }, fn);

  request('alice', 'req-1', () => {
    void audit.record({ objectType: 'user', objectId: 'alice', action: 'login', occurredAt: day(0, 9) });
    void audit.record({
      objectType: 'invoice', objectId: invoice, action: 'create', occurredAt: day(0, 9) + 60_000,
      after: { number: 'INV-42', status: 'draft', total: 1200, currency: 'EUR' },
    });
  });
  request('bob', 'req-2', () => {
    void audit.record({
      objectType: 'invoice', objectId: invoice, action: 'update', occurredAt: day(1, 14),
      changes: { total: { old: 1200, new: 1350 } },
    });
  });
  request('alice', 'req-3', () => {
    void audit.record({ objectType: 'invoice', objectId: invoice, action: 'read', occurredAt: day(1, 16), httpMethod: 'GET', httpPath: `/invoices/${invoice}`, httpStatus: 200 });
    void audit.record({
      objectType: 'invoice', objectId: invoice, action: 'update', occurredAt: day(2, 10),
      changes: { status: { old: 'draft', new: 'sent' }, sent_to: { old: null, new: 'billing@example.com' } },
    });
  });
  // Background noise on other invoices, so the query has something to skip.
  for (let i = 0; i < 2000; i++) {
    void audit.record({ objectType: 'invoice', objectId: `${run}-other-${i % 200}`, action: 'read', occurredAt: day(i % 3, 8) + i * 1000, actorId: `user-${i % 9}` });
  }
  const delivered = await audit.flush(30_000);
  await audit.close();
  const s = audit.stats();
  console.log(`published ${s.delivered} events (${s.dropped} dropped)${delivered ? '' : ' - flush timed out'}`);
  if (!delivered || s.dropped > 0) process.exit(1);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
