import type { AuditEventInput } from '../build-record';
import type { AuditLogger } from '../client';
import { type AuditContext, currentAuditContext, runWithAuditContext } from '../context';
import { type AuditRecorder, createHookStats, type HookSink, type HookStats, safeRecord } from '../http/emit';

export interface OrmModelOptions {
  /** Object type of this model's events (default: its table name). */
  objectType?: string;
  /** Fields of this model that never appear in before/after/changes. */
  excludeFields?: readonly (string | RegExp)[];
}

/** Options shared by the TypeORM subscriber and the Sequelize hooks. */
export interface OrmAuditOptions {
  /** Only these models are audited (entity/model names or table names; default: all). */
  include?: readonly (string | RegExp)[];
  /** These models are not audited (wins over `include`). */
  exclude?: readonly (string | RegExp)[];
  /** Fields excluded on every model (property or column names). */
  excludeFields?: readonly (string | RegExp)[];
  /** Per-model settings, keyed by entity/model name or table name. */
  models?: Readonly<Record<string, OrmModelOptions>>;
  /** Object type of a model's events (default: the table name). `models[...].objectType` wins. */
  objectType?: (model: { name: string; table: string }) => string;
  /** Joins the values of a composite primary key into one object id (default `:`). */
  keySeparator?: string;
  /**
   * Holds the events of a write made in a transaction until it commits, and
   * drops them if it rolls back (default true). With false, events are recorded
   * as soon as the write is done, even if its transaction is later rolled back.
   */
  deferUntilCommit?: boolean;
  /** Counters to fill (default: a new object, see `stats`). */
  stats?: HookStats;
  logger?: AuditLogger;
}

export type Row = Record<string, unknown>;

/** Include/exclude decisions and field filters, computed once per model. */
export interface ModelPolicy {
  audited: boolean;
  objectType: string;
  isExcludedField: (name: string) => boolean;
}

function matches(list: readonly (string | RegExp)[] | undefined, names: readonly string[]): boolean {
  if (!list) return false;
  return list.some((p) => names.some((n) => (typeof p === 'string' ? p === n : p.test(n))));
}

export class OrmAuditor {
  readonly stats: HookStats;
  readonly sink: HookSink;
  readonly separator: string;
  readonly defer: boolean;
  private readonly policies = new Map<string, ModelPolicy>();

  constructor(
    readonly client: AuditRecorder,
    private readonly options: OrmAuditOptions,
  ) {
    if (!client || typeof client.record !== 'function') throw new TypeError('ORM audit hooks need an AuditClient');
    this.stats = options.stats ?? createHookStats();
    this.sink = { stats: this.stats, ...(options.logger ? { logger: options.logger } : {}) };
    this.separator = options.keySeparator ?? ':';
    this.defer = options.deferUntilCommit !== false;
  }

  policy(name: string, table: string): ModelPolicy {
    const key = `${name}\u0000${table}`;
    let p = this.policies.get(key);
    if (!p) {
      const o = this.options;
      const names = [name, table];
      const audited = (!o.include || o.include.length === 0 || matches(o.include, names)) && !matches(o.exclude, names);
      const model = o.models?.[name] ?? o.models?.[table];
      const fields = [...(o.excludeFields ?? []), ...(model?.excludeFields ?? [])];
      p = {
        audited,
        objectType: model?.objectType ?? o.objectType?.({ name, table }) ?? table,
        isExcludedField: (field) => fields.some((f) => (typeof f === 'string' ? f === field : f.test(field))),
      };
      this.policies.set(key, p);
    }
    return p;
  }

  /** Primary key values joined into an object id; null when a part is missing. */
  objectId(parts: readonly unknown[]): string | null {
    if (parts.length === 0) return null;
    const out: string[] = [];
    for (const v of parts) {
      if (v === undefined || v === null || v === '') return null;
      out.push(v instanceof Date ? v.toISOString() : typeof v === 'object' ? JSON.stringify(v) : String(v));
    }
    return out.join(this.separator);
  }

  /** Records now, inside the context the write was made in. */
  emit(input: AuditEventInput, ctx: AuditContext | undefined): void {
    if (ctx) runWithAuditContext(ctx, () => safeRecord(this.client, input, this.sink));
    else safeRecord(this.client, input, this.sink);
  }
}

/** An event waiting for its transaction, with the context it was made in. */
export interface HeldEvent {
  input: AuditEventInput;
  ctx: AuditContext | undefined;
}

export function held(input: AuditEventInput): HeldEvent {
  return { input, ctx: currentAuditContext() };
}

/** Values compared as the database would store them: dates by instant, numbers and numeric strings by value, the rest as JSON. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a === null || a === undefined || b === null || b === undefined) return (a ?? null) === (b ?? null);
  if (a instanceof Date || b instanceof Date) {
    const ta = a instanceof Date ? a.getTime() : Date.parse(String(a));
    const tb = b instanceof Date ? b.getTime() : Date.parse(String(b));
    return ta === tb;
  }
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  const numeric = (v: unknown) => typeof v === 'number' || typeof v === 'bigint' || (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v)));
  if ((typeof a === 'number' || typeof a === 'bigint' || typeof b === 'number' || typeof b === 'bigint') && numeric(a) && numeric(b)) {
    return Number(a) === Number(b);
  }
  if (typeof a === 'object' && typeof b === 'object') {
    try {
      return JSON.stringify(a) === JSON.stringify(b);
    } catch {
      return false;
    }
  }
  return false;
}

/** Field-level changes between two images: only the fields whose value differs. */
export function diffRows(before: Row, after: Row, fields: Iterable<string> = new Set([...Object.keys(before), ...Object.keys(after)])): NonNullable<AuditEventInput['changes']> {
  const changes: NonNullable<AuditEventInput['changes']> = {};
  for (const f of fields) {
    if (!(f in after)) continue;
    if (!sameValue(before[f], after[f])) changes[f] = { old: before[f] ?? null, new: after[f] ?? null };
  }
  return changes;
}

/** A plain, JSON-friendly copy of a column value (functions are raw SQL expressions). */
export function plainValue(v: unknown): unknown {
  if (typeof v === 'function') return '[sql expression]';
  if (Buffer.isBuffer(v)) return `[${v.length} bytes]`;
  return v;
}
