import {
  AuditClient,
  auditProcess,
  currentAuditContext,
  diffRows,
  OrmAuditor,
  runWithAuditContext,
  sameValue,
  whereToJson,
} from '../../producer';
import { FakeRecorder } from '../helpers/fake-recorder';

describe('process audit', () => {
  it('records each step with status, duration and error, then the end', async () => {
    const client = new FakeRecorder();
    const proc = auditProcess(client, 'invoice-export', { objectType: 'invoice', objectId: 42, runId: 'run-1' });
    const inner: (string | undefined)[] = [];
    const n = await proc.step('load', async () => {
      await new Promise((r) => setTimeout(r, 5));
      inner.push(currentAuditContext()?.metadata?.['process.step']);
      return 3;
    });
    expect(n).toBe(3);
    await expect(proc.step('render', () => {
      throw new RangeError('page overflow');
    })).rejects.toThrow('page overflow');
    await expect(proc.step('sync', () => 'x')).resolves.toBe('x');
    const summary = proc.end({ pages: 7 });
    expect(proc.end()).toBe(summary);
    expect(summary).toMatchObject({ status: 'success', failedSteps: 1, steps: [{ name: 'load', status: 'success' }, { name: 'render', status: 'failure', error: 'RangeError: page overflow' }, { name: 'sync' }] });
    expect(inner).toEqual(['load']);
    const rows = client.records.map((r) => [r.action, r.metadata['process.step'] ?? null, r.metadata['process.status'], r.error_type]);
    expect(rows).toEqual([
      ['process_step', 'load', 'success', null],
      ['process_step', 'render', 'failure', 'RangeError'],
      ['process_step', 'sync', 'success', null],
      ['process_end', null, 'success', null],
    ]);
    for (const r of client.records) expect(r).toMatchObject({ object_type: 'invoice', object_id: '42', metadata: expect.objectContaining({ 'process.name': 'invoice-export', 'process.id': 'run-1' }) });
    expect(client.records[0]!.duration_ms).toBeGreaterThanOrEqual(4);
    expect(client.records[3]!.metadata).toMatchObject({ 'process.steps': '3', 'process.failed_steps': '1', pages: '7' });
  });

  it('fail() records the failure once; audit.process() is available on the client; context flows in', async () => {
    const client = new FakeRecorder();
    await runWithAuditContext({ actorId: 'ops', requestId: 'r1' }, async () => {
      const proc = auditProcess(client, 'sync', { recordStart: true });
      proc.fail(new Error('upstream down'));
      proc.fail(new Error('again'));
    });
    expect(client.records.map((r) => r.action)).toEqual(['process_start', 'process_end']);
    expect(client.records[1]).toMatchObject({ actor_id: 'ops', request_id: 'r1', error_message: 'upstream down', object_type: 'process' });
    expect(client.records[1]!.object_id).toBe(client.records[1]!.metadata['process.id']);
    expect(typeof AuditClient.prototype.process).toBe('function');
  });
});

describe('ORM helpers', () => {
  it('compares values as the database stores them', () => {
    expect(sameValue(10, '10.00')).toBe(true);
    expect(sameValue(new Date('2026-01-01T00:00:00Z'), '2026-01-01T00:00:00.000Z')).toBe(true);
    expect(sameValue({ a: 1 }, { a: 1 })).toBe(true);
    expect(sameValue(null, undefined)).toBe(true);
    expect(sameValue('a', 'b')).toBe(false);
    expect(sameValue(0, null)).toBe(false);
  });
  it('diffs only the changed fields present in the new image', () => {
    expect(diffRows({ a: 1, b: 'x', c: true }, { a: 1, b: 'y' })).toEqual({ b: { old: 'x', new: 'y' } });
  });
  it('turns Sequelize operators into $keys', () => {
    const gt = Symbol('gt');
    expect(whereToJson({ status: 'open', total: { [gt]: 5 } })).toEqual({ status: 'open', total: { $gt: 5 } });
  });
  it('applies include/exclude and per-model settings', () => {
    const a = new OrmAuditor(new FakeRecorder(), {
      exclude: ['audit_log', /^tmp_/],
      excludeFields: ['updatedAt'],
      models: { User: { objectType: 'user', excludeFields: ['passwordHash'] } },
    });
    expect(a.policy('AuditLog', 'audit_log').audited).toBe(false);
    expect(a.policy('Tmp', 'tmp_x').audited).toBe(false);
    const u = a.policy('User', 'users');
    expect(u).toMatchObject({ audited: true, objectType: 'user' });
    expect(u.isExcludedField('passwordHash')).toBe(true);
    expect(u.isExcludedField('updatedAt')).toBe(true);
    expect(a.policy('Order', 'orders').objectType).toBe('orders');
    expect(a.objectId([1, 'b'])).toBe('1:b');
    expect(a.objectId([1, null])).toBeNull();
  });
});
