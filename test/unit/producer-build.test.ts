import {
  AuditClient,
  AuditInputError,
  buildRecord,
  fieldMatcher,
  DEFAULT_MASKED_FIELDS,
  runWithAuditContext,
  currentAuditContext,
  updateAuditContext,
  MASK,
} from '../../producer';
import { truncateRecord, TRUNCATED_MARKER_KEY } from '../../producer/truncate';
import { RecordDecoder, encodeRecord, recordProblems } from '../../schemas';
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
    expect(cut.sort()).toEqual(['after.body', 'user_agent']);
    expect(JSON.parse(rec.after!)).toEqual({ body: expect.stringMatching(/^x+…\[truncated \d+ bytes\]$/) });
    expect(Buffer.byteLength(rec.user_agent!)).toBeLessThan(1100);
    expect(rec.user_agent).toMatch(/…\[truncated \d+ bytes\]$/);
    expect(rec.metadata[TRUNCATED_MARKER_KEY]).toBe('user_agent,after.body');
  });

  it('cuts only the oversized leaf of an object and keeps its other fields, within the size bound', () => {
    const blob = 'A'.repeat(2 * 1024 * 1024);
    const after = { status: 'paid', total: 1350, lines: [{ sku: 'a', note: 'n'.repeat(20_000) }, { sku: 'b' }], attachment: { name: 'scan.pdf', data: blob } };
    const rec = buildRecord({ objectType: 'invoice', objectId: 42, action: 'update', after, before: { status: 'sent', total: 1350 } }, undefined, opts);
    const limit = 16 * 1024;
    const cut = truncateRecord(rec, limit);
    expect(cut.sort()).toEqual(['after.attachment.data', 'after.lines[0].note']);
    expect(Buffer.byteLength(rec.after!)).toBeLessThanOrEqual(limit);
    const kept = JSON.parse(rec.after!) as { attachment: { data: string }; lines: { note: string }[] };
    expect(kept).toMatchObject({ status: 'paid', total: 1350, lines: [{ sku: 'a' }, { sku: 'b' }], attachment: { name: 'scan.pdf' } });
    const removed = (s: string) => Number(/…\[truncated (\d+) bytes\]$/.exec(s)![1]);
    // The marker counts exactly what was removed from each value.
    expect(kept.attachment.data.replace(/…\[truncated \d+ bytes\]$/, '').length + removed(kept.attachment.data)).toBe(blob.length);
    expect(kept.lines[0]!.note.replace(/…\[truncated \d+ bytes\]$/, '').length + removed(kept.lines[0]!.note)).toBe(20_000);
    expect(JSON.parse(rec.before!)).toEqual({ status: 'sent', total: 1350 });
    expect(rec.metadata[TRUNCATED_MARKER_KEY]).toBe('after.lines[0].note,after.attachment.data');
  });

  it('cuts an oversized change value as a string and replaces a value whole only when cutting strings cannot fit it', () => {
    const rec = buildRecord(
      {
        objectType: 'doc',
        objectId: 1,
        action: 'update',
        changes: { body: { old: 'o'.repeat(50_000), new: 'short' } },
        after: { samples: Array.from({ length: 5000 }, (_, i) => i) },
      },
      undefined,
      opts,
    );
    const cut = truncateRecord(rec, 4096);
    expect(cut).toEqual(['after', 'changes.body.old']);
    expect(JSON.parse(rec.changes.body!.old!)).toMatch(/^o+…\[truncated \d+ bytes\]$/);
    expect(rec.changes.body!.new).toBe('"short"');
    expect(JSON.parse(rec.after!)).toMatchObject({ __truncated__: true, bytes: expect.any(Number), preview: expect.any(String) });
    expect(Buffer.byteLength(rec.after!)).toBeLessThanOrEqual(4096);
  });

  it('shortens harder from the built record when the message is still too large (one marker per value)', async () => {
    const client = new AuditClient({ brokers: ['127.0.0.1:1'], topic: 'unused', onBufferFull: 'fail', maxFieldBytes: 64 * 1024, maxMessageBytes: 20_000 });
    const sent: Buffer[] = [];
    (client as unknown as { enqueue: (p: { value: Buffer }) => Promise<void> }).enqueue = (p) => (sent.push(p.value), Promise.resolve());
    await client.record({ objectType: 'doc', objectId: 1, action: 'update', after: { a: 'x'.repeat(30_000), b: 'y'.repeat(30_000), status: 'ok' } });
    expect(sent).toHaveLength(1);
    expect(sent[0]!.length).toBeLessThanOrEqual(20_000);
    const rec = new RecordDecoder().decode(sent[0]!);
    const after = JSON.parse(rec.after!) as Record<string, string>;
    expect(after.status).toBe('ok');
    for (const k of ['a', 'b']) expect(after[k]!.match(/…\[truncated/g)).toHaveLength(1);
    expect(rec.metadata[TRUNCATED_MARKER_KEY]).toBe('after.a,after.b');
    expect(client.stats().truncated).toBe(1);
    await client.close();
  });

  it('refuses what the consumer would dead-letter, with the reasons, and accepts old history since 1970', async () => {
    const at = (occurredAt: number | string) => () => buildRecord({ objectType: 'invoice', objectId: 1, action: 'create', occurredAt }, undefined, opts);
    expect(at(Date.UTC(1999, 0, 1))().occurred_at).toBe(Date.UTC(1999, 0, 1) * 1000);
    expect(at('1970-01-01T00:00:00Z')().occurred_at).toBe(0);
    expect(at('2199-12-31T23:59:59Z')).not.toThrow();
    expect(at('1969-12-31T23:59:59Z')).toThrow(AuditInputError);
    expect(at('1969-12-31T23:59:59Z')).toThrow(/invalid audit event invoice:1: occurred_at out of range: 1969-12-31T23:59:59.000Z \(accepted: 1970-01-01T00:00:00.000Z to 2200-01-01T00:00:00.000Z\)/);
    expect(at(Date.UTC(2026, 0, 1) * 1000)).toThrow(/occurred_at out of range/); // microseconds passed as milliseconds
    const bad = (() => {
      try {
        buildRecord({ objectType: 'invoice', objectId: 1, action: 'create', eventId: 'nope', occurredAt: -1 }, undefined, opts);
      } catch (err) {
        return err as AuditInputError;
      }
      return null;
    })();
    expect(bad).toBeInstanceOf(AuditInputError);
    expect(bad!.object).toBe('invoice:1');
    expect(bad!.problems).toEqual([expect.stringMatching(/^event_id is not a UUID/), expect.stringMatching(/^occurred_at out of range/)]);

    // Through record(): rejected in `fail` mode, counted as invalid otherwise; never sent.
    const strict = new AuditClient({ brokers: ['127.0.0.1:1'], topic: 'unused', onBufferFull: 'fail' });
    await expect(strict.record({ objectType: 'invoice', objectId: 1, action: 'create', occurredAt: '1960-05-01' })).rejects.toThrow(AuditInputError);
    const lenient = new AuditClient({ brokers: ['127.0.0.1:1'], topic: 'unused' });
    await expect(lenient.record({ objectType: 'invoice', objectId: 1, action: 'create', eventId: 'x' })).resolves.toBeUndefined();
    expect([strict.stats(), lenient.stats()].map((s) => [s.invalid, s.accepted])).toEqual([[1, 0], [1, 0]]);
    await Promise.all([strict.close(), lenient.close()]);
  });

  it('keeps a "__proto__" key of changes, metadata and before/after as an entry, through Avro', () => {
    const changes = JSON.parse('{"__proto__":{"old":1,"new":2},"x":{"old":null,"new":"y"}}') as Record<string, { old: unknown; new: unknown }>;
    const metadata = JSON.parse('{"__proto__":"m"}') as Record<string, string>;
    const after = JSON.parse('{"__proto__":{"polluted":true},"ok":1}') as unknown;
    const rec = runWithAuditContext({ metadata: JSON.parse('{"__proto__":"ctx","region":"eu"}') as Record<string, string> }, () =>
      buildRecord({ objectType: 'doc', objectId: 1, action: 'update', changes, metadata, after }, currentAuditContext(), opts),
    );
    expect(Object.keys(rec.changes)).toEqual(['__proto__', 'x']);
    expect(rec.changes['__proto__']).toEqual({ old: '1', new: '2' });
    expect(Object.keys(rec.metadata).sort()).toEqual(['__proto__', 'region']);
    expect(rec.metadata['__proto__']).toBe('m');
    expect(rec.after).toBe('{"__proto__":{"polluted":true},"ok":1}');
    expect(recordProblems(rec)).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // On the wire the key is there: the encoded map holds both entries.
    const wire = encodeRecord(rec);
    expect(wire.includes(Buffer.from('__proto__'))).toBe(true);
  });
});
