import { buildRecord, fieldMatcher, DEFAULT_MASKED_FIELDS, runWithAuditContext, currentAuditContext, updateAuditContext, MASK } from '../../producer';
import { truncateRecord, TRUNCATED_MARKER_KEY } from '../../producer/truncate';
import { maskCardNumbers } from '../../producer/mask';

const opts = { sourceService: 'svc', isSensitive: fieldMatcher(DEFAULT_MASKED_FIELDS) };

describe('building records', () => {
  it('merges context under the event and masks sensitive fields deeply', () => {
    const rec = runWithAuditContext({ actorId: 'u1', tenantId: 't1', requestId: 'r1', metadata: { region: 'eu' } }, () =>
      buildRecord(
        {
          objectType: 'user',
          objectId: 7,
          action: 'update',
          tenantId: 't2',
          before: { name: 'a', password: 'hunter2', nested: { apiKey: 'k', card: '4111 1111 1111 1111' } },
          changes: { password: { old: 'x', new: 'y' }, name: { old: 'a', new: 'b' } },
          metadata: { token: 'abc', step: 3 },
        },
        currentAuditContext(),
        opts,
      ),
    );
    expect(rec).toMatchObject({ actor_id: 'u1', tenant_id: 't2', request_id: 'r1', object_id: '7', source_service: 'svc' });
    expect(JSON.parse(rec.before!)).toEqual({ name: 'a', password: MASK, nested: { apiKey: MASK, card: MASK } });
    expect(rec.changes.password).toEqual({ old: JSON.stringify(MASK), new: JSON.stringify(MASK) });
    expect(rec.changes.name).toEqual({ old: '"a"', new: '"b"' });
    expect(rec.metadata).toEqual({ region: 'eu', token: MASK, step: '3' });
  });

  it('keeps context across await and lets it be updated after authentication', async () => {
    await runWithAuditContext({ requestId: 'r9' }, async () => {
      await new Promise((r) => setTimeout(r, 5));
      updateAuditContext({ actorId: 'alice' });
      await Promise.resolve();
      expect(currentAuditContext()).toMatchObject({ requestId: 'r9', actorId: 'alice' });
    });
    expect(currentAuditContext()).toBeUndefined();
  });

  it('rejects events without an object or action', () => {
    expect(() => buildRecord({ objectType: '', objectId: 1, action: 'x' }, undefined, opts)).toThrow(/objectType/);
    expect(() => buildRecord({ objectType: 'a', objectId: '', action: 'x' }, undefined, opts)).toThrow(/objectId/);
    expect(() => buildRecord({ objectType: 'a', objectId: 1, action: 'x', occurredAt: 'yesterday' }, undefined, opts)).toThrow(/occurredAt/);
  });

  it('masks only Luhn-valid card numbers in free text', () => {
    expect(maskCardNumbers('paid with 4111-1111-1111-1111 ok')).toBe(`paid with ${MASK} ok`);
    expect(maskCardNumbers('order 1234567890123 ok')).toBe('order 1234567890123 ok');
  });

  it('truncates oversized fields, keeps JSON valid and marks the record', () => {
    const rec = buildRecord(
      { objectType: 'doc', objectId: 1, action: 'update', after: { body: 'x'.repeat(5000) }, userAgent: 'é'.repeat(3000) },
      undefined,
      opts,
    );
    const cut = truncateRecord(rec, 1000);
    expect(cut.sort()).toEqual(['after', 'user_agent']);
    expect(JSON.parse(rec.after!)).toMatchObject({ __truncated__: true });
    expect(Buffer.byteLength(rec.user_agent!)).toBeLessThan(1100);
    expect(rec.user_agent).toMatch(/…\[truncated \d+ bytes\]$/);
    expect(rec.metadata[TRUNCATED_MARKER_KEY]).toBe('user_agent,after');
  });
});
