import { UsageError, parseInstant, parseObjectRef } from '../query/args';
import type { ObjectRef, TimeRange } from '../query/locate';

/**
 * Query parameters, read strictly: a parameter given twice, too long or
 * holding what no stored value could match is a 400 with a reason that names
 * the parameter (never the stored data), whatever the viewer's scope.
 */

export class BadRequest extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BadRequest';
  }
}

export type Query = Record<string, unknown>;

const MAX_PARAM = 4096;

export function param(q: Query, name: string): string | null {
  const v = q[name];
  if (v === undefined || v === '') return null;
  if (typeof v !== 'string') throw new BadRequest(`${name} must be given once`);
  if (v.length > MAX_PARAM) throw new BadRequest(`${name} is longer than ${MAX_PARAM} characters`);
  return v;
}

export function objectParam(q: Query, name = 'object'): ObjectRef | null {
  const text = param(q, name);
  if (text === null) return null;
  try {
    return parseObjectRef(text);
  } catch {
    throw new BadRequest(`${name} must be TYPE:ID`);
  }
}

export function instantParam(q: Query, name: string, endOfDay = false): number | null {
  const text = param(q, name);
  if (text === null) return null;
  try {
    return parseInstant(name, text, endOfDay);
  } catch (err) {
    if (err instanceof UsageError) throw new BadRequest(`${name} is not an ISO-8601 date or time`);
    throw err;
  }
}

export function rangeParams(q: Query): TimeRange {
  const since = instantParam(q, 'since');
  const until = instantParam(q, 'until', true);
  if (since !== null && until !== null && since > until) throw new BadRequest('since is after until');
  return { since, until };
}

/** The parameters as given (those set), for the read event's record of what was searched. */
export function given(q: Query, names: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const n of names) {
    const v = q[n];
    if (typeof v === 'string' && v !== '') out[n] = v;
  }
  return out;
}
