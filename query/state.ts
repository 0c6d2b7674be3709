import type { HistoryEvent } from './history';

type State = Record<string, unknown>;

export interface ObjectState {
  object_type: string;
  object_id: string;
  as_of: string;
  /** False when the object did not exist yet, or was deleted, at that time. */
  exists: boolean;
  state: State | null;
  version: number;
  last_event_id: string | null;
  last_event_at: string | null;
  last_action: string | null;
}

export interface FieldDiff {
  version: number;
  event_id: string;
  occurred_at: string;
  action: string;
  actor_id: string | null;
  field: string;
  old: unknown;
  new: unknown;
}

function isObject(v: unknown): v is State {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Applies one event to the state: a full `after` snapshot wins; otherwise the
 * field `changes` are applied; a delete ends the object's existence.
 */
export function applyEvent(state: State | null, e: HistoryEvent): State | null {
  if (e.action === 'delete') return null;
  if (isObject(e.after)) return { ...e.after };
  if (e.changes && Object.keys(e.changes).length > 0) {
    const next: State = { ...(state ?? {}) };
    for (const [field, c] of Object.entries(e.changes)) {
      if (c.new === null || c.new === undefined) delete next[field];
      else next[field] = c.new;
    }
    return next;
  }
  return state;
}

/**
 * The state before `e`: what the earlier events built, or, when they built nothing (the
 * history starts mid-life, e.g. audit-cdc capturing a row that existed before it started),
 * the event's own `before` image. Without it, version 1 showed every field as changing from null.
 */
function priorState(state: State | null, version: number, e: HistoryEvent): State | null {
  if (state !== null || e.action === 'create') return state;
  // After a delete the object starts afresh; only a history's first version borrows its `before`.
  return version === 0 && isObject(e.before) ? { ...e.before } : state;
}

/** Events that describe the object's state, as opposed to reads, requests or logins. */
function changesState(e: HistoryEvent): boolean {
  return e.action === 'create' || e.action === 'update' || e.action === 'delete' || isObject(e.after) || (e.changes !== null && Object.keys(e.changes).length > 0);
}

/** The object's state at `asOfIso`, rebuilt from its events (which must be sorted oldest first). */
export function stateAsOf(events: readonly HistoryEvent[], asOfIso: string, type: string, id: string): ObjectState {
  let state: State | null = null;
  let version = 0;
  let last: HistoryEvent | null = null;
  for (const e of events) {
    if (e.occurred_at > asOfIso) break;
    if (!changesState(e)) continue;
    state = applyEvent(priorState(state, version, e), e);
    version++;
    last = e;
  }
  return {
    object_type: type,
    object_id: id,
    as_of: asOfIso,
    exists: state !== null,
    state,
    version,
    last_event_id: last?.event_id ?? null,
    last_event_at: last?.occurred_at ?? null,
    last_action: last?.action ?? null,
  };
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Field-level changes between consecutive versions. Uses the recorded
 * `changes` when present, otherwise compares the rebuilt states.
 */
export function diffVersions(events: readonly HistoryEvent[]): FieldDiff[] {
  const out: FieldDiff[] = [];
  let state: State | null = null;
  let version = 0;
  for (const e of events) {
    if (!changesState(e)) continue;
    state = priorState(state, version, e);
    const next = applyEvent(state, e);
    version++;
    const base = { version, event_id: e.event_id, occurred_at: e.occurred_at, action: e.action, actor_id: e.actor_id };
    const fields = new Set<string>([...Object.keys(state ?? {}), ...Object.keys(next ?? {})]);
    const recorded = e.changes ?? {};
    for (const f of [...fields].sort()) {
      const before = state?.[f];
      const after = next?.[f];
      if (!same(before, after)) {
        out.push({ ...base, field: f, old: recorded[f]?.old ?? before ?? null, new: recorded[f]?.new ?? after ?? null });
      }
    }
    // Recorded changes to fields the snapshot does not carry (e.g. masked or excluded ones).
    for (const [f, c] of Object.entries(recorded)) {
      if (!fields.has(f)) out.push({ ...base, field: f, old: c.old ?? null, new: c.new ?? null });
    }
    state = next;
  }
  return out;
}
