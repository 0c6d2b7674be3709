import type { JsonEvent } from './event';

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Field → [old, new] of one event: its `changes` when the producer recorded them, else the
 * difference between `before` and `after` (a create has only after, a delete only before).
 */
export function changesOf(e: JsonEvent): [field: string, old: unknown, next: unknown][] {
  if (e.changes) return Object.entries(e.changes).map(([k, c]) => [k, c.old, c.new]);
  const before = isRecord(e.before) ? e.before : {};
  const after = isRecord(e.after) ? e.after : {};
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
  if (keys.length === 0 && (e.before !== null || e.after !== null)) return [['(value)', e.before, e.after]];
  return keys
    .filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]))
    .map((k) => [k, before[k], after[k]]);
}
