import type { Pgoutput } from 'pg-logical-replication';
import { ConfigError } from '../../config/env';
import { auditContextStatement } from '../../cdc';
import { serializeContext } from '../../producer/cdc-context/context-message';
import { changeEventId } from '../../cdc/event-id';
import { formatLsn, parseLsn } from '../../cdc/lsn';
import { loadMapping } from '../../cdc/mapping';
import { type CommitInfo, ChangeDecoder } from '../../cdc/row-events';
import type { AuditEventInput } from '../../producer';

function relation(name: string, identity: Pgoutput.MessageRelation['replicaIdentity'], cols: string[], key: string[]): Pgoutput.MessageRelation {
  return {
    tag: 'relation',
    relationOid: name.length * 1000 + cols.length,
    schema: 'public',
    name,
    replicaIdentity: identity,
    columns: cols.map((c) => ({ name: c, flags: key.includes(c) ? 1 : 0, typeOid: 25, typeMod: -1, typeSchema: null, typeName: null, parser: (x: unknown) => x })),
    keyColumns: key,
  };
}

const begin = (lsn: string): Pgoutput.MessageBegin => ({ tag: 'begin', commitLsn: lsn, commitTime: 1_767_225_600_000_000n, xid: 7 });
const commit = (end: string): Pgoutput.MessageCommit => ({ tag: 'commit', flags: 0, commitLsn: null, commitEndLsn: end, commitTime: 1_767_225_600_000_000n });
const message = (json: string): Pgoutput.MessageMessage => ({ tag: 'message', flags: 1, transactional: true, messageLsn: null, prefix: 'audit-context', content: Buffer.from(json) });

function decode(msgs: Pgoutput.Message[], mapping = loadMapping(undefined), pk?: [number, string[]]) {
  const events: AuditEventInput[] = [];
  const commits: CommitInfo[] = [];
  const d = new ChangeDecoder(mapping, (e) => events.push(e), (c) => commits.push(c));
  if (pk) d.primaryKeys.set(pk[0], pk[1]);
  for (const m of msgs) d.handle(m);
  return { events, commits, decoder: d };
}

describe('ChangeDecoder', () => {
  const full = relation('invoices', 'full', ['id', 'status', 'card_number'], ['id', 'status', 'card_number']);

  it('turns an update under REPLICA IDENTITY FULL into before/after/changes keyed by the primary key', () => {
    const { events, commits } = decode(
      [begin('0/100'), { tag: 'update', relation: full, key: null, old: { id: 1, status: 'draft', card_number: '4111111111111111' }, new: { id: 1, status: 'sent', card_number: '5500000000000004' } }, commit('0/180')],
      undefined,
      [full.relationOid, ['id']],
    );
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      objectType: 'invoices',
      objectId: '1',
      action: 'update',
      before: { id: 1, status: 'draft', card_number: '[MASKED]' },
      after: { id: 1, status: 'sent', card_number: '[MASKED]' },
      // A changed masked column is listed, masked.
      changes: { status: { old: 'draft', new: 'sent' }, card_number: { old: '[MASKED]', new: '[MASKED]' } },
      occurredAt: 1_767_225_600_000,
      actorType: 'database',
    });
    expect(commits).toEqual([{ endLsn: '0/180', commitTime: 1_767_225_600_000_000n }]);
  });

  it('gives the same change the same event id on a replay, and different changes different ids', () => {
    const ins = (id: number): Pgoutput.MessageInsert => ({ tag: 'insert', relation: full, new: { id, status: 'a', card_number: null } });
    const run = () => decode([begin('0/200'), ins(1), ins(2), commit('0/280')], undefined, [full.relationOid, ['id']]).events.map((e) => e.eventId);
    const a = run();
    expect(run()).toEqual(a);
    expect(new Set(a).size).toBe(2);
    expect(a[0]).toBe(changeEventId('0/200', 0, 'public.invoices', '1'));
    expect(a[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('stitches the context message onto the changes after it, until the commit', () => {
    const ins = (id: number): Pgoutput.MessageInsert => ({ tag: 'insert', relation: full, new: { id, status: 'a', card_number: null } });
    const { events } = decode(
      [begin('0/300'), message('{"actorId":"alice","tenantId":"acme","requestId":"r1","metadata":{"k":"v"}}'), ins(1), commit('0/380'), begin('0/400'), ins(2), commit('0/480')],
      undefined,
      [full.relationOid, ['id']],
    );
    expect(events[0]).toMatchObject({ actorId: 'alice', actorType: 'user', tenantId: 'acme', requestId: 'r1' });
    expect(events[0]!.metadata).toMatchObject({ k: 'v', 'cdc.table': 'public.invoices' });
    expect(events[1]).toMatchObject({ actorId: null, actorType: 'database' });
  });

  it('says when PostgreSQL logged no before image (REPLICA IDENTITY DEFAULT) and leaves out unchanged TOAST values', () => {
    const dflt = relation('docs', 'default', ['id', 'body', 'title'], ['id']);
    const { events } = decode([begin('0/500'), { tag: 'update', relation: dflt, key: null, old: null, new: { id: 5, body: undefined, title: 't' } }, { tag: 'delete', relation: dflt, key: { id: 6 }, old: null }, commit('0/580')]);
    expect(events[0]).toMatchObject({ objectId: '5', after: { id: 5, title: 't' } });
    expect(events[0]!.before).toBeUndefined();
    expect(events[0]!.metadata).toMatchObject({ 'cdc.before': 'unavailable', 'cdc.unchanged_toast': 'body' });
    expect(events[1]).toMatchObject({ objectId: '6', action: 'delete', before: { id: 6 } });
    expect(events[1]!.metadata!['cdc.before']).toBe('key_only');
  });

  it('makes one event per truncated table', () => {
    const other = relation('lines', 'default', ['id'], ['id']);
    const { events } = decode([begin('0/600'), { tag: 'truncate', cascade: true, restartIdentity: false, relations: [full, other] }, commit('0/680')]);
    expect(events.map((e) => `${e.objectType}:${e.objectId}:${e.action}`)).toEqual(['invoices:*:truncate', 'lines:*:truncate']);
    expect(events[0]!.metadata!['cdc.truncate.tables']).toBe('public.invoices,public.lines');
  });

  it('applies the mapping: object type, id columns, include/exclude, masking, skipped tables', () => {
    const mapping = loadMapping(JSON.stringify({ tables: { invoices: { objectType: 'invoice', id: ['status', 'id'], exclude: ['card_number'], mask: ['status'] }, 'public.lines': { skip: true } } }));
    const lines = relation('lines', 'default', ['id'], ['id']);
    const { events, decoder } = decode([begin('0/700'), { tag: 'insert', relation: full, new: { id: 3, status: 'a', card_number: 'x' } }, { tag: 'insert', relation: lines, new: { id: 1 } }, commit('0/780')], mapping);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ objectType: 'invoice', objectId: 'a:3', after: { id: 3, status: '[MASKED]' } });
    expect(decoder.stats).toMatchObject({ changes: 1, skipped: 1, transactions: 1 });
  });
});

describe('cdc helpers', () => {
  it('parses and formats WAL positions', () => {
    expect(parseLsn('16/B374D848')).toBe((0x16n << 32n) | 0xb374d848n);
    expect(parseLsn('00000000/019904A8')).toBe(0x019904a8n);
    expect(formatLsn(parseLsn('16/B374D848'))).toBe('16/B374D848');
    expect(() => parseLsn('nope')).toThrow(RangeError);
  });

  it('names the variable of a bad mapping', () => {
    expect(() => loadMapping('{"tables": {"t": {"objectTyp": "x"}}}')).toThrow(ConfigError);
    expect(() => loadMapping('{')).toThrow(/AUDIT_CDC_MAPPING/);
  });

  it('writes the context statement as one SQL literal, quotes escaped, getters resolved', () => {
    expect(auditContextStatement(undefined)).toBeNull();
    const ctx = { requestId: "r'1", get actorId() { return 'lazy'; } };
    expect(serializeContext(ctx)).toBe('{"actorId":"lazy","requestId":"r\'1"}');
    expect(auditContextStatement(ctx)).toBe(
      `SELECT set_config('audit.context', 'app', true), pg_logical_emit_message(true, 'audit-context', '{"actorId":"lazy","requestId":"r''1"}')`,
    );
  });
});
