import type { HistoryEvent } from '../../query/history';
import { diffVersions, stateAsOf } from '../../query/state';

function ev(at: string, action: string, extra: Partial<HistoryEvent> = {}): HistoryEvent {
  return {
    event_id: `e-${at}`, occurred_at: at, object_type: 'invoice', object_id: '42', action,
    actor_id: 'u', actor_type: null, tenant_id: null, request_id: null, trace_id: null, ip: null, user_agent: null,
    http_method: null, http_path: null, http_status: null, changes: null, before: null, after: null, metadata: null,
    source_service: null, schema_version: 2, duration_ms: null, error_type: null, error_message: null, error_stack: null,
    ...extra,
  };
}

const history = [
  ev('2026-01-01T00:00:00.000000Z', 'create', { after: { status: 'draft', total: 10 } }),
  ev('2026-01-02T00:00:00.000000Z', 'read'),
  ev('2026-01-03T00:00:00.000000Z', 'update', { changes: { status: { old: 'draft', new: 'sent' } } }),
  ev('2026-01-04T00:00:00.000000Z', 'update', { changes: { total: { old: 10, new: 12 }, note: { old: null, new: 'rush' } } }),
  ev('2026-01-05T00:00:00.000000Z', 'delete'),
];

describe('as-of and diff', () => {
  it('rebuilds the state at any time from snapshots and field changes', () => {
    expect(stateAsOf(history, '2025-12-31T00:00:00.000000Z', 'invoice', '42')).toMatchObject({ exists: false, state: null, version: 0 });
    expect(stateAsOf(history, '2026-01-02T12:00:00.000000Z', 'invoice', '42')).toMatchObject({ exists: true, state: { status: 'draft', total: 10 }, version: 1 });
    expect(stateAsOf(history, '2026-01-04T00:00:00.000000Z', 'invoice', '42')).toMatchObject({
      state: { status: 'sent', total: 12, note: 'rush' },
      version: 3,
      last_event_id: 'e-2026-01-04T00:00:00.000000Z',
    });
    expect(stateAsOf(history, '2026-02-01T00:00:00.000000Z', 'invoice', '42')).toMatchObject({ exists: false, last_action: 'delete', version: 4 });
  });

  it('lists field-level changes between consecutive versions', () => {
    const d = diffVersions(history).map(({ version, field, old, new: n }) => [version, field, old, n]);
    expect(d).toEqual([
      [1, 'status', null, 'draft'],
      [1, 'total', null, 10],
      [2, 'status', 'draft', 'sent'],
      [3, 'note', null, 'rush'],
      [3, 'total', 10, 12],
      [4, 'note', 'rush', null],
      [4, 'status', 'sent', null],
      [4, 'total', 12, null],
    ]);
  });

  it("starts from the first event's before image when the history begins mid-life (a row captured after it was made)", () => {
    const midLife = [
      ev('2026-01-03T00:00:00.000000Z', 'update', { before: { status: 'draft', total: 10 }, after: { status: 'sent', total: 10 } }),
      ev('2026-01-04T00:00:00.000000Z', 'update', { changes: { total: { old: 10, new: 12 } } }),
    ];
    expect(diffVersions(midLife).map(({ version, field, old, new: n }) => [version, field, old, n])).toEqual([
      [1, 'status', 'draft', 'sent'],
      [2, 'total', 10, 12],
    ]);
    expect(stateAsOf([ev('2026-01-03T00:00:00.000000Z', 'update', { before: { status: 'draft', total: 10 }, changes: { total: { old: 10, new: 11 } } })], '2026-02-01T00:00:00.000000Z', 'invoice', '42')).toMatchObject({
      state: { status: 'draft', total: 11 },
      version: 1,
    });
  });
});
